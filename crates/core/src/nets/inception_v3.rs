//! Inception V3 with torchvision's parameter names (`Conv2d_1a_3x3.conv`, `Mixed_5b.branch1x1`, …;
//! timm's `inception_v3.tv_in1k` uses the same). Input 299×299.

/// Version of this family's computation, in every feature cache key: bump it with any change
/// that alters the numbers (`tests/compute/code_version.rs` fails until you do).
pub const VERSION: u32 = 1;

use super::body::{Body, Stage};
use super::layers::{chain, BasicConv};
use tch::{nn, Tensor};

fn bc(
    p: &nn::Path,
    name: &str,
    cin: i64,
    cout: i64,
    k: (i64, i64),
    stride: i64,
    pad: (i64, i64),
) -> BasicConv {
    BasicConv::new(p / name, cin, cout, k, stride, pad)
}

fn avg3(x: &Tensor) -> Tensor {
    x.avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None::<i64>)
}

fn max3s2(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

fn inception_a(p: nn::Path, cin: i64, pool: i64) -> impl Fn(&Tensor, bool) -> Tensor + Send {
    let b1 = bc(&p, "branch1x1", cin, 64, (1, 1), 1, (0, 0));
    let b5 = [
        bc(&p, "branch5x5_1", cin, 48, (1, 1), 1, (0, 0)),
        bc(&p, "branch5x5_2", 48, 64, (5, 5), 1, (2, 2)),
    ];
    let b3 = [
        bc(&p, "branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0)),
        bc(&p, "branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
        bc(&p, "branch3x3dbl_3", 96, 96, (3, 3), 1, (1, 1)),
    ];
    let bp = bc(&p, "branch_pool", cin, pool, (1, 1), 1, (0, 0));
    move |x, t| {
        Tensor::cat(
            &[
                b1.forward(x, t),
                chain(&b5, x, t),
                chain(&b3, x, t),
                bp.forward(&avg3(x), t),
            ],
            1,
        )
    }
}

fn inception_b(p: nn::Path, cin: i64) -> impl Fn(&Tensor, bool) -> Tensor + Send {
    let b3 = bc(&p, "branch3x3", cin, 384, (3, 3), 2, (0, 0));
    let bd = [
        bc(&p, "branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0)),
        bc(&p, "branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
        bc(&p, "branch3x3dbl_3", 96, 96, (3, 3), 2, (0, 0)),
    ];
    move |x, t| Tensor::cat(&[b3.forward(x, t), chain(&bd, x, t), max3s2(x)], 1)
}

fn inception_c(p: nn::Path, c7: i64) -> impl Fn(&Tensor, bool) -> Tensor + Send {
    let b1 = bc(&p, "branch1x1", 768, 192, (1, 1), 1, (0, 0));
    let b7 = [
        bc(&p, "branch7x7_1", 768, c7, (1, 1), 1, (0, 0)),
        bc(&p, "branch7x7_2", c7, c7, (1, 7), 1, (0, 3)),
        bc(&p, "branch7x7_3", c7, 192, (7, 1), 1, (3, 0)),
    ];
    let bd = [
        bc(&p, "branch7x7dbl_1", 768, c7, (1, 1), 1, (0, 0)),
        bc(&p, "branch7x7dbl_2", c7, c7, (7, 1), 1, (3, 0)),
        bc(&p, "branch7x7dbl_3", c7, c7, (1, 7), 1, (0, 3)),
        bc(&p, "branch7x7dbl_4", c7, c7, (7, 1), 1, (3, 0)),
        bc(&p, "branch7x7dbl_5", c7, 192, (1, 7), 1, (0, 3)),
    ];
    let bp = bc(&p, "branch_pool", 768, 192, (1, 1), 1, (0, 0));
    move |x, t| {
        Tensor::cat(
            &[
                b1.forward(x, t),
                chain(&b7, x, t),
                chain(&bd, x, t),
                bp.forward(&avg3(x), t),
            ],
            1,
        )
    }
}

fn inception_d(p: nn::Path) -> impl Fn(&Tensor, bool) -> Tensor + Send {
    let b3 = [
        bc(&p, "branch3x3_1", 768, 192, (1, 1), 1, (0, 0)),
        bc(&p, "branch3x3_2", 192, 320, (3, 3), 2, (0, 0)),
    ];
    let b7 = [
        bc(&p, "branch7x7x3_1", 768, 192, (1, 1), 1, (0, 0)),
        bc(&p, "branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
        bc(&p, "branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
        bc(&p, "branch7x7x3_4", 192, 192, (3, 3), 2, (0, 0)),
    ];
    move |x, t| Tensor::cat(&[chain(&b3, x, t), chain(&b7, x, t), max3s2(x)], 1)
}

fn inception_e(p: nn::Path, cin: i64) -> impl Fn(&Tensor, bool) -> Tensor + Send {
    let b1 = bc(&p, "branch1x1", cin, 320, (1, 1), 1, (0, 0));
    let b3 = bc(&p, "branch3x3_1", cin, 384, (1, 1), 1, (0, 0));
    let b3a = bc(&p, "branch3x3_2a", 384, 384, (1, 3), 1, (0, 1));
    let b3b = bc(&p, "branch3x3_2b", 384, 384, (3, 1), 1, (1, 0));
    let bd = [
        bc(&p, "branch3x3dbl_1", cin, 448, (1, 1), 1, (0, 0)),
        bc(&p, "branch3x3dbl_2", 448, 384, (3, 3), 1, (1, 1)),
    ];
    let bda = bc(&p, "branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1));
    let bdb = bc(&p, "branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0));
    let bp = bc(&p, "branch_pool", cin, 192, (1, 1), 1, (0, 0));
    move |x, t| {
        let y3 = b3.forward(x, t);
        let yd = chain(&bd, x, t);
        Tensor::cat(
            &[
                b1.forward(x, t),
                Tensor::cat(&[b3a.forward(&y3, t), b3b.forward(&y3, t)], 1),
                Tensor::cat(&[bda.forward(&yd, t), bdb.forward(&yd, t)], 1),
                bp.forward(&avg3(x), t),
            ],
            1,
        )
    }
}

/// Builds Inception V3; taps are the stem layers and `Mixed_5b` … `Mixed_7c`.
pub fn build(p: &nn::Path) -> Body {
    let stem = |name: &str, cin, cout, k, s, pad| {
        let c = bc(p, name, cin, cout, (k, k), s, (pad, pad));
        Stage::new(name, move |x, t| c.forward(x, t))
    };
    let stages = vec![
        stem("Conv2d_1a_3x3", 3, 32, 3, 2, 0),
        stem("Conv2d_2a_3x3", 32, 32, 3, 1, 0),
        stem("Conv2d_2b_3x3", 32, 64, 3, 1, 1),
        Stage::new("maxpool1", |x, _| max3s2(x)),
        stem("Conv2d_3b_1x1", 64, 80, 1, 1, 0),
        stem("Conv2d_4a_3x3", 80, 192, 3, 1, 0),
        Stage::new("maxpool2", |x, _| max3s2(x)),
        Stage::new("Mixed_5b", inception_a(p / "Mixed_5b", 192, 32)),
        Stage::new("Mixed_5c", inception_a(p / "Mixed_5c", 256, 64)),
        Stage::new("Mixed_5d", inception_a(p / "Mixed_5d", 288, 64)),
        Stage::new("Mixed_6a", inception_b(p / "Mixed_6a", 288)),
        Stage::new("Mixed_6b", inception_c(p / "Mixed_6b", 128)),
        Stage::new("Mixed_6c", inception_c(p / "Mixed_6c", 160)),
        Stage::new("Mixed_6d", inception_c(p / "Mixed_6d", 160)),
        Stage::new("Mixed_6e", inception_c(p / "Mixed_6e", 192)),
        Stage::new("Mixed_7a", inception_d(p / "Mixed_7a")),
        Stage::new("Mixed_7b", inception_e(p / "Mixed_7b", 1280)),
        Stage::new("Mixed_7c", inception_e(p / "Mixed_7c", 2048)),
    ];
    Body {
        stages,
        pre_logits: Box::new(|x, t| super::layers::gap(x).dropout(0.5, t)),
        fc_path: "fc".into(),
        tokens: None,
        fc_in: 2048,
    }
}
