//! VGG16/19 with torchvision's parameter names (`features.N`, `classifier.0/3/6`).

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use tch::{nn, Tensor};

/// Convolutions per block for a depth.
pub fn config(depth: usize) -> [usize; 5] {
    if depth == 19 {
        [2, 2, 4, 4, 4]
    } else {
        [2, 2, 3, 3, 3]
    }
}

/// Builds VGG-`depth`; taps are the block outputs after pooling, named by the pool's index
/// (`features.4`, `features.9`, …); the last is the final conv block's pooled output.
pub fn build(p: &nn::Path, depth: usize) -> Body {
    let f = p / "features";
    let mut idx = 0;
    let mut cin = 3;
    let mut stages = Vec::new();
    for (b, &n) in config(depth).iter().enumerate() {
        let cout = [64, 128, 256, 512, 512][b];
        let mut convs = Vec::new();
        for _ in 0..n {
            convs.push(nn::conv2d(
                &f / idx,
                cin,
                cout,
                3,
                nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                },
            ));
            idx += 2;
            cin = cout;
        }
        stages.push(Stage::new(&format!("features.{idx}"), move |x, _| {
            let mut y = x.shallow_clone();
            for c in &convs {
                y = y.apply(c).relu_();
            }
            y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
        }));
        idx += 1;
    }
    let c = p / "classifier";
    let fc0 = nn::linear(&c / 0, 512 * 7 * 7, 4096, Default::default());
    let fc3 = nn::linear(&c / 3, 4096, 4096, Default::default());
    Body {
        stages,
        pre_logits: Box::new(move |x: &Tensor, t| {
            x.adaptive_avg_pool2d([7, 7])
                .flatten(1, -1)
                .apply(&fc0)
                .relu_()
                .dropout(0.5, t)
                .apply(&fc3)
                .relu_()
                .dropout(0.5, t)
        }),
        fc_path: "classifier.6".into(),
        tokens: None,
        fc_in: 4096,
    }
}
