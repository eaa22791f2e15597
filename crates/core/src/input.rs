//! What a network eats: the preprocessing recipe (input size, resampling filter, normalization).
//! A network's registry entry answers with one ([`crate::nets::registry::NetSpec::preprocess`]);
//! `data` carries it out on images and tiles. It sits below both, so neither asks the other.

/// How pixel values in [0, 1] are normalised before the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalization {
    /// ImageNet mean/std (torchvision-style weights).
    ImageNet,
    /// Inception-style: scale to [-1, 1] (also kaiko's mean = std = 0.5).
    Inception,
    /// H-optimus-0/1's own statistics.
    HOptimus,
    /// Lunit's own statistics (its DINO ViT-S/8).
    Lunit,
}

impl Normalization {
    /// Per-channel mean and std.
    pub fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Normalization::ImageNet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            Normalization::Inception => ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
            Normalization::HOptimus => (
                [0.707223, 0.578729, 0.703617],
                [0.211883, 0.230117, 0.177517],
            ),
            Normalization::Lunit => (
                [0.70322989, 0.53606487, 0.66096631],
                [0.21716536, 0.26081574, 0.20723464],
            ),
        }
    }
}

/// Resampling filter the weights were trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

/// How to turn a decoded image into a network input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    pub size: u32,
    pub interpolation: Interpolation,
    pub normalization: Normalization,
}

impl Preprocess {
    /// A stable text for cache keys: two preprocessings with the same key give the same pixels.
    pub fn key(&self) -> String {
        format!(
            "maxsquare-{}-{:?}-{:?}-v1",
            self.size, self.interpolation, self.normalization
        )
    }
}
