//! Slide-level learning: attention MIL over bags of tile features ([`bags`]), the networks
//! ([`net`]: gated multi-head ABMIL and a mean-pooled floor), their training (AdamW, cosine or
//! constant schedule, balanced class weights, gradient accumulation, tiles sampled per bag and
//! epoch, early stopping on a validation part), and the fitted model's scores and attention.
//!
//! Training is seeded and deterministic on the CPU: the torch seed fixes the initialisation and
//! dropout, patholab's own generator the bag order, the tile samples and the validation part.
//! One bag is one forward pass; a step is taken every `accumulate` bags. The loss of a bag is its
//! cross-entropy times its class weight (balanced: n / (k · n_class), as scikit-learn's), divided by
//! `accumulate`.

pub mod bags;
pub mod net;
pub mod transmil;

use super::tune::{expand, search, CvTable};
use super::Param;
use crate::data::split::Cv;
use crate::error::{Error, Result};
use crate::features::Column;
use crate::options::Options;
use bags::{Bag, Bags};
use net::{bag_tensor, MilNet, Shape};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

crate::choice! {
    /// How the learning rate moves over the epochs.
    pub enum Schedule {
        /// Cosine from `lr` to 0 over the epochs (PyTorch's CosineAnnealingLR, stepped per epoch).
        Cosine = "cosine",
        /// `lr` throughout.
        Constant = "constant",
    }
}

crate::choice! {
    /// How bags of each class weigh in the loss.
    pub enum ClassWeight {
        /// n / (k · n_class): each class weighs the same in total.
        Balanced = "balanced",
        /// Every bag weighs 1.
        Uniform = "none",
    }
}

crate::choice! {
    /// What early stopping watches on the validation part.
    pub enum Monitor {
        /// The class-weighted cross-entropy (lower is better).
        Loss = "loss",
        /// ROC AUC (one-vs-rest mean for more than two classes; higher is better).
        Auc = "auc",
    }
}

/// The training options every MIL learner shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    pub schedule: Schedule,
    pub max_tiles: Option<usize>,
    pub accumulate: usize,
    pub shuffle: bool,
    pub class_weight: ClassWeight,
    pub validation: f64,
    pub patience: usize,
    pub monitor: Monitor,
    pub seed: u64,
    pub device: String,
    pub weights: Option<PathBuf>,
    pub quiet: bool,
}

impl Training {
    fn check(&self, owner: &str) -> Result<()> {
        let bad = |what: &str| Err(Error::Invalid(format!("{owner}: {what}")));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(&format!("lr must be > 0 (got {})", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(&format!(
                "weight_decay must be ≥ 0 (got {})",
                self.weight_decay
            ));
        }
        if self.epochs == 0 || self.accumulate == 0 || self.max_tiles == Some(0) {
            return bad("epochs, accumulate and max_tiles must be ≥ 1");
        }
        if !(0.0..0.9).contains(&self.validation) {
            return bad(&format!(
                "validation is a share of the training bags in [0, 0.9) (got {})",
                self.validation
            ));
        }
        crate::parse_device(&self.device).map(|_| ())
    }
}

/// Declares a MIL learner's options: its own fields, then the training fields every learner has.
macro_rules! mil_options {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident for $owner:literal { $($own:tt)* }
        own($o:ident) $check:block
    ) => {
        crate::options! {
            $(#[doc = $sdoc])*
            pub struct $name for $owner {
                $($own)*
                /// AdamW's learning rate.
                lr: f64 = 1e-4,
                /// AdamW's decoupled weight decay.
                weight_decay: f64 = 1e-2,
                /// Passes over the training bags.
                epochs: usize = 20,
                /// "cosine" (to 0 over the epochs) or "constant".
                schedule: Schedule = Schedule::Cosine,
                /// Tiles sampled per bag and epoch in training (seeded); () uses every tile. Prediction always uses every tile.
                max_tiles: Option<usize> = None,
                /// Bags whose gradients are summed before each step.
                accumulate: usize = 1,
                /// A new (seeded) order of the training bags every epoch; false keeps their order.
                shuffle: bool = true,
                /// "balanced" or "none".
                class_weight: ClassWeight = ClassWeight::Balanced,
                /// Share of the training bags held out (stratified) for early stopping; 0 trains on all for every epoch.
                validation: f64 = 0.0,
                /// Epochs without improvement on the validation part before stopping.
                patience: usize = 5,
                /// What early stopping watches: "loss" or "auc".
                monitor: Monitor = Monitor::Loss,
                /// Seed of the initialisation, dropout, bag order, tile samples and validation part.
                seed: u64 = 0,
                /// "cpu", "cuda" or "cuda:N".
                device: String = "cpu".into(),
                /// A checkpoint (.safetensors with the reference module's names) to start from.
                weights: Option<PathBuf> = None,
                /// No progress bar.
                quiet: bool = false,
            }
            check(o) {
                o.training().check($owner)?;
                let $o = o;
                $check
            }
        }

        impl $name {
            /// The training options.
            pub fn training(&self) -> Training {
                Training {
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                    epochs: self.epochs,
                    schedule: self.schedule,
                    max_tiles: self.max_tiles,
                    accumulate: self.accumulate,
                    shuffle: self.shuffle,
                    class_weight: self.class_weight,
                    validation: self.validation,
                    patience: self.patience,
                    monitor: self.monitor,
                    seed: self.seed,
                    device: self.device.clone(),
                    weights: self.weights.clone(),
                    quiet: self.quiet,
                }
            }
        }
    };
}

mil_options! {
    /// `abmil(#{ ... })`: gated attention MIL (Ilse et al. 2018), multi-head as TRIDENT's.
    pub struct AbmilOptions for "abmil" {
        /// Width of the tile embedding (Linear + ReLU) the attention pools.
        hidden: usize = 512,
        /// Width of the attention branches.
        attention_hidden: usize = 384,
        /// Gated attention (tanh · sigmoid); false uses the tanh branch alone.
        gated: bool = true,
        /// Attention heads (their pooled vectors are concatenated and condensed).
        heads: usize = 1,
        /// Dropout in the attention branches.
        dropout: f64 = 0.25,
    }
    own(o) {
        if o.hidden == 0 || o.attention_hidden == 0 || o.heads == 0 || !(0.0..1.0).contains(&o.dropout) {
            return Err(Error::Invalid(format!(
                "abmil needs hidden, attention_hidden and heads ≥ 1 and 0 ≤ dropout < 1 (got {}, {}, {}, {})",
                o.hidden, o.attention_hidden, o.heads, o.dropout
            )));
        }
        if o.hidden > MAX_WIDTH || o.attention_hidden > MAX_WIDTH || o.heads > MAX_HEADS {
            return Err(Error::Invalid(format!(
                "abmil: hidden and attention_hidden are at most {MAX_WIDTH} and heads at most \
                 {MAX_HEADS} (got {}, {}, {})",
                o.hidden, o.attention_hidden, o.heads
            )));
        }
        Ok(())
    }
}

mil_options! {
    /// `transmil(#{ ... })`: TransMIL (Shao et al. 2021), Nyström attention over the bag's tiles.
    pub struct TransMilOptions for "transmil" {
        /// Width of the tile embedding and the Transformer layers.
        hidden: usize = 512,
        /// Attention heads (hidden must be a multiple).
        heads: usize = 8,
        /// Nyström landmarks.
        landmarks: usize = 256,
        /// Iterations of the pseudo-inverse.
        pinv_iterations: usize = 6,
        /// Dropout after each attention's output projection.
        dropout: f64 = 0.1,
    }
    own(o) {
        if o.hidden == 0 || o.heads == 0 || o.landmarks == 0 || o.hidden % o.heads != 0
            || o.hidden > MAX_WIDTH || o.heads > MAX_HEADS || o.landmarks > MAX_LANDMARKS
            || o.pinv_iterations > 100 || !(0.0..1.0).contains(&o.dropout)
            || (o.heads as u128) * (o.landmarks as u128).pow(2) > 1 << 24
        {
            return Err(Error::Invalid(format!(
                "transmil needs hidden (≤ {MAX_WIDTH}) a multiple of heads (1 to {MAX_HEADS}), \
                 1 to {MAX_LANDMARKS} landmarks (heads × landmarks² ≤ 2^24), at most 100 \
                 pinv_iterations and 0 ≤ dropout < 1 \
                 (got {}, {}, {}, {}, {})",
                o.hidden, o.heads, o.landmarks, o.pinv_iterations, o.dropout
            )));
        }
        Ok(())
    }
}

mil_options! {
    /// `mean_mil(#{ ... })`: the mean of a bag's tiles, then a linear layer (the floor).
    pub struct MeanMilOptions for "mean_mil" {}
    own(_o) { Ok(()) }
}

/// The widest embedding or attention branch `abmil` builds.
pub const MAX_WIDTH: usize = 16_384;
/// The most parameters a MIL network may have (4 GiB of f32, before AdamW's two moments).
pub const MAX_PARAMETERS: u128 = 1 << 30;
/// The most Nyström landmarks `transmil` uses: every bag is padded to a multiple of them, and each
/// head holds landmarks² weights several times over.
pub const MAX_LANDMARKS: usize = 2048;
/// The most attention heads `abmil` builds.
pub const MAX_HEADS: usize = 64;

/// A MIL learner before fitting.
#[derive(Clone, Debug, PartialEq)]
pub enum MilLearner {
    Abmil(AbmilOptions),
    TransMil(TransMilOptions),
    Mean(MeanMilOptions),
}

impl MilLearner {
    /// Script-facing name.
    pub fn name(&self) -> &'static str {
        match self {
            MilLearner::Abmil(_) => "abmil",
            MilLearner::TransMil(_) => "transmil",
            MilLearner::Mean(_) => "mean_mil",
        }
    }

    /// The training options.
    pub fn training(&self) -> Training {
        match self {
            MilLearner::Abmil(o) => o.training(),
            MilLearner::TransMil(o) => o.training(),
            MilLearner::Mean(o) => o.training(),
        }
    }

    /// The network's shape.
    pub fn shape(&self) -> Shape {
        match self {
            MilLearner::Abmil(o) => Shape::Abmil {
                hidden: o.hidden,
                attention_hidden: o.attention_hidden,
                gated: o.gated,
                heads: o.heads,
                dropout: o.dropout,
            },
            MilLearner::TransMil(o) => Shape::TransMil {
                hidden: o.hidden,
                heads: o.heads,
                landmarks: o.landmarks,
                pinv_iterations: o.pinv_iterations,
                dropout: o.dropout,
            },
            MilLearner::Mean(_) => Shape::Mean,
        }
    }

    /// Sets one option by name (a tuning grid's point).
    pub fn set(&mut self, key: &str, v: &Param) -> Result<()> {
        match self {
            MilLearner::Abmil(o) => super::set_option(o, key, v),
            MilLearner::TransMil(o) => super::set_option(o, key, v),
            MilLearner::Mean(o) => super::set_option(o, key, v),
        }
    }

    /// The options that describe it.
    pub fn params(&self) -> Vec<(String, Param)> {
        match self {
            MilLearner::Abmil(o) => super::option_params(o, &["lr", "epochs", "heads", "dropout"]),
            MilLearner::TransMil(o) => {
                super::option_params(o, &["lr", "epochs", "hidden", "dropout"])
            }
            MilLearner::Mean(o) => super::option_params(o, &["lr", "epochs"]),
        }
    }

    fn check(&self) -> Result<()> {
        match self {
            MilLearner::Abmil(o) => crate::options::Options::check(o),
            MilLearner::TransMil(o) => crate::options::Options::check(o),
            MilLearner::Mean(o) => crate::options::Options::check(o),
        }
    }

    /// An error when the network for `d` features and `k` classes would have more than
    /// [`MAX_PARAMETERS`] parameters, before anything is allocated.
    fn check_size(&self, d: usize, k: usize) -> Result<()> {
        let params = self.shape().parameters(d, k);
        if params > MAX_PARAMETERS {
            return Err(Error::Invalid(format!(
                "{}: {params} parameters for {d} features is more than {MAX_PARAMETERS}; use a \
                 smaller hidden, attention_hidden or heads",
                self.name()
            )));
        }
        Ok(())
    }

    /// The untrained network for `d` features and `k` classes: initialised from the seed, or
    /// read from `weights`.
    fn network(&self, d: usize, k: usize) -> Result<MilNet> {
        let t = self.training();
        self.check_size(d, k)?;
        tch::manual_seed(t.seed as i64);
        let mut mil = MilNet::new(self.shape(), d, k, crate::parse_device(&t.device)?);
        if let Some(w) = &t.weights {
            let tensors = crate::nets::weights::read(w)?;
            mil.load(&tensors, &w.display().to_string())?;
        }
        Ok(mil)
    }

    /// A model without training: its `weights` (e.g. a checkpoint trained elsewhere), or the
    /// seeded initialisation, for `d` features and these classes.
    pub fn build(&self, d: usize, classes: &[String]) -> Result<MilModel> {
        self.check()?;
        if classes.len() < 2 || d == 0 {
            return Err(Error::Invalid(format!(
                "{} needs at least 2 classes and 1 feature (got {} and {d})",
                self.name(),
                classes.len()
            )));
        }
        Ok(MilModel {
            learner: self.clone(),
            net: Arc::new(Mutex::new(self.network(d, classes.len())?)),
            classes: classes.to_vec(),
            columns: Arc::new(vec![]),
            history: vec![],
            best_epoch: 0,
            cv: None,
        })
    }

    /// Trains on `bags`.
    pub fn fit(&self, bags: &Bags) -> Result<MilModel> {
        self.check()?;
        let k = bags.classes.len();
        self.check_size(bags.d, k)?;
        bags.validate()?;
        let t = self.training();
        let counts = super::metrics::class_counts(&bags.labels(), k);
        let absent: Vec<&str> = (0..k)
            .filter(|c| counts[*c] == 0)
            .map(|c| bags.classes[c].as_str())
            .collect();
        if absent.len() + 1 >= k {
            return Err(Error::Invalid(format!(
                "{}: the training bags hold one class only ({}); a model needs two",
                self.name(),
                bags.describe()
            )));
        }
        if !absent.is_empty() {
            // A rare class of a real cohort can miss a fold's training part.
            crate::progress::warn_once(&format!(
                "{}: no training bag has class {absent:?} ({}); the model sees no bag of it and \
                 will rarely predict it",
                self.name(),
                bags.describe()
            ));
        }
        let device = crate::parse_device(&t.device)?;
        let mut rng = crate::rng::Rng::new(t.seed);
        let (train, valid) = validation_split(bags, t.validation, &mut rng);
        if !valid.is_empty() && t.monitor == Monitor::Auc {
            let held = super::metrics::class_counts(
                &valid
                    .iter()
                    .map(|i| bags.bags[*i].label)
                    .collect::<Vec<_>>(),
                k,
            );
            if held.iter().any(|n| *n == 0) {
                return Err(Error::Invalid(format!(
                    "{}: monitor \"auc\" needs every class in the validation part, which holds \
                     {held:?} bags per class of {:?} (a class with one bag stays in training); \
                     use monitor: \"loss\" or more bags",
                    self.name(),
                    bags.classes
                )));
            }
        }
        let mut mil = self.network(bags.d, k)?;
        let train_counts = super::metrics::class_counts(
            &train
                .iter()
                .map(|i| bags.bags[*i].label)
                .collect::<Vec<_>>(),
            k,
        );
        let class_w: Vec<f64> = match t.class_weight {
            ClassWeight::Uniform => vec![1.0; k],
            ClassWeight::Balanced => train_counts
                .iter()
                .map(|n| train.len() as f64 / (k as f64 * (*n).max(1) as f64))
                .collect(),
        };
        let mut opt = nn::AdamW {
            wd: t.weight_decay,
            ..Default::default()
        }
        .build(&mil.vs, t.lr)?;
        let bar = crate::progress::bar((t.epochs * train.len()) as u64, self.name(), t.quiet);
        let mut history = Vec::with_capacity(t.epochs);
        let mut best: Option<(f64, usize, Vec<(String, Tensor)>)> = None;
        let mut order = train.clone();
        for epoch in 0..t.epochs {
            let lr = match t.schedule {
                Schedule::Constant => t.lr,
                Schedule::Cosine => {
                    t.lr * 0.5
                        * (1.0 + (std::f64::consts::PI * epoch as f64 / t.epochs as f64).cos())
                }
            };
            opt.set_lr(lr);
            if t.shuffle {
                rng.shuffle(&mut order);
            }
            opt.zero_grad();
            let mut total = 0.0;
            for (j, i) in order.iter().enumerate() {
                crate::cancel::check()?;
                let b = &bags.bags[*i];
                let x = sampled(b, bags.d, t.max_tiles, &mut rng, device);
                let out = mil.forward(&x, true);
                let y = Tensor::from_slice(&[b.label as i64]).to_device(device);
                let loss = out.logits.unsqueeze(0).cross_entropy_for_logits(&y)
                    * (class_w[b.label] / t.accumulate as f64);
                loss.backward();
                total += loss.double_value(&[]) * t.accumulate as f64;
                if (j + 1) % t.accumulate == 0 || j + 1 == order.len() {
                    opt.step();
                    opt.zero_grad();
                }
                bar.inc(1);
            }
            let mut log = Epoch {
                epoch: epoch + 1,
                lr,
                train_loss: total / order.len() as f64,
                valid_loss: None,
                valid_auc: None,
            };
            if !valid.is_empty() {
                let (loss, auc) = score_part(&mil, bags, &valid, &class_w, device)?;
                log.valid_loss = Some(loss);
                log.valid_auc = auc;
                let value = match t.monitor {
                    Monitor::Loss => -loss,
                    Monitor::Auc => auc.unwrap_or(f64::NEG_INFINITY),
                };
                let improved = best.as_ref().is_none_or(|(b, _, _)| value > *b);
                history.push(log);
                if improved {
                    best = Some((value, epoch + 1, mil.named()));
                } else if epoch + 1 - best.as_ref().map_or(0, |b| b.1) >= t.patience {
                    break;
                }
            } else {
                history.push(log);
            }
        }
        bar.finish_and_clear();
        let best_epoch = match best {
            Some((_, e, named)) => {
                mil.load(&named, "the best epoch")?;
                e
            }
            None => history.len(),
        };
        Ok(MilModel {
            learner: self.clone(),
            net: Arc::new(Mutex::new(mil)),
            classes: bags.classes.clone(),
            columns: bags.columns.clone(),
            history,
            best_epoch,
            cv: None,
        })
    }
}

/// The scores of `l` (as it is, no grid) on the folds of `cv` over bags: a one-row table. Folds
/// keep each bag's group (its patient) together.
pub fn cross_val(l: &MilLearner, bags: &Bags, cv: &Cv) -> Result<CvTable> {
    let mut t = tune_table(l, bags, &[], cv)?;
    t.params = vec![l.params()];
    Ok(t)
}

/// Tunes `l` over `grid` (its options, each with a list of values) by `cv` over bags, then
/// refits the best point on every bag.
pub fn tune(
    l: &MilLearner,
    bags: &Bags,
    grid: &[(String, Vec<Param>)],
    cv: &Cv,
) -> Result<MilModel> {
    let table = tune_table(l, bags, grid, cv)?;
    let mut best = l.clone();
    for (name, v) in &table.params[table.best()] {
        best.set(name, v)?;
    }
    let mut m = best.fit(bags)?;
    m.cv = Some(table);
    Ok(m)
}

fn tune_table(
    l: &MilLearner,
    bags: &Bags,
    grid: &[(String, Vec<Param>)],
    cv: &Cv,
) -> Result<CvTable> {
    bags.validate()?;
    let points = expand(grid);
    for p in &points {
        let mut c = l.clone();
        for (name, v) in p {
            c.set(name, v)?;
        }
        c.check()?;
    }
    let y = bags.labels();
    let folds = cv.plan(&bags.groups(), &y, &bags.classes)?;
    // Each fit uses libtorch's threads: the (point, fold) jobs run one at a time.
    search(points, &folds, &y, false, |point, fold| {
        let mut c = l.clone();
        for (name, v) in point {
            c.set(name, v)?;
        }
        c.fit(&bags.subset(fold.train)?)?
            .decision(&bags.subset(fold.test)?)
    })
}

/// The stratified validation part (`share` of each class, at least one bag of a class with two
/// or more) and the rest, as positions in `bags`.
fn validation_split(
    bags: &Bags,
    share: f64,
    rng: &mut crate::rng::Rng,
) -> (Vec<usize>, Vec<usize>) {
    if share <= 0.0 {
        return ((0..bags.len()).collect(), vec![]);
    }
    let (mut train, mut valid) = (vec![], vec![]);
    for c in 0..bags.classes.len() {
        let mut idx: Vec<usize> = (0..bags.len())
            .filter(|i| bags.bags[*i].label == c)
            .collect();
        rng.shuffle(&mut idx);
        let cut = if idx.len() >= 2 {
            ((idx.len() as f64 * share).round() as usize).clamp(1, idx.len() - 1)
        } else {
            0
        };
        valid.extend_from_slice(&idx[..cut]);
        train.extend_from_slice(&idx[cut..]);
    }
    train.sort_unstable();
    valid.sort_unstable();
    (train, valid)
}

/// A bag's rows as a tensor: every tile, or `max` of them sampled without replacement (in their
/// bag order).
fn sampled(
    b: &Bag,
    d: usize,
    max: Option<usize>,
    rng: &mut crate::rng::Rng,
    device: Device,
) -> Tensor {
    match max {
        Some(m) if b.n > m => {
            let mut pick = bags::sample(&(0..b.n).collect::<Vec<_>>(), m, rng);
            pick.sort_unstable();
            let mut x = Vec::with_capacity(m * d);
            for i in pick {
                x.extend_from_slice(b.row(i));
            }
            bag_tensor(&x, d, device)
        }
        _ => bag_tensor(&b.x, d, device),
    }
}

/// Class probabilities of one bag (every tile), in evaluation mode.
fn probabilities(mil: &MilNet, b: &Bag, device: Device) -> Result<Vec<f64>> {
    let logits = tch::no_grad(|| mil.forward(&bag_tensor(&b.x, mil.d, device), false).logits);
    Ok(Vec::try_from(
        logits.softmax(0, Kind::Double).to_device(Device::Cpu),
    )?)
}

/// The class-weighted mean loss and the AUC (where defined) on the bags at `idx`.
fn score_part(
    mil: &MilNet,
    bags: &Bags,
    idx: &[usize],
    w: &[f64],
    device: Device,
) -> Result<(f64, Option<f64>)> {
    let k = bags.classes.len();
    let (mut loss, mut weight, mut scores, mut y) = (0.0, 0.0, Vec::new(), Vec::new());
    for i in idx {
        let b = &bags.bags[*i];
        let p = probabilities(mil, b, device)?;
        loss -= w[b.label] * p[b.label].max(f64::MIN_POSITIVE).ln();
        weight += w[b.label];
        scores.extend(p);
        y.push(b.label);
    }
    let auc = super::metrics::roc_auc_ovr(&y, &scores, k)
        .ok()
        .filter(|v| v.is_finite());
    Ok((loss / weight.max(f64::MIN_POSITIVE), auc))
}

/// One epoch of training as the history shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Epoch {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub valid_loss: Option<f64>,
    pub valid_auc: Option<f64>,
}

/// A tile's attention weight in one head.
#[derive(Clone, Debug, PartialEq)]
pub struct TileAttention {
    pub tile: String,
    pub x: Option<i64>,
    pub y: Option<i64>,
    pub head: usize,
    pub attention: f64,
}

/// A bag's prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct BagPrediction {
    pub bag: String,
    pub label: String,
    pub predicted: String,
    /// Per class, in the model's class order.
    pub probability: Vec<f64>,
}

/// A fitted MIL model.
#[derive(Clone)]
pub struct MilModel {
    pub learner: MilLearner,
    net: Arc<Mutex<MilNet>>,
    pub classes: Vec<String>,
    pub columns: Arc<Vec<Column>>,
    pub history: Vec<Epoch>,
    /// The epoch whose weights the model keeps (the best on the validation part, else the last).
    pub best_epoch: usize,
    /// Cross-validation results when the model came from [`tune`].
    pub cv: Option<CvTable>,
}

impl std::fmt::Debug for MilModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MilModel({})", self.describe())
    }
}

impl MilModel {
    fn net(&self) -> std::sync::MutexGuard<'_, MilNet> {
        self.net.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One line: learner, classes, width, epochs.
    pub fn describe(&self) -> String {
        let net = self.net();
        let params: Vec<String> = self
            .learner
            .params()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} ({}) on {} features, classes {:?}, {} epochs (kept epoch {})",
            self.learner.name(),
            params.join(", "),
            net.d,
            self.classes,
            self.history.len(),
            self.best_epoch
        )
    }

    /// An error unless `bags` have the model's width and classes (and are valid bags).
    fn check_bags(&self, bags: &Bags) -> Result<()> {
        let d = self.net().d;
        if bags.d != d {
            return Err(Error::Invalid(format!(
                "these bags have {} features per tile; the model was trained on {d}",
                bags.d
            )));
        }
        if bags.classes != self.classes {
            return Err(Error::Invalid(format!(
                "these bags have classes {:?}; the model was trained on {:?}",
                bags.classes, self.classes
            )));
        }
        bags.validate()
    }

    /// An error unless bag `b`'s rows have the model's width.
    fn check_bag(&self, b: &Bag, d: usize) -> Result<()> {
        if b.n == 0 || b.x.len() != b.n * d {
            return Err(Error::Invalid(format!(
                "bag {:?} has {} values for {} tiles; the model takes {d} features per tile",
                b.id,
                b.x.len(),
                b.n
            )));
        }
        Ok(())
    }

    /// Class probabilities per bag, `n × k` row-major (every tile of every bag).
    pub fn decision(&self, bags: &Bags) -> Result<Vec<f64>> {
        self.check_bags(bags)?;
        let net = self.net();
        let device = net.vs.device();
        let mut out = Vec::with_capacity(bags.len() * net.k);
        for b in &bags.bags {
            crate::cancel::check()?;
            out.extend(probabilities(&net, b, device)?);
        }
        Ok(out)
    }

    /// Logits of one bag (what the reference module returns).
    pub fn logits(&self, b: &Bag) -> Result<Vec<f64>> {
        let net = self.net();
        let d = net.d;
        self.check_bag(b, d)?;
        let x = bag_tensor(&b.x, d, net.vs.device());
        Ok(Vec::try_from(
            tch::no_grad(|| net.forward(&x, false).logits)
                .to_kind(Kind::Double)
                .to_device(Device::Cpu),
        )?)
    }

    /// Each head's attention over the bag's tiles (softmax weights, each head's summing to 1):
    /// `heads × n`. An error for a model without attention.
    pub fn attention(&self, b: &Bag) -> Result<Vec<Vec<f64>>> {
        let net = self.net();
        self.check_bag(b, net.d)?;
        let x = bag_tensor(&b.x, net.d, net.vs.device());
        let a = tch::no_grad(|| net.forward(&x, false).attention).ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no attention (use abmil)",
                self.learner.name()
            ))
        })?;
        let a = a.to_kind(Kind::Double).to_device(Device::Cpu);
        (0..a.size()[0])
            .map(|h| Ok(Vec::<f64>::try_from(a.get(h))?))
            .collect()
    }

    /// One row per tile and head: the tile, its level-0 corner when every tile of the bag has one,
    /// the head, its weight.
    pub fn attention_rows(&self, b: &Bag) -> Result<Vec<TileAttention>> {
        let a = self.attention(b)?;
        // Corners for every tile or for none, so the table's columns are the same on every row.
        let all = b.coords.iter().all(|c| c.is_some());
        let mut rows = Vec::with_capacity(a.len() * b.n);
        for (head, w) in a.iter().enumerate() {
            for (i, v) in w.iter().enumerate() {
                rows.push(TileAttention {
                    tile: b.tiles[i].clone(),
                    x: b.coords[i].filter(|_| all).map(|c| c.0),
                    y: b.coords[i].filter(|_| all).map(|c| c.1),
                    head,
                    attention: *v,
                });
            }
        }
        Ok(rows)
    }

    /// Each tile's attention (the mean over heads), keyed by the tile's id: what a slide map
    /// colours its tiles by.
    pub fn attention_by_tile(&self, b: &Bag) -> Result<Vec<(String, f64)>> {
        let a = self.attention(b)?;
        Ok((0..b.n)
            .map(|i| {
                let mean = a.iter().map(|h| h[i]).sum::<f64>() / a.len() as f64;
                (b.tiles[i].clone(), mean)
            })
            .collect())
    }

    /// Each bag's label, predicted class and class probabilities.
    pub fn predictions(&self, bags: &Bags) -> Result<Vec<BagPrediction>> {
        let k = self.classes.len();
        let p = self.decision(bags)?;
        Ok(bags
            .bags
            .iter()
            .zip(p.chunks(k))
            .map(|(b, p)| BagPrediction {
                bag: b.id.clone(),
                label: bags.classes[b.label].clone(),
                predicted: self.classes[super::argmax_rows(p, k)[0]].clone(),
                probability: p.to_vec(),
            })
            .collect())
    }

    /// How well attention finds the known positive instances: in each bag with some, the share of
    /// them among its top-w tiles by attention (the mean over heads), w being their number; the
    /// mean over those bags. An error when no bag has known positive instances.
    pub fn attention_recall(&self, bags: &Bags) -> Result<f64> {
        self.check_bags(bags)?;
        let mut recalls = Vec::new();
        for b in &bags.bags {
            let Some(pos) = &b.instances else { continue };
            let w = pos.iter().filter(|p| **p).count();
            if w == 0 {
                continue;
            }
            let mean: Vec<f64> = self
                .attention_by_tile(b)?
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            let mut order: Vec<usize> = (0..b.n).collect();
            order.sort_by(|x, y| mean[*y].total_cmp(&mean[*x]));
            let hits = order[..w].iter().filter(|i| pos[**i]).count();
            recalls.push(hits as f64 / w as f64);
        }
        if recalls.is_empty() {
            return Err(Error::Invalid(
                "no bag has known positive instances (witness_bags makes bags that do)".into(),
            ));
        }
        Ok(recalls.iter().sum::<f64>() / recalls.len() as f64)
    }

    /// The parameters by name (the reference module's names).
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.net().named()
    }

    /// Saves the parameters as `.safetensors` (loadable strictly into the reference module) and,
    /// beside them, `<path>.json`: the learner's options and the classes.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|e| Error::file(d, e))?;
        }
        crate::nets::weights::write_safetensors(path, &self.tensors())?;
        let options = match &self.learner {
            MilLearner::Abmil(o) => serde_json::to_value(o),
            MilLearner::TransMil(o) => serde_json::to_value(o),
            MilLearner::Mean(o) => serde_json::to_value(o),
        }
        .map_err(|e| Error::Invalid(format!("the model's options: {e}")))?;
        let meta = serde_json::json!({
            "learner": self.learner.name(),
            "options": options,
            "classes": self.classes,
            "features": self.net().d,
        });
        crate::write_atomically(&sidecar(path), meta.to_string().as_bytes())
    }

    /// Reads a model [`MilModel::save`] wrote.
    pub fn load(path: &Path) -> Result<MilModel> {
        let meta_path = sidecar(path);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::file(&meta_path, e))?;
        let meta: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::file(&meta_path, e))?;
        let bad = |what: &str| Error::Invalid(format!("{}: {what}", meta_path.display()));
        let options = match meta.get("options") {
            Some(serde_json::Value::Object(o)) => o.clone(),
            _ => return Err(bad("no options")),
        };
        let read = |e: Error| bad(&e.to_string());
        let learner = match meta.get("learner").and_then(|v| v.as_str()) {
            Some("abmil") => MilLearner::Abmil(Options::from_object(options).map_err(read)?),
            Some("transmil") => MilLearner::TransMil(Options::from_object(options).map_err(read)?),
            Some("mean_mil") => MilLearner::Mean(Options::from_object(options).map_err(read)?),
            other => return Err(bad(&format!("unknown learner {other:?}"))),
        };
        let classes: Vec<String> =
            serde_json::from_value(meta.get("classes").cloned().unwrap_or_default())
                .map_err(|e| bad(&format!("classes: {e}")))?;
        let d = meta
            .get("features")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("no features count"))? as usize;
        if classes.len() < 2 || classes.len() > 1 << 16 || d == 0 || d > 1 << 20 {
            return Err(bad(&format!(
                "{} classes and {d} features is not a model",
                classes.len()
            )));
        }
        learner.check_size(d, classes.len()).map_err(read)?;
        let device = crate::parse_device(&learner.training().device)?;
        let mut net = MilNet::new(learner.shape(), d, classes.len(), device);
        net.load(
            &crate::nets::weights::read(path)?,
            &path.display().to_string(),
        )?;
        Ok(MilModel {
            learner,
            net: Arc::new(Mutex::new(net)),
            classes,
            columns: Arc::new(vec![]),
            history: vec![],
            best_epoch: 0,
            cv: None,
        })
    }
}

fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bags of 8 tiles in 4 features; a positive bag holds one tile far out on feature 0.
    fn toy(n: usize, seed: u64) -> Bags {
        let mut rng = crate::rng::Rng::new(seed);
        let bags = (0..n)
            .map(|b| {
                let label = b % 2;
                let mut x: Vec<f32> = (0..32).map(|_| rng.uniform() as f32 - 0.5).collect();
                let witness = rng.below(8);
                if label == 1 {
                    x[witness * 4] = 4.0;
                }
                Bag {
                    id: format!("b{b}"),
                    group: format!("b{b}"),
                    label,
                    n: 8,
                    x,
                    tiles: (0..8).map(|t| format!("b{b}#L0@{},0", t * 224)).collect(),
                    coords: (0..8).map(|t| Some((t * 224, 0))).collect(),
                    instances: Some(
                        (0..8)
                            .map(|t| label == 1 && t as usize == witness)
                            .collect(),
                    ),
                }
            })
            .collect();
        Bags {
            bags,
            d: 4,
            classes: vec!["neg".into(), "pos".into()],
            columns: Arc::new(vec![]),
        }
    }

    fn quick() -> AbmilOptions {
        AbmilOptions {
            hidden: 16,
            attention_hidden: 8,
            dropout: 0.0,
            epochs: 15,
            lr: 1e-2,
            quiet: true,
            ..Default::default()
        }
    }

    #[test]
    fn training_is_deterministic_and_learns_the_witnesses() {
        let (train, test) = (toy(40, 1), toy(20, 2));
        let a = MilLearner::Abmil(quick()).fit(&train).unwrap();
        let b = MilLearner::Abmil(quick()).fit(&train).unwrap();
        for ((na, ta), (nb, tb)) in a.tensors().iter().zip(b.tensors()) {
            assert_eq!(na, &nb);
            assert!(ta.equal(&tb), "{na} differs between two seeded runs");
        }
        let e = crate::eval::evaluate_mil(&a, &test).unwrap();
        assert!(e.score > 0.95, "AUC {}", e.score);
        assert!(a.attention_recall(&test).unwrap() > 0.9);
        let rows = a.attention_rows(&test.bags[1]).unwrap();
        assert_eq!(rows.len(), 8);
        assert!((rows.iter().map(|r| r.attention).sum::<f64>() - 1.0).abs() < 1e-5);
        assert_eq!(rows[3].x, Some(3 * 224));
    }

    #[test]
    fn cosine_schedule_sampling_and_weights_do_what_they_say() {
        let b = toy(12, 6);
        let o = AbmilOptions {
            epochs: 4,
            lr: 1e-2,
            ..quick()
        };
        let m = MilLearner::Abmil(o.clone()).fit(&b).unwrap();
        let lrs: Vec<f64> = m.history.iter().map(|e| e.lr).collect();
        let want: Vec<f64> = (0..4)
            .map(|e| 1e-2 * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / 4.0).cos()))
            .collect();
        assert_eq!(lrs, want);
        // Sampling at least a bag's size is no sampling; fewer tiles change the training.
        let same = MilLearner::Abmil(AbmilOptions {
            max_tiles: Some(8),
            ..o.clone()
        })
        .fit(&b)
        .unwrap();
        let fewer = MilLearner::Abmil(AbmilOptions {
            max_tiles: Some(3),
            ..o.clone()
        })
        .fit(&b)
        .unwrap();
        let first = |m: &MilModel| m.tensors()[0].1.shallow_clone();
        assert!(first(&m).equal(&first(&same)));
        assert!(!first(&m).equal(&first(&fewer)));
        // Balanced weights equal uniform ones on balanced bags, and differ on unbalanced ones.
        let uniform = AbmilOptions {
            class_weight: ClassWeight::Uniform,
            ..o.clone()
        };
        let u = MilLearner::Abmil(uniform.clone()).fit(&b).unwrap();
        assert!(first(&m).allclose(&first(&u), 1e-6, 1e-7, false));
        let unbalanced = b.subset(&[0, 1, 2, 4, 6, 8, 10]).unwrap();
        let (bu, uu) = (
            MilLearner::Abmil(o).fit(&unbalanced).unwrap(),
            MilLearner::Abmil(uniform).fit(&unbalanced).unwrap(),
        );
        assert!(!first(&bu).allclose(&first(&uu), 1e-6, 1e-7, false));
    }

    #[test]
    fn monitoring_auc_needs_every_class_in_the_validation_part() {
        let b = toy(12, 7).subset(&[0, 1, 2, 4, 6, 8]).unwrap(); // one positive bag
        let o = AbmilOptions {
            validation: 0.3,
            monitor: Monitor::Auc,
            ..quick()
        };
        let e = MilLearner::Abmil(o).fit(&b).unwrap_err().to_string();
        assert!(e.contains("monitor \"auc\" needs every class"), "{e}");
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let o = AbmilOptions {
            validation: 0.25,
            patience: 2,
            epochs: 40,
            lr: 5e-2,
            ..quick()
        };
        let m = MilLearner::Abmil(o).fit(&toy(40, 3)).unwrap();
        assert!(m.history.iter().all(|e| e.valid_loss.is_some()));
        let best = m.history[m.best_epoch - 1].valid_loss.unwrap();
        assert!(m.history.iter().all(|e| e.valid_loss.unwrap() >= best));
        assert!(m.history.len() < 40 || m.best_epoch + 2 > m.history.len());
    }

    #[test]
    fn bad_bags_are_errors_naming_the_bag() {
        let mut b = toy(6, 4);
        for bag in &mut b.bags {
            bag.label = 0;
        }
        let e = MilLearner::Abmil(quick()).fit(&b).unwrap_err().to_string();
        assert!(e.contains("one class only"), "{e}");
        let mut b = toy(6, 4);
        b.bags[2].x[5] = f32::NAN;
        let e = MilLearner::Abmil(quick()).fit(&b).unwrap_err().to_string();
        assert!(e.contains("bag \"b2\"") && e.contains("b2#L0@224,0"), "{e}");
        let mut b = toy(6, 4);
        b.bags[3].x.truncate(28);
        let e = MilLearner::Abmil(quick()).fit(&b).unwrap_err().to_string();
        assert!(e.contains("bag \"b3\"") && e.contains("not 4 wide"), "{e}");
        let mut b = toy(6, 4);
        b.bags[0].n = 0;
        b.bags[0].x.clear();
        let e = MilLearner::Abmil(quick()).fit(&b).unwrap_err().to_string();
        assert!(e.contains("bag \"b0\" is empty"), "{e}");
        let m = MilLearner::Mean(MeanMilOptions {
            epochs: 1,
            quiet: true,
            ..Default::default()
        })
        .fit(&toy(6, 4))
        .unwrap();
        let e = m.attention(&toy(2, 5).bags[0]).unwrap_err().to_string();
        assert!(e.contains("no attention"), "{e}");
        let wide = Bags { d: 3, ..toy(2, 5) };
        assert!(m.decision(&wide).is_err());
    }

    #[test]
    fn options_are_checked_when_read() {
        let bad = |json: serde_json::Value| {
            crate::options::Options::from_object(json.as_object().unwrap().clone())
                .map(|o: AbmilOptions| o)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(serde_json::json!({ "lr": 0.0 })).contains("lr must be > 0"));
        assert!(bad(serde_json::json!({ "heads": 0 })).contains("heads ≥ 1"));
        assert!(bad(serde_json::json!({ "validation": 0.95 })).contains("validation"));
        assert!(bad(serde_json::json!({ "head": 2 })).contains("heads"));
    }
}
