//! Building blocks shared by the architectures: convolutions with batch norm, TF "same" padding.

use tch::{nn, Tensor};

/// A boxed forward step `(input, train) → output`.
pub type Step = Box<dyn Fn(&Tensor, bool) -> Tensor + Send>;

/// A convolution without bias followed by batch norm, named `conv`/`bn` under their own paths.
pub struct ConvBn {
    pub conv: nn::Conv2D,
    pub bn: nn::BatchNorm,
}

/// Options of [`conv_bn`].
#[derive(Clone, Copy)]
pub struct ConvOpts {
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
    pub eps: f64,
    pub momentum: f64,
}

impl Default for ConvOpts {
    fn default() -> Self {
        ConvOpts {
            stride: 1,
            padding: 0,
            groups: 1,
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// A bias-free `k`×`k` convolution at `conv_path` and a batch norm at `bn_path`.
pub fn conv_bn(
    conv_path: nn::Path,
    bn_path: nn::Path,
    cin: i64,
    cout: i64,
    k: i64,
    o: ConvOpts,
) -> ConvBn {
    let cfg = nn::ConvConfig {
        stride: o.stride,
        padding: o.padding,
        groups: o.groups,
        bias: false,
        ..Default::default()
    };
    ConvBn {
        conv: nn::conv2d(conv_path, cin, cout, k, cfg),
        bn: batch_norm(bn_path, cout, o.eps, o.momentum),
    }
}

/// A batch norm with PyTorch's parameter names.
pub fn batch_norm(p: nn::Path, c: i64, eps: f64, momentum: f64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            eps,
            momentum,
            ..Default::default()
        },
    )
}

impl ConvBn {
    /// Convolution then batch norm (no activation).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// Pads `x` the way TensorFlow's "SAME" does for a `k`×`k` window at `stride`
/// (extra pixel on the right/bottom), as the EfficientNet-Lite weights expect.
pub fn pad_same(x: &Tensor, k: i64, stride: i64) -> Tensor {
    let size = x.size();
    let (ih, iw) = (size[2], size[3]);
    let pad = |i: i64| {
        let o = (i + stride - 1) / stride;
        ((o - 1) * stride + k - i).max(0)
    };
    let (ph, pw) = (pad(ih), pad(iw));
    if ph == 0 && pw == 0 {
        return x.shallow_clone();
    }
    x.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
}

/// Global average pooling to `[n, c]`.
pub fn gap(x: &Tensor) -> Tensor {
    x.mean_dim(&[-2i64, -1][..], false, x.kind())
}

/// A bias-free convolution with a `kh`×`kw` kernel, batch norm (eps 1e-3) and ReLU, named
/// `conv` and `bn` under `p`: the BasicConv2d of the Inception networks.
pub struct BasicConv {
    conv: tch::nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl BasicConv {
    /// `k`, `stride` and `padding` as (height, width).
    pub fn new(
        p: nn::Path,
        cin: i64,
        cout: i64,
        k: (i64, i64),
        stride: i64,
        padding: (i64, i64),
    ) -> BasicConv {
        let cfg = nn::ConvConfigND {
            stride: [stride, stride],
            padding: [padding.0, padding.1],
            bias: false,
            ..Default::default()
        };
        BasicConv {
            conv: nn::conv(&p / "conv", cin, cout, [k.0, k.1], cfg),
            bn: batch_norm(&p / "bn", cout, 1e-3, 0.1),
        }
    }

    /// Convolution, batch norm, ReLU.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu_()
    }
}

/// Runs a chain of basic convolutions.
pub fn chain(convs: &[BasicConv], x: &Tensor, train: bool) -> Tensor {
    convs
        .iter()
        .fold(x.shallow_clone(), |y, c| c.forward(&y, train))
}
