//! Weight files: reading every supported format into named tensors, and loading them into a
//! network strictly (one error lists every missing, unexpected and mis-shaped tensor).

pub mod discover;
pub mod pickle;
pub mod torch_file;

use crate::error::{Context, Error, Result};
use regex::Regex;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;
use tch::{nn::VarStore, Tensor};

/// Reads every tensor of a weight file: `.safetensors`, PyTorch zip or legacy pickle
/// (`.pt/.pth/.bin`), or tch `.ot`. The format is decided by the file's content, not its name.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let meta = std::fs::metadata(path).at(path)?;
    if meta.is_dir() {
        return Err(Error::file(path, "is a directory, not a weight file"));
    }
    let bytes = std::fs::read(path).at(path)?;
    read_bytes(&bytes, path)
}

/// Like [`read`], from bytes already in memory; `path` is only used in messages and for `.ot`.
pub fn read_bytes(bytes: &[u8], path: &Path) -> Result<Vec<(String, Tensor)>> {
    if looks_like_safetensors(bytes) {
        return read_safetensors(bytes).at(path);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0x80]) {
        return torch_file::read(bytes).at(path);
    }
    Err(Error::file(
        path,
        "unknown weight format (expected .safetensors, a PyTorch .pt/.pth/.bin, or tch .ot)",
    ))
}

fn looks_like_safetensors(b: &[u8]) -> bool {
    b.len() >= 10 && {
        let n = u64::from_le_bytes(b[..8].try_into().unwrap());
        n > 1 && n < 100_000_000 && b[8] == b'{'
    }
}

/// Parses safetensors bytes ourselves, so every length and offset is checked before use.
pub fn read_safetensors(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let bad = |m: String| Error::Invalid(format!("safetensors: {m}"));
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(|| bad("truncated".into()))?
            .try_into()
            .unwrap(),
    ) as usize;
    let header = bytes
        .get(8..8usize.saturating_add(n))
        .ok_or_else(|| bad("header runs past the end".into()))?;
    let data = &bytes[8 + n..];
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(format!("header: {e}")))?;
    let mut out = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info["dtype"].as_str().unwrap_or("");
        let kind = match dtype {
            "F32" => tch::Kind::Float,
            "F64" => tch::Kind::Double,
            "F16" => tch::Kind::Half,
            "BF16" => tch::Kind::BFloat16,
            "I64" => tch::Kind::Int64,
            "I32" => tch::Kind::Int,
            "I16" => tch::Kind::Int16,
            "I8" => tch::Kind::Int8,
            "U8" => tch::Kind::Uint8,
            "BOOL" => tch::Kind::Bool,
            other => return Err(bad(format!("tensor {name}: unsupported dtype {other:?}"))),
        };
        let shape: Vec<i64> = info["shape"]
            .as_array()
            .ok_or_else(|| bad(format!("tensor {name}: no shape")))?
            .iter()
            .map(|d| {
                d.as_i64()
                    .filter(|d| *d >= 0)
                    .ok_or_else(|| bad(format!("tensor {name}: bad shape")))
            })
            .collect::<Result<_>>()?;
        let offs = info["data_offsets"].as_array().filter(|o| o.len() == 2);
        let offs = offs.ok_or_else(|| bad(format!("tensor {name}: no data_offsets")))?;
        let (a, b) = (
            offs[0].as_u64().unwrap_or(u64::MAX) as usize,
            offs[1].as_u64().unwrap_or(0) as usize,
        );
        let numel = shape.iter().try_fold(1i64, |acc, d| acc.checked_mul(*d));
        let want = numel.and_then(|n| (n as usize).checked_mul(kind.elt_size_in_bytes()));
        if a > b || b > data.len() || want != Some(b - a) {
            return Err(bad(format!(
                "tensor {name}: data offsets {a}..{b} do not fit shape {shape:?}"
            )));
        }
        out.push((name, Tensor::from_data_size(&data[a..b], &shape, kind)));
    }
    Ok(out)
}

/// Writes named tensors as `.safetensors` (readable by PyTorch's `safetensors.torch.load_file`).
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&refs, &tmp).map_err(|e| Error::file(&tmp, e))?;
    std::fs::rename(&tmp, path).at(path)
}

/// Renames keys from other exports to the parameter names patholab's networks use.
pub fn normalise_keys(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    static DENSE: OnceLock<Regex> = OnceLock::new();
    let dense =
        DENSE.get_or_init(|| Regex::new(r"(denselayer\d+)\.(norm|relu|conv)\.([12])\.").unwrap());
    let prefixes = ["module.", "model."];
    let strip = prefixes
        .iter()
        .find(|p| !tensors.is_empty() && tensors.iter().all(|(n, _)| n.starts_with(*p)));
    tensors
        .into_iter()
        .map(|(mut name, t)| {
            if let Some(p) = strip {
                name = name[p.len()..].to_string();
            }
            // Legacy torchvision DenseNet: `denselayer1.norm.1.weight` → `denselayer1.norm1.weight`.
            name = dense.replace_all(&name, "$1.$2$3.").into_owned();
            // timm VGG: the classifier is stored as convolutions under `pre_logits`/`head`.
            let (name, t) = match name.as_str() {
                "pre_logits.fc1.weight" => ("classifier.0.weight".to_string(), t.flatten(1, -1)),
                "pre_logits.fc1.bias" => ("classifier.0.bias".to_string(), t),
                "pre_logits.fc2.weight" => ("classifier.3.weight".to_string(), t.flatten(1, -1)),
                "pre_logits.fc2.bias" => ("classifier.3.bias".to_string(), t),
                "head.fc.weight" if t.dim() == 2 => ("classifier.6.weight".to_string(), t),
                "head.fc.bias" => ("classifier.6.bias".to_string(), t),
                _ => (name, t),
            };
            (name, t)
        })
        .collect()
}

/// Copies `tensors` into the variables of `vs`. Strict: every variable must be given with its
/// exact shape and nothing else may be left over; `head` names the classifier prefix that may be
/// missing or differ when `strict` is false. Buffers PyTorch keeps and we do not
/// (`num_batches_tracked`) are ignored.
pub fn load_into(
    vs: &mut VarStore,
    tensors: Vec<(String, Tensor)>,
    strict: bool,
    head: &str,
    path: &Path,
    network: &str,
) -> Result<()> {
    let tensors = normalise_keys(tensors);
    let vars = vs.variables();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    let given: BTreeMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let in_head = |n: &str| !head.is_empty() && n.starts_with(head);
    let mut ordered: Vec<_> = vars.iter().collect();
    ordered.sort_by(|a, b| a.0.cmp(b.0));
    for (name, var) in &ordered {
        match given.get(name.as_str()) {
            None if !(in_head(name) && !strict) => {
                missing.push(format!("  missing    {name} {:?}", var.size()))
            }
            Some(t) if t.size() != var.size() && !(in_head(name) && !strict) => {
                mismatched.push(format!(
                    "  shape      {name}: file has {:?}, network expects {:?}",
                    t.size(),
                    var.size()
                ))
            }
            _ => {}
        }
    }
    let known: HashSet<&str> = vars.keys().map(|k| k.as_str()).collect();
    let unexpected: Vec<String> = tensors
        .iter()
        .filter(|(n, _)| !known.contains(n.as_str()) && !n.ends_with("num_batches_tracked"))
        .filter(|(n, _)| strict || !in_head(n))
        .map(|(n, t)| format!("  unexpected {n} {:?}", t.size()))
        .collect();
    if !missing.is_empty() || !mismatched.is_empty() || !unexpected.is_empty() {
        let mut lines = missing;
        lines.extend(mismatched);
        lines.extend(unexpected);
        let hint = if strict {
            "\n(strict: false accepts a different classifier head)"
        } else {
            ""
        };
        return Err(Error::WeightsMismatch {
            path: path.to_path_buf(),
            network: network.to_string(),
            details: lines.join("\n") + hint,
        });
    }
    tch::no_grad(|| {
        for (name, var) in vars.iter() {
            if let Some(t) = given.get(name.as_str()) {
                if t.size() == var.size() {
                    let mut v = var.shallow_clone();
                    v.copy_(&t.to_device(v.device()));
                }
            }
        }
    });
    Ok(())
}

/// A foundation model's file has no classifier: the network's own (random) head is added so that
/// the strict check covers the backbone. A file with a head loads it as usual.
pub fn with_head(
    mut tensors: Vec<(String, Tensor)>,
    vs: &VarStore,
    head: &str,
) -> Vec<(String, Tensor)> {
    let prefix = format!("{head}.");
    if !tensors.iter().any(|(n, _)| n.starts_with(&prefix)) {
        for (n, t) in vs.variables() {
            if n.starts_with(&prefix) {
                tensors.push((n, t.detach().copy()));
            }
        }
    }
    tensors
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densenet_legacy_keys_are_renamed() {
        let t = vec![(
            "features.denseblock1.denselayer1.norm.1.weight".to_string(),
            Tensor::zeros([2], tch::kind::FLOAT_CPU),
        )];
        let n = normalise_keys(t);
        assert_eq!(n[0].0, "features.denseblock1.denselayer1.norm1.weight");
    }

    #[test]
    fn module_prefix_is_stripped() {
        let t = vec![
            (
                "module.fc.weight".to_string(),
                Tensor::zeros([2], tch::kind::FLOAT_CPU),
            ),
            (
                "module.fc.bias".to_string(),
                Tensor::zeros([2], tch::kind::FLOAT_CPU),
            ),
        ];
        let n = normalise_keys(t);
        assert_eq!(n[0].0, "fc.weight");
    }

    #[test]
    fn safetensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        let t = Tensor::arange(6, tch::kind::FLOAT_CPU).reshape([2, 3]);
        write_safetensors(&p, &[("a.weight".into(), t.shallow_clone())]).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back[0].0, "a.weight");
        assert_eq!(back[0].1.size(), vec![2, 3]);
        assert_eq!(
            f64::try_from(back[0].1.sum(tch::Kind::Double)).unwrap(),
            15.0
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.pth");
        std::fs::write(&p, b"\x80\x02garbage").unwrap();
        assert!(read(&p).is_err());
        std::fs::write(&p, b"").unwrap();
        assert!(read(&p).is_err());
    }
}
