//! Cross-validated recursive feature elimination ranked by a model's importances (extra trees in
//! the paper), and the paper's k_min rule: the smallest subset whose CV score is within
//! `tolerance` of the best. Each subset size is scored over the folds as `tune` scores a grid
//! point (per fold or pooled, see `tune`), so a small cohort whose folds lack a class still gets
//! a curve.

use super::tune::{constant_scores, resolve_scoring, score_folds};
use super::{fit, Classifier};
use crate::data::split::{Cv, Scoring};
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
    check(o) {
        if !(o.step.is_finite() && o.step > 0.0) || !(o.tolerance.is_finite() && o.tolerance >= 0.0) {
            return Err(Error::Invalid(format!(
                "rfe needs step > 0 and tolerance ≥ 0 (got {}, {})",
                o.step, o.tolerance
            )));
        }
        Ok(())
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

/// One point of an RFE curve: a subset size and its CV score (mean or pooled) with the std.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RfePoint {
    pub n_features: usize,
    pub mean: f64,
    pub std: f64,
}

/// The outcome: the curve, k_min and the selected columns.
#[derive(Clone, Debug)]
pub struct RfeResult {
    /// `(number of features, CV score, std)`, from all features down to one. The score is the
    /// pooled or the mean score (see `scoring`); the std is over the folds that have a score (0
    /// when fewer than two do).
    pub curve: Vec<(usize, f64, f64)>,
    /// How the folds were scored: pooled or per fold.
    pub scoring: Scoring,
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

    /// Feature subsets along the elimination path on `f` (and the decision scores of each subset's
    /// model on `test` if given).
    fn path(
        &self,
        f: &FeatureSet,
        test: Option<&FeatureSet>,
        sizes: &[usize],
    ) -> Result<(Vec<Vec<usize>>, Vec<Vec<f64>>)> {
        let mut current: Vec<usize> = (0..f.d).collect();
        let mut subsets = Vec::new();
        let mut scores = Vec::new();
        for &size in sizes {
            crate::cancel::check()?;
            current.truncate(size);
            let sub = f.select_columns(&current)?;
            let m = fit(self.estimator.as_ref(), &sub)?;
            if let Some(t) = test {
                scores.push(m.decision(&t.select_columns(&current)?)?);
            }
            let imp = m.importances().ok_or_else(|| {
                Error::Invalid(format!(
                    "rfe needs a classifier with importances; {} has none",
                    self.estimator.name()
                ))
            })?;
            // Re-rank the current features, most important first (stable for ties).
            let mut order: Vec<usize> = (0..current.len()).collect();
            order.sort_by(|a, b| imp[*b].total_cmp(&imp[*a]));
            current = order.iter().map(|i| current[*i]).collect();
            subsets.push(current.clone());
        }
        Ok((subsets, scores))
    }

    /// Runs RFE with cross-validation on `f`.
    pub fn fit(&self, f: &FeatureSet) -> Result<RfeResult> {
        let sizes = self.schedule(f.d);
        let folds = self.cv.plan(&f.slides, &f.labels, &f.classes)?;
        let (scoring, _) = resolve_scoring(&folds, f.classes.len())?;
        // Per fold, per size: decision scores on the fold's test rows.
        let per_fold: Vec<Vec<Vec<f64>>> = folds
            .pairs
            .par_iter()
            .enumerate()
            .map(|(i, (tr, te))| {
                let present: Vec<usize> = (0..f.classes.len())
                    .filter(|c| folds.train_counts[i][*c] > 0)
                    .collect();
                if let [c] = present[..] {
                    return Ok(vec![
                        constant_scores(te.len(), f.classes.len(), c);
                        sizes.len()
                    ]);
                }
                Ok(self.path(&f.subset(tr)?, Some(&f.subset(te)?), &sizes)?.1)
            })
            .collect::<Result<_>>()?;
        let mut curve = Vec::with_capacity(sizes.len());
        for (s, &k) in sizes.iter().enumerate() {
            let d: Vec<Vec<f64>> = per_fold.iter().map(|p| p[s].clone()).collect();
            let (per, pooled) = score_folds(&folds, &f.labels, &d)?;
            let v: Vec<f64> = per.iter().copied().filter(|x| !x.is_nan()).collect();
            let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let sd = if v.len() < 2 {
                0.0
            } else {
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
            };
            let score = if scoring == Scoring::Pooled {
                pooled
            } else {
                m
            };
            curve.push((k, score, sd));
        }
        let k_min = k_min(&curve, self.tolerance).unwrap_or(f.d);
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
            scoring,
            columns: f.columns.clone(),
        })
    }
}

/// The paper's k_min rule on a curve of `(number of features, CV score, std)`: the smallest
/// number of features whose score is within `tolerance` of the best score (`None` on an empty
/// curve).
pub fn k_min(curve: &[(usize, f64, f64)], tolerance: f64) -> Option<usize> {
    let best = curve.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    curve
        .iter()
        .filter(|c| c.1 >= best - tolerance)
        .map(|c| c.0)
        .min()
}

impl RfeResult {
    /// The curve's points (a row of `sel.curve()` each).
    pub fn curve_points(&self) -> Vec<RfePoint> {
        self.curve
            .iter()
            .map(|&(n_features, mean, std)| RfePoint {
                n_features,
                mean,
                std,
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A curve computed by hand: (features, score), std unused by the rule.
    fn curve(points: &[(usize, f64)]) -> Vec<(usize, f64, f64)> {
        points.iter().map(|&(k, s)| (k, s, 0.0)).collect()
    }

    #[test]
    fn k_min_is_the_smallest_count_within_the_tolerance_of_the_best() {
        // Best 0.950 at 60 features; within 0.005 of it: 100 (0.946), 60, 30 (0.9455); not 20
        // (0.944), 10 or 1. The smallest of those is 30, though a larger count scores lower.
        let c = curve(&[
            (100, 0.946),
            (80, 0.940),
            (60, 0.950),
            (45, 0.930),
            (30, 0.9455),
            (20, 0.944),
            (10, 0.900),
            (1, 0.500),
        ]);
        assert_eq!(k_min(&c, 0.005), Some(30));
        // A tolerance of 0 keeps the best itself; a wide one reaches the single feature.
        assert_eq!(k_min(&c, 0.0), Some(60));
        assert_eq!(k_min(&c, 0.0065), Some(20));
        assert_eq!(k_min(&c, 0.5), Some(1));
        // Ties at the best: the smaller count wins, wherever it sits in the curve.
        let t = curve(&[(8, 0.9), (4, 0.7), (2, 0.9), (1, 0.6)]);
        assert_eq!(k_min(&t, 0.0), Some(2));
        // A NaN score (a size no fold could score) is never chosen and never hides the best.
        let n = curve(&[(8, 0.8), (4, f64::NAN), (2, 0.79), (1, 0.5)]);
        assert_eq!(k_min(&n, 0.02), Some(2));
        assert_eq!(k_min(&[], 0.005), None);
    }
}
