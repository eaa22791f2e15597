//! Vision Transformers: ImageNet, DINOv2, and the public pathology foundation models.

use super::{gated, hf, NetSpec};
use crate::input::{Interpolation::*, Normalization::*};
use crate::nets::vit::*;

/// A ViT entry: the architecture of `config`, preprocessing at `input_size`, one source.
macro_rules! vit {
    ($name:literal, $family:literal, $config:expr, $size:literal, $interp:ident, $norm:ident, $source:expr) => {
        NetSpec {
            name: $name,
            family: $family,
            version: crate::nets::vit::VERSION,
            build: |p| crate::nets::vit::build(p, &$config),
            paper_taps: crate::nets::vit::blocks,
            vit: Some($config),
            input_size: $size,
            interpolation: $interp,
            normalization: $norm,
            sources: &[$source],
        }
    };
}

/// Every Vision Transformer patholab can build.
pub const VITS: &[NetSpec] = &[
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
