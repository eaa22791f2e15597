//! Limits on what one script may build, so that a runaway script ends in a script error with a
//! position instead of an aborted process (and, at the prompt, lost variables). Each limit has a
//! default that real studies never reach and can be changed with an environment variable
//! (`PATHOLAB_MAX_STRING=...`) or `patholab --limit string=...`.

use rhai::{Engine, EvalAltResult, Position};

/// One limit: its name for `--limit`, the environment variable, the default and what it bounds.
pub struct Limit {
    pub name: &'static str,
    pub env: &'static str,
    pub default: usize,
    pub doc: &'static str,
}

/// Every limit, in the order help lists them.
pub const LIMITS: &[Limit] = &[
    Limit { name: "string", env: "PATHOLAB_MAX_STRING", default: 64 << 20, doc: "characters in one string" },
    Limit { name: "array", env: "PATHOLAB_MAX_ARRAY", default: 16 << 20, doc: "items in one array" },
    Limit { name: "map", env: "PATHOLAB_MAX_MAP", default: 1 << 20, doc: "entries in one map" },
    Limit { name: "depth", env: "PATHOLAB_MAX_DEPTH", default: 128, doc: "nesting of expressions and statements" },
    Limit { name: "calls", env: "PATHOLAB_MAX_CALLS", default: 96, doc: "depth of nested function calls" },
];

/// The value of a limit: the environment variable when it holds a number, else the default.
pub fn value(name: &str) -> usize {
    let l = LIMITS.iter().find(|l| l.name == name).expect("a known limit");
    std::env::var(l.env)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(l.default)
}

/// Sets `name=value` for this process (what `--limit` does).
pub fn set(assignment: &str) -> Result<(), String> {
    let (name, v) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--limit {assignment:?}: expected name=value"))?;
    let l = LIMITS.iter().find(|l| l.name == name.trim()).ok_or_else(|| {
        let names: Vec<&str> = LIMITS.iter().map(|l| l.name).collect();
        format!("--limit: unknown limit {name:?} (valid: {})", names.join(", "))
    })?;
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| format!("--limit {name}: {v:?} is not a number"))?;
    std::env::set_var(l.env, n.to_string());
    Ok(())
}

/// Applies every limit to `engine`.
pub fn apply(engine: &mut Engine) {
    engine.set_max_string_size(value("string"));
    engine.set_max_array_size(value("array"));
    engine.set_max_map_size(value("map"));
    let depth = value("depth");
    engine.set_max_expr_depths(depth, depth);
    engine.set_max_call_levels(value("calls"));
}

/// Help text: each limit, its current value and how to change it.
pub fn describe() -> String {
    let mut s = String::from("Limits (a script that reaches one gets an error, the prompt keeps every variable):\n");
    for l in LIMITS {
        s += &format!("  {:<7} {:>10}  {} ({} or --limit {}=N)\n", l.name, value(l.name), l.doc, l.env, l.name);
    }
    s.trim_end().to_string()
}

/// Runs `f`, turning a panic in native code into a script error so the process and the prompt's
/// variables survive it.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, Box<EvalAltResult>>) -> Result<T, Box<EvalAltResult>> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("internal error (please report it): {what}").into(),
                Position::NONE,
            )))
        }
    }
}
