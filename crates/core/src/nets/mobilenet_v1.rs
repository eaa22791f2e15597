//! MobileNetV1 (width 1.0) with timm's parameter names (`timm/mobilenetv1_100.*`:
//! `conv_stem`, `bn1`, `blocks.S.B.conv_dw/bn1/conv_pw/bn2`, `classifier`).

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::{conv_bn, ConvOpts};

// Per stage: (output channels, stride of its first block, blocks).
const STAGES: [(i64, i64, usize); 5] = [
    (64, 1, 1),
    (128, 2, 2),
    (256, 2, 2),
    (512, 2, 6),
    (1024, 2, 2),
];

/// Builds MobileNetV1; taps are `conv_stem` and every block `blocks.S.B`.
pub fn build(p: &tch::nn::Path) -> Body {
    let o = |stride, padding, groups| ConvOpts {
        stride,
        padding,
        groups,
        ..Default::default()
    };
    let stem = conv_bn(p / "conv_stem", p / "bn1", 3, 32, 3, o(2, 1, 1));
    let mut stages = vec![Stage::new("conv_stem", move |x, t| {
        stem.forward(x, t).relu6_()
    })];
    let mut cin = 32;
    for (s, &(cout, stride, n)) in STAGES.iter().enumerate() {
        for b in 0..n {
            let q = p / "blocks" / s / b;
            let st = if b == 0 { stride } else { 1 };
            let dw = conv_bn(&q / "conv_dw", &q / "bn1", cin, cin, 3, o(st, 1, cin));
            let pw = conv_bn(&q / "conv_pw", &q / "bn2", cin, cout, 1, o(1, 0, 1));
            stages.push(Stage::new(&format!("blocks.{s}.{b}"), move |x, t| {
                pw.forward(&dw.forward(x, t).relu6_(), t).relu6_()
            }));
            cin = cout;
        }
    }
    Body {
        stages,
        pre_logits: Box::new(|x, _| super::layers::gap(x)),
        fc_path: "classifier".into(),
        tokens: None,
        fc_in: cin,
    }
}
