//! TransMIL (Shao et al. 2021): tiles embedded, squared into a grid with a class token, two
//! Transformer layers of Nyström attention (Xiong et al. 2021, as the `nystrom-attention` package
//! computes it) with a pyramid position encoding (PPEG: depth-wise 7, 5 and 3 convolutions) between
//! them, the class token classified. Parameter names are those of the reference module
//! (tests/fixtures/make_mil.py, after the authors' `TransMIL.py`).

use tch::{nn, nn::Module, Kind, Tensor};

/// Nyström self-attention with its residual depth-wise convolution over the values.
struct Nystrom {
    to_qkv: nn::Linear,
    to_out: nn::Linear,
    res_conv: Tensor,
    heads: i64,
    landmarks: i64,
    iterations: usize,
    dropout: f64,
}

/// The residual convolution's kernel height (the package's default, 33).
const RES_KERNEL: i64 = 33;

impl Nystrom {
    fn new(
        p: nn::Path,
        dim: i64,
        heads: i64,
        landmarks: i64,
        iterations: usize,
        dropout: f64,
    ) -> Self {
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        Nystrom {
            to_qkv: nn::linear(&p / "to_qkv", dim, 3 * dim, no_bias),
            to_out: nn::linear(&p / "to_out" / 0, dim, dim, Default::default()),
            res_conv: (&p / "res_conv").var(
                "weight",
                &[heads, 1, RES_KERNEL, 1],
                nn::init::DEFAULT_KAIMING_UNIFORM,
            ),
            heads,
            landmarks,
            iterations,
            dropout,
        }
    }

    /// `x`: `[1, n, dim]`.
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let (n, dim) = (x.size()[1], x.size()[2]);
        let (h, m) = (self.heads, self.landmarks);
        let dh = dim / h;
        let pad = (m - n % m) % m;
        let x = if pad > 0 {
            x.constant_pad_nd([0, 0, pad, 0])
        } else {
            x.shallow_clone()
        };
        let np = n + pad;
        let qkv = self.to_qkv.forward(&x).chunk(3, -1);
        let split = |t: &Tensor| t.reshape([1, np, h, dh]).permute([0, 2, 1, 3]);
        let (q, k, v) = (
            split(&qkv[0]) * (dh as f64).powf(-0.5),
            split(&qkv[1]),
            split(&qkv[2]),
        );
        let l = (n + m - 1) / m;
        let landmarks = |t: &Tensor| {
            t.reshape([1, h, m, l, dh])
                .sum_dim_intlist(3, false, Kind::Float)
                / l as f64
        };
        let (ql, kl) = (landmarks(&q), landmarks(&k));
        let attn1 = q.matmul(&kl.transpose(-1, -2)).softmax(-1, Kind::Float);
        let attn2 = ql.matmul(&kl.transpose(-1, -2)).softmax(-1, Kind::Float);
        let attn3 = ql.matmul(&k.transpose(-1, -2)).softmax(-1, Kind::Float);
        let out = attn1
            .matmul(&pinv(&attn2, self.iterations))
            .matmul(&attn3.matmul(&v))
            + v.conv2d(
                &self.res_conv,
                None::<Tensor>,
                [1, 1],
                [RES_KERNEL / 2, 0],
                [1, 1],
                h,
            );
        let out = out.permute([0, 2, 1, 3]).reshape([1, np, dim]);
        let out = self.to_out.forward(&out).dropout(self.dropout, train);
        out.narrow(1, pad, n)
    }
}

/// The Moore-Penrose pseudo-inverse by the package's iteration (6 steps by default).
fn pinv(x: &Tensor, iterations: usize) -> Tensor {
    let a = x.abs();
    let col = a.sum_dim_intlist(-1, false, Kind::Float).max();
    let row = a.sum_dim_intlist(-2, false, Kind::Float).max();
    let mut z = x.transpose(-1, -2) / (col * row);
    let eye = Tensor::eye(x.size()[x.dim() - 1], (Kind::Float, x.device())).unsqueeze(0);
    for _ in 0..iterations {
        let xz = x.matmul(&z);
        let inner = &eye * 7.0 - &xz;
        let inner = &eye * 15.0 - xz.matmul(&inner);
        let inner = &eye * 13.0 - xz.matmul(&inner);
        z = z.matmul(&inner) * 0.25;
    }
    z
}

/// A pre-norm Transformer layer: x + attention(norm(x)).
struct Layer {
    norm: nn::LayerNorm,
    attn: Nystrom,
}

impl Layer {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x + self.attn.forward(&self.norm.forward(x), train)
    }
}

/// The pyramid position encoding: depth-wise 7×7, 5×5 and 3×3 convolutions added to the tokens
/// laid out as a square (the class token passes through).
struct Ppeg {
    convs: Vec<nn::Conv2D>,
}

impl Ppeg {
    fn forward(&self, x: &Tensor, side: i64) -> Tensor {
        let dim = x.size()[2];
        let cls = x.narrow(1, 0, 1);
        let feat = x
            .narrow(1, 1, side * side)
            .transpose(1, 2)
            .reshape([1, dim, side, side]);
        let mut y = feat.shallow_clone();
        for c in &self.convs {
            y = y + c.forward(&feat);
        }
        Tensor::cat(&[cls, y.flatten(2, -1).transpose(1, 2)], 1)
    }
}

/// The whole network below the classifier.
pub struct TransMil {
    fc1: nn::Linear,
    cls_token: Tensor,
    layer1: Layer,
    pos: Ppeg,
    layer2: Layer,
    norm: nn::LayerNorm,
}

impl TransMil {
    /// Its layers under `root` for `d` features embedded to `hidden`.
    pub fn new(
        root: &nn::Path,
        d: i64,
        hidden: i64,
        heads: i64,
        landmarks: i64,
        iterations: usize,
        dropout: f64,
    ) -> TransMil {
        let layer = |name: &str| Layer {
            norm: nn::layer_norm(root / name / "norm", vec![hidden], Default::default()),
            attn: Nystrom::new(
                root / name / "attn",
                hidden,
                heads,
                landmarks,
                iterations,
                dropout,
            ),
        };
        let conv = |name: &str, k: i64| {
            nn::conv2d(
                root / "pos_layer" / name,
                hidden,
                hidden,
                k,
                nn::ConvConfig {
                    padding: k / 2,
                    groups: hidden,
                    ..Default::default()
                },
            )
        };
        TransMil {
            fc1: nn::linear(root / "_fc1" / 0, d, hidden, Default::default()),
            cls_token: root.var(
                "cls_token",
                &[1, 1, hidden],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            ),
            layer1: layer("layer1"),
            pos: Ppeg {
                convs: vec![conv("proj", 7), conv("proj1", 5), conv("proj2", 3)],
            },
            layer2: layer("layer2"),
            norm: nn::layer_norm(root / "norm", vec![hidden], Default::default()),
        }
    }

    /// The class token's final features `[1, hidden]` for one bag `x` (`[n, d]`).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.fc1.forward(x).relu();
        let n = h.size()[0];
        let side = (n as f64).sqrt().ceil() as i64;
        let add = side * side - n;
        let h = if add > 0 {
            Tensor::cat(&[h.shallow_clone(), h.narrow(0, 0, add)], 0)
        } else {
            h
        };
        let h = Tensor::cat(&[self.cls_token.shallow_clone(), h.unsqueeze(0)], 1);
        let h = self.layer1.forward(&h, train);
        let h = self.pos.forward(&h, side);
        let h = self.layer2.forward(&h, train);
        self.norm.forward(&h).select(1, 0)
    }
}
