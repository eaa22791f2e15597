//! How values look at the prompt: readable summaries, tables as polars prints them.

use rhai::{Dynamic, Engine, Scope};

/// The text the prompt prints for a value.
pub fn show(engine: &Engine, v: &Dynamic) -> String {
    if v.is_string() {
        return v.clone().into_string().unwrap();
    }
    let mut scope = Scope::new();
    scope.push("__value", v.clone());
    engine
        .eval_with_scope::<String>(&mut scope, "to_debug(__value)")
        .unwrap_or_else(|_| v.to_string())
}

/// One line per variable: name, type, summary.
pub fn vars(engine: &Engine, scope: &Scope) -> String {
    let mut lines = Vec::new();
    for (name, _, value) in scope.iter() {
        if name.starts_with("__") {
            continue;
        }
        let first = show(engine, &value)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let first: String = if first.chars().count() > 70 {
            first.chars().take(69).collect::<String>() + "…"
        } else {
            first
        };
        lines.push(format!(
            "{name:<14} {:<12} {first}",
            engine
                .map_type_name(value.type_name())
                .rsplit("::")
                .next()
                .unwrap_or("")
        ));
    }
    if lines.is_empty() {
        "no variables yet".into()
    } else {
        lines.join("\n")
    }
}
