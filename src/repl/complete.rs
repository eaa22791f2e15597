//! Completion and multi-line validation for the prompt.

use crate::script::help;
use rhai::{Engine, Scope};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::cell::RefCell;
use std::rc::Rc;

/// What the prompt knows about the session, refreshed after each statement.
#[derive(Default)]
pub struct Known {
    /// Variable name → script type name.
    pub vars: Vec<(String, String)>,
    /// Tap names of the networks held in variables.
    pub taps: Vec<String>,
}

impl Known {
    /// Re-reads the variables of `scope`.
    pub fn refresh(&mut self, engine: &Engine, scope: &Scope) {
        self.vars.clear();
        self.taps.clear();
        for (name, _, v) in scope.iter() {
            let ty = engine.map_type_name(v.type_name()).to_string();
            if let Some(net) = v.clone().try_cast::<crate::script::api::Net>() {
                self.taps.extend(net.taps());
            }
            self.vars.push((name.to_string(), ty));
        }
    }
}

/// The rustyline helper.
pub struct PromptHelper {
    known: Rc<RefCell<Known>>,
    parser: Engine,
}

impl PromptHelper {
    pub fn new(known: Rc<RefCell<Known>>) -> Self {
        PromptHelper {
            known,
            parser: Engine::new_raw(),
        }
    }
}

/// Candidates for the text before the cursor.
pub fn candidates(before: &str, known: &Known) -> (usize, Vec<String>) {
    // Inside a string literal: network names after `network("`, tap names elsewhere.
    let quotes = before.matches('"').count();
    if quotes % 2 == 1 {
        let start = before.rfind('"').unwrap() + 1;
        let word = &before[start..];
        let is_network = before[..start - 1].trim_end().ends_with("network(");
        let pool: Vec<String> = if is_network {
            crate::nets::registry::names()
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            let mut t = known.taps.clone();
            t.extend(
                ["last", "paper", "all", "gap", "gmp", "gap+gmp"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            t
        };
        let mut c: Vec<String> = pool.into_iter().filter(|n| n.starts_with(word)).collect();
        c.sort();
        c.dedup();
        return (start, c);
    }
    let start = before
        .rfind(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
        .map_or(0, |i| i + 1);
    let word = &before[start..];
    let mut out: Vec<String> = Vec::new();
    if start > 0 && before[..start].ends_with('.') {
        // A method: functions whose receiver is the variable's type.
        let recv = before[..start - 1]
            .rsplit(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
            .next()
            .unwrap_or("");
        if let Some((_, ty)) = known.vars.iter().find(|(n, _)| n == recv) {
            out = help::entries()
                .iter()
                .filter(|e| e.receiver == Some(ty.as_str()) && e.name.starts_with(word))
                .map(|e| format!("{}(", e.name))
                .collect();
        }
    } else {
        out.extend(
            help::entries()
                .iter()
                .filter(|e| e.receiver.is_none() && e.name.starts_with(word))
                .map(|e| format!("{}(", e.name)),
        );
        out.extend(
            known
                .vars
                .iter()
                .filter(|(n, _)| n.starts_with(word))
                .map(|(n, _)| n.clone()),
        );
        out.extend(
            ["help", "vars", "let", "print("]
                .iter()
                .filter(|k| k.starts_with(word))
                .map(|s| s.to_string()),
        );
    }
    out.sort();
    out.dedup();
    (start, out)
}

impl Completer for PromptHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, c) = candidates(&line[..pos], &self.known.borrow());
        Ok((
            start,
            c.into_iter()
                .map(|s| Pair {
                    display: s.clone(),
                    replacement: s,
                })
                .collect(),
        ))
    }
}

/// True when `src` fails to compile only because it ends too early.
pub fn incomplete(parser: &Engine, src: &str) -> bool {
    use rhai::ParseErrorType as P;
    match parser.compile(src) {
        Ok(_) => false,
        Err(e) => {
            let last_line = src.lines().count();
            match &*e.0 {
                P::UnexpectedEOF => true,
                P::MissingToken(..) | P::MissingSymbol(..) | P::ExprExpected(..) => {
                    e.1.line().is_none_or(|l| l >= last_line)
                }
                P::BadInput(le) => {
                    matches!(le, rhai::LexError::UnterminatedString)
                        || le.to_string().contains("Open string")
                }
                _ => false,
            }
        }
    }
}

impl Validator for PromptHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if incomplete(&self.parser, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Hinter for PromptHelper {
    type Hint = String;
}
impl Highlighter for PromptHelper {}
impl Helper for PromptHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_input_continues() {
        let e = Engine::new_raw();
        assert!(incomplete(&e, "fn f(x) {"));
        assert!(incomplete(&e, "let a = [1, 2,"));
        assert!(!incomplete(&e, "let a = 1;"));
        assert!(!incomplete(&e, "let a = ;;; )"));
    }

    #[test]
    fn network_names_complete_inside_strings() {
        let (start, c) = candidates("let n = network(\"resn", &Known::default());
        assert_eq!(start, 17);
        assert!(c.contains(&"resnet50".to_string()));
    }
}
