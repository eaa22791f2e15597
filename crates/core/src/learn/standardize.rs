//! Standardisation to zero mean and unit variance, fitted on training rows only.

use super::Matrix;

/// Per-column mean and scale.
#[derive(Clone, Debug)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Standardizer {
    /// Fits on `x` (constant columns get scale 1, as scikit-learn's StandardScaler does).
    pub fn fit(x: &Matrix) -> Standardizer {
        let mut mean = vec![0f64; x.d];
        let mut sq = vec![0f64; x.d];
        for i in 0..x.n {
            for (j, v) in x.row(i).iter().enumerate() {
                mean[j] += *v as f64;
            }
        }
        for m in &mut mean {
            *m /= x.n.max(1) as f64;
        }
        for i in 0..x.n {
            for (j, v) in x.row(i).iter().enumerate() {
                sq[j] += (*v as f64 - mean[j]).powi(2);
            }
        }
        let scale = sq.iter().map(|s| {
            let sd = (s / x.n.max(1) as f64).sqrt();
            if sd < 1e-12 {
                1.0
            } else {
                sd as f32
            }
        });
        Standardizer {
            mean: mean.iter().map(|m| *m as f32).collect(),
            scale: scale.collect(),
        }
    }

    /// Standardises `x` in place.
    pub fn apply(&self, x: &mut Matrix) {
        for row in x.data.chunks_mut(x.d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
    }
}
