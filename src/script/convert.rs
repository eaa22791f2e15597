//! Conversions between script values (maps, arrays, strings) and library options.

use crate::learn::Param;
use rhai::{Array, Dynamic, Map};

use super::RResult;

fn err<T>(msg: String) -> RResult<T> {
    Err(msg.into())
}

/// A script map as a JSON object, which the library's options structs read
/// (`Options::from_object`).
pub fn json(m: &Map) -> RResult<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(Dynamic::from_map(m.clone())) {
        Ok(serde_json::Value::Object(o)) => Ok(o),
        Ok(v) => err(format!("expected a map, got {v}")),
        Err(e) => err(format!("{e}")),
    }
}

/// A map entry as a string.
pub fn get_str(m: &Map, key: &str) -> RResult<Option<String>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) if v.is_string() => Ok(Some(v.clone().into_string().unwrap())),
        Some(v) => err(format!(
            "option {key} must be a string, got {}",
            v.type_name()
        )),
    }
}

/// A map entry as a float (ints accepted).
pub fn get_f64(m: &Map, key: &str) -> RResult<Option<f64>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => as_f64(v)
            .map(Some)
            .ok_or_else(|| format!("option {key} must be a number, got {}", v.type_name()).into()),
    }
}

/// A map entry as a non-negative integer.
pub fn get_usize(m: &Map, key: &str) -> RResult<Option<usize>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => match v.as_int() {
            Ok(i) if i >= 0 => Ok(Some(i as usize)),
            _ => err(format!(
                "option {key} must be a non-negative integer, got {v}"
            )),
        },
    }
}

/// A map entry as a bool.
pub fn get_bool(m: &Map, key: &str) -> RResult<Option<bool>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .map_err(|_| format!("option {key} must be true or false").into()),
    }
}

/// A number as f64.
pub fn as_f64(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// A string or array of strings.
pub fn strings(v: &Dynamic, what: &str) -> RResult<Vec<String>> {
    if v.is_string() {
        return Ok(vec![v.clone().into_string().unwrap()]);
    }
    match v.clone().try_cast::<Array>() {
        Some(a) => a
            .into_iter()
            .map(|x| {
                x.into_string()
                    .map_err(|_| format!("{what} must hold strings").into())
            })
            .collect(),
        None => err(format!("{what} must be a string or an array of strings")),
    }
}

/// An array of non-negative integers.
pub fn indices(a: &Array, what: &str) -> RResult<Vec<usize>> {
    a.iter()
        .map(|x| match x.as_int() {
            Ok(i) if i >= 0 => Ok(i as usize),
            _ => err(format!("{what} must hold non-negative integers, got {x}")),
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
        Ok(Param::Str(v.clone().into_string().unwrap()))
    } else {
        err(format!(
            "{key}: a hyper-parameter is a number or a string, got {}",
            v.type_name()
        ))
    }
}

/// A map of options as `(name, Param)` pairs.
pub fn params(m: &Map) -> RResult<Vec<(String, Param)>> {
    m.iter()
        .map(|(k, v)| Ok((k.to_string(), param(v, k)?)))
        .collect()
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

/// Parses a `--set name=value` value as a Rhai literal, falling back to a plain string.
pub fn literal(engine: &rhai::Engine, text: &str) -> Dynamic {
    match engine.eval_expression::<Dynamic>(text) {
        Ok(v) => v,
        Err(_) => Dynamic::from(text.to_string()),
    }
}
