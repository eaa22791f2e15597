//! Conversions between script values and library values: option maps into typed option structs
//! (through JSON, so the library needs no script engine), arrays of indices, hyper-parameters,
//! and table cells back into script values.

use super::{to_rhai, RResult};
use patholab_core::eval::table::Cell;
use patholab_core::learn::Param;
use patholab_core::options::Options;
use rhai::{Array, Dynamic, Map};
use serde_json::Value;

/// Reads the option map of a function into its typed options: an unknown key or a value of the
/// wrong type is an error naming the key (Rhai adds the script position).
pub fn options<T: Options>(m: &Map) -> RResult<T> {
    let mut object = serde_json::Map::new();
    for (k, v) in m {
        object.insert(k.to_string(), to_json(v, k, T::OWNER)?);
    }
    T::from_object(object).map_err(to_rhai)
}

/// A script value as JSON; objects (networks, datasets, …) cannot be option values.
pub fn to_json(v: &Dynamic, key: &str, owner: &str) -> RResult<Value> {
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(i.into());
    }
    if let Ok(f) = v.as_float() {
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| {
                format!("option `{key}` of {owner} must be a finite number, got {f}").into()
            });
    }
    if v.is_string() || v.is_char() {
        return Ok(Value::String(v.to_string()));
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a
            .iter()
            .map(|x| to_json(x, key, owner))
            .collect::<RResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut o = serde_json::Map::new();
        for (k, x) in m.iter() {
            o.insert(k.to_string(), to_json(x, key, owner)?);
        }
        return Ok(Value::Object(o));
    }
    Err(format!("option `{key}` of {owner} cannot be a {}", v.type_name()).into())
}

/// JSON as a script value.
pub fn from_json(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(f64::NAN).into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(a) => Dynamic::from_array(a.iter().map(from_json).collect()),
        Value::Object(o) => Dynamic::from_map(
            o.iter()
                .map(|(k, v)| (k.as_str().into(), from_json(v)))
                .collect(),
        ),
    }
}

/// Takes `key` out of an option map when it holds a `T` (an object option such as a `Cv`).
pub fn take_object<T: Clone + 'static>(
    m: &mut Map,
    key: &str,
    kind: &str,
    owner: &str,
) -> RResult<Option<T>> {
    match m.remove(key) {
        None => Ok(None),
        Some(v) => match v.clone().try_cast::<T>() {
            Some(t) => Ok(Some(t)),
            None => Err(format!(
                "option `{key}` of {owner} must be a {kind}, got {}",
                v.type_name()
            )
            .into()),
        },
    }
}

/// Indices as a script array.
pub fn ints(v: &[usize]) -> Array {
    v.iter().map(|i| Dynamic::from(*i as i64)).collect()
}

/// Strings as a script array.
pub fn strings<S: Into<String> + Clone>(v: &[S]) -> Array {
    v.iter().map(|s| Dynamic::from(s.clone().into())).collect()
}

/// An array of non-negative integers.
pub fn indices(a: &Array, what: &str) -> RResult<Vec<usize>> {
    a.iter()
        .map(|x| match x.as_int() {
            Ok(i) if i >= 0 => Ok(i as usize),
            _ => Err(format!("{what} must hold non-negative integers, got {x}").into()),
        })
        .collect()
}

/// A script value as a hyper-parameter.
pub fn param(v: &Dynamic, key: &str) -> RResult<Param> {
    if let Ok(i) = v.as_int() {
        Ok(Param::Int(i))
    } else if let Ok(f) = v.as_float() {
        Ok(Param::Float(f))
    } else if v.is_string() {
        Ok(Param::Str(v.to_string()))
    } else {
        Err(format!(
            "{key}: a hyper-parameter is a number or a string, got {}",
            v.type_name()
        )
        .into())
    }
}

/// A grid map `#{ C: [..], max_features: [..] }` (scalars become one-value lists).
pub fn grid(m: &Map) -> RResult<Vec<(String, Vec<Param>)>> {
    m.iter()
        .map(|(k, v)| {
            let vals = match v.clone().try_cast::<Array>() {
                Some(a) => a.iter().map(|x| param(x, k)).collect::<RResult<Vec<_>>>()?,
                None => vec![param(v, k)?],
            };
            Ok((k.to_string(), vals))
        })
        .collect()
}

/// Hyper-parameters as a script map.
pub fn params_map(params: Vec<(String, Param)>) -> Map {
    params
        .into_iter()
        .map(|(k, v)| {
            let v: Dynamic = match v {
                Param::Float(x) => x.into(),
                Param::Int(x) => x.into(),
                Param::Str(s) => s.into(),
            };
            (k.into(), v)
        })
        .collect()
}

/// A table cell as a script value.
pub fn cell(c: Cell) -> Dynamic {
    match c {
        Cell::Null => Dynamic::UNIT,
        Cell::Bool(b) => b.into(),
        Cell::Int(i) => i.into(),
        Cell::Float(f) => f.into(),
        Cell::Str(s) => s.into(),
    }
}

/// Named cells as a script map.
pub fn cells_map(row: Vec<(String, Cell)>) -> Map {
    row.into_iter().map(|(k, c)| (k.into(), cell(c))).collect()
}

/// Parses a `--set name=value` value as a Rhai literal, falling back to a plain string.
pub fn literal(engine: &rhai::Engine, text: &str) -> Dynamic {
    engine
        .eval_expression::<Dynamic>(text)
        .unwrap_or_else(|_| Dynamic::from(text.to_string()))
}
