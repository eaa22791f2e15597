//! Cross-validated recursive feature elimination ranked by a model's importances (extra trees in
//! the paper), and the paper's k_min rule: the smallest subset whose CV score is within
//! `tolerance` of the best.

use super::{fit, Classifier};
use crate::data::split::Cv;
use crate::error::{Error, Result};
use crate::features::FeatureSet;
use rayon::prelude::*;

crate::options! {
    /// The plain options of `rfe(clf, #{ ... })` (its `cv` is an object and read beside them).
    pub struct RfeOptions for "rfe" {
        /// Fraction of the original features removed per step (a count when ≥ 1).
        step: f64 = 0.1,
        /// k_min is the smallest subset whose CV score is within this of the best.
        tolerance: f64 = 0.005,
    }
}

/// `rfe(clf, #{ step, cv, tolerance })`.
#[derive(Clone, Debug)]
pub struct Rfe {
    pub estimator: Box<dyn Classifier>,
    /// Fraction of the original features removed per step (or a count when ≥ 1).
    pub step: f64,
    pub cv: Cv,
    pub tolerance: f64,
}

/// The outcome: the curve, k_min and the selected columns.
#[derive(Clone, Debug)]
pub struct RfeResult {
    /// `(number of features, mean CV score, std)`, from all features down to one.
    pub curve: Vec<(usize, f64, f64)>,
    pub k_min: usize,
    /// Columns kept at k_min (indices into the fitted set), most important first.
    pub selected: Vec<usize>,
    pub columns: std::sync::Arc<Vec<crate::features::Column>>,
}

impl Rfe {
    fn schedule(&self, d: usize) -> Vec<usize> {
        let step = if self.step >= 1.0 {
            self.step as usize
        } else {
            ((self.step * d as f64) as usize).max(1)
        };
        let mut sizes = vec![d];
        while *sizes.last().unwrap() > 1 {
            let next = sizes.last().unwrap().saturating_sub(step).max(1);
            sizes.push(next);
        }
        sizes
    }

    /// Feature subsets along the elimination path on `f` (and their scores on `test` if given).
    fn path(
        &self,
        f: &FeatureSet,
        test: Option<&FeatureSet>,
        sizes: &[usize],
    ) -> Result<(Vec<Vec<usize>>, Vec<f64>)> {
        let mut current: Vec<usize> = (0..f.d).collect();
        let mut subsets = Vec::new();
        let mut scores = Vec::new();
        for &size in sizes {
            crate::cancel::check()?;
            current.truncate(size);
            let sub = f.select_columns(&current)?;
            let m = fit(self.estimator.as_ref(), &sub)?;
            if let Some(t) = test {
                scores.push(super::tune::paper_score(&m, &t.select_columns(&current)?)?);
            }
            let imp = m.importances().ok_or_else(|| {
                Error::Invalid(format!(
                    "rfe needs a classifier with importances; {} has none",
                    self.estimator.name()
                ))
            })?;
            // Re-rank the current features, most important first (stable for ties).
            let mut order: Vec<usize> = (0..current.len()).collect();
            order.sort_by(|a, b| {
                imp[*b]
                    .partial_cmp(&imp[*a])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            current = order.iter().map(|i| current[*i]).collect();
            subsets.push(current.clone());
        }
        Ok((subsets, scores))
    }

    /// Runs RFE with cross-validation on `f`.
    pub fn fit(&self, f: &FeatureSet) -> Result<RfeResult> {
        let sizes = self.schedule(f.d);
        let folds = self.cv.folds(&f.slides, &f.labels)?;
        let per_fold: Vec<Vec<f64>> = folds
            .par_iter()
            .map(|(tr, te)| Ok(self.path(&f.subset(tr)?, Some(&f.subset(te)?), &sizes)?.1))
            .collect::<Result<_>>()?;
        let curve: Vec<(usize, f64, f64)> = sizes
            .iter()
            .enumerate()
            .map(|(s, &k)| {
                let v: Vec<f64> = per_fold.iter().map(|p| p[s]).collect();
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                (k, m, sd)
            })
            .collect();
        let best = curve.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
        let k_min = curve
            .iter()
            .filter(|c| c.1 >= best - self.tolerance)
            .map(|c| c.0)
            .min()
            .unwrap_or(f.d);
        // The final ranking comes from the whole data, as scikit-learn's RFECV does, eliminating
        // only down to k_min.
        let s = sizes.iter().position(|k| *k == k_min).unwrap();
        let (subsets, _) = self.path(f, None, &sizes[..=s])?;
        let mut selected = subsets[s].clone();
        selected.truncate(k_min);
        Ok(RfeResult {
            curve,
            k_min,
            selected,
            columns: f.columns.clone(),
        })
    }
}

impl RfeResult {
    /// The curve as a table: number of features, CV mean and std.
    pub fn curve_frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let c = &self.curve;
        Ok(DataFrame::new(
            c.len(),
            vec![
                Column::new("n_features".into(), c.iter().map(|c| c.0 as i64).collect::<Vec<_>>()),
                Column::new("mean".into(), c.iter().map(|c| c.1).collect::<Vec<_>>()),
                Column::new("std".into(), c.iter().map(|c| c.2).collect::<Vec<_>>()),
            ],
        )?)
    }

    /// Keeps the selected columns of `f`.
    pub fn transform(&self, f: &FeatureSet) -> Result<FeatureSet> {
        if f.d != self.columns.len() {
            return Err(Error::Invalid(format!(
                "rfe was fitted on {} columns, this set has {}",
                self.columns.len(),
                f.d
            )));
        }
        f.select_columns(&self.selected)
    }
}
