//! MobileNetV2 (width 1.0) with torchvision's parameter names (`features.N.conv.M`).

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::{conv_bn, ConvBn, ConvOpts};
use tch::{nn, Tensor};

// (expand t, channels c, repeats n, stride s)
const SETTINGS: [(i64, i64, i64, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

struct InvertedResidual {
    convs: Vec<(ConvBn, bool)>,
    residual: bool,
}

/// Builds MobileNetV2; taps are `features.0` … `features.18`.
pub fn build(p: &nn::Path) -> Body {
    let f = p / "features";
    let o = |stride, padding, groups| ConvOpts {
        stride,
        padding,
        groups,
        ..Default::default()
    };
    let stem = conv_bn(&f / 0 / 0, &f / 0 / 1, 3, 32, 3, o(2, 1, 1));
    let mut stages = vec![Stage::new("features.0", move |x, t| {
        stem.forward(x, t).relu6_()
    })];
    let mut cin = 32;
    let mut idx = 1;
    for (t, c, n, s) in SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = cin * t;
            let q = &f / idx / "conv";
            let mut convs = Vec::new();
            let mut j = 0;
            if t != 1 {
                convs.push((
                    conv_bn(&q / j / 0, &q / j / 1, cin, hidden, 1, o(1, 0, 1)),
                    true,
                ));
                j += 1;
            }
            convs.push((
                conv_bn(
                    &q / j / 0,
                    &q / j / 1,
                    hidden,
                    hidden,
                    3,
                    o(stride, 1, hidden),
                ),
                true,
            ));
            let project = ConvBn {
                conv: nn::conv2d(
                    &q / (j + 1),
                    hidden,
                    c,
                    1,
                    nn::ConvConfig {
                        bias: false,
                        ..Default::default()
                    },
                ),
                bn: super::layers::batch_norm(&q / (j + 2), c, 1e-5, 0.1),
            };
            convs.push((project, false));
            let block = InvertedResidual {
                convs,
                residual: stride == 1 && cin == c,
            };
            stages.push(Stage::new(
                &format!("features.{idx}"),
                move |x: &Tensor, train| {
                    let mut y = x.shallow_clone();
                    for (cb, act) in &block.convs {
                        y = cb.forward(&y, train);
                        if *act {
                            let _ = y.relu6_();
                        }
                    }
                    if block.residual {
                        y += x; // y is this block's own fresh tensor
                        y
                    } else {
                        y
                    }
                },
            ));
            cin = c;
            idx += 1;
        }
    }
    let last = conv_bn(&f / idx / 0, &f / idx / 1, cin, 1280, 1, o(1, 0, 1));
    stages.push(Stage::new(&format!("features.{idx}"), move |x, t| {
        last.forward(x, t).relu6_()
    }));
    Body {
        stages,
        pre_logits: Box::new(|x, t| super::layers::gap(x).dropout(0.2, t)),
        fc_path: "classifier.1".into(),
        tokens: None,
        fc_in: 1280,
    }
}
