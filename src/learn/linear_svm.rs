//! Linear SVM: L2-regularised squared-hinge loss, one-vs-rest, solved by liblinear's dual
//! coordinate descent (the solver behind scikit-learn's LinearSVC), with an intercept.

use super::{Classifier, Fitted, Matrix, Param};
use crate::error::{Error, Result};
use liblinear::util::{PredictionInput, TrainingInput};
use liblinear::{Builder, LibLinearModel, SolverType};

/// `linear_svm(#{ C, class_weight })`.
#[derive(Clone, Debug)]
pub struct LinearSvm {
    pub c: f64,
    /// `"balanced"` weighs each class by n / (k · n_class), as scikit-learn does.
    pub balanced: bool,
    pub tolerance: f64,
}

impl Default for LinearSvm {
    fn default() -> Self {
        LinearSvm {
            c: 1.0,
            balanced: false,
            tolerance: 1e-4,
        }
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

/// Trains liblinear on sparse rows (index from 1) and returns the weights per class index.
pub fn train_sparse(
    rows: Vec<Vec<(u32, f64)>>,
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
    liblinear::toggle_liblinear_stdout_output(false);
    let labels: Vec<f64> = y.iter().map(|v| *v as f64).collect();
    let input = TrainingInput::from_sparse_features(labels, rows)
        .map_err(|e| Error::Invalid(format!("liblinear input: {e}")))?;
    let mut b = Builder::new();
    b.problem().input_data(input).bias(1.0);
    b.parameters()
        .solver_type(SolverType::L2R_L2LOSS_SVC_DUAL)
        .constraints_violation_cost(c)
        .stopping_criterion(tol);
    if balanced {
        let n = y.len() as f64;
        let kp = present.len() as f64;
        let weights: Vec<f64> = present
            .iter()
            .map(|cl| n / (kp * y.iter().filter(|v| *v == cl).count() as f64))
            .collect();
        b.parameters()
            .cost_penalty_weights(weights)
            .cost_penalty_labels(present.iter().map(|v| *v as i32).collect());
    }
    let model = b
        .build_model()
        .map_err(|e| Error::Invalid(format!("liblinear: {e}")))?;
    let mut w = vec![0.0; k * d];
    let mut bias = vec![f64::NEG_INFINITY; k];
    let labels = model.labels().clone();
    let coef = |j: usize, li: i32| model.feature_coefficient(j as i32 + 1, li);
    if labels.len() == 2 {
        // liblinear keeps one weight vector for the first label; the other is its negation.
        let (pos, neg) = (labels[0] as usize, labels[1] as usize);
        for j in 0..d {
            w[pos * d + j] = coef(j, 0);
            w[neg * d + j] = -coef(j, 0);
        }
        bias[pos] = model.label_bias(0);
        bias[neg] = -model.label_bias(0);
    } else {
        for (li, cl) in labels.iter().enumerate() {
            for j in 0..d {
                w[*cl as usize * d + j] = coef(j, li as i32);
            }
            bias[*cl as usize] = model.label_bias(li as i32);
        }
    }
    // Classes absent from training never win.
    for bv in &mut bias {
        if bv.is_infinite() {
            *bv = -1e30;
        }
    }
    let _ = PredictionInput::from_sparse_features;
    Ok(LinearModel { w, b: bias, k, d })
}

impl Classifier for LinearSvm {
    fn name(&self) -> &'static str {
        "linear_svm"
    }
    fn set(&mut self, key: &str, v: &Param) -> Result<()> {
        match key {
            "C" | "c" => {
                self.c = v.as_f64("C")?;
                if !(self.c > 0.0) {
                    return Err(Error::Invalid(format!("C must be > 0, got {}", self.c)));
                }
            }
            "class_weight" => {
                self.balanced = match v {
                    Param::Str(s) if s == "balanced" => true,
                    Param::Str(s) if s == "none" => false,
                    _ => {
                        return Err(Error::Invalid(
                            "class_weight is \"balanced\" or \"none\"".into(),
                        ))
                    }
                }
            }
            "tol" | "tolerance" => self.tolerance = v.as_f64("tol")?,
            _ => {
                return Err(Error::Invalid(format!(
                    "linear_svm has no parameter {key:?} (C, class_weight, tol)"
                )))
            }
        }
        Ok(())
    }
    fn params(&self) -> Vec<(String, Param)> {
        let cw = if self.balanced { "balanced" } else { "none" };
        vec![
            ("C".into(), Param::Float(self.c)),
            ("class_weight".into(), Param::Str(cw.into())),
        ]
    }
    fn needs_standardization(&self) -> bool {
        true
    }
    fn fit(&self, x: &Matrix, y: &[usize], k: usize) -> Result<Box<dyn Fitted>> {
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
            self.c,
            self.balanced,
            self.tolerance,
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
