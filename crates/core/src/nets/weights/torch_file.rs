//! PyTorch `.pt/.pth/.bin` files: the zip format (torch >= 1.6) and the legacy pickle stream;
//! tch's `.ot` files, which are the zip format around a bare TorchScript module.

use super::pickle::{self, TensorRef, Value};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::Read;
use tch::Tensor;

const LEGACY_MAGIC: i64 = 0x1950a86a20f9469cfc6c_i128 as i64;

/// Reads every tensor of a PyTorch checkpoint, in file order.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    if bytes.starts_with(b"PK\x03\x04") {
        read_zip(bytes)
    } else {
        read_legacy(bytes)
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

fn read_zip(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(format!("zip: {e}")))?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.by_index(i).ok().map(|f| f.name().to_string()))
        .find(|n| n.ends_with("data.pkl"))
        .ok_or_else(|| bad("zip archive has no data.pkl: not a PyTorch checkpoint"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)
        .map_err(|e| bad(format!("zip: {e}")))?
        .read_to_end(&mut pkl)?;
    let root = pickle::load(&pkl, &mut 0)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut tensors = Vec::new();
    for (name, t) in state_dict_entries(root)? {
        if !storages.contains_key(&t.storage.key) {
            let mut data = Vec::new();
            let entry = format!("{prefix}data/{}", t.storage.key);
            let mut f = zip
                .by_name(&entry)
                .map_err(|e| bad(format!("zip entry {entry}: {e}")))?;
            if f.size() > bytes.len() as u64 {
                return Err(bad(format!("zip entry {entry} claims {} bytes", f.size())));
            }
            f.read_to_end(&mut data)?;
            storages.insert(t.storage.key.clone(), data);
        }
        tensors.push((name.clone(), build(&t, &storages[&t.storage.key], &name)?));
    }
    Ok(tensors)
}

fn read_legacy(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let mut pos = 0;
    match pickle::load(bytes, &mut pos)? {
        Value::Int(m) if m == LEGACY_MAGIC => {}
        _ => {
            return Err(bad(
                "not a PyTorch checkpoint (no zip header, no legacy magic number)",
            ))
        }
    }
    let _protocol = pickle::load(bytes, &mut pos)?;
    let _sys_info = pickle::load(bytes, &mut pos)?;
    let root = pickle::load(bytes, &mut pos)?;
    let keys = match pickle::load(bytes, &mut pos)? {
        Value::List(k) => k,
        _ => return Err(bad("legacy checkpoint: storage key list missing")),
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let entries = state_dict_entries(root)?;
    let elem: HashMap<&str, usize> = entries
        .iter()
        .map(|(_, t)| (t.storage.key.as_str(), t.storage.kind.elt_size_in_bytes()))
        .collect();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(bad("legacy checkpoint: storage key is not a string"));
        };
        let size = elem.get(key.as_str()).copied().unwrap_or(1);
        let numel = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| bad("legacy checkpoint truncated"))?;
        let numel = u64::from_le_bytes(numel.try_into().unwrap()) as usize;
        // Checked: a hostile size must not wrap around the bounds test.
        let n = numel.checked_mul(size).filter(|n| {
            pos.checked_add(8)
                .and_then(|p| p.checked_add(*n))
                .is_some_and(|end| end <= bytes.len())
        });
        let n = n.ok_or_else(|| {
            bad(format!(
                "legacy checkpoint: storage {key} runs past the end of the file"
            ))
        })?;
        storages.insert(key, bytes[pos + 8..pos + 8 + n].to_vec());
        pos += 8 + n;
    }
    entries
        .into_iter()
        .map(|(name, t)| {
            let data = storages
                .get(&t.storage.key)
                .ok_or_else(|| bad(format!("tensor {name}: storage missing")))?;
            Ok((name.clone(), build(&t, data, &name)?))
        })
        .collect()
}

/// The `name → tensor` pairs of a state dict, also when it is wrapped as `{"state_dict": …}` or
/// `{"model": …}` as training scripts save it.
fn state_dict_entries(root: Value) -> Result<Vec<(String, TensorRef)>> {
    let Value::Dict(items) = root else {
        return Err(bad("checkpoint does not hold a dict of tensors"));
    };
    let mut out = Vec::new();
    for (k, v) in &items {
        if let (Value::Str(k), Value::Tensor(t)) = (k, v) {
            // tch's `.ot` writer stores `a.b` as `a|b`.
            out.push((k.replace('|', "."), t.clone()));
        }
    }
    if out.is_empty() {
        for (k, v) in items {
            if let (Value::Str(k), Value::Dict(_)) = (&k, &v) {
                if ["state_dict", "model", "model_state_dict", "net"].contains(&k.as_str()) {
                    return state_dict_entries(v);
                }
            }
        }
        return Err(bad("checkpoint holds no tensors"));
    }
    Ok(out)
}

/// A contiguous tensor from a storage's bytes, after checking that the view stays inside them.
fn build(t: &TensorRef, data: &[u8], name: &str) -> Result<Tensor> {
    let size = t.storage.kind.elt_size_in_bytes();
    let numel = (data.len() / size) as i64;
    let mut last = t.offset;
    for (d, s) in t.shape.iter().zip(&t.stride) {
        if *d == 0 {
            last = -1;
            break;
        }
        last = last
            .checked_add(
                (d - 1)
                    .checked_mul(*s)
                    .ok_or_else(|| bad("tensor too large"))?,
            )
            .ok_or_else(|| bad("tensor too large"))?;
    }
    if last >= numel {
        return Err(bad(format!(
            "tensor {name}: view {:?} runs past its storage of {numel} elements",
            t.shape
        )));
    }
    let storage = Tensor::from_data_size(&data[..numel as usize * size], &[numel], t.storage.kind);
    Ok(storage
        .as_strided(&t.shape, &t.stride, Some(t.offset))
        .contiguous())
}
