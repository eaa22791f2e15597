//! Running a script file or one expression, as `patholab run` and `patholab -e` do.

use super::{convert, engine, engine_with, format_at, format_error, show, Settings};
use rhai::{Dynamic, Scope};
use std::path::Path;

/// Runs `path` with `sets` (`name=value`, values parsed as Rhai literals) bound as variables.
/// On error returns the message with line, position and a caret.
pub fn run_file(path: &Path, sets: &[String], settings: Settings) -> Result<(), String> {
    let source = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let engine = engine_with(settings);
    let mut scope = Scope::new();
    for s in sets {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s:?}: expected name=value"))?;
        scope.push(
            name.trim().to_string(),
            convert::literal(&engine, value.trim()),
        );
    }
    let file = path.display().to_string();
    let ast = engine
        .compile_with_scope(&scope, &source)
        .map_err(|e| format_at(&e.0.to_string(), e.1, &source, Some(&file)))?;
    patholab_core::cancel::install_interrupt_handler();
    super::limits::guarded(|| engine.run_ast_with_scope(&mut scope, &ast))
        .map_err(|e| format_error(&e, &source, Some(&file)))
}

/// Evaluates one expression and returns what the prompt would print.
pub fn eval_expression(expr: &str) -> Result<String, String> {
    let engine = engine();
    let mut scope = Scope::new();
    let ast = engine
        .compile_with_scope(&scope, expr)
        .map_err(|e| format_at(&e.0.to_string(), e.1, expr, None))?;
    match super::limits::guarded(|| engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)) {
        Ok(v) if v.is_unit() => Ok(String::new()),
        Ok(v) => Ok(show::show(&engine, &v)),
        Err(e) => Err(format_error(&e, expr, None)),
    }
}
