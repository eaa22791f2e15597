//! Fine-tuning with the paper's schedule: a new head trained with the backbone frozen, then the
//! whole network at a small learning rate; Adam; cross-entropy; augmentation; validation after
//! every epoch, a checkpoint per epoch, the best epoch kept, and exact resume after interruption.

use crate::data::loader::{batches, Prepare};
use crate::data::split::Split;
use crate::data::stain::StainAugment;
use crate::data::transform::Augment;
use crate::data::Dataset;
use crate::error::{Context, Error, Result};
use crate::eval::metrics;
use crate::eval::table::{Cell, Row};
use crate::nets::{weights, Network};
use crate::rng::Rng;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

crate::options! {
    /// Options of [`finetune`] (`net.finetune(data, split, #{ ... })`), the paper's values as defaults.
    pub struct Options for "finetune" {
        /// Epochs of the head phase (new classifier trained, backbone frozen).
        head_epochs: usize = 5,
        /// Learning rate of the head phase.
        head_lr: f64 = 1e-2,
        /// Epochs of the whole network after the head phase.
        epochs: usize = 45,
        /// Learning rate of the whole-network phase.
        lr: f64 = 1e-5,
        /// Adam's betas.
        betas: (f64, f64) = (0.99, 0.999),
        /// L2 weight decay added to the gradient, as PyTorch's Adam does.
        weight_decay: f64 = 0.0,
        /// Images per step.
        batch: usize = 32,
        /// Random max-square crops, flips and 90° rotations of the training images.
        augment: bool = true,
        /// Macenko stain augmentation of the training images, as torchstain's MacenkoAugmentor does it.
        stain_augment: bool = false,
        /// [sigma1, sigma2] of stain augmentation: each stain's concentrations scaled by U(1 ± sigma1), shifted by U(±sigma2).
        stain_sigma: (f64, f64) = (0.2, 0.2),
        /// "cpu", "cuda" or "cuda:N"; () trains where the network lives.
        device: Option<String> = None,
        /// Seed of shuffling, augmentation and the new head.
        seed: u64 = 0,
        /// A folder for one checkpoint per epoch; () keeps everything in memory.
        checkpoints: Option<PathBuf> = None,
        /// Continue from the last checkpoint in `checkpoints`.
        resume: bool = false,
        /// Mixed precision on CUDA: bf16 autocast (no gradient scaler needed; a GPU of compute capability 8.0 or newer, A100/H100 class); ignored on the CPU.
        amp: bool = false,
        /// Keep the backbone's batch-norm statistics fixed while only the head trains (PyTorch and the paper's Keras update them).
        freeze_bn: bool = false,
        /// No progress bar.
        quiet: bool = false,
    }
}

/// One epoch of the training curve.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Epoch {
    pub epoch: usize,
    /// `"head"` (backbone frozen) or `"full"`.
    pub phase: String,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_score: f64,
    pub images_per_second: f64,
}

impl Row for Epoch {
    fn cells(&self) -> Vec<(&'static str, Cell)> {
        vec![
            ("epoch", (self.epoch as i64).into()),
            ("phase", self.phase.clone().into()),
            ("train_loss", self.train_loss.into()),
            ("val_loss", self.val_loss.into()),
            ("val_score", self.val_score.into()),
            ("images_per_second", self.images_per_second.into()),
        ]
    }
}

/// A fine-tuned network and the curve it was trained along.
pub struct FineTuned {
    pub network: Network,
    /// One row per epoch, both phases.
    pub curve: Vec<Epoch>,
}

/// Adam as PyTorch implements it (L2 weight decay added to the gradient), with its state kept
/// so that checkpoints resume exactly.
pub struct Adam {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub step: i64,
    /// `(name, param, m, v)`.
    state: Vec<(String, Tensor, Tensor, Tensor)>,
}

impl Adam {
    /// An optimiser over the named parameters.
    pub fn new(
        params: Vec<(String, Tensor)>,
        lr: f64,
        betas: (f64, f64),
        weight_decay: f64,
    ) -> Adam {
        let state = params
            .into_iter()
            .map(|(n, p)| {
                let (m, v) = (p.zeros_like(), p.zeros_like());
                (n, p, m, v)
            })
            .collect();
        Adam {
            lr,
            betas,
            eps: 1e-8,
            weight_decay,
            step: 0,
            state,
        }
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p, _, _) in &mut self.state {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// One update from the current gradients.
    pub fn step(&mut self) {
        self.step += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.step as i32);
        let bc2 = 1.0 - b2.powi(self.step as i32);
        tch::no_grad(|| {
            for (_, p, m, v) in &mut self.state {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay != 0.0 {
                    g + &*p * self.weight_decay
                } else {
                    g
                };
                let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let denom = v.sqrt() / bc2.sqrt() + self.eps;
                let _ = p.g_sub_(&(&*m / denom * (self.lr / bc1)));
            }
        });
    }

    /// The state as named tensors (for checkpoints).
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("adam.step".to_string(), Tensor::from_slice(&[self.step]))];
        for (n, _, m, v) in &self.state {
            out.push((format!("adam.m.{n}"), m.to_device(Device::Cpu)));
            out.push((format!("adam.v.{n}"), v.to_device(Device::Cpu)));
        }
        out
    }

    /// Restores the state written by [`Adam::tensors`].
    pub fn restore(&mut self, t: &[(String, Tensor)]) -> Result<()> {
        let get = |k: &str| {
            t.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.shallow_clone())
                .ok_or_else(|| Error::Invalid(format!("checkpoint lacks {k}")))
        };
        self.step = i64::try_from(get("adam.step")?)?;
        tch::no_grad(|| -> Result<()> {
            for (n, _, m, v) in &mut self.state {
                m.copy_(&get(&format!("adam.m.{n}"))?);
                v.copy_(&get(&format!("adam.v.{n}"))?);
            }
            Ok(())
        })
    }
}

/// The network's trainable parameters by name; in the head phase only the classifier's.
fn parameters(net: &Network, head_only: bool) -> Vec<(String, Tensor)> {
    let prefix = format!("{}.", net.head_path());
    let vars = net.vs.variables_.lock().unwrap();
    let trainable: Vec<usize> = vars
        .trainable_variables
        .iter()
        .map(|v| v.tensor.data_ptr() as usize)
        .collect();
    let mut out: Vec<(String, Tensor)> = vars
        .named_variables
        .iter()
        .filter(|(n, t)| {
            trainable.contains(&(t.data_ptr() as usize)) && (!head_only || n.starts_with(&prefix))
        })
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    for (n, t) in &out {
        let _ = t.set_requires_grad(!head_only || n.starts_with(&prefix));
    }
    if head_only {
        for (n, t) in vars.named_variables.iter() {
            if !n.starts_with(&prefix) && trainable.contains(&(t.data_ptr() as usize)) {
                let _ = t.set_requires_grad(false);
            }
        }
    }
    out
}

/// One optimisation step on a batch (train mode: batch norm uses and updates batch statistics).
/// With `backbone_train` false the backbone runs in eval mode (batch norm uses and keeps its
/// running statistics); the head always trains.
pub fn train_step(
    net: &Network,
    adam: &mut Adam,
    x: &Tensor,
    y: &Tensor,
    amp: bool,
    backbone_train: bool,
) -> f64 {
    adam.zero_grad();
    // bf16 autocast: fp16's range would need a gradient scaler, bf16's does not.
    let precision = if amp {
        crate::nets::precision::Precision::Bf16
    } else {
        crate::nets::precision::Precision::Fp32
    };
    let logits = crate::nets::precision::autocast(x.device(), precision, || {
        net.logits_split(x, backbone_train, true)
    });
    let loss = logits.to_kind(Kind::Float).cross_entropy_for_logits(y);
    loss.backward();
    adam.step();
    f64::try_from(loss).unwrap_or(f64::NAN)
}

/// Class scores (softmax probabilities) of every image of `ds`, in order.
pub fn predict_scores(net: &Network, ds: &Dataset, batch: usize) -> Result<Vec<f64>> {
    let prep = ds.prepare(net.preprocess());
    let paths = ds.items.clone();
    let mut out = Vec::new();
    for b in batches(paths, vec![0; ds.len()], batch, prep, 2) {
        crate::cancel::check()?;
        let b = b?;
        let p = tch::no_grad(|| net.logits(&b.tensor(net.device()), false))
            .softmax(1, Kind::Double)
            .to_device(Device::Cpu);
        out.extend(Vec::<f64>::try_from(p.flatten(0, -1))?);
    }
    Ok(out)
}

/// The predicted class of every image of `ds` (the network's own head), in order.
pub fn predict(net: &Network, ds: &Dataset) -> Result<Vec<usize>> {
    let s = predict_scores(net, ds, 32)?;
    Ok(crate::learn::argmax_rows(&s, net.classes.len()))
}

/// A fine-tuned network evaluated on `ds`, whose classes must be the network's.
pub fn evaluate(net: &Network, ds: &Dataset) -> Result<crate::eval::Evaluation> {
    if net.classes != ds.classes {
        return Err(Error::Invalid(format!(
            "the network predicts {:?}, the data has classes {:?}",
            net.classes, ds.classes
        )));
    }
    let s = predict_scores(net, ds, 32)?;
    crate::eval::evaluate_scores(&ds.labels(), &s, &ds.classes)
}

fn validate(net: &Network, ds: &Dataset, idx: &[usize], batch: usize) -> Result<(f64, f64)> {
    let sub = ds.subset(idx)?;
    let p = predict_scores(net, &sub, batch)?;
    let k = net.classes.len();
    let y = sub.labels();
    let loss = -y
        .iter()
        .enumerate()
        .map(|(i, c)| p[i * k + c].max(1e-12).ln())
        .sum::<f64>()
        / y.len() as f64;
    // A validation part that holds one class of two has no ROC AUC: accuracy, every epoch alike.
    let score = metrics::paper_score_or_accuracy(&y, &p, k).map_or(f64::NAN, |s| s.0);
    Ok((loss, score))
}

fn checkpoint_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch:03}.safetensors"))
}

fn save_checkpoint(
    dir: &Path,
    epoch: usize,
    net: &Network,
    adam: &Adam,
    curve: &[Epoch],
    best: &(usize, f64),
) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let mut t: Vec<(String, Tensor)> = net
        .vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.to_device(Device::Cpu)))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    let n_model = t.len();
    t.extend(adam.tensors());
    let path = checkpoint_path(dir, epoch);
    weights::write_safetensors(&path, &t)?;
    let meta = serde_json::json!({ "epoch": epoch, "model_tensors": n_model, "curve": curve, "best_epoch": best.0, "best_score": best.1, "classes": net.classes, "network": net.spec.name });
    if best.0 == epoch {
        net.save(&dir.join("best.safetensors"))?;
    }
    // The epoch's JSON comes last, whole or not at all: its presence marks a complete epoch.
    crate::write_atomically(
        &path.with_extension("json"),
        serde_json::to_string_pretty(&meta).unwrap().as_bytes(),
    )
}

/// Fine-tunes a copy of `net` on `split.train` of `ds`, validating on `split.val`.
pub fn finetune(net: &Network, ds: &Dataset, split: &Split, o: &Options) -> Result<FineTuned> {
    if split.train.is_empty() || split.val.is_empty() {
        return Err(Error::Invalid(
            "fine-tuning needs non-empty train and val parts".into(),
        ));
    }
    let device = match &o.device {
        Some(d) => crate::parse_device(d)?,
        None => net.device(),
    };
    let mut model = net.duplicate(device)?;
    model.replace_head(ds.classes.clone(), o.seed);
    let total = o.head_epochs + o.epochs;
    let mut curve: Vec<Epoch> = Vec::new();
    let mut best: (usize, f64) = (0, f64::NEG_INFINITY);
    let mut start = 1;
    let mut adam = Adam::new(
        parameters(&model, o.head_epochs > 0),
        o.head_lr,
        o.betas,
        o.weight_decay,
    );
    if o.resume {
        if let Some(dir) = &o.checkpoints {
            if let Some(last) = (1..=total)
                .rev()
                .find(|e| checkpoint_path(dir, *e).with_extension("json").exists())
            {
                let path = checkpoint_path(dir, last);
                let meta: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path.with_extension("json")).at(&path)?)
                        .at(&path)?;
                let t = weights::read(&path)?;
                let n_model = meta["model_tensors"].as_u64().unwrap_or(0) as usize;
                weights::load_into(
                    &mut model.vs,
                    t[..n_model]
                        .iter()
                        .map(|(n, v)| (n.clone(), v.shallow_clone()))
                        .collect(),
                    true,
                    "",
                    &path,
                    net.spec.name,
                )?;
                if last >= o.head_epochs {
                    adam = Adam::new(parameters(&model, false), o.lr, o.betas, o.weight_decay);
                }
                adam.restore(&t[n_model..])?;
                curve = serde_json::from_value(meta["curve"].clone()).unwrap_or_default();
                best = (
                    meta["best_epoch"].as_u64().unwrap_or(0) as usize,
                    meta["best_score"].as_f64().unwrap_or(f64::NEG_INFINITY),
                );
                start = last + 1;
                if !o.quiet {
                    eprintln!(
                        "finetune: resuming after epoch {last} from {}",
                        path.display()
                    );
                }
            }
        }
    }
    let mut best_weights: Option<Vec<(String, Tensor)>> = None;
    let prep_base = model.preprocess();
    for epoch in start..=total {
        let head = epoch <= o.head_epochs;
        if epoch == o.head_epochs + 1 {
            adam = Adam::new(parameters(&model, false), o.lr, o.betas, o.weight_decay);
        }
        tch::manual_seed((o.seed as i64) * 1000 + epoch as i64);
        let mut order = split.train.clone();
        Rng::fork(o.seed, epoch as u64).shuffle(&mut order);
        let paths = order.iter().map(|i| ds.items[*i].clone()).collect();
        let streams = order
            .iter()
            .map(|i| (epoch as u64) << 32 | *i as u64)
            .collect();
        let prep = Prepare {
            augment: (o.augment || o.stain_augment).then(|| Augment {
                random_crop: o.augment,
                flips: o.augment,
                rotations: o.augment,
                stain: o.stain_augment.then(|| StainAugment {
                    sigma1: o.stain_sigma.0,
                    sigma2: o.stain_sigma.1,
                    ..Default::default()
                }),
            }),
            seed: o.seed,
            ..ds.prepare(prep_base)
        };
        let bar = crate::progress::bar(
            order.len() as u64,
            &format!(
                "epoch {epoch}/{total} ({})",
                if head { "head" } else { "full" }
            ),
            o.quiet,
        );
        let t0 = std::time::Instant::now();
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        for b in batches(paths, streams, o.batch.max(1), prep, 2) {
            crate::cancel::check()?;
            let b = b?;
            let x = b.tensor(device);
            let y = Tensor::from_slice(
                &b.positions
                    .iter()
                    .map(|p| ds.items[order[*p]].label as i64)
                    .collect::<Vec<_>>(),
            )
            .to_device(device);
            let loss = train_step(
                &model,
                &mut adam,
                &x,
                &y,
                o.amp && device.is_cuda(),
                !(head && o.freeze_bn),
            );
            loss_sum += loss * b.positions.len() as f64;
            seen += b.positions.len();
            bar.inc(b.positions.len() as u64);
            bar.set_message(format!(
                "epoch {epoch}/{total} loss {:.4}",
                loss_sum / seen as f64
            ));
        }
        bar.finish_and_clear();
        let ips = seen as f64 / t0.elapsed().as_secs_f64();
        let (val_loss, val_score) = validate(&model, ds, &split.val, o.batch.max(1))?;
        curve.push(Epoch {
            epoch,
            phase: if head { "head" } else { "full" }.into(),
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss,
            val_score,
            images_per_second: ips,
        });
        crate::memory::release();
        if !o.quiet {
            eprintln!("epoch {epoch}/{total}: train loss {:.4}, val loss {val_loss:.4}, val score {val_score:.4}, {ips:.1} images/s", loss_sum / seen.max(1) as f64);
        }
        if val_score > best.1 {
            best = (epoch, val_score);
            if o.checkpoints.is_none() {
                best_weights = Some(
                    model
                        .vs
                        .variables()
                        .into_iter()
                        .map(|(k, v)| (k, v.copy()))
                        .collect(),
                );
            }
        }
        if let Some(dir) = &o.checkpoints {
            save_checkpoint(dir, epoch, &model, &adam, &curve, &best)?;
        }
    }
    // Keep the best epoch.
    let best_tensors = match (&o.checkpoints, best_weights) {
        (_, Some(w)) => Some(w),
        (Some(dir), None) if dir.join("best.safetensors").exists() => {
            Some(weights::read(&dir.join("best.safetensors"))?)
        }
        _ => None,
    };
    if let Some(w) = best_tensors {
        let path = PathBuf::from("best epoch");
        weights::load_into(&mut model.vs, w, true, "", &path, net.spec.name)?;
    }
    model.vs.freeze();
    model.weights_label = format!(
        "fine-tuned from {} (best epoch {} of {total}, val score {:.4})",
        net.weights_label, best.0, best.1
    );
    model.digest = format!("ft-{}-{}", net.digest, sha_of(&model));
    Ok(FineTuned {
        network: model,
        curve,
    })
}

fn sha_of(net: &Network) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut vars: Vec<(String, Tensor)> = net.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (n, t) in vars {
        h.update(n.as_bytes());
        let v: Vec<f32> =
            Vec::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))
                .unwrap_or_default();
        for x in v.iter().step_by(97) {
            h.update(x.to_le_bytes());
        }
    }
    format!("{:x}", h.finalize())[..16].to_string()
}
