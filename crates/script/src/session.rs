//! One persistent engine behind a front end (the prompt, a notebook kernel): variables and
//! functions survive between inputs, an error comes back located with a caret, and an interrupt
//! stops the running input while every variable is kept.

use super::complete::{self, Known};
use super::{format_at, format_error, help, show};
use rhai::{Dynamic, Engine, EvalAltResult, Scope};

/// An engine, its variables and the functions defined so far.
pub struct Session {
    pub engine: Engine,
    pub scope: Scope<'static>,
    functions: rhai::AST,
}

/// Why an input failed: a short kind (`ParseError`, `RuntimeError`, `Interrupted`), the message,
/// and the report the prompt prints (line, position, source line, caret).
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
    pub report: String,
}

impl Default for Session {
    fn default() -> Self {
        Session::new(super::engine())
    }
}

impl Session {
    /// A session over `engine` with no variables yet.
    pub fn new(engine: Engine) -> Self {
        Session {
            engine,
            scope: Scope::new(),
            functions: rhai::AST::empty(),
        }
    }

    /// The words a front end answers without evaluating: `vars` and `help`.
    pub fn command(&self, input: &str) -> Option<String> {
        match input.trim() {
            "vars" => Some(show::vars(&self.engine, &self.scope)),
            "help" => Some(help::help(None)),
            _ => None,
        }
    }

    /// Evaluates one input and returns its value (unit when it has none). Functions defined in
    /// the input are kept for later inputs; the cancel flag is cleared before and after.
    pub fn eval(&mut self, input: &str) -> Result<Dynamic, Failure> {
        patholab_core::cancel::reset();
        let out = match self.engine.compile_with_scope(&self.scope, input) {
            Err(e) => Err(Failure {
                kind: "ParseError",
                message: e.0.to_string(),
                report: format_at(&e.0.to_string(), e.1, input, None),
            }),
            Ok(ast) => {
                self.functions = self.functions.merge(&ast.clone_functions_only());
                let program = self.functions.merge(&ast);
                let (engine, scope) = (&self.engine, &mut self.scope);
                super::limits::guarded(|| engine.eval_ast_with_scope::<Dynamic>(scope, &program))
                    .map_err(|e| failure(&e, input))
            }
        };
        patholab_core::cancel::reset();
        patholab_core::memory::release();
        out
    }

    /// What the session knows for completion: variables with their types, tap names.
    pub fn known(&self) -> Known {
        let mut k = Known::default();
        k.refresh(&self.engine, &self.scope);
        k
    }

    /// Completions for `code` with the cursor at byte `cursor`: where the replaced word starts
    /// and the candidates.
    pub fn complete(&self, code: &str, cursor: usize) -> (usize, Vec<String>) {
        complete::candidates(&code[..cursor], &self.known())
    }

    /// Help on the name under byte `cursor` of `code`: a variable's type and value, or the help
    /// of a function; None when the cursor is on nothing known.
    pub fn inspect(&self, code: &str, cursor: usize) -> Option<String> {
        let word = complete::word_at(code, cursor);
        if word.is_empty() {
            return None;
        }
        if let Some(v) = self.scope.get(word) {
            let ty = self.engine.map_type_name(v.type_name()).to_string();
            return Some(format!("{word}: {ty}\n{}", show::show(&self.engine, v)));
        }
        help::entries()
            .iter()
            .any(|e| e.name == word)
            .then(|| help::help(Some(word)))
    }
}

fn failure(e: &EvalAltResult, input: &str) -> Failure {
    // A library function stopped by the flag fails with an ordinary error: the flag says why.
    let kind = match e {
        _ if patholab_core::cancel::requested() => "Interrupted",
        EvalAltResult::ErrorTerminated(..) => "Interrupted",
        EvalAltResult::ErrorParsing(..) => "ParseError",
        _ => "RuntimeError",
    };
    let report = format_error(e, input, None);
    let message = report
        .lines()
        .next()
        .unwrap_or("")
        .split_once(": ")
        .map_or(report.clone(), |(_, m)| m.to_string());
    Failure {
        kind,
        message,
        report,
    }
}
