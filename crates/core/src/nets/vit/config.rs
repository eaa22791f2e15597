//! The shape of a Vision Transformer ([`Config`]) and the shapes patholab knows by name.

use crate::nets::tokens::Pool;

/// The MLP of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mlp {
    /// `fc1` → exact GELU → `fc2`.
    Gelu,
    /// timm's `SwiGLUPacked`: `fc1` to `2h`, halves `a, b`, `silu(a) · b`, `fc2` from `h`.
    SwiGluPacked,
}

/// The shape of a Vision Transformer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub patch: i64,
    pub dim: i64,
    pub depth: usize,
    pub heads: i64,
    /// Hidden width of `fc1` as a multiple of `dim` (truncated as timm does: `int(dim · ratio)`).
    pub mlp_ratio: f64,
    pub mlp: Mlp,
    pub class_token: bool,
    /// Register tokens (0, 4 or 8 in the published models).
    pub registers: i64,
    /// Position embedding on the patch tokens only (class and registers prepended after).
    pub no_embed_class: bool,
    /// LayerScale (`ls1.gamma`, `ls2.gamma`) in every block.
    pub layer_scale: bool,
    pub qkv_bias: bool,
    /// Layer-norm epsilon.
    pub eps: f64,
    /// The image side the stored position embedding was made for.
    pub img_size: i64,
    pub pool: Pool,
}

/// timm's `vit_base_patch16_224`; every other configuration starts from it.
pub const VIT_B16: Config = Config {
    patch: 16,
    dim: 768,
    depth: 12,
    heads: 12,
    mlp_ratio: 4.0,
    mlp: Mlp::Gelu,
    class_token: true,
    registers: 0,
    no_embed_class: false,
    layer_scale: false,
    qkv_bias: true,
    eps: 1e-6,
    img_size: 224,
    pool: Pool::Cls,
};

/// ViT-S/16 (DINO; kaiko's vits16).
pub const VIT_S16: Config = Config {
    dim: 384,
    heads: 6,
    ..VIT_B16
};
/// ViT-S/8 (DINO; Lunit).
pub const VIT_S8: Config = Config {
    patch: 8,
    ..VIT_S16
};
/// ViT-L/16 with LayerScale (UNI).
pub const VIT_L16_LS: Config = Config {
    dim: 1024,
    depth: 24,
    heads: 16,
    layer_scale: true,
    ..VIT_B16
};
/// DINOv2 ViT-S/14, position embedding for 518 px.
pub const DINOV2_S: Config = Config {
    patch: 14,
    dim: 384,
    heads: 6,
    layer_scale: true,
    img_size: 518,
    ..VIT_B16
};
/// DINOv2 ViT-B/14.
pub const DINOV2_B: Config = Config {
    dim: 768,
    heads: 12,
    ..DINOV2_S
};
/// DINOv2 ViT-L/14.
pub const DINOV2_L: Config = Config {
    dim: 1024,
    depth: 24,
    heads: 16,
    ..DINOV2_S
};
/// UNI2-h: ViT-G/14 width at depth 24, SwiGLU, 8 registers.
pub const UNI2_H: Config = Config {
    patch: 14,
    dim: 1536,
    depth: 24,
    heads: 24,
    mlp_ratio: 2.66667 * 2.0,
    mlp: Mlp::SwiGluPacked,
    registers: 8,
    no_embed_class: true,
    layer_scale: true,
    ..VIT_B16
};
/// H-optimus-0/1: ViT-G/14, depth 40, SwiGLU, 4 registers.
pub const H_OPTIMUS: Config = Config {
    depth: 40,
    mlp_ratio: 5.33334,
    registers: 4,
    ..UNI2_H
};
/// Prov-GigaPath's tile encoder: ViT-G at patch 16, SwiGLU, no registers.
pub const GIGAPATH: Config = Config {
    patch: 16,
    registers: 0,
    no_embed_class: false,
    ..H_OPTIMUS
};
/// Virchow: ViT-H/14, SwiGLU, class token ‖ mean of the patch tokens.
pub const VIRCHOW: Config = Config {
    patch: 14,
    dim: 1280,
    depth: 32,
    heads: 16,
    mlp_ratio: 5.3375,
    mlp: Mlp::SwiGluPacked,
    layer_scale: true,
    pool: Pool::ClsMean,
    ..VIT_B16
};
/// Virchow2: Virchow with 4 registers.
pub const VIRCHOW2: Config = Config {
    registers: 4,
    ..VIRCHOW
};
/// Phikon (Hugging Face `ViTModel`, iBOT): ViT-B/16 with layer-norm eps 1e-12.
pub const PHIKON: Config = Config {
    eps: 1e-12,
    ..VIT_B16
};
/// Phikon-v2 (Hugging Face `Dinov2Model`): ViT-L/16 with LayerScale.
pub const PHIKON_V2: Config = VIT_L16_LS;
/// DINOv2 ViT-S/14 with 4 registers.
pub const DINOV2_S_REG4: Config = Config {
    registers: 4,
    no_embed_class: true,
    ..DINOV2_S
};
/// DINOv2 ViT-B/14 with 4 registers.
pub const DINOV2_B_REG4: Config = Config {
    registers: 4,
    no_embed_class: true,
    ..DINOV2_B
};
/// DINOv2 ViT-L/14 with 4 registers (also kaiko's vitl14).
pub const DINOV2_L_REG4: Config = Config {
    registers: 4,
    no_embed_class: true,
    ..DINOV2_L
};

impl Config {
    /// The same model with `depth` blocks (reduced-depth models for tests and quick looks).
    pub fn with_depth(self, depth: usize) -> Config {
        Config { depth, ..self }
    }

    /// Class token and registers.
    pub fn prefix(&self) -> i64 {
        self.class_token as i64 + self.registers
    }

    /// Width of `fc1`'s output.
    pub fn hidden(&self) -> i64 {
        (self.dim as f64 * self.mlp_ratio) as i64
    }

    /// Rows of the stored position embedding.
    pub fn pos_len(&self) -> i64 {
        let grid = self.img_size / self.patch;
        grid * grid
            + if self.no_embed_class {
                0
            } else {
                self.prefix()
            }
    }

    /// Width of the published pooled embedding.
    pub fn embed_dim(&self) -> i64 {
        match self.pool {
            Pool::Cls => self.dim,
            Pool::ClsMean => 2 * self.dim,
        }
    }

    /// Parameters of the backbone (no classifier), by shape arithmetic.
    pub fn parameter_count(&self) -> i64 {
        let (d, h) = (self.dim, self.hidden());
        let fc2_in = match self.mlp {
            Mlp::Gelu => h,
            Mlp::SwiGluPacked => h / 2,
        };
        let block = 2 * d // norm1
            + 3 * d * d + if self.qkv_bias { 3 * d } else { 0 }
            + d * d + d // proj
            + if self.layer_scale { 2 * d } else { 0 }
            + 2 * d // norm2
            + d * h + h
            + fc2_in * d + d;
        3 * self.patch * self.patch * d
            + d
            + self.prefix() * d
            + self.pos_len() * d
            + self.depth as i64 * block
            + 2 * d
    }
}
