//! One configurable Vision Transformer, the architecture of every public pathology foundation
//! model: patch size, width, depth, heads, GELU or SwiGLU MLP, class and register tokens,
//! `no_embed_class`, LayerScale. Parameter names are timm's, so the published files load
//! unchanged (Hugging Face `ViTModel`/`Dinov2Model` files are renamed by [`timm_names`]).
//!
//! Taps are `blocks.0 … blocks.N-1` and `norm`; their outputs are token tensors `[n, tokens, dim]`
//! whose first [`Tokens::prefix`] tokens are the class and register tokens. Any input size whose
//! sides are multiples of the patch works: the position embedding is resampled as timm's
//! `dynamic_img_size` does (bicubic, antialiased, prefix positions kept).

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 2;

mod config;
pub use config::*;

use super::body::{Body, Stage};
use super::tokens::{pool, Tokens};
use std::sync::{Arc, Mutex};
use tch::{nn, Tensor};

/// One transformer block with timm's names (`norm1`, `attn.qkv`, `attn.proj`, `ls1.gamma`,
/// `norm2`, `mlp.fc1`, `mlp.fc2`, `ls2.gamma`).
struct Block {
    norm1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ls1: Option<Tensor>,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    ls2: Option<Tensor>,
    heads: i64,
    mlp: Mlp,
}

impl Block {
    fn new(p: nn::Path, c: &Config) -> Block {
        let d = c.dim;
        let ln = |p: nn::Path| {
            nn::layer_norm(
                p,
                vec![d],
                nn::LayerNormConfig {
                    eps: c.eps,
                    ..Default::default()
                },
            )
        };
        let lin = |p: nn::Path, i, o, bias| {
            nn::linear(
                p,
                i,
                o,
                nn::LinearConfig {
                    bias,
                    ..Default::default()
                },
            )
        };
        let gamma = |p: nn::Path| {
            c.layer_scale
                .then(|| p.var("gamma", &[d], nn::Init::Const(1e-5)))
        };
        let h = c.hidden();
        let fc2_in = if c.mlp == Mlp::SwiGluPacked { h / 2 } else { h };
        Block {
            norm1: ln(&p / "norm1"),
            qkv: lin(&p / "attn" / "qkv", d, 3 * d, c.qkv_bias),
            proj: lin(&p / "attn" / "proj", d, d, true),
            ls1: gamma(&p / "ls1"),
            norm2: ln(&p / "norm2"),
            fc1: lin(&p / "mlp" / "fc1", d, h, true),
            fc2: lin(&p / "mlp" / "fc2", fc2_in, d, true),
            ls2: gamma(&p / "ls2"),
            heads: c.heads,
            mlp: c.mlp,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, t, d) = x.size3().expect("ViT tokens are [n, tokens, dim]");
        let qkv = x
            .apply(&self.norm1)
            .apply(&self.qkv)
            .reshape([b, t, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let a = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        self.finish(&a, x)
    }

    /// The block's output for the class token alone (`[n, 1, dim]`): keys and values from every
    /// token, the query, projection and MLP for token 0 only. Equal to `forward(x)`'s token 0.
    fn forward_class_token(&self, x: &Tensor) -> Tensor {
        let (b, t, d) = x.size3().expect("ViT tokens are [n, tokens, dim]");
        let hd = d / self.heads;
        let h = x.apply(&self.norm1);
        let (w, bias) = (&self.qkv.ws, self.qkv.bs.as_ref());
        let q = h
            .narrow(1, 0, 1)
            .linear(&w.narrow(0, 0, d), bias.map(|b| b.narrow(0, 0, d)))
            .reshape([b, 1, self.heads, hd])
            .transpose(1, 2);
        let kv = h
            .linear(&w.narrow(0, d, 2 * d), bias.map(|b| b.narrow(0, d, 2 * d)))
            .reshape([b, t, 2, self.heads, hd])
            .permute([2, 0, 3, 1, 4]);
        let a = Tensor::scaled_dot_product_attention(
            &q,
            &kv.get(0),
            &kv.get(1),
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        self.finish(&a, &x.narrow(1, 0, 1))
    }

    /// Attention heads `[n, heads, tokens, head dim]` → the block's output: projection, layer
    /// scale, residual on `x` (the same tokens), MLP, layer scale, residual.
    fn finish(&self, a: &Tensor, x: &Tensor) -> Tensor {
        let (b, t, d) = x.size3().expect("ViT tokens are [n, tokens, dim]");
        let mut a = a.transpose(1, 2).reshape([b, t, d]).apply(&self.proj);
        if let Some(g) = &self.ls1 {
            a *= g;
        }
        // `x` may be a tap the caller keeps: the residual sum is a new tensor, then updated in place.
        let mut y = a + x;
        let h = y.apply(&self.norm2).apply(&self.fc1);
        let h = match self.mlp {
            Mlp::Gelu => h.gelu("none"),
            Mlp::SwiGluPacked => {
                let half = h.chunk(2, -1);
                half[0].silu() * &half[1]
            }
        };
        let mut m = h.apply(&self.fc2);
        if let Some(g) = &self.ls2 {
            m *= g;
        }
        y += m;
        y
    }
}

/// Patch embedding, class and register tokens, position embedding (resampled to the input's grid).
struct Embed {
    proj: nn::Conv2D,
    cls: Option<Tensor>,
    reg: Option<Tensor>,
    pos: Tensor,
    grid: i64,
    no_embed_class: bool,
    prefix: i64,
}

impl Embed {
    fn new(p: &nn::Path, c: &Config) -> Embed {
        let std = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let cfg = nn::ConvConfig {
            stride: c.patch,
            bias: true,
            ..Default::default()
        };
        Embed {
            proj: nn::conv2d(p / "patch_embed" / "proj", 3, c.dim, c.patch, cfg),
            cls: c
                .class_token
                .then(|| p.var("cls_token", &[1, 1, c.dim], std)),
            reg: (c.registers > 0).then(|| p.var("reg_token", &[1, c.registers, c.dim], std)),
            pos: p.var("pos_embed", &[1, c.pos_len(), c.dim], std),
            grid: c.img_size / c.patch,
            no_embed_class: c.no_embed_class,
            prefix: c.prefix(),
        }
    }

    /// The position embedding for a `gh`×`gw` grid (timm's `resample_abs_pos_embed`).
    fn pos_for(&self, gh: i64, gw: i64) -> Tensor {
        if gh == self.grid && gw == self.grid {
            return self.pos.shallow_clone();
        }
        let n = if self.no_embed_class { 0 } else { self.prefix };
        let d = self.pos.size()[2];
        let grid = self
            .pos
            .narrow(1, n, self.grid * self.grid)
            .reshape([1, self.grid, self.grid, d])
            .permute([0, 3, 1, 2]);
        let grid = grid
            .internal_upsample_bicubic2d_aa([gh, gw], false, None, None)
            .permute([0, 2, 3, 1])
            .reshape([1, gh * gw, d]);
        if n == 0 {
            grid
        } else {
            Tensor::cat(&[self.pos.narrow(1, 0, n), grid], 1)
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let x = x.apply(&self.proj);
        let (b, _, gh, gw) = x.size4().expect("images are [n, 3, h, w]");
        let x = x.flatten(2, 3).transpose(1, 2);
        let pos = self.pos_for(gh, gw);
        let mut prefix: Vec<Tensor> = Vec::new();
        for t in [&self.cls, &self.reg].into_iter().flatten() {
            prefix.push(t.expand([b, -1, -1], false));
        }
        let join = |x: Tensor| {
            if prefix.is_empty() {
                x
            } else {
                let mut all: Vec<&Tensor> = prefix.iter().collect();
                all.push(&x);
                Tensor::cat(&all, 1)
            }
        };
        if self.no_embed_class {
            join(x + pos)
        } else {
            join(x) + pos
        }
    }
}

/// Builds a ViT of shape `c`; taps `blocks.0 … blocks.N-1` and `norm`, classifier `head` on the
/// published pooling of the normalised tokens.
pub fn build(p: &nn::Path, c: &Config) -> Body {
    let embed = Embed::new(p, c);
    let mut stages = Vec::with_capacity(c.depth + 1);
    // The first block's stage embeds the image first: a tap is always a block's output. The last
    // block (and the embedding, in a one-block network) is shared by its stage's two ways of running
    // (all tokens, class token only); the network runs on one thread at a time, so the locks are
    // never contended.
    let mut embed = Some(Arc::new(Mutex::new(embed)));
    for i in 0..c.depth {
        let block = Arc::new(Mutex::new(Block::new(p / "blocks" / i, c)));
        let e = embed.take();
        let input = |e: &Option<Arc<Mutex<Embed>>>, x: &Tensor| match e {
            Some(e) => lock(e).forward(x),
            None => x.shallow_clone(),
        };
        let (b, e2) = (block.clone(), e.clone());
        let mut stage = Stage::new(&format!("blocks.{i}"), move |x, _| {
            lock(&b).forward(&input(&e2, x))
        });
        if i + 1 == c.depth {
            stage =
                stage.with_class_token(move |x, _| lock(&block).forward_class_token(&input(&e, x)));
        }
        stages.push(stage);
    }
    let norm = nn::layer_norm(
        p / "norm",
        vec![c.dim],
        nn::LayerNormConfig {
            eps: c.eps,
            ..Default::default()
        },
    );
    stages.push(Stage::new("norm", move |x, _| x.apply(&norm)));
    let tokens = Tokens {
        prefix: c.prefix(),
        cls: c.class_token,
        pool: c.pool,
    };
    Body {
        stages,
        pre_logits: Box::new(move |x, _| pool(x, tokens, tokens.pool)),
        fc_path: "head".into(),
        fc_in: c.embed_dim(),
        tokens: Some(tokens),
    }
}

/// The part behind a stage's lock (a poisoned lock still holds intact weights).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The blocks at 25, 50, 75 and 100 % of the depth, given every tap in forward order.
pub fn quarters(all: &[String]) -> Vec<String> {
    let depth = all.iter().filter(|t| t.starts_with("blocks.")).count();
    let mut out: Vec<String> = (1..=4)
        .map(|q| format!("blocks.{}", (depth * q / 4).max(1) - 1))
        .collect();
    out.dedup();
    out
}

/// Every block (the cut points of the strategies over a ViT).
pub fn blocks(all: &[String]) -> Vec<String> {
    all.iter()
        .filter(|t| t.starts_with("blocks."))
        .cloned()
        .collect()
}

/// Renames Hugging Face `ViTModel` / `Dinov2Model` tensors to timm's names (separate q, k, v
/// become one `qkv`); other files pass unchanged.
pub fn timm_names(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    let hf_key = "embeddings.patch_embeddings.projection.weight";
    let strip = ["", "vit.", "dinov2."]
        .into_iter()
        .find(|p| tensors.iter().any(|(n, _)| *n == format!("{p}{hf_key}")));
    let Some(strip) = strip else { return tensors };
    let mut out = Vec::new();
    let mut qkv: std::collections::BTreeMap<(String, String), [Option<Tensor>; 3]> =
        Default::default();
    for (name, t) in tensors {
        let Some(name) = name.strip_prefix(strip) else {
            continue;
        };
        let renamed = match name {
            "embeddings.cls_token" => "cls_token".to_string(),
            "embeddings.register_tokens" => "reg_token".to_string(),
            "embeddings.position_embeddings" => "pos_embed".to_string(),
            "embeddings.mask_token" => continue,
            n if n.starts_with("pooler.") || n.starts_with("classifier.") => continue,
            n if n.starts_with("embeddings.patch_embeddings.projection.") => n.replace(
                "embeddings.patch_embeddings.projection.",
                "patch_embed.proj.",
            ),
            n if n.starts_with("layernorm.") => n.replace("layernorm.", "norm."),
            n => match n.strip_prefix("encoder.layer.") {
                None => n.to_string(),
                Some(rest) => {
                    let (i, rest) = rest.split_once('.').unwrap_or((rest, ""));
                    let which = [
                        "attention.attention.query.",
                        "attention.attention.key.",
                        "attention.attention.value.",
                    ]
                    .iter()
                    .position(|q| rest.starts_with(q));
                    if let Some(w) = which {
                        let suffix = rest.rsplit('.').next().unwrap_or("").to_string();
                        qkv.entry((i.to_string(), suffix)).or_default()[w] = Some(t);
                        continue;
                    }
                    let rest = match rest {
                        "layer_scale1.lambda1" => "ls1.gamma".to_string(),
                        "layer_scale2.lambda1" => "ls2.gamma".to_string(),
                        r => r
                            .replace("attention.output.dense.", "attn.proj.")
                            .replace("layernorm_before.", "norm1.")
                            .replace("layernorm_after.", "norm2.")
                            .replace("intermediate.dense.", "mlp.fc1.")
                            .replace("output.dense.", "mlp.fc2."),
                    };
                    format!("blocks.{i}.{rest}")
                }
            },
        };
        out.push((renamed, t));
    }
    for ((i, suffix), parts) in qkv {
        let parts: Vec<Tensor> = parts.into_iter().flatten().collect();
        if parts.len() == 3 {
            out.push((
                format!("blocks.{i}.attn.qkv.{suffix}"),
                Tensor::cat(&parts, 0),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_arithmetic_matches_the_built_model() {
        for c in [PHIKON, UNI2_H, VIRCHOW2, DINOV2_S, GIGAPATH] {
            let c = c.with_depth(1);
            let vs = nn::VarStore::new(tch::Device::Cpu);
            let body = build(&vs.root(), &c);
            drop(body);
            let n: i64 = vs
                .trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum();
            assert_eq!(n, c.parameter_count(), "{c:?}");
        }
    }

    #[test]
    fn class_token_only_pass_equals_the_full_pass_token_0() {
        use crate::nets::{NetOptions, Network, Weights};
        // DINOv2-S with registers and layer scale; kaiko's ViT-S without either.
        for name in ["dinov2_vits14_reg4", "kaiko_vits16"] {
            let net = Network::new(
                name,
                NetOptions {
                    weights: Weights::Random(3),
                    ..Default::default()
                },
            )
            .unwrap();
            let s = net.spec.input_size;
            let x = Tensor::randn([2, 3, s, s], tch::kind::FLOAT_CPU);
            // The switch happens at the last block, whose tap or the final norm's is the deepest;
            // a pass that stops at an inner block keeps every token.
            let last = format!("blocks.{}", net.taps().len() - 2);
            for taps in [
                vec!["blocks.2", "norm"],
                vec![last.as_str()],
                vec!["blocks.4"],
            ] {
                let taps: Vec<String> = taps.into_iter().map(String::from).collect();
                let (full, cls) = tch::no_grad(|| {
                    (
                        net.forward_taps(&x, &taps, false),
                        net.forward_taps_keeping(&x, &taps, false, true),
                    )
                });
                assert_eq!(full.len(), cls.len());
                // One token from the switch on; an inner block tapped alone keeps every token.
                let tokens = if taps == ["blocks.4"] {
                    full.last().unwrap().size()[1]
                } else {
                    1
                };
                assert_eq!(
                    cls.last().unwrap().size()[1],
                    tokens,
                    "{name} {taps:?}: tokens at the deepest tap"
                );
                for (f, c) in full.iter().zip(&cls) {
                    let d = (f.select(1, 0) - c.select(1, 0))
                        .abs()
                        .max()
                        .double_value(&[]);
                    let scale = f.select(1, 0).abs().max().double_value(&[]);
                    assert!(d <= 1e-5 * scale, "{name} {taps:?}: {d} (scale {scale})");
                }
                // A tap before the switch keeps every token.
                if taps.len() == 2 {
                    assert_eq!(cls[0].size(), full[0].size());
                }
            }
        }
    }

    #[test]
    fn quarters_are_blocks_at_a_quarter_of_the_depth() {
        let all: Vec<String> = (0..24)
            .map(|i| format!("blocks.{i}"))
            .chain(["norm".to_string()])
            .collect();
        assert_eq!(
            quarters(&all),
            ["blocks.5", "blocks.11", "blocks.17", "blocks.23"]
        );
    }

    #[test]
    fn hugging_face_names_become_timm_names() {
        let z = |s: &[i64]| Tensor::zeros(s, tch::kind::FLOAT_CPU);
        let hf = vec![
            (
                "embeddings.patch_embeddings.projection.weight".to_string(),
                z(&[8, 3, 16, 16]),
            ),
            (
                "encoder.layer.0.attention.attention.query.weight".to_string(),
                z(&[8, 8]),
            ),
            (
                "encoder.layer.0.attention.attention.key.weight".to_string(),
                z(&[8, 8]),
            ),
            (
                "encoder.layer.0.attention.attention.value.weight".to_string(),
                z(&[8, 8]),
            ),
            ("encoder.layer.0.output.dense.bias".to_string(), z(&[8])),
            (
                "encoder.layer.0.attention.output.dense.bias".to_string(),
                z(&[8]),
            ),
            ("encoder.layer.0.layer_scale1.lambda1".to_string(), z(&[8])),
            ("pooler.dense.weight".to_string(), z(&[8, 8])),
        ];
        let mut names: Vec<(String, Vec<i64>)> = timm_names(hf)
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("blocks.0.attn.proj.bias".to_string(), vec![8]),
                ("blocks.0.attn.qkv.weight".to_string(), vec![24, 8]),
                ("blocks.0.ls1.gamma".to_string(), vec![8]),
                ("blocks.0.mlp.fc2.bias".to_string(), vec![8]),
                ("patch_embed.proj.weight".to_string(), vec![8, 3, 16, 16]),
            ]
        );
    }
}
