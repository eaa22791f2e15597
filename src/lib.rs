//! patholab: deep transfer learning on pathology images, as a Rust library with a Rhai prompt
//! and script runner on top. Each folder of `src/` is one layer of the study (see DESIGN.md).

pub mod cancel;
pub mod data;
pub mod error;
pub mod features;
pub mod progress;
pub mod nets;
pub mod rng;

pub use error::{Error, Result};

/// patholab's cache root: `~/.cache/patholab` (or `$XDG_CACHE_HOME/patholab`).
pub fn home_cache() -> std::path::PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        return std::path::PathBuf::from(x).join("patholab");
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache/patholab")
}
