//! The networks of multiple-instance learning, in libtorch, with the parameter names of the
//! reference PyTorch modules (tests/fixtures/make_mil.py), so a checkpoint moves both ways:
//!
//! - **ABMIL** (Ilse et al. 2018; MIL-Lab's `ABMIL` for one head): `patch_embed.0` (Linear + ReLU
//!   to `hidden`), gated attention `global_attn.attention_a.0` (tanh), `.attention_b.0` (sigmoid),
//!   `.attention_c` (one score per tile), softmax over the bag's tiles, the attention-weighted mean
//!   of the embedded tiles, `classifier`. With `heads > 1` (TRIDENT's multi-head variant) each head
//!   is `global_attn.{i}.…`, the heads' pooled vectors are concatenated and `condensing_layer`
//!   maps them back to `hidden`. Dropout acts after tanh and sigmoid, as in both references.
//! - **Mean pooling**: the mean of the bag's tiles, then `classifier` (every result's floor).
//! - **TransMIL** ([`super::transmil`]): `_fc1.0`, `cls_token`, `layer1`, `pos_layer`, `layer2`,
//!   `norm`, then `_fc2`.

use crate::error::{Error, Result};
use tch::{nn, nn::Module, Device, Kind, Tensor};

/// The shape of a network.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Abmil {
        hidden: usize,
        attention_hidden: usize,
        gated: bool,
        heads: usize,
        dropout: f64,
    },
    Mean,
    TransMil {
        hidden: usize,
        heads: usize,
        landmarks: usize,
        pinv_iterations: usize,
        dropout: f64,
    },
}

impl Shape {
    /// Number of parameters for `d` features and `k` classes (computed without overflow).
    pub fn parameters(&self, d: usize, k: usize) -> u128 {
        let (d, k) = (d as u128, k as u128);
        match self {
            Shape::Mean => d * k + k,
            Shape::Abmil {
                hidden,
                attention_hidden,
                gated,
                heads,
                ..
            } => {
                let (h, a, n) = (*hidden as u128, *attention_hidden as u128, *heads as u128);
                let branch = h * a + a;
                let head = branch * if *gated { 2 } else { 1 } + a + 1;
                let condense = if n > 1 { n * h * h + h } else { 0 };
                d * h + h + n * head + condense + h * k + k
            }
            Shape::TransMil { hidden, heads, .. } => {
                let (h, n) = (*hidden as u128, *heads as u128);
                let layer = 2 * h + 3 * h * h + h * h + h + n * 33;
                let ppeg = h * (49 + 25 + 9) + 3 * h;
                d * h + h + h + 2 * layer + ppeg + 2 * h + h * k + k
            }
        }
    }
}

struct Head {
    a: nn::Linear,
    b: Option<nn::Linear>,
    c: nn::Linear,
}

/// A network with its parameters.
pub struct MilNet {
    pub vs: nn::VarStore,
    pub shape: Shape,
    pub d: usize,
    pub k: usize,
    embed: Option<nn::Linear>,
    heads: Vec<Head>,
    condense: Option<nn::Linear>,
    trans: Option<super::transmil::TransMil>,
    classifier: nn::Linear,
}

/// What a forward pass gives: logits `[k]` and, for attention models, each head's softmax
/// weights over the tiles `[heads, n]`.
pub struct Output {
    pub logits: Tensor,
    pub attention: Option<Tensor>,
}

impl MilNet {
    /// A network for `d` features and `k` classes, initialised from the current torch seed.
    pub fn new(shape: Shape, d: usize, k: usize, device: Device) -> MilNet {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let lin =
            |p: nn::Path, i: usize, o: usize| nn::linear(p, i as i64, o as i64, Default::default());
        let (embed, heads, condense, width) = match &shape {
            Shape::Abmil {
                hidden,
                attention_hidden,
                gated,
                heads,
                ..
            } => {
                let embed = lin(&root / "patch_embed" / 0, d, *hidden);
                let head = |p: nn::Path| Head {
                    a: lin(&p / "attention_a" / 0, *hidden, *attention_hidden),
                    b: gated.then(|| lin(&p / "attention_b" / 0, *hidden, *attention_hidden)),
                    c: lin(&p / "attention_c", *attention_hidden, 1),
                };
                let hs: Vec<Head> = if *heads == 1 {
                    vec![head(&root / "global_attn")]
                } else {
                    (0..*heads)
                        .map(|i| head(&root / "global_attn" / i))
                        .collect()
                };
                let condense =
                    (*heads > 1).then(|| lin(&root / "condensing_layer", heads * hidden, *hidden));
                (Some(embed), hs, condense, *hidden)
            }
            Shape::Mean => (None, vec![], None, d),
            Shape::TransMil { hidden, .. } => (None, vec![], None, *hidden),
        };
        let trans = match &shape {
            Shape::TransMil {
                hidden,
                heads,
                landmarks,
                pinv_iterations,
                dropout,
            } => Some(super::transmil::TransMil::new(
                &root,
                d as i64,
                *hidden as i64,
                *heads as i64,
                *landmarks as i64,
                *pinv_iterations,
                *dropout,
            )),
            _ => None,
        };
        let head_name = if trans.is_some() {
            "_fc2"
        } else {
            "classifier"
        };
        let classifier = lin(&root / head_name, width, k);
        MilNet {
            vs,
            shape,
            d,
            k,
            embed,
            heads,
            condense,
            trans,
            classifier,
        }
    }

    fn dropout(&self) -> f64 {
        match self.shape {
            Shape::Abmil { dropout, .. } => dropout,
            _ => 0.0,
        }
    }

    /// The forward pass over one bag `x` (`[n, d]`, on the network's device); `train` turns
    /// dropout on.
    pub fn forward(&self, x: &Tensor, train: bool) -> Output {
        if let Some(t) = &self.trans {
            return Output {
                logits: self.classifier.forward(&t.forward(x, train)).squeeze_dim(0),
                attention: None,
            };
        }
        let Some(embed) = &self.embed else {
            let z = x.mean_dim(0, true, Kind::Float);
            return Output {
                logits: self.classifier.forward(&z).squeeze_dim(0),
                attention: None,
            };
        };
        let h = embed.forward(x).relu();
        let p = self.dropout();
        let mut pooled = Vec::with_capacity(self.heads.len());
        let mut weights = Vec::with_capacity(self.heads.len());
        for head in &self.heads {
            let mut a = head.a.forward(&h).tanh().dropout(p, train);
            if let Some(b) = &head.b {
                a = a * b.forward(&h).sigmoid().dropout(p, train);
            }
            let w = head.c.forward(&a).squeeze_dim(1).softmax(0, Kind::Float);
            pooled.push(w.unsqueeze(0).matmul(&h));
            weights.push(w);
        }
        let mut z = Tensor::cat(&pooled, 1);
        if let Some(c) = &self.condense {
            z = c.forward(&z);
        }
        Output {
            logits: self.classifier.forward(&z).squeeze_dim(0),
            attention: Some(Tensor::stack(&weights, 0)),
        }
    }

    /// The parameters by name, sorted (what a checkpoint holds), on the CPU.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Copies parameters in by name, strictly: every parameter present with its shape, nothing
    /// else (a `model.` prefix, as Hugging Face wrappers save it, is read through). `from` names
    /// the source in errors.
    pub fn load(&mut self, tensors: &[(String, Tensor)], from: &str) -> Result<()> {
        let strip = |n: &str| n.strip_prefix("model.").unwrap_or(n).to_string();
        let given: std::collections::BTreeMap<String, &Tensor> =
            tensors.iter().map(|(n, t)| (strip(n), t)).collect();
        let mut vars = self.vs.variables();
        let mut missing: Vec<&String> = vars.keys().filter(|k| !given.contains_key(*k)).collect();
        missing.sort();
        let unexpected: Vec<&String> = given.keys().filter(|k| !vars.contains_key(*k)).collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(Error::Invalid(format!(
                "{from} does not fit this network: missing {missing:?}, unexpected {unexpected:?}"
            )));
        }
        for (name, var) in vars.iter_mut() {
            let src = given[name];
            if src.size() != var.size() {
                return Err(Error::Invalid(format!(
                    "{from}: tensor {name} has shape {:?}, this network's is {:?}",
                    src.size(),
                    var.size()
                )));
            }
            tch::no_grad(|| {
                var.copy_(&src.to_kind(Kind::Float).to_device(var.device()));
            });
        }
        Ok(())
    }
}

/// A bag's rows as a `[n, d]` tensor on `device`.
pub fn bag_tensor(x: &[f32], d: usize, device: Device) -> Tensor {
    Tensor::from_slice(x)
        .reshape([(x.len() / d.max(1)) as i64, d as i64])
        .to_device(device)
}
