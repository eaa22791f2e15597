//! Inception-ResNet-V2 with timm's parameter names (`conv2d_1a`, `mixed_5b.branch1.0`,
//! `repeat.N`, `repeat_1.N`, `repeat_2.N`, `block8`, `conv2d_7b`, `classif`). Input 299×299.

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::{chain, BasicConv};
use tch::{nn, Tensor};

fn bc(p: nn::Path, cin: i64, cout: i64, k: (i64, i64), stride: i64, pad: (i64, i64)) -> BasicConv {
    BasicConv::new(p, cin, cout, k, stride, pad)
}

fn sq(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> BasicConv {
    bc(p, cin, cout, (k, k), stride, (pad, pad))
}

fn max3s2(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

fn mixed_5b(p: nn::Path) -> impl Fn(&Tensor, bool) -> Tensor + Send {
    let b0 = sq(&p / "branch0", 192, 96, 1, 1, 0);
    let b1 = [
        sq(&p / "branch1" / 0, 192, 48, 1, 1, 0),
        sq(&p / "branch1" / 1, 48, 64, 5, 1, 2),
    ];
    let b2 = [
        sq(&p / "branch2" / 0, 192, 64, 1, 1, 0),
        sq(&p / "branch2" / 1, 64, 96, 3, 1, 1),
        sq(&p / "branch2" / 2, 96, 96, 3, 1, 1),
    ];
    let b3 = sq(&p / "branch3" / 1, 192, 64, 1, 1, 0);
    move |x, t| {
        let pooled = x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>);
        Tensor::cat(
            &[
                b0.forward(x, t),
                chain(&b1, x, t),
                chain(&b2, x, t),
                b3.forward(&pooled, t),
            ],
            1,
        )
    }
}

/// A residual block: branches concatenated, a 1×1 convolution (with bias), scaled, added, ReLU.
struct Residual {
    branches: Vec<Vec<BasicConv>>,
    conv: nn::Conv2D,
    scale: f64,
    relu: bool,
}

impl Residual {
    fn forward(&self, x: &Tensor, t: bool) -> Tensor {
        let outs: Vec<Tensor> = self.branches.iter().map(|b| chain(b, x, t)).collect();
        let y = Tensor::cat(&outs, 1).apply(&self.conv) * self.scale + x;
        if self.relu {
            let mut y = y;
            y.relu_()
        } else {
            y
        }
    }
}

fn block35(p: nn::Path) -> Residual {
    let b = |i: i64| &p / format!("branch{i}");
    Residual {
        branches: vec![
            vec![sq(b(0), 320, 32, 1, 1, 0)],
            vec![
                sq(&b(1) / 0, 320, 32, 1, 1, 0),
                sq(&b(1) / 1, 32, 32, 3, 1, 1),
            ],
            vec![
                sq(&b(2) / 0, 320, 32, 1, 1, 0),
                sq(&b(2) / 1, 32, 48, 3, 1, 1),
                sq(&b(2) / 2, 48, 64, 3, 1, 1),
            ],
        ],
        conv: nn::conv2d(&p / "conv2d", 128, 320, 1, Default::default()),
        scale: 0.17,
        relu: true,
    }
}

fn block17(p: nn::Path) -> Residual {
    let b = |i: i64| &p / format!("branch{i}");
    Residual {
        branches: vec![
            vec![sq(b(0), 1088, 192, 1, 1, 0)],
            vec![
                sq(&b(1) / 0, 1088, 128, 1, 1, 0),
                bc(&b(1) / 1, 128, 160, (1, 7), 1, (0, 3)),
                bc(&b(1) / 2, 160, 192, (7, 1), 1, (3, 0)),
            ],
        ],
        conv: nn::conv2d(&p / "conv2d", 384, 1088, 1, Default::default()),
        scale: 0.10,
        relu: true,
    }
}

fn block8(p: nn::Path, scale: f64, relu: bool) -> Residual {
    let b = |i: i64| &p / format!("branch{i}");
    Residual {
        branches: vec![
            vec![sq(b(0), 2080, 192, 1, 1, 0)],
            vec![
                sq(&b(1) / 0, 2080, 192, 1, 1, 0),
                bc(&b(1) / 1, 192, 224, (1, 3), 1, (0, 1)),
                bc(&b(1) / 2, 224, 256, (3, 1), 1, (1, 0)),
            ],
        ],
        conv: nn::conv2d(&p / "conv2d", 448, 2080, 1, Default::default()),
        scale,
        relu,
    }
}

/// Builds Inception-ResNet-V2; taps are the stem layers, the mixed blocks and every residual
/// block (`repeat.N`, `repeat_1.N`, `repeat_2.N`, `block8`), and `conv2d_7b`.
pub fn build(p: &nn::Path) -> Body {
    let mut stages = Vec::new();
    for (name, cin, cout, k, s, pad) in [
        ("conv2d_1a", 3, 32, 3, 2, 0),
        ("conv2d_2a", 32, 32, 3, 1, 0),
        ("conv2d_2b", 32, 64, 3, 1, 1),
    ] {
        let c = sq(p / name, cin, cout, k, s, pad);
        stages.push(Stage::new(name, move |x, t| c.forward(x, t)));
    }
    stages.push(Stage::new("maxpool_3a", |x, _| max3s2(x)));
    for (name, cin, cout, k) in [("conv2d_3b", 64, 80, 1), ("conv2d_4a", 80, 192, 3)] {
        let c = sq(p / name, cin, cout, k, 1, 0);
        stages.push(Stage::new(name, move |x, t| c.forward(x, t)));
    }
    stages.push(Stage::new("maxpool_5a", |x, _| max3s2(x)));
    stages.push(Stage::new("mixed_5b", mixed_5b(p / "mixed_5b")));
    for i in 0..10 {
        let b = block35(p / "repeat" / i);
        stages.push(Stage::new(&format!("repeat.{i}"), move |x, t| {
            b.forward(x, t)
        }));
    }
    let m6 = p / "mixed_6a";
    let b0 = sq(&m6 / "branch0", 320, 384, 3, 2, 0);
    let b1 = [
        sq(&m6 / "branch1" / 0, 320, 256, 1, 1, 0),
        sq(&m6 / "branch1" / 1, 256, 256, 3, 1, 1),
        sq(&m6 / "branch1" / 2, 256, 384, 3, 2, 0),
    ];
    stages.push(Stage::new("mixed_6a", move |x, t| {
        Tensor::cat(&[b0.forward(x, t), chain(&b1, x, t), max3s2(x)], 1)
    }));
    for i in 0..20 {
        let b = block17(p / "repeat_1" / i);
        stages.push(Stage::new(&format!("repeat_1.{i}"), move |x, t| {
            b.forward(x, t)
        }));
    }
    let m7 = p / "mixed_7a";
    let br = |i: i64, n: i64| &m7 / format!("branch{i}") / n;
    let c0 = [
        sq(br(0, 0), 1088, 256, 1, 1, 0),
        sq(br(0, 1), 256, 384, 3, 2, 0),
    ];
    let c1 = [
        sq(br(1, 0), 1088, 256, 1, 1, 0),
        sq(br(1, 1), 256, 288, 3, 2, 0),
    ];
    let c2 = [
        sq(br(2, 0), 1088, 256, 1, 1, 0),
        sq(br(2, 1), 256, 288, 3, 1, 1),
        sq(br(2, 2), 288, 320, 3, 2, 0),
    ];
    stages.push(Stage::new("mixed_7a", move |x, t| {
        Tensor::cat(
            &[
                chain(&c0, x, t),
                chain(&c1, x, t),
                chain(&c2, x, t),
                max3s2(x),
            ],
            1,
        )
    }));
    for i in 0..9 {
        let b = block8(p / "repeat_2" / i, 0.20, true);
        stages.push(Stage::new(&format!("repeat_2.{i}"), move |x, t| {
            b.forward(x, t)
        }));
    }
    let last = block8(p / "block8", 1.0, false);
    stages.push(Stage::new("block8", move |x, t| last.forward(x, t)));
    let head = sq(p / "conv2d_7b", 2080, 1536, 1, 1, 0);
    stages.push(Stage::new("conv2d_7b", move |x, t| head.forward(x, t)));
    Body {
        stages,
        pre_logits: Box::new(|x, _| super::layers::gap(x)),
        fc_path: "classif".into(),
        tokens: None,
        fc_in: 1536,
    }
}

/// The study's 16 cut points (docs/paper.md).
pub fn paper_taps() -> Vec<String> {
    let mut t: Vec<String> = vec!["maxpool_5a".into(), "mixed_5b".into()];
    t.extend([0, 3, 6, 9].iter().map(|i| format!("repeat.{i}")));
    t.push("mixed_6a".into());
    t.extend([4, 9, 14, 19].iter().map(|i| format!("repeat_1.{i}")));
    t.push("mixed_7a".into());
    t.extend([2, 5, 8].iter().map(|i| format!("repeat_2.{i}")));
    t.push("conv2d_7b".into());
    t
}
