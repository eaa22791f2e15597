//! Completion and "is this input finished?" for every front end: the prompt's Tab and
//! continuation lines, a notebook's `complete_request` and `is_complete_request`.

use super::help;
use patholab_core::nets::registry::Preset;
use rhai::{Engine, Scope};

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
            // Only networks are read (a clone of a large array or map after every statement is not free).
            if v.is::<super::networks::Net>() {
                if let Some(net) = v.read_lock::<super::networks::Net>() {
                    self.taps.extend(net.taps());
                }
            }
            self.vars.push((name.to_string(), ty));
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
            patholab_core::nets::registry::names()
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            let mut t = known.taps.clone();
            // Tap presets, reducers and precisions: the lists the library parses.
            use patholab_core::{features::extract::Reduce, nets::precision::Precision};
            t.extend(
                [Preset::ALL, Reduce::ALL, Precision::ALL]
                    .concat()
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
                .map(|e| match e.form {
                    super::registry::Form::Getter => e.name.clone(),
                    _ => format!("{}(", e.name),
                })
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

/// True when `src` fails to compile only because it ends too early: the error sits at the end of
/// the input, so another line can still fix it. An error before the end is reported at once.
pub fn incomplete(parser: &Engine, src: &str) -> bool {
    use rhai::ParseErrorType as P;
    let Err(e) = parser.compile(src) else {
        return false;
    };
    let unterminated = match &*e.0 {
        P::BadInput(le) => {
            matches!(le, rhai::LexError::UnterminatedString)
                || le.to_string().contains("Open string")
        }
        _ => false,
    };
    if unterminated {
        return true;
    }
    let at_end = match (e.1.line(), e.1.position()) {
        (None, _) => true,
        (Some(line), col) => {
            let (last_line, last_col) = last_char(src);
            line > last_line || (line == last_line && col.unwrap_or(usize::MAX) > last_col)
        }
    };
    at_end
        && matches!(
            &*e.0,
            P::UnexpectedEOF | P::MissingToken(..) | P::MissingSymbol(..) | P::ExprExpected(..)
        )
}

/// Line and column (1-based) of the last character that is not white space.
fn last_char(src: &str) -> (usize, usize) {
    let trimmed = src.trim_end();
    let line = trimmed.lines().count().max(1);
    let col = trimmed.lines().last().map_or(0, |l| l.chars().count());
    (line, col)
}

/// The identifier around byte `cursor` of `code` (empty when there is none).
pub fn word_at(code: &str, cursor: usize) -> &str {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let cursor = cursor.min(code.len());
    let start = code[..cursor].rfind(|c| !is_word(c)).map_or(0, |i| i + 1);
    let end = code[cursor..]
        .find(|c| !is_word(c))
        .map_or(code.len(), |i| cursor + i);
    &code[start..end]
}

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
        assert!(incomplete(&e, "let s = \"abc"));
        // A missing comma before the last line's first token: no further line can fix it.
        assert!(!incomplete(&e, "let x = [1,2\n3];"));
        assert!(incomplete(&e, "let x = [1,2,\n3"));
    }

    #[test]
    fn network_names_complete_inside_strings() {
        let (start, c) = candidates("let n = network(\"resn", &Known::default());
        assert_eq!(start, 17);
        assert!(c.contains(&"resnet50".to_string()));
    }

    #[test]
    fn the_word_under_the_cursor() {
        assert_eq!(word_at("let d = dataset(\"x\")", 10), "dataset");
        assert_eq!(word_at("tune", 4), "tune");
        assert_eq!(word_at("a + ", 4), "");
    }
}
