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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_axis_follows_the_dominant_direction() {
        let mut r = crate::rng::Rng::new(1);
        let n = 200;
        let mut x = Vec::new();
        for _ in 0..n {
            let t = r.uniform() as f32 * 10.0;
            x.extend([
                t,
                2.0 * t + r.uniform() as f32 * 0.1,
                r.uniform() as f32 * 0.1,
            ]);
        }
        let cols = (0..3)
            .map(|c| Column {
                network: "n".into(),
                tap: "t".into(),
                reduce: "gap".into(),
                channel: c,
            })
            .collect();
        let f = FeatureSet::new(
            x,
            (0..n).map(|i| i.to_string()).collect(),
            vec![0; n],
            vec!["s".into(); n],
            vec!["a".into()],
            cols,
        )
        .unwrap();
        let p = Pca::fit(2, &f).unwrap();
        assert!(
            p.explained_variance_ratio[0] > 0.99,
            "{:?}",
            p.explained_variance_ratio
        );
        let axis: Vec<f64> = Vec::try_from(p.components.get(0)).unwrap();
        assert!(
            (axis[1] / axis[0] - 2.0).abs() < 0.01 && axis[0] > 0.0,
            "{axis:?}"
        );
        let g = p.transform(&f).unwrap();
        assert_eq!(g.dims(), (n, 2));
        assert!(Pca::fit(5, &f).is_err());
    }
}
