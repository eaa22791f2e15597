//! Networks with named taps: every block boundary can be returned, and the forward pass stops
//! after the deepest tap asked for.

pub mod body;
pub mod catalogue;
pub mod densenet;
pub mod efficientnet_lite;
pub mod fetch;
mod head;
pub mod imagenet;
pub mod inception_resnet_v2;
pub mod inception_v3;
pub mod layers;
pub mod mobilenet_v1;
pub mod mobilenet_v2;
pub mod options;
pub mod precision;
pub mod registry;
pub mod resnet;
mod saved;
pub mod tokens;
pub mod vgg;
pub mod vit;
pub mod weights;

use crate::error::{Error, Result};
pub use body::{Body, Builder, Stage};
pub use options::{NetOptions, NetworkOptions, Weights};
use registry::NetSpec;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// One tap's output for one image: `net.summary()`.
#[derive(Clone, Debug, PartialEq)]
pub struct TapShape {
    pub tap: String,
    /// The output shape without the batch axis.
    pub shape: Vec<i64>,
    pub channels: i64,
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
            body::dotted(&root, &body.fc_path),
            body.fc_in,
            n_out,
            Default::default(),
        );
        let head = body.fc_path.clone();
        let is_vit = body.tokens.is_some();
        let read = |path: &Path| -> Result<Vec<(String, Tensor)>> {
            let t = weights::read(path)?;
            Ok(if is_vit {
                weights::with_head(vit::timm_names(t), &vs, &head)
            } else {
                t
            })
        };
        let (label, digest) = match &opts.weights {
            Weights::Random(seed) => (format!("random (seed {seed})"), format!("random-{seed}")),
            Weights::ImageNet => {
                let path = weights::discover::find_weights(spec)
                    .ok_or_else(|| Error::Invalid(catalogue::missing_weights_message(spec)))?;
                let digest = weights::discover::file_digest(&path)?;
                let tensors = read(&path)?;
                weights::load_into(&mut vs, tensors, opts.strict, &head, &path, spec.name)?;
                (format!("imagenet ({})", path.display()), digest)
            }
            Weights::File(path) => {
                let digest = weights::discover::file_digest(path)?;
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
        Ok(n)
    }

    /// What the network eats: the preprocessing its weights were trained with.
    pub fn preprocess(&self) -> crate::input::Preprocess {
        self.spec.preprocess()
    }

    /// The registry name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// For token networks (ViTs): prefix tokens and published pooling; `None` for CNNs.
    pub fn tokens(&self) -> Option<tokens::Tokens> {
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
            use registry::Preset;
            match (Preset::parse(w), w.as_str()) {
                (Some(Preset::Last), _) => {
                    chosen.insert(all.last().unwrap().clone());
                }
                (Some(Preset::Paper), _) => chosen.extend((self.spec.paper_taps)(&all)),
                (Some(Preset::All), _) => chosen.extend(all.iter().cloned()),
                (Some(Preset::Quarters), _) if self.body.tokens.is_some() => {
                    chosen.extend(vit::quarters(&all))
                }
                (_, name) if all.iter().any(|t| t == name) => {
                    chosen.insert(name.to_string());
                }
                (_, name) => {
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
        // Training stays NCHW: its one-step parity with PyTorch (tests/compute/finetune.rs) holds to the
        // rounding of the same kernels, which channels-last would change.
        let mut y = x.shallow_clone();
        for s in &self.body.stages {
            y = (s.run)(&y, backbone_train);
        }
        (self.body.pre_logits)(&y, head_train).apply(&self.fc)
    }

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
    pub fn summary(&self) -> Result<Vec<TapShape>> {
        let s = self.spec.input_size;
        let x = Tensor::zeros([1, 3, s, s], (tch::Kind::Float, self.device()));
        let taps = self.taps();
        let outs = tch::no_grad(|| self.forward_taps(&x, &taps, false));
        crate::cancel::check()?;
        // A ViT tap is [tokens, dim]: its channels are the last axis.
        let axis = if self.body.tokens.is_some() { 2 } else { 1 };
        Ok(taps
            .into_iter()
            .zip(outs)
            .map(|(tap, o)| TapShape {
                tap,
                shape: o.size()[1..].to_vec(),
                channels: o.size()[axis],
            })
            .collect())
    }

    /// Number of parameters (weights and biases, not batch-norm statistics).
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
}
