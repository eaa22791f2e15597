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

/// Parses safetensors bytes with the `safetensors` crate, which checks the header, every offset
/// and every tensor's byte length against its shape before any tensor is made. Tensors come in
/// name order.
pub fn read_safetensors(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    use safetensors::Dtype;
    let bad = |m: String| Error::Invalid(format!("safetensors: {m}"));
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(why(e)))?;
    let mut views = file.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(views.len());
    for (name, view) in views {
        let kind = match view.dtype() {
            Dtype::F32 => tch::Kind::Float,
            Dtype::F64 => tch::Kind::Double,
            Dtype::F16 => tch::Kind::Half,
            Dtype::BF16 => tch::Kind::BFloat16,
            Dtype::I64 => tch::Kind::Int64,
            Dtype::I32 => tch::Kind::Int,
            Dtype::I16 => tch::Kind::Int16,
            Dtype::I8 => tch::Kind::Int8,
            Dtype::U8 => tch::Kind::Uint8,
            Dtype::BOOL => tch::Kind::Bool,
            other => return Err(bad(format!("tensor {name}: unsupported dtype {other:?}"))),
        };
        let shape = view
            .shape()
            .iter()
            .map(|d| i64::try_from(*d).map_err(|_| bad(format!("tensor {name}: bad shape"))))
            .collect::<Result<Vec<i64>>>()?;
        out.push((name, Tensor::from_data_size(view.data(), &shape, kind)));
    }
    Ok(out)
}

/// What is wrong with a safetensors file, as a sentence.
fn why(e: safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError::*;
    match e {
        HeaderTooSmall | InvalidHeaderLength => "the header length runs past the end".into(),
        HeaderTooLarge => "the header is larger than 100 MB".into(),
        InvalidHeader | InvalidHeaderStart => "the header is not a JSON object".into(),
        InvalidHeaderDeserialization | JsonError(_) => {
            "the header is not a table of tensors (or names a dtype this reader does not know)"
                .into()
        }
        InvalidOffset(name) => format!("tensor {name}: its data offsets are not contiguous"),
        TensorInvalidInfo | ValidationOverflow | InvalidTensorView(..) => {
            "a tensor's byte length does not fit its shape and dtype".into()
        }
        MetadataIncompleteBuffer => "the data is not as long as the header says".into(),
        TensorNotFound(name) => format!("no tensor {name}"),
        IoError(e) => e.to_string(),
    }
}

/// Writes named tensors as `.safetensors` (readable by PyTorch's `safetensors.torch.load_file`).
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&refs, &tmp).map_err(|e| Error::file(&tmp, e))?;
    std::fs::rename(&tmp, path).at(path)
}

/// Renames keys from other exports to the parameter names patholab's networks use.
pub fn normalize_keys(tensors: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
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
    let tensors = normalize_keys(tensors);
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
        let n = normalize_keys(t);
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
        let n = normalize_keys(t);
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
