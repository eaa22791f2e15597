//! Evaluation: metrics, the results table every strategy appends to, average ranks and the
//! Friedman / Nemenyi test, and the [`table::Table`] a user sorts, filters and groups at the prompt.

pub mod metrics;
pub mod results;
pub mod table;

use crate::error::Result;
use crate::features::FeatureSet;
use crate::learn::{argmax_rows, Model};

/// What `evaluate(model, f)` reports.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub classes: Vec<String>,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    /// Binary: ROC AUC; multi-class: macro one-vs-rest AUC (None when a class is absent).
    pub auc: Option<f64>,
    /// The paper's metric: AUC when binary, accuracy otherwise.
    pub score: f64,
    pub confusion: Vec<Vec<usize>>,
    pub recalls: Vec<Option<f64>>,
    pub y: Vec<usize>,
    pub scores: Vec<f64>,
}

/// Evaluates from labels and `n × k` scores.
pub fn evaluate_scores(y: &[usize], scores: &[f64], classes: &[String]) -> Result<Evaluation> {
    let k = classes.len();
    let pred = argmax_rows(scores, k);
    let auc = if k == 2 {
        metrics::paper_score(y, scores, 2).ok()
    } else {
        metrics::roc_auc_ovr(y, scores, k).ok()
    };
    let accuracy = metrics::accuracy(y, &pred)?;
    let score = if k == 2 {
        metrics::paper_score(y, scores, 2)?
    } else {
        accuracy
    };
    Ok(Evaluation {
        classes: classes.to_vec(),
        accuracy,
        balanced_accuracy: metrics::balanced_accuracy(y, &pred, k)?,
        auc,
        score,
        confusion: metrics::confusion(y, &pred, k),
        recalls: metrics::recalls(y, &pred, k),
        y: y.to_vec(),
        scores: scores.to_vec(),
    })
}

/// Evaluates a fitted model on a feature set.
pub fn evaluate(m: &Model, f: &FeatureSet) -> Result<Evaluation> {
    evaluate_scores(&f.labels, &m.decision(f)?, &f.classes)
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "accuracy {:.4}  balanced accuracy {:.4}  {} {}",
            self.accuracy,
            self.balanced_accuracy,
            if self.classes.len() == 2 {
                "ROC AUC"
            } else {
                "macro OvR AUC"
            },
            self.auc.map_or("n/a".to_string(), |a| format!("{a:.4}"))
        )?;
        let w = self
            .classes
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(5)
            .clamp(5, 16);
        write!(f, "{:>w$}", "true\\pred")?;
        for c in &self.classes {
            write!(f, " {:>6.6}", c)?;
        }
        writeln!(f, "  recall")?;
        for (i, row) in self.confusion.iter().enumerate() {
            write!(f, "{:>w$.w$}", self.classes[i])?;
            for v in row {
                write!(f, " {v:>6}")?;
            }
            writeln!(
                f,
                "  {}",
                self.recalls[i].map_or("-".into(), |r| format!("{r:.3}"))
            )?;
        }
        Ok(())
    }
}
