//! The kernelspec: `kernel.json` naming this binary, and two logos drawn when it is written.

use std::path::{Path, PathBuf};

/// Where `patholab kernel install` writes: `<prefix>/share/jupyter/kernels/<name>` with a prefix,
/// else the user's Jupyter data folder (`$JUPYTER_DATA_DIR`, `$XDG_DATA_HOME/jupyter` or
/// `~/.local/share/jupyter`) + `kernels/<name>`.
pub fn folder(prefix: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let data = match prefix {
        Some(p) => p.join("share/jupyter"),
        None => {
            let env = |k: &str| {
                std::env::var_os(k)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            };
            match (env("JUPYTER_DATA_DIR"), env("XDG_DATA_HOME"), env("HOME")) {
                (Some(d), _, _) => d,
                (None, Some(x), _) => x.join("jupyter"),
                (None, None, Some(h)) => h.join(".local/share/jupyter"),
                _ => anyhow::bail!("no HOME: give --prefix DIR"),
            }
        }
    };
    Ok(data.join("kernels").join(name))
}

/// The `kernel.json` for `binary`.
pub fn kernel_json(binary: &Path, display_name: &str) -> serde_json::Value {
    serde_json::json!({
        "argv": [binary.display().to_string(), "kernel", "--connection-file", "{connection_file}"],
        "display_name": display_name,
        "language": "rhai",
        "interrupt_mode": "message",
        "metadata": { "debugger": false },
    })
}

/// Writes the kernelspec `name` (kernel.json and logos) and returns its folder.
pub fn install(prefix: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        anyhow::bail!("--name {name:?}: use letters, digits, '-', '.' and '_' (Jupyter's rule)");
    }
    let dir = folder(prefix, name)?;
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let binary = std::env::current_exe()?.canonicalize()?;
    let display = if name == "patholab" {
        "patholab (Rhai)".to_string()
    } else {
        format!("patholab (Rhai, {name})")
    };
    let json = serde_json::to_string_pretty(&kernel_json(&binary, &display))?;
    std::fs::write(dir.join("kernel.json"), json + "\n")?;
    for size in [32, 64] {
        let png = patholab_core::plot::logo(size)?;
        std::fs::write(dir.join(format!("logo-{size}x{size}.png")), png)?;
    }
    Ok(dir)
}
