//! Evaluation: metrics, the results table every strategy appends to, average ranks and the
//! Friedman / Nemenyi test, and the [`table::Table`] a user sorts, filters and groups at the prompt.
//! A test set that holds one class of two has no ROC AUC: it is scored by accuracy, and the
//! evaluation says why (`note`), so that a results row can say it too.

pub mod results;
pub mod rows;
pub mod table;

/// The metrics live with the learners that are scored by them; `eval::metrics` is the same module.
pub use crate::learn::metrics;

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
    /// The paper's metric: AUC when binary, accuracy otherwise (and when binary with one class).
    pub score: f64,
    /// The metric `score` is: `roc_auc` or `accuracy`.
    pub metric: String,
    /// Why `score` is not the paper's metric; empty when it is.
    pub note: String,
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
    let (score, metric) = metrics::paper_score_or_accuracy(y, scores, k)?;
    let note = if metric != metrics::paper_metric(k) {
        let counts = metrics::class_counts(y, k);
        let held: Vec<String> = classes
            .iter()
            .zip(&counts)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{c}, {n} images"))
            .collect();
        format!(
            "test set holds one class ({}): accuracy instead of ROC AUC",
            held.join("; ")
        )
    } else {
        String::new()
    };
    Ok(Evaluation {
        classes: classes.to_vec(),
        accuracy,
        balanced_accuracy: metrics::balanced_accuracy(y, &pred, k)?,
        auc,
        score,
        metric: metric.into(),
        note,
        confusion: metrics::confusion(y, &pred, k),
        recalls: metrics::recalls(y, &pred, k),
        y: y.to_vec(),
        scores: scores.to_vec(),
    })
}

/// Evaluates a fitted MIL model on bags (one prediction per bag).
pub fn evaluate_mil(
    m: &crate::learn::mil::MilModel,
    b: &crate::learn::mil::bags::Bags,
) -> Result<Evaluation> {
    // The model's decision refuses bags of another width or other classes.
    evaluate_scores(&b.labels(), &m.decision(b)?, &b.classes)
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
        if !self.note.is_empty() {
            writeln!(f, "note: {}", self.note)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_class_test_set_gets_accuracy_and_says_why() {
        let classes = vec!["Infected".to_string(), "NotInfected".to_string()];
        let e = evaluate_scores(
            &[1, 1, 1, 1],
            &[0.2, 0.8, 0.9, 0.1, 0.0, 1.0, 0.3, 0.7],
            &classes,
        )
        .unwrap();
        assert_eq!((e.score, e.metric.as_str()), (0.75, "accuracy"));
        assert_eq!(
            e.note,
            "test set holds one class (NotInfected, 4 images): accuracy instead of ROC AUC"
        );
        assert!(e.auc.is_none());
        assert!(e.to_string().contains("note: test set holds one class"));
        let e = evaluate_scores(&[0, 1], &[0.8, 0.2, 0.1, 0.9], &classes).unwrap();
        assert_eq!(
            (e.score, e.metric.as_str(), e.note.as_str()),
            (1.0, "roc_auc", "")
        );
    }
}
