//! Classifiers behind one trait (params → fit → fitted model), the metrics they are scored with,
//! slide-grouped tuning, RFE. Nothing here depends on `eval` (which reports with these metrics).
//! Every classifier sees features standardised on its training rows when it needs that.

pub mod extra_trees;
pub mod linear_svm;
pub mod metrics;
pub mod mil;
pub mod perceptron;
pub mod rfe;
pub mod standardize;
pub mod tune;

use crate::error::{Error, Result};
use crate::features::{Column, FeatureSet};
use standardize::Standardizer;
use std::sync::Arc;

/// A hyper-parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Float(f64),
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Param::Float(v) => write!(f, "{v:e}"),
            Param::Int(v) => write!(f, "{v}"),
            Param::Str(s) => write!(f, "{s}"),
        }
    }
}

impl Param {
    /// As a JSON value, for typed options.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Param::Float(v) => serde_json::Number::from_f64(*v)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Param::Int(v) => (*v).into(),
            Param::Str(s) => s.clone().into(),
        }
    }

    /// From a JSON value of typed options (booleans and other values as text).
    pub fn from_json(v: &serde_json::Value) -> Param {
        match v {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Param::Int(i),
                None => Param::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Param::Str(s.clone()),
            other => Param::Str(crate::options::value_literal(other)),
        }
    }

    /// As a float (ints convert).
    pub fn as_f64(&self, name: &str) -> Result<f64> {
        match self {
            Param::Float(v) => Ok(*v),
            Param::Int(v) => Ok(*v as f64),
            Param::Str(s) => Err(Error::Invalid(format!(
                "{name} must be a number, got {s:?}"
            ))),
        }
    }
}

/// Sets hyper-parameter `key` of a classifier whose parameters are an options struct.
pub fn set_option<T: crate::options::Options>(o: &mut T, key: &str, v: &Param) -> Result<()> {
    o.set(key, v.to_json())
}

/// The fields `keys` of an options struct as hyper-parameters (what summaries and results show).
pub fn option_params<T: crate::options::Options>(o: &T, keys: &[&str]) -> Vec<(String, Param)> {
    let all = o.to_object();
    keys.iter()
        .filter_map(|k| all.get(*k).map(|v| (k.to_string(), Param::from_json(v))))
        .collect()
}

/// A dense row-major matrix of features.
#[derive(Clone, Debug)]
pub struct Matrix {
    pub data: Vec<f32>,
    pub n: usize,
    pub d: usize,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// A learning algorithm with its hyper-parameters, before fitting.
pub trait Classifier: Send + Sync + std::fmt::Debug {
    /// Script-facing name (`linear_svm`, `extra_trees`, `perceptron`).
    fn name(&self) -> &'static str;
    /// Sets one hyper-parameter by name.
    fn set(&mut self, key: &str, value: &Param) -> Result<()>;
    /// The current hyper-parameters.
    fn params(&self) -> Vec<(String, Param)>;
    /// Whether inputs must be standardised first.
    fn needs_standardization(&self) -> bool;
    /// Fits on `x` with labels `y` in `0..n_classes`.
    fn fit(&self, x: &Matrix, y: &[usize], n_classes: usize) -> Result<Box<dyn Fitted>>;
    /// A boxed copy.
    fn box_clone(&self) -> Box<dyn Classifier>;
    /// The paper's tuning grid for `d` features.
    fn paper_grid(&self, d: usize) -> Vec<(String, Vec<Param>)>;
}

impl Clone for Box<dyn Classifier> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// A fitted model.
pub trait Fitted: Send + Sync {
    /// Scores `n × k` (higher = more likely), row-major.
    fn decision(&self, x: &Matrix) -> Vec<f64>;
    /// Class probabilities `n × k`, where the model defines them.
    fn proba(&self, _x: &Matrix) -> Option<Vec<f64>> {
        None
    }
    /// Feature importances summing to 1, where the model defines them.
    fn importances(&self) -> Option<Vec<f64>> {
        None
    }
    /// Number of classes.
    fn n_classes(&self) -> usize;
}

/// Row-wise argmax of an `n × k` score matrix.
pub fn argmax_rows(scores: &[f64], k: usize) -> Vec<usize> {
    scores
        .chunks(k)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (i, v)| if *v > b.1 { (i, *v) } else { b },
                )
                .0
        })
        .collect()
}

/// Builds a classifier by name with options.
pub fn classifier(name: &str, opts: &[(String, Param)]) -> Result<Box<dyn Classifier>> {
    let mut c: Box<dyn Classifier> = match name {
        "linear_svm" | "svm" => Box::new(linear_svm::LinearSvm::default()),
        "extra_trees" | "et" => Box::new(extra_trees::ExtraTrees::default()),
        "perceptron" | "slp" => Box::new(perceptron::Perceptron::default()),
        _ => {
            return Err(Error::Invalid(format!(
                "unknown classifier {name:?} (linear_svm, extra_trees, perceptron)"
            )))
        }
    };
    for (k, v) in opts {
        c.set(k, v)?;
    }
    Ok(c)
}

/// A classifier fitted on a feature set: remembers the columns, classes and standardisation, so
/// it can be applied to any set with the same columns.
#[derive(Clone)]
pub struct Model {
    pub classifier: Box<dyn Classifier>,
    pub fitted: Arc<dyn Fitted>,
    pub scaler: Option<Standardizer>,
    pub columns: Arc<Vec<Column>>,
    pub classes: Vec<String>,
    /// Cross-validation results when the model came from `tune`.
    pub cv: Option<tune::CvTable>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({})", self.describe())
    }
}

/// The feature matrix of `f`.
pub fn matrix(f: &FeatureSet) -> Matrix {
    Matrix {
        data: (*f.x).clone(),
        n: f.n,
        d: f.d,
    }
}

/// Fits `clf` on all rows of `f`.
pub fn fit(clf: &dyn Classifier, f: &FeatureSet) -> Result<Model> {
    crate::cancel::check()?;
    if f.n == 0 {
        return Err(Error::Invalid("cannot fit on an empty feature set".into()));
    }
    let mut x = matrix(f);
    let scaler = clf.needs_standardization().then(|| Standardizer::fit(&x));
    if let Some(s) = &scaler {
        s.apply(&mut x);
    }
    let fitted = clf.fit(&x, &f.labels, f.classes.len())?;
    Ok(Model {
        classifier: clf.box_clone(),
        fitted: Arc::from(fitted),
        scaler,
        columns: f.columns.clone(),
        classes: f.classes.clone(),
        cv: None,
    })
}

/// One feature's importance with its provenance (a row of `importances(m)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Importance {
    pub network: String,
    pub tap: String,
    pub channel: usize,
    pub importance: f64,
}

crate::choice! {
    /// What [`Model::importance_share`] sums importance by.
    pub enum ShareBy {
        /// Each network's features together.
        Network = "network",
        /// Each tap's features together (`network/tap`).
        Tap = "tap",
    }
}

/// The importance of one network or tap (a row of `importance_share(m, by)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    pub by: ShareBy,
    pub key: String,
    pub importance: f64,
}

impl Model {
    fn input(&self, f: &FeatureSet) -> Result<Matrix> {
        if f.d != self.columns.len() {
            return Err(Error::Invalid(format!(
                "the model was fitted on {} features, this set has {} (same columns needed)",
                self.columns.len(),
                f.d
            )));
        }
        let mut x = matrix(f);
        if let Some(s) = &self.scaler {
            s.apply(&mut x);
        }
        Ok(x)
    }

    /// Decision scores `n × k`.
    pub fn decision(&self, f: &FeatureSet) -> Result<Vec<f64>> {
        Ok(self.fitted.decision(&self.input(f)?))
    }

    /// Predicted class indices.
    pub fn predict(&self, f: &FeatureSet) -> Result<Vec<usize>> {
        Ok(argmax_rows(&self.decision(f)?, self.classes.len()))
    }

    /// Feature importances, where the classifier has them.
    pub fn importances(&self) -> Option<Vec<f64>> {
        self.fitted.importances()
    }

    /// Importances joined with provenance (network, tap, channel), largest first.
    pub fn importance_rows(&self) -> Result<Vec<Importance>> {
        let imp = self.importances_or_error()?;
        let mut rows: Vec<Importance> = self
            .columns
            .iter()
            .zip(imp)
            .map(|(c, importance)| Importance {
                network: c.network.clone(),
                tap: c.tap.clone(),
                channel: c.channel,
                importance,
            })
            .collect();
        rows.sort_by(|a, b| b.importance.total_cmp(&a.importance));
        Ok(rows)
    }

    /// Importance summed by network or by tap, in order of first appearance.
    pub fn importance_share(&self, by: ShareBy) -> Result<Vec<Share>> {
        let imp = self.importances_or_error()?;
        let mut share: Vec<Share> = Vec::new();
        for (c, v) in self.columns.iter().zip(&imp) {
            let key = match by {
                ShareBy::Network => c.network.clone(),
                ShareBy::Tap => format!("{}/{}", c.network, c.tap),
            };
            match share.iter_mut().find(|s| s.key == key) {
                Some(s) => s.importance += v,
                None => share.push(Share {
                    by,
                    key,
                    importance: *v,
                }),
            }
        }
        Ok(share)
    }

    fn importances_or_error(&self) -> Result<Vec<f64>> {
        self.importances()
            .ok_or_else(|| Error::Invalid(format!("{} has no importances", self.classifier.name())))
    }

    /// One line.
    pub fn describe(&self) -> String {
        let p: Vec<String> = self
            .classifier
            .params()
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "{}({}) on {} features, {} classes",
            self.classifier.name(),
            p.join(", "),
            self.columns.len(),
            self.classes.len()
        )
    }
}
