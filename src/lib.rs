//! patholab: deep transfer learning on pathology images, as a Rust library with a Rhai prompt
//! and script runner on top. Each folder of `src/` is one layer of the study (see DESIGN.md).

pub mod baseline;
pub mod bench;
pub mod cancel;
pub mod cluster;
pub mod data;
pub mod error;
pub mod eval;
pub mod features;
pub mod finetune;
pub mod kernel;
pub mod learn;
pub mod memory;
pub mod nets;
pub mod options;
pub mod plot;
pub mod progress;
pub mod repl;
pub mod rng;
pub mod script;
pub mod slide;

pub use error::{Error, Result};

/// patholab's cache root: `~/.cache/patholab` (or `$XDG_CACHE_HOME/patholab`).
pub fn home_cache() -> std::path::PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return std::path::PathBuf::from(x).join("patholab");
    }
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/patholab")
}

/// Parses `"cpu"`, `"cuda"` or `"cuda:N"`.
pub fn parse_device(s: &str) -> Result<tch::Device> {
    match s {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => Ok(tch::Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Ok(tch::Device::Cuda(n)),
            None => Err(Error::Invalid(format!(
                "unknown device {s:?} (cpu, cuda, cuda:N)"
            ))),
        },
    }
}
