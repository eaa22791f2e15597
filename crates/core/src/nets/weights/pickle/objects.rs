//! What the restricted unpickler rebuilds: the values of a state dict, the few globals it may
//! call (`ALLOWED_CALLS`) and how a persistent id becomes a storage reference. Anything else is an
//! error, so a weight file can never run code.

use super::bad;
use crate::error::Result;
use tch::Kind;

/// A value rebuilt from a pickle.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A whitelisted callable or class, by its dotted name.
    Global(String),
    /// A reference to raw tensor data stored outside the pickle.
    Storage(StorageRef),
    Tensor(TensorRef),
    Mark,
}

/// Where a storage's bytes are and how to read them.
#[derive(Clone, Debug)]
pub struct StorageRef {
    pub key: String,
    pub kind: Kind,
}

/// A tensor view over a storage, as `torch._utils._rebuild_tensor_v2` describes it.
#[derive(Clone, Debug)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub shape: Vec<i64>,
    pub stride: Vec<i64>,
}

/// The storage classes a PyTorch pickle may name, with their element kinds.
pub fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name.trim_start_matches("torch.") {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

const ALLOWED_CALLS: &[&str] = &[
    "collections.OrderedDict",
    // tch's `.ot` files pickle a bare TorchScript module whose state is a dict of tensors.
    "__torch__.Module",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
];

pub(super) fn allowed_global(name: &str) -> bool {
    ALLOWED_CALLS.contains(&name) || storage_kind(name).is_some() && name.starts_with("torch.")
}

/// `('storage', storage_class, key, location, numel[, view])` → a storage reference.
pub(super) fn persistent_storage(pid: Value) -> Result<Value> {
    let Value::Tuple(items) = pid else {
        return Err(bad("persistent id is not a tuple"));
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(class), Value::Str(key), ..] if tag == "storage" => {
            let kind =
                storage_kind(class).ok_or_else(|| bad(format!("unknown storage {class}")))?;
            Ok(Value::Storage(StorageRef {
                key: key.clone(),
                kind,
            }))
        }
        _ => Err(bad("persistent id is not a tensor storage")),
    }
}

fn ints(v: &Value, what: &str) -> Result<Vec<i64>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|x| match x {
                Value::Int(i) if *i >= 0 => Ok(*i),
                _ => Err(bad(format!("{what} holds a non-integer"))),
            })
            .collect(),
        _ => Err(bad(format!("{what} is not a tuple"))),
    }
}

pub(super) fn reduce(func: Value, args: Value) -> Result<Value> {
    let Value::Global(name) = func else {
        return Err(bad("REDUCE on something that is not a global"));
    };
    let Value::Tuple(args) = args else {
        return Err(bad("REDUCE arguments are not a tuple"));
    };
    match name.as_str() {
        "collections.OrderedDict" => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" => match args.as_slice() {
            [Value::Storage(s), Value::Int(offset), size, stride, ..] => {
                let shape = ints(size, "tensor size")?;
                let stride = ints(stride, "tensor stride")?;
                if shape.len() != stride.len() || *offset < 0 {
                    return Err(bad("tensor size and stride disagree"));
                }
                Ok(Value::Tensor(TensorRef {
                    storage: s.clone(),
                    offset: *offset,
                    shape,
                    stride,
                }))
            }
            _ => Err(bad("malformed _rebuild_tensor_v2 arguments")),
        },
        "torch._utils._rebuild_parameter" => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err(bad("malformed _rebuild_parameter arguments")),
        },
        other => Err(bad(format!("refused call to {other}"))),
    }
}
