//! The one declaration of every script function, method and getter: its signature, a one-line
//! doc (more lines when needed), its options (read from the options struct, defaults included) and
//! an example that a test runs. `help`, Tab completion, notebook `inspect` and `docs/reference.md`
//! all read these declarations; nothing about a function is written twice.

use crate::Settings;
use patholab_core::options::{Field, Options};
use rhai::RhaiNativeFunc;
use rhai::{Engine, Variant};

/// What a declaration registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `name(args)`.
    Function,
    /// `value.name(args)`.
    Method,
    /// `value.name`.
    Getter,
}

/// The options a function takes in its map argument.
#[derive(Clone, Debug)]
pub struct OptionList {
    /// The function the options belong to, as messages name it.
    pub owner: String,
    pub fields: Vec<Field>,
}

/// One declared function, method or getter.
#[derive(Clone, Debug)]
pub struct Doc {
    pub name: String,
    pub topic: &'static str,
    pub form: Form,
    /// Script type of the value a method or getter is called on (`Dataset`).
    pub receiver: Option<&'static str>,
    pub signature: String,
    pub doc: String,
    pub example: String,
    pub options: Option<OptionList>,
    /// The registered closure's parameter types as Rust names them (`&str`, `i64`, `&mut …Net`),
    /// receiver first for methods and getters: [`check_signature`] compares them with `signature`.
    pub rust_params: Vec<&'static str>,
}

impl Doc {
    /// The value the example states it gives, written after a final `// => ` (a Rhai literal
    /// that `tests/compute/reference.rs` compares with what the example returns).
    pub fn expected(&self) -> Option<&str> {
        self.example.rsplit_once("// => ").map(|(_, v)| v.trim())
    }

    /// The first line of the doc.
    pub fn summary(&self) -> &str {
        self.doc.lines().next().unwrap_or("")
    }

    /// Records the registered closure's parameter types.
    fn with_params(&mut self, params: Vec<&'static str>) -> &mut Self {
        self.rust_params = params;
        self
    }

    /// Adds the fields of options struct `T` to this declaration.
    pub fn options<T: Options>(&mut self) -> &mut Self {
        self.options = Some(OptionList {
            owner: T::OWNER.to_string(),
            fields: T::fields(),
        });
        self
    }

    /// Adds options that are not plain values (objects such as a `Cv`) to the list.
    pub fn extra_option(
        &mut self,
        name: &'static str,
        kind: &str,
        default: &str,
        doc: &'static str,
    ) -> &mut Self {
        let owner = self.name.clone();
        let list = self.options.get_or_insert_with(|| OptionList {
            owner,
            fields: Vec::new(),
        });
        list.fields.push(Field {
            name,
            kind: kind.into(),
            default: default.into(),
            doc,
        });
        self
    }
}

/// Registers functions on an engine and records their declarations, one topic at a time.
pub struct Api<'a> {
    engine: &'a mut Engine,
    docs: &'a mut Vec<Doc>,
    topic: &'static str,
    settings: Settings,
}

impl<'a> Api<'a> {
    /// Declarations go to `docs` under `topic`; `settings` are the run's (the bindings that
    /// depend on them capture them when registered).
    pub fn new(
        engine: &'a mut Engine,
        docs: &'a mut Vec<Doc>,
        topic: &'static str,
        settings: Settings,
    ) -> Self {
        Api {
            engine,
            docs,
            topic,
            settings,
        }
    }

    /// What the run was started with (`patholab run --shard i/n`).
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The engine, for registering types and printing.
    pub fn engine(&mut self) -> &mut Engine {
        self.engine
    }

    /// A function: `signature` starts with its name (`dataset(path: String) -> Dataset`).
    pub fn func<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool>(
        &mut self,
        signature: &str,
        doc: impl Into<String>,
        example: &str,
        f: impl RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    ) -> &mut Doc {
        let name = signature.split('(').next().unwrap_or(signature).trim();
        let params = param_names(&f);
        self.engine.register_fn(name, f);
        self.record(name, Form::Function, None, signature, doc.into(), example)
            .with_params(params)
    }

    /// A method on values of script type `receiver`: `signature` reads `value.name(args)`.
    pub fn method<A: 'static, const N: usize, const X: bool, R: Variant + Clone, const F: bool>(
        &mut self,
        receiver: &'static str,
        signature: &str,
        doc: impl Into<String>,
        example: &str,
        f: impl RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    ) -> &mut Doc {
        let name = method_name(signature);
        let params = param_names(&f);
        self.engine.register_fn(name.as_str(), f);
        self.record(
            &name,
            Form::Method,
            Some(receiver),
            signature,
            doc.into(),
            example,
        )
        .with_params(params)
    }

    /// A property of values of script type `receiver`: `signature` reads `value.name -> Type`.
    pub fn getter<T: Variant + Clone, R: Variant + Clone>(
        &mut self,
        receiver: &'static str,
        signature: &str,
        doc: impl Into<String>,
        example: &str,
        f: impl Fn(&mut T) -> R + Send + Sync + 'static,
    ) -> &mut Doc {
        let name = method_name(signature);
        let params = param_names(&f);
        self.engine.register_get(name.as_str(), f);
        self.record(
            &name,
            Form::Getter,
            Some(receiver),
            signature,
            doc.into(),
            example,
        )
        .with_params(params)
    }

    fn record(
        &mut self,
        name: &str,
        form: Form,
        receiver: Option<&'static str>,
        signature: &str,
        doc: String,
        example: &str,
    ) -> &mut Doc {
        self.docs.push(Doc {
            name: name.to_string(),
            topic: self.topic,
            form,
            receiver,
            signature: signature.to_string(),
            doc,
            example: example.to_string(),
            options: None,
            rust_params: Vec::new(),
        });
        self.docs.last_mut().expect("just pushed")
    }
}

/// The Rust types of a registered closure's parameters, read through rhai's metadata.
fn param_names<G, A: 'static, const N: usize, const X: bool, R: 'static, const F: bool>(
    _: &G,
) -> Vec<&'static str>
where
    G: RhaiNativeFunc<A, N, X, R, F>,
{
    G::param_names().to_vec()
}

/// `data.split(options) -> Split` → `split`; `split.train -> Array` → `train`.
fn method_name(signature: &str) -> String {
    let after_dot = signature.split_once('.').map_or(signature, |(_, r)| r);
    after_dot
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or(after_dot)
        .to_string()
}

/// The script type a registered closure's Rust parameter type stands for (`&str` → `String`,
/// `i64` → `int`, a registered type → its script name); `None` for `Dynamic`, which takes any value.
fn script_type(engine: &Engine, rust: &str) -> Option<String> {
    let t = rust.trim_start_matches("&mut ").trim_start_matches('&');
    Some(match t {
        "str" | "alloc::string::String" | "rhai::ImmutableString" => "String".into(),
        "i64" => "int".into(),
        "f64" => "float".into(),
        "bool" => "bool".into(),
        "rhai::types::dynamic::Dynamic" => return None,
        "rhai::types::fn_ptr::FnPtr" => "Fn".into(),
        _ if t.starts_with("alloc::collections::btree::map::BTreeMap<") => "Map".into(),
        _ if t.starts_with("alloc::vec::Vec<rhai::types::dynamic::Dynamic") => "Array".into(),
        _ => engine.map_type_name(t).to_string(),
    })
}

/// The parameter types a signature declares (`f(a: int, b: Map) -> X` → `[int, Map]`), the
/// receiver's type first for methods and getters.
fn declared_params(doc: &Doc) -> Vec<String> {
    let mut out: Vec<String> = doc.receiver.iter().map(|r| r.to_string()).collect();
    // The parameters are those of the last call before the return type: `pca(k).fit(train:
    // FeatureSet) -> Pca` declares `fit(train)`, and a return type may itself be `()`.
    let head = doc.signature.split(" -> ").next().unwrap_or("").trim_end();
    if let Some(inner) = head.strip_suffix(')') {
        let mut depth = 0;
        let open = inner
            .char_indices()
            .rev()
            .find(|&(_, c)| {
                match c {
                    ')' => depth += 1,
                    '(' if depth == 0 => return true,
                    '(' => depth -= 1,
                    _ => {}
                }
                false
            })
            .map_or(0, |(i, _)| i + 1);
        out.extend(
            inner[open..]
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.split_once(':').map_or(p, |(_, t)| t).trim().to_string()),
        );
    }
    out
}

/// Whether a declaration's signature states the parameter types of the closure registered with
/// it: the same count, and each declared type the script type of the Rust one (`any` and
/// `Dynamic` parameters match anything). The error names the declaration and both lists.
pub fn check_signature(engine: &Engine, doc: &Doc) -> Result<(), String> {
    let declared = declared_params(doc);
    let registered: Vec<Option<String>> = doc
        .rust_params
        .iter()
        .map(|r| script_type(engine, r))
        .collect();
    let fits = declared.len() == registered.len()
        && declared.iter().zip(&registered).all(|(d, r)| match r {
            None => true,
            Some(r) => d == "any" || d == r,
        });
    if fits {
        return Ok(());
    }
    let shown: Vec<String> = registered
        .iter()
        .map(|r| r.clone().unwrap_or_else(|| "any".into()))
        .collect();
    Err(format!(
        "{}: declared ({}) but the registered function takes ({}) [rust: {}]",
        doc.signature,
        declared.join(", "),
        shown.join(", "),
        doc.rust_params.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(
        signature: &str,
        f: impl RhaiNativeFunc<(f64,), 1, false, f64, false> + Send + Sync + 'static,
    ) -> (Engine, Doc) {
        let mut engine = Engine::new();
        let mut docs = Vec::new();
        Api::new(&mut engine, &mut docs, "test", Settings::default()).func(signature, "", "", f);
        (engine, docs.pop().unwrap())
    }

    #[test]
    fn a_signature_that_misstates_a_parameter_type_is_caught() {
        let (engine, good) = declare("half(x: float) -> float", |x: f64| x / 2.0);
        assert_eq!(check_signature(&engine, &good), Ok(()));
        let (engine, wrong) = declare("half(x: int) -> float", |x: f64| x / 2.0);
        let e = check_signature(&engine, &wrong).unwrap_err();
        assert!(
            e.contains("declared (int)") && e.contains("takes (float)"),
            "{e}"
        );
        let (engine, missing) = declare("half() -> float", |x: f64| x / 2.0);
        assert!(check_signature(&engine, &missing).is_err());
    }

    #[test]
    fn every_declaration_states_its_registered_types() {
        let mut engine = Engine::new();
        let docs = crate::register(&mut engine);
        assert!(docs.len() > 100, "{} declarations", docs.len());
        let wrong: Vec<String> = docs
            .iter()
            .filter_map(|d| check_signature(&engine, d).err())
            .collect();
        assert!(
            wrong.is_empty(),
            "{} declaration(s) misstate their types:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn names_come_from_signatures() {
        assert_eq!(method_name("data.split(options: Map) -> Split"), "split");
        assert_eq!(method_name("split.train -> Array"), "train");
        assert_eq!(
            method_name("t.group_by(column: String) -> Grouped"),
            "group_by"
        );
    }
}
