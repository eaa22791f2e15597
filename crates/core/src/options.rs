//! Typed options. Every option map of the script surface is one struct declared with
//! [`options!`](crate::options!): name, type, default and doc of each field written once. Reading a
//! map rejects an unknown key with the closest valid one, and a value of the wrong type names the
//! key and the type it needs; help and the reference list the fields from the same declaration.
//!
//! The structs are plain serde types: the library uses them without any script engine, and the
//! script layer hands them a JSON object made from a Rhai map.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// One documented field of an options struct.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    /// The type as a script user writes it (`int`, `float`, `"fail" | "skip"`, ...).
    pub kind: String,
    /// The default, as a script literal, read from the struct's `Default`.
    pub default: String,
    pub doc: &'static str,
}

/// An options struct: deserialisable, with a default and documented fields.
pub trait Options: serde::de::DeserializeOwned + serde::Serialize + Default + Clone {
    /// The function these options belong to, for messages (`finetune`).
    const OWNER: &'static str;
    /// Every field, in declaration order.
    fn fields() -> Vec<Field>;

    /// Reads options from a JSON object: unknown keys and wrong types are errors naming the key.
    fn from_object(object: Map<String, Value>) -> Result<Self> {
        read(object)
    }

    /// The ranges of the values (`C > 0`, `k ≥ 2`, …), checked whenever a map is read; the
    /// learners' `fit`, `tiles`, `grid`, `Split::new` and `slide_plot` call it again for structs
    /// built in code. Declared with `check(o) { … }` after the fields.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// The options as a JSON object (every field, defaults included).
    fn to_object(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// Sets one field from a JSON value, checked like a whole map.
    fn set(&mut self, key: &str, value: Value) -> Result<()> {
        let mut object = self.to_object();
        check_keys::<Self>(std::iter::once(key))?;
        object.insert(key.to_string(), value);
        *self = read(object)?;
        Ok(())
    }
}

/// The type of a field as a script user writes it.
pub trait Kind {
    fn kind() -> String;
}

macro_rules! kinds {
    ($($t:ty => $k:literal),* $(,)?) => { $(impl Kind for $t { fn kind() -> String { $k.into() } })* };
}
kinds!(bool => "bool", i64 => "int", u64 => "int ≥ 0", usize => "int ≥ 0", u32 => "int ≥ 0",
    f64 => "float", f32 => "float", String => "string", std::path::PathBuf => "path");

impl<T: Kind> Kind for Option<T> {
    fn kind() -> String {
        format!("{} or ()", T::kind())
    }
}

impl<T: Kind> Kind for Vec<T> {
    fn kind() -> String {
        format!("array of {}", T::kind())
    }
}

impl<A: Kind, B: Kind> Kind for (A, B) {
    fn kind() -> String {
        format!("[{}, {}]", A::kind(), B::kind())
    }
}

/// One name or several: `"last"` or `["layer3", "layer4"]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(from = "OneOrMany")]
pub struct Names(pub Vec<String>);

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Names {
    fn from(v: OneOrMany) -> Self {
        match v {
            OneOrMany::One(s) => Names(vec![s]),
            OneOrMany::Many(v) => Names(v),
        }
    }
}

impl Kind for Names {
    fn kind() -> String {
        "string or array of strings".into()
    }
}

/// Declares an options struct: every field with its doc, type and default.
///
/// ```ignore
/// options! {
///     /// Options of `slide_kfold`.
///     pub struct CvOptions for "slide_kfold" {
///         /// Seed of the slide assignment.
///         seed: u64 = 0,
///     }
///     check(o) { Ok(()) }
/// }
/// ```
#[macro_export]
macro_rules! options {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident for $owner:literal {
            $( $(#[doc = $doc:literal])+ $field:ident : $ty:ty = $default:expr ),* $(,)?
        }
        $( check($o:ident) $check:block )?
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(default, deny_unknown_fields)]
        #[allow(non_snake_case)]
        pub struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $crate::options::Options for $name {
            const OWNER: &'static str = $owner;
            fn fields() -> Vec<$crate::options::Field> {
                let d = Self::default();
                vec![$(
                    $crate::options::Field {
                        name: stringify!($field),
                        kind: <$ty as $crate::options::Kind>::kind(),
                        default: $crate::options::literal(&d.$field),
                        doc: concat!($($doc),+),
                    },
                )*]
            }
            $(
                fn check(&self) -> $crate::error::Result<()> {
                    let $o = self;
                    $check
                }
            )?
        }
    };
}

/// Declares a choice among fixed strings (a serde enum that reads and prints as those strings).
#[macro_export]
macro_rules! choice {
    (
        $(#[doc = $sdoc:literal])*
        pub enum $name:ident { $( $(#[doc = $doc:literal])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
        pub enum $name {
            $( $(#[doc = $doc])* #[serde(rename = $text)] $variant, )+
        }

        impl $crate::options::Kind for $name {
            fn kind() -> String {
                [$( concat!("\"", $text, "\"") ),+].join(" | ")
            }
        }

        impl $name {
            /// Every choice, as a script writes it (help and completion read this list).
            #[allow(dead_code)]
            pub const ALL: &'static [&'static str] = &[$( $text ),+];

            /// The choice a script wrote, if it is one.
            #[allow(dead_code)]
            pub fn parse(text: &str) -> Option<Self> {
                match text { $( $text => Some($name::$variant), )+ _ => None }
            }

            /// The choice a script wrote for `what`, or an error naming the choices and the
            /// closest one.
            #[allow(dead_code)]
            pub fn named(what: &str, text: &str) -> $crate::error::Result<Self> {
                Self::parse(text).ok_or_else(|| $crate::options::bad_choice(what, text, Self::ALL))
            }

            /// The string a script writes for this choice.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A value as a script literal: strings quoted, `null` as `()`, arrays and objects as Rhai writes them.
pub fn literal<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).map_or_else(|_| "?".into(), |v| value_literal(&v))
}

/// A JSON value as a script literal.
pub fn value_literal(v: &Value) -> String {
    match v {
        Value::Null => "()".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(value_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "#{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", value_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Errors on the first key that is not a field of `T`, suggesting the closest one.
pub fn check_keys<'a, T: Options>(keys: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let fields = T::fields();
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    for key in keys {
        if !names.contains(&key) {
            return Err(unknown_key(key, T::OWNER, &names));
        }
    }
    Ok(())
}

/// "unknown option `head_epoch` for finetune; did you mean `head_epochs`? valid: …"
pub fn unknown_key(key: &str, owner: &str, valid: &[&str]) -> Error {
    let hint = closest(key, valid)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_else(|| ";".into());
    Error::Invalid(format!(
        "unknown option `{key}` for {owner}{hint} valid: {}",
        valid.join(", ")
    ))
}

/// `what` is not one of `valid`: the error names them and the closest one.
pub fn bad_choice(what: &str, got: &str, valid: &[&str]) -> Error {
    let hint = closest(got, valid)
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default();
    let valid: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
    Error::Invalid(format!(
        "{what} is {}, got {got:?}{hint}",
        valid.join(" | ")
    ))
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word.chars().count()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Reads `T` from an object; a type error is traced to its key by reading the keys one at a time.
fn read<T: Options>(object: Map<String, Value>) -> Result<T> {
    check_keys::<T>(object.keys().map(|k| k.as_str()))?;
    match serde_json::from_value::<T>(Value::Object(object.clone())) {
        Ok(t) => t.check().map(|()| t),
        Err(whole) => {
            let fields = T::fields();
            for (key, value) in &object {
                let one: Map<String, Value> = [(key.clone(), value.clone())].into_iter().collect();
                if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
                    let kind = fields
                        .iter()
                        .find(|f| f.name == key)
                        .map_or(String::new(), |f| f.kind.clone());
                    let why = e.to_string();
                    let hint = match why.split_once("unknown variant `") {
                        Some(_) => String::new(),
                        None if why.contains("invalid type") || why.contains("invalid value") => {
                            String::new()
                        }
                        None => format!(" ({why})"),
                    };
                    return Err(Error::Invalid(format!(
                        "option `{key}` of {} must be {kind}, got {}{hint}",
                        T::OWNER,
                        value_literal(value)
                    )));
                }
            }
            Err(Error::Invalid(format!("options of {}: {whole}", T::OWNER)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    crate::choice! {
        /// What to do.
        pub enum Mode { Fast = "fast", PerFold = "per_fold" }
    }

    crate::options! {
        /// Test options.
        pub struct Demo for "demo" {
            /// Epochs of the head.
            head_epochs: usize = 5,
            /// Learning rate.
            lr: f64 = 1e-5,
            /// A mode.
            mode: Mode = Mode::Fast,
            /// A folder.
            out: Option<String> = None,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn an_unknown_key_names_it_and_suggests_the_closest() {
        let e = Demo::from_object(obj(json!({ "head_epoch": 1 })))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option `head_epoch` for demo; did you mean `head_epochs`?"),
            "{e}"
        );
        assert!(e.contains("valid: head_epochs, lr, mode, out"), "{e}");
        let e = Demo::from_object(obj(json!({ "zzzzzz": 1 })))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("did you mean"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_the_type() {
        let e = Demo::from_object(obj(json!({ "lr": 0.1, "head_epochs": "five" })))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "option `head_epochs` of demo must be int ≥ 0, got \"five\""
        );
        let e = Demo::from_object(obj(json!({ "mode": "slow" })))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "option `mode` of demo must be \"fast\" | \"per_fold\", got \"slow\""
        );
    }

    #[test]
    fn ints_read_as_floats_and_defaults_fill_the_rest() {
        let d = Demo::from_object(obj(json!({ "lr": 1, "mode": "per_fold" }))).unwrap();
        assert_eq!(d.lr, 1.0);
        assert_eq!(d.mode, Mode::PerFold);
        assert_eq!(d.head_epochs, 5);
        let f = Demo::fields();
        assert_eq!(f[1].default, "0.00001");
        assert_eq!(f[3].default, "()");
        assert_eq!(f[3].kind, "string or ()");
        assert_eq!(f[0].doc.trim(), "Epochs of the head.");
    }

    #[test]
    fn set_checks_like_a_map() {
        let mut d = Demo::default();
        d.set("lr", json!(0.5)).unwrap();
        assert_eq!(d.lr, 0.5);
        assert!(d
            .set("lx", json!(0.5))
            .unwrap_err()
            .to_string()
            .contains("did you mean `lr`"));
    }

    #[test]
    fn closest_is_the_nearest_typo() {
        assert_eq!(closest("Tset", &["train", "val", "test"]), Some("test"));
        assert_eq!(closest("banana", &["train", "val", "test"]), None);
        assert_eq!(closest("tset", &["train", "val", "test"]), Some("test"));
    }
}
