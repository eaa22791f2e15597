//! DenseNet 121/169/201 with torchvision's parameter names (`features.denseblock1.denselayer1.norm1`).

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::batch_norm;
use tch::{nn, Tensor};

/// Layers per dense block for a depth.
pub fn config(depth: usize) -> [i64; 4] {
    match depth {
        121 => [6, 12, 24, 16],
        169 => [6, 12, 32, 32],
        _ => [6, 12, 48, 32],
    }
}

const GROWTH: i64 = 32;
const BN_SIZE: i64 = 4;

fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        cin,
        cout,
        k,
        nn::ConvConfig {
            stride,
            padding,
            bias: false,
            ..Default::default()
        },
    )
}

struct DenseLayer {
    norm1: nn::BatchNorm,
    conv1: nn::Conv2D,
    norm2: nn::BatchNorm,
    conv2: nn::Conv2D,
}

/// Builds DenseNet-`depth`; taps: `features.pool0`, `features.denseblockN`, `features.transitionN`,
/// `features.norm5` (after its ReLU, as torchvision's forward applies it).
pub fn build(p: &nn::Path, depth: usize) -> Body {
    let f = p / "features";
    let conv0 = conv(&f / "conv0", 3, 64, 7, 2, 3);
    let norm0 = batch_norm(&f / "norm0", 64, 1e-5, 0.1);
    let mut stages = vec![Stage::new("features.pool0", move |x, t| {
        x.apply(&conv0)
            .apply_t(&norm0, t)
            .relu_()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
    })];
    let mut c = 64;
    let blocks = config(depth);
    for (i, &n) in blocks.iter().enumerate() {
        let bp = &f / format!("denseblock{}", i + 1);
        let layers: Vec<DenseLayer> = (0..n)
            .map(|l| {
                let lp = &bp / format!("denselayer{}", l + 1);
                let cin = c + l * GROWTH;
                DenseLayer {
                    norm1: batch_norm(&lp / "norm1", cin, 1e-5, 0.1),
                    conv1: conv(&lp / "conv1", cin, BN_SIZE * GROWTH, 1, 1, 0),
                    norm2: batch_norm(&lp / "norm2", BN_SIZE * GROWTH, 1e-5, 0.1),
                    conv2: conv(&lp / "conv2", BN_SIZE * GROWTH, GROWTH, 3, 1, 1),
                }
            })
            .collect();
        stages.push(Stage::new(
            &format!("features.denseblock{}", i + 1),
            move |x, t| {
                let mut feats = vec![x.shallow_clone()];
                for l in &layers {
                    let cat = Tensor::cat(&feats, 1);
                    let y = cat
                        .apply_t(&l.norm1, t)
                        .relu_()
                        .apply(&l.conv1)
                        .apply_t(&l.norm2, t)
                        .relu_()
                        .apply(&l.conv2);
                    feats.push(y);
                }
                Tensor::cat(&feats, 1)
            },
        ));
        c += n * GROWTH;
        if i + 1 < blocks.len() {
            let tp = &f / format!("transition{}", i + 1);
            let norm = batch_norm(&tp / "norm", c, 1e-5, 0.1);
            let cv = conv(&tp / "conv", c, c / 2, 1, 1, 0);
            stages.push(Stage::new(
                &format!("features.transition{}", i + 1),
                move |x, t| {
                    x.apply_t(&norm, t).relu_().apply(&cv).avg_pool2d(
                        [2, 2],
                        [2, 2],
                        [0, 0],
                        false,
                        true,
                        None::<i64>,
                    )
                },
            ));
            c /= 2;
        }
    }
    let norm5 = batch_norm(&f / "norm5", c, 1e-5, 0.1);
    stages.push(Stage::new("features.norm5", move |x, t| {
        x.apply_t(&norm5, t).relu_()
    }));
    Body {
        stages,
        pre_logits: Box::new(|x, _| super::layers::gap(x)),
        fc_path: "classifier".into(),
        tokens: None,
        fc_in: c,
    }
}
