//! The rustyline side of completion and multi-line input; the logic is `script::complete`, shared
//! with the notebook kernel.

use crate::complete::{candidates, Known};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::cell::RefCell;
use std::rc::Rc;

/// The rustyline helper.
pub struct PromptHelper {
    known: Rc<RefCell<Known>>,
}

impl PromptHelper {
    pub fn new(known: Rc<RefCell<Known>>) -> Self {
        PromptHelper { known }
    }
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

impl Validator for PromptHelper {}

impl Hinter for PromptHelper {
    type Hint = String;
}
impl Highlighter for PromptHelper {}
impl Helper for PromptHelper {}
