//! ResNet 18/34/50/101/152 with torchvision's parameter names (`conv1`, `layer1.0.conv1`, …).

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::{conv_bn, ConvBn, ConvOpts};
use tch::{nn, Tensor};

/// Blocks per stage and whether the block is a bottleneck, for a depth.
pub fn config(depth: usize) -> ([usize; 4], bool) {
    match depth {
        18 => ([2, 2, 2, 2], false),
        34 => ([3, 4, 6, 3], false),
        50 => ([3, 4, 6, 3], true),
        101 => ([3, 4, 23, 3], true),
        _ => ([3, 8, 36, 3], true),
    }
}

struct Block {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Block {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for (i, c) in self.convs.iter().enumerate() {
            y = c.forward(&y, train);
            if i + 1 < self.convs.len() {
                // In place, as torchvision does: y is this block's own fresh tensor, and no
                // allocation of a whole feature map is made per activation.
                let _ = y.relu_();
            }
        }
        match &self.downsample {
            Some(d) => y += d.forward(x, train),
            None => y += x,
        }
        let _ = y.relu_();
        y
    }
}

/// Builds ResNet-`depth`; taps: `relu` (after the stem), `maxpool`, and every block `layerS.B`.
pub fn build(p: &nn::Path, depth: usize) -> Body {
    let (counts, bottleneck) = config(depth);
    let expansion = if bottleneck { 4 } else { 1 };
    let stem = conv_bn(
        p / "conv1",
        p / "bn1",
        3,
        64,
        7,
        ConvOpts {
            stride: 2,
            padding: 3,
            ..Default::default()
        },
    );
    let mut stages = vec![
        Stage::new("relu", move |x, t| stem.forward(x, t).relu_()),
        Stage::new("maxpool", |x, _| {
            x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
        }),
    ];
    let mut cin = 64;
    for (s, &n) in counts.iter().enumerate() {
        let planes = 64 << s;
        for b in 0..n {
            let stride = if s > 0 && b == 0 { 2 } else { 1 };
            let q = p / format!("layer{}", s + 1) / b;
            let cout = planes * expansion;
            let o = |stride, padding| ConvOpts {
                stride,
                padding,
                ..Default::default()
            };
            let convs = if bottleneck {
                vec![
                    conv_bn(&q / "conv1", &q / "bn1", cin, planes, 1, o(1, 0)),
                    conv_bn(&q / "conv2", &q / "bn2", planes, planes, 3, o(stride, 1)),
                    conv_bn(&q / "conv3", &q / "bn3", planes, cout, 1, o(1, 0)),
                ]
            } else {
                vec![
                    conv_bn(&q / "conv1", &q / "bn1", cin, planes, 3, o(stride, 1)),
                    conv_bn(&q / "conv2", &q / "bn2", planes, planes, 3, o(1, 1)),
                ]
            };
            let downsample = (stride != 1 || cin != cout).then(|| {
                conv_bn(
                    &q / "downsample" / 0,
                    &q / "downsample" / 1,
                    cin,
                    cout,
                    1,
                    o(stride, 0),
                )
            });
            let block = Block { convs, downsample };
            stages.push(Stage::new(&format!("layer{}.{b}", s + 1), move |x, t| {
                block.forward(x, t)
            }));
            cin = cout;
        }
    }
    Body {
        stages,
        pre_logits: Box::new(|x, _| super::layers::gap(x)),
        fc_path: "fc".into(),
        tokens: None,
        fc_in: cin,
    }
}
