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

/// A script value as JSON (rhai's serde); objects (networks, datasets, …) cannot be option
/// values, and neither can a number that is not finite (JSON has none).
pub fn to_json(v: &Dynamic, key: &str, owner: &str) -> RResult<Value> {
    if let Some(f) = non_finite(v) {
        return Err(format!("option `{key}` of {owner} must be a finite number, got {f}").into());
    }
    rhai::serde::from_dynamic::<Value>(v).map_err(|_| {
        let what = match v.type_name() {
            "array" => "an array holding an object".to_string(),
            "map" => "a map holding an object".to_string(),
            other => format!("a {other}"),
        };
        format!("option `{key}` of {owner} cannot be {what}").into()
    })
}

/// The first number in `v` (arrays and maps included) that is not finite.
fn non_finite(v: &Dynamic) -> Option<f64> {
    if let Ok(f) = v.as_float() {
        return (!f.is_finite()).then_some(f);
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().find_map(non_finite);
    }
    v.read_lock::<Map>()?.values().find_map(non_finite)
}

/// Reads an option map in which the keys `objects` hold objects (a `Cv`, a `Dataset`, …) and
/// every other key is an option of `T`. An unknown key is an error that suggests the closest of
/// all of them; the object values come back as they are, for [`take_object`].
pub fn options_with_objects<T: Options>(m: &Map, objects: &[&str]) -> RResult<(T, Map)> {
    let fields = T::fields();
    let mut names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    names.extend_from_slice(objects);
    if let Some(k) = m.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(to_rhai(patholab_core::options::unknown_key(
            k,
            T::OWNER,
            &names,
        )));
    }
    let (objects, plain): (Map, Map) = m
        .clone()
        .into_iter()
        .partition(|(k, _)| objects.contains(&k.as_str()));
    Ok((options(&plain)?, objects))
}

/// Takes `key` out of an option map when it holds a `T` (an object option such as a `Cv`); `()`
/// counts as absent.
pub fn take_object<T: Clone + 'static>(
    m: &mut Map,
    key: &str,
    kind: &str,
    owner: &str,
) -> RResult<Option<T>> {
    match m.remove(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
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
