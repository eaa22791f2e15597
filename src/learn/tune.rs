//! Grid search over slide-grouped folds (grid points and folds in parallel), refit of the best
//! on all given rows, and the CV table; `cross_val` for a fixed classifier.

use super::{fit, Classifier, Model, Param};
use crate::data::split::Cv;
use crate::error::{Error, Result};
use crate::eval::metrics;
use crate::features::FeatureSet;
use rayon::prelude::*;

/// Cross-validation results: one row per grid point.
#[derive(Clone, Debug)]
pub struct CvTable {
    pub params: Vec<Vec<(String, Param)>>,
    pub folds: Vec<Vec<f64>>,
    pub metric: String,
}

impl CvTable {
    /// Mean score of row `i`.
    pub fn mean(&self, i: usize) -> f64 {
        self.folds[i].iter().sum::<f64>() / self.folds[i].len() as f64
    }

    /// Standard deviation of row `i` (population, as scikit-learn reports it).
    pub fn std(&self, i: usize) -> f64 {
        let m = self.mean(i);
        (self.folds[i].iter().map(|v| (v - m).powi(2)).sum::<f64>() / self.folds[i].len() as f64)
            .sqrt()
    }

    /// Index of the best row (highest mean; the first on ties).
    pub fn best(&self) -> usize {
        (0..self.params.len()).fold(0, |b, i| if self.mean(i) > self.mean(b) { i } else { b })
    }

    /// As a polars table: params, mean, std, fold_0..
    pub fn frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let n = self.params.len();
        let text: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        let mut cols = vec![
            Column::new("params".into(), text),
            Column::new(
                "mean".into(),
                (0..n).map(|i| self.mean(i)).collect::<Vec<_>>(),
            ),
            Column::new(
                "std".into(),
                (0..n).map(|i| self.std(i)).collect::<Vec<_>>(),
            ),
        ];
        for f in 0..self.folds.first().map_or(0, |r| r.len()) {
            cols.push(Column::new(
                format!("fold_{f}").into(),
                (0..n).map(|i| self.folds[i][f]).collect::<Vec<_>>(),
            ));
        }
        Ok(DataFrame::new(n, cols)?)
    }
}

/// Every combination of the grid's values (in the grid's order).
pub fn expand(grid: &[(String, Vec<Param>)]) -> Vec<Vec<(String, Param)>> {
    let mut out = vec![Vec::new()];
    for (name, values) in grid {
        if values.is_empty() {
            continue;
        }
        out = out
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((name.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    out
}

/// The paper's score of a fitted model on rows `test` of `f`: AUC when binary, accuracy otherwise.
pub fn paper_score(m: &Model, f: &FeatureSet) -> Result<f64> {
    let scores = m.decision(f)?;
    metrics::paper_score(&f.labels, &scores, f.classes.len())
}

/// Scores of `clf` on each fold.
pub fn cross_val(clf: &dyn Classifier, f: &FeatureSet, cv: &Cv) -> Result<Vec<f64>> {
    let folds = cv.folds(&f.slides, &f.labels)?;
    folds
        .par_iter()
        .map(|(tr, te)| {
            let m = fit(clf, &f.subset(tr)?)?;
            paper_score(&m, &f.subset(te)?)
        })
        .collect()
}

/// Tunes `clf` over `grid` (empty = the paper's grid) with slide-grouped `cv`, then refits the
/// best on all rows of `f`.
pub fn tune(
    clf: &dyn Classifier,
    f: &FeatureSet,
    grid: &[(String, Vec<Param>)],
    cv: &Cv,
) -> Result<Model> {
    let grid = if grid.is_empty() {
        clf.paper_grid(f.d)
    } else {
        grid.to_vec()
    };
    let points = expand(&grid);
    let folds = cv.folds(&f.slides, &f.labels)?;
    let parts: Vec<(FeatureSet, FeatureSet)> = folds
        .iter()
        .map(|(tr, te)| Ok((f.subset(tr)?, f.subset(te)?)))
        .collect::<Result<_>>()?;
    let jobs: Vec<(usize, usize)> = (0..points.len())
        .flat_map(|p| (0..parts.len()).map(move |k| (p, k)))
        .collect();
    let scores: Vec<f64> = jobs
        .par_iter()
        .map(|(p, k)| {
            crate::cancel::check()?;
            let mut c = clf.box_clone();
            for (name, v) in &points[*p] {
                c.set(name, v)?;
            }
            let m = fit(c.as_ref(), &parts[*k].0)?;
            paper_score(&m, &parts[*k].1).map_err(|e| Error::Invalid(format!("fold {k}: {e}")))
        })
        .collect::<Result<_>>()?;
    let table = CvTable {
        params: points.clone(),
        folds: (0..points.len())
            .map(|p| scores[p * parts.len()..(p + 1) * parts.len()].to_vec())
            .collect(),
        metric: if f.classes.len() == 2 {
            "roc_auc".into()
        } else {
            "accuracy".into()
        },
    };
    let mut best = clf.box_clone();
    for (name, v) in &points[table.best()] {
        best.set(name, v)?;
    }
    let mut model = fit(best.as_ref(), f)?;
    model.cv = Some(table);
    Ok(model)
}
