//! How a network is asked for: which weights, on which device, in which precision; the script's
//! options map (`network(name, #{ ... })`) and what it resolves to.

use super::precision;
use crate::error::Result;
use std::path::PathBuf;
use tch::Device;

/// Which weights to put in a network.
#[derive(Clone, Debug)]
pub enum Weights {
    /// The ImageNet weights found locally (never downloaded silently).
    ImageNet,
    /// Random initialisation from a seed.
    Random(u64),
    /// A weight file.
    File(PathBuf),
}

/// Options for [`Network::new`].
#[derive(Clone, Debug)]
pub struct NetOptions {
    pub weights: Weights,
    pub device: Device,
    pub strict: bool,
    /// The precision features are extracted in unless `features` says otherwise.
    pub precision: precision::Precision,
    /// Feature extraction on channels-last (NHWC) inputs; `None`: yes for CNNs, no for ViTs.
    pub channels_last: Option<bool>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            weights: Weights::ImageNet,
            device: Device::Cpu,
            strict: true,
            precision: precision::Precision::Fp32,
            channels_last: None,
        }
    }
}

crate::options! {
    /// The options map of `network(name, #{ ... })`; [`NetworkOptions::resolve`] gives [`NetOptions`].
    pub struct NetworkOptions for "network" {
        /// "imagenet" (found locally, never downloaded silently), "random", or a weight file.
        weights: String = "imagenet".into(),
        /// "cpu", "cuda" or "cuda:N".
        device: String = "cpu".into(),
        /// Seed of random weights.
        seed: u64 = 0,
        /// Refuse weight files with missing, unexpected or mis-shaped tensors.
        strict: bool = true,
        /// Precision of feature extraction: "fp32", "bf16" or "fp16" (autocast; part of the cache key).
        precision: precision::Precision = precision::Precision::Fp32,
        /// Feature extraction on channels-last (NHWC) inputs; () means yes for CNNs (faster for
        /// every family on the CPU, for ResNet and DenseNet on an H200; EfficientNet-Lite on CUDA
        /// unsettled, see bench/RESULTS.md), no for ViTs. Same numbers up to rounding; not in the cache key.
        channels_last: Option<bool> = None,
    }
}

impl NetworkOptions {
    /// The library options these stand for.
    pub fn resolve(&self) -> Result<NetOptions> {
        Ok(NetOptions {
            weights: match self.weights.as_str() {
                "imagenet" => Weights::ImageNet,
                "random" => Weights::Random(self.seed),
                path => Weights::File(path.into()),
            },
            device: crate::parse_device(&self.device)?,
            strict: self.strict,
            precision: self.precision,
            channels_last: self.channels_last,
        })
    }
}
