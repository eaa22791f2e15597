//! Linear SVM: L2-regularised squared-hinge loss, one-vs-rest, solved by dual
//! coordinate descent (the solver of liblinear, behind scikit-learn's LinearSVC), with an
//! intercept; written here so every fit is seeded and fits run in parallel.

use super::{Classifier, Fitted, Matrix, Param};
use crate::error::{Error, Result};
use crate::rng::Rng;
use rayon::prelude::*;

crate::choice! {
    /// How classes are weighed in the loss.
    pub enum ClassWeight {
        /// Every sample counts once.
        Unweighted = "none",
        /// Each class weighs n / (k · n_class), as scikit-learn's "balanced".
        Balanced = "balanced",
    }
}

crate::options! {
    /// `linear_svm(#{ ... })`: its hyper-parameters.
    pub struct LinearSvm for "linear_svm" {
        /// Inverse regularisation strength (> 0).
        C: f64 = 1.0,
        /// How classes are weighed.
        class_weight: ClassWeight = ClassWeight::Unweighted,
        /// Stopping tolerance of the dual solver.
        tol: f64 = 1e-4,
    }
    check(o) {
        if !(o.C > 0.0) {
            return Err(Error::Invalid(format!("linear_svm: C must be > 0, got {}", o.C)));
        }
        if !(o.tol > 0.0) {
            return Err(Error::Invalid(format!("linear_svm: tol must be > 0, got {}", o.tol)));
        }
        Ok(())
    }
}

/// A fitted one-vs-rest linear model: `scores = x · Wᵀ + b`.
pub struct LinearModel {
    /// `k × d`, row-major.
    pub w: Vec<f64>,
    pub b: Vec<f64>,
    pub k: usize,
    pub d: usize,
}

impl Fitted for LinearModel {
    fn decision(&self, x: &Matrix) -> Vec<f64> {
        let mut out = vec![0.0; x.n * self.k];
        for i in 0..x.n {
            let r = x.row(i);
            for c in 0..self.k {
                let w = &self.w[c * self.d..(c + 1) * self.d];
                out[i * self.k + c] =
                    r.iter().zip(w).map(|(a, b)| *a as f64 * b).sum::<f64>() + self.b[c];
            }
        }
        out
    }
    fn n_classes(&self) -> usize {
        self.k
    }
}

/// Sparse rows: `(feature index from 1, value)` pairs, as liblinear takes them.
pub type SparseRow = Vec<(u32, f64)>;

/// Dual coordinate descent for the L2-regularised squared-hinge SVM with a bias feature
/// (Hsieh et al. 2008; liblinear's `L2R_L2LOSS_SVC_DUAL`, with its shrinking). `c[i]` is the cost
/// of row `i`, `y[i]` ±1. Seeded, so the same call always gives the same weights. Returns `d + 1`
/// weights, the bias last.
pub fn dual_cd(
    rows: &[SparseRow],
    y: &[f64],
    c: &[f64],
    d: usize,
    tol: f64,
    seed: u64,
) -> Vec<f64> {
    let l = rows.len();
    let mut w = vec![0.0; d + 1];
    let mut alpha = vec![0.0; l];
    let diag: Vec<f64> = c.iter().map(|ci| 0.5 / ci).collect();
    let qd: Vec<f64> = rows
        .iter()
        .zip(&diag)
        .map(|(r, dg)| r.iter().map(|(_, v)| v * v).sum::<f64>() + 1.0 + dg)
        .collect();
    let mut index: Vec<usize> = (0..l).collect();
    let mut active = l;
    // With the squared hinge the dual has no upper bound, so only the lower bound shrinks.
    let mut pg_max_old = f64::INFINITY;
    let mut rng = Rng::new(seed);
    for _iter in 0..1000 {
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        rng.shuffle(&mut index[..active]);
        let mut s = 0;
        while s < active {
            let i = index[s];
            let yi = y[i];
            let dot: f64 = rows[i]
                .iter()
                .map(|(j, v)| w[*j as usize - 1] * v)
                .sum::<f64>()
                + w[d];
            let g = yi * dot - 1.0 + alpha[i] * diag[i];
            let mut pg = 0.0;
            if alpha[i] == 0.0 {
                if g > pg_max_old {
                    active -= 1;
                    index.swap(s, active);
                    continue;
                } else if g < 0.0 {
                    pg = g;
                }
            } else {
                pg = g;
            }
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (alpha[i] - g / qd[i]).max(0.0);
                let step = (alpha[i] - old) * yi;
                for (j, v) in &rows[i] {
                    w[*j as usize - 1] += step * v;
                }
                w[d] += step;
            }
            s += 1;
        }
        if pg_max - pg_min <= tol {
            if active == l {
                break;
            }
            active = l;
            pg_max_old = f64::INFINITY;
            continue;
        }
        pg_max_old = if pg_max <= 0.0 { f64::INFINITY } else { pg_max };
    }
    w
}

/// One-vs-rest training on sparse rows (indices from 1); with two classes one model separates
/// class 1 from class 0. `balanced` weighs the positive class of each model by n / (k · n_class),
/// as liblinear applies class weights.
pub fn train_sparse(
    rows: Vec<SparseRow>,
    y: &[usize],
    d: usize,
    k: usize,
    c: f64,
    balanced: bool,
    tol: f64,
) -> Result<LinearModel> {
    let present: std::collections::BTreeSet<usize> = y.iter().copied().collect();
    if present.len() < 2 {
        return Err(Error::Invalid(format!(
            "linear_svm needs at least two classes in the training rows (got {present:?})"
        )));
    }
    let n = y.len() as f64;
    let weight = |cl: usize| {
        if balanced {
            n / (present.len() as f64 * y.iter().filter(|v| **v == cl).count() as f64)
        } else {
            1.0
        }
    };
    let fit_one = |pos: usize| {
        let yy: Vec<f64> = y
            .iter()
            .map(|v| if *v == pos { 1.0 } else { -1.0 })
            .collect();
        let cc: Vec<f64> = y
            .iter()
            .map(|v| if *v == pos { c * weight(pos) } else { c })
            .collect();
        dual_cd(&rows, &yy, &cc, d, tol, pos as u64)
    };
    let mut w = vec![0.0; k * d];
    let mut b = vec![-1e30; k];
    if k == 2 {
        let w1 = fit_one(1);
        for j in 0..d {
            w[d + j] = w1[j];
            w[j] = -w1[j];
        }
        b[1] = w1[d];
        b[0] = -w1[d];
    } else {
        // Classes absent from training keep a bias that never wins.
        let fitted: Vec<(usize, Vec<f64>)> =
            present.par_iter().map(|cl| (*cl, fit_one(*cl))).collect();
        for (cl, wc) in fitted {
            w[cl * d..(cl + 1) * d].copy_from_slice(&wc[..d]);
            b[cl] = wc[d];
        }
    }
    Ok(LinearModel { w, b, k, d })
}

impl Classifier for LinearSvm {
    fn name(&self) -> &'static str {
        "linear_svm"
    }
    fn set(&mut self, key: &str, v: &Param) -> Result<()> {
        super::set_option(self, key, v)
    }
    fn params(&self) -> Vec<(String, Param)> {
        super::option_params(self, &["C", "class_weight"])
    }
    fn needs_standardization(&self) -> bool {
        true
    }
    fn fit(&self, x: &Matrix, y: &[usize], k: usize) -> Result<Box<dyn Fitted>> {
        crate::options::Options::check(self)?;
        let rows = (0..x.n)
            .map(|i| {
                x.row(i)
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0)
                    .map(|(j, v)| (j as u32 + 1, *v as f64))
                    .collect()
            })
            .collect();
        Ok(Box::new(train_sparse(
            rows,
            y,
            x.d,
            k,
            self.C,
            self.class_weight == ClassWeight::Balanced,
            self.tol,
        )?))
    }
    fn box_clone(&self) -> Box<dyn Classifier> {
        Box::new(self.clone())
    }
    fn paper_grid(&self, _d: usize) -> Vec<(String, Vec<Param>)> {
        vec![(
            "C".into(),
            (-10..=1).map(|e| Param::Float(10f64.powi(e))).collect(),
        )]
    }
}
