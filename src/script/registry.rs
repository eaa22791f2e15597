//! The one declaration of every script function, method and getter: its signature, a one-line
//! doc (more lines when needed), its options (read from the options struct, defaults included) and
//! an example that a test runs. `help`, Tab completion, notebook `inspect` and `docs/reference.md`
//! all read these declarations; nothing about a function is written twice.

use crate::options::{Field, Options};
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
}

impl Doc {
    /// The first line of the doc.
    pub fn summary(&self) -> &str {
        self.doc.lines().next().unwrap_or("")
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
}

impl<'a> Api<'a> {
    /// Declarations go to `docs` under `topic`.
    pub fn new(engine: &'a mut Engine, docs: &'a mut Vec<Doc>, topic: &'static str) -> Self {
        Api {
            engine,
            docs,
            topic,
        }
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
        self.engine.register_fn(name, f);
        self.record(name, Form::Function, None, signature, doc.into(), example)
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
        self.engine.register_fn(name.as_str(), f);
        self.record(
            &name,
            Form::Method,
            Some(receiver),
            signature,
            doc.into(),
            example,
        )
    }

    /// A property of values of script type `receiver`: `signature` reads `value.name -> Type`.
    pub fn getter<A: 'static, const X: bool, R: Variant + Clone, const F: bool>(
        &mut self,
        receiver: &'static str,
        signature: &str,
        doc: impl Into<String>,
        example: &str,
        f: impl RhaiNativeFunc<A, 1, X, R, F> + Send + Sync + 'static,
    ) -> &mut Doc {
        let name = method_name(signature);
        // Rhai reads `value.name` as a call of `get$name` (what `register_get` registers).
        self.engine.register_fn(format!("get${name}"), f);
        self.record(
            &name,
            Form::Getter,
            Some(receiver),
            signature,
            doc.into(),
            example,
        )
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
        });
        self.docs.last_mut().expect("just pushed")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
