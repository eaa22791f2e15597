//! PCA fitted on training rows only, applied to any set with the same columns.

use super::{Column, FeatureSet};
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// A fitted PCA: the mean and the top `k` principal axes.
#[derive(Debug)]
pub struct Pca {
    pub k: usize,
    mean: Tensor,
    components: Tensor,
    pub explained_variance_ratio: Vec<f64>,
    source_columns: usize,
}

impl Clone for Pca {
    fn clone(&self) -> Self {
        Pca {
            k: self.k,
            mean: self.mean.copy(),
            components: self.components.copy(),
            explained_variance_ratio: self.explained_variance_ratio.clone(),
            source_columns: self.source_columns,
        }
    }
}

fn matrix(f: &FeatureSet) -> Tensor {
    Tensor::from_slice(&f.x)
        .reshape([f.n as i64, f.d as i64])
        .to_kind(Kind::Double)
}

impl Pca {
    /// Fits `k` components on `train` (signs fixed so each axis's largest loading is positive).
    pub fn fit(k: usize, train: &FeatureSet) -> Result<Pca> {
        if k == 0 || k > train.d.min(train.n) {
            return Err(Error::Invalid(format!(
                "pca({k}) needs 1 ≤ k ≤ min(rows, columns) = {}",
                train.d.min(train.n)
            )));
        }
        let x = matrix(train);
        let mean = x.mean_dim(0, true, Kind::Double);
        let (_, s, v) = (&x - &mean).svd(true, true);
        let vh = v.tr();
        let mut comps = vh.narrow(0, 0, k as i64);
        let idx = comps.abs().argmax(1, true);
        let signs = comps.gather(1, &idx, false).sign();
        comps = comps * signs;
        let var = s.square();
        let total = f64::try_from(var.sum(Kind::Double))?;
        let ratio: Vec<f64> = Vec::try_from(var.narrow(0, 0, k as i64) / total)?;
        Ok(Pca {
            k,
            mean,
            components: comps,
            explained_variance_ratio: ratio,
            source_columns: train.d,
        })
    }

    /// Projects `f` onto the fitted axes.
    pub fn transform(&self, f: &FeatureSet) -> Result<FeatureSet> {
        if f.d != self.source_columns {
            return Err(Error::Invalid(format!(
                "pca was fitted on {} columns, this set has {}",
                self.source_columns, f.d
            )));
        }
        let y = (matrix(f) - &self.mean)
            .matmul(&self.components.tr())
            .to_kind(Kind::Float)
            .contiguous();
        let network = f
            .columns
            .first()
            .map_or("?".to_string(), |c| c.network.clone());
        let cols = (0..self.k)
            .map(|c| Column {
                network: network.clone(),
                tap: "pca".into(),
                reduce: "pca".into(),
                channel: c,
            })
            .collect();
        FeatureSet::new(
            Vec::try_from(y.flatten(0, -1))?,
            f.ids.clone(),
            f.labels.clone(),
            f.slides.clone(),
            f.classes.clone(),
            cols,
        )
    }
}
