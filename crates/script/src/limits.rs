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
    Limit {
        name: "string",
        env: "PATHOLAB_MAX_STRING",
        default: 64 << 20,
        doc: "characters in one string",
    },
    Limit {
        name: "array",
        env: "PATHOLAB_MAX_ARRAY",
        default: 16 << 20,
        doc: "items in one array",
    },
    Limit {
        name: "map",
        env: "PATHOLAB_MAX_MAP",
        default: 1 << 20,
        doc: "entries in one map",
    },
    Limit {
        name: "depth",
        env: "PATHOLAB_MAX_DEPTH",
        default: 128,
        doc: "nesting of expressions and statements",
    },
    Limit {
        name: "calls",
        env: "PATHOLAB_MAX_CALLS",
        default: 96,
        doc: "depth of nested function calls",
    },
    Limit {
        name: "memory",
        env: "PATHOLAB_MAX_MEMORY",
        default: usize::MAX,
        doc: "MiB the process may hold while a script runs (default: 3/4 of this machine's memory)",
    },
];

/// How often (in script operations) the memory limit is checked: reading the resident size costs
/// a few microseconds, an operation a few nanoseconds.
const MEMORY_CHECK_EVERY: u64 = 1 << 18;

/// The value of a limit: the environment variable when it holds a number, else the default.
pub fn value(name: &str) -> usize {
    let l = LIMITS
        .iter()
        .find(|l| l.name == name)
        .expect("a known limit");
    let set = std::env::var(l.env)
        .ok()
        .and_then(|v| v.trim().parse().ok());
    match (set, name) {
        (Some(v), _) => v,
        (None, "memory") => total_memory_mib() / 4 * 3,
        (None, _) => l.default,
    }
}

/// This machine's memory in MiB (`MemTotal` of /proc/meminfo; 0 where unknown, which turns the
/// memory limit off).
fn total_memory_mib() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// The process's resident memory in MiB (from /proc/self/statm).
fn resident_mib() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096 / (1 << 20))
}

/// Why a running script must stop now, if it must: Ctrl-C, or more memory than the limit. Rhai
/// checks the size of a map only when it is passed to a function, so `m[key] = v` in a loop can
/// grow without bound; this catches it (and any other runaway growth) before the system does.
pub fn stop_reason(operations: u64, memory_limit_mib: usize) -> Option<String> {
    if patholab_core::cancel::requested() {
        return Some("interrupted (Ctrl-C)".into());
    }
    if memory_limit_mib > 0 && operations % MEMORY_CHECK_EVERY == 0 {
        let held = resident_mib();
        if held > memory_limit_mib {
            return Some(format!(
                "the script holds {held} MiB, over the memory limit of {memory_limit_mib} MiB (PATHOLAB_MAX_MEMORY or --limit memory=N)"
            ));
        }
    }
    None
}

/// Sets `name=value` for this process (what `--limit` does).
pub fn set(assignment: &str) -> Result<(), String> {
    let (name, v) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--limit {assignment:?}: expected name=value"))?;
    let l = LIMITS
        .iter()
        .find(|l| l.name == name.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = LIMITS.iter().map(|l| l.name).collect();
            format!(
                "--limit: unknown limit {name:?} (valid: {})",
                names.join(", ")
            )
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
    let memory = value("memory");
    engine.on_progress(move |ops| stop_reason(ops, memory).map(Into::into));
}

/// Help text: each limit, its current value and how to change it.
pub fn describe() -> String {
    let mut s = String::from(
        "Limits (a script that reaches one gets an error, the prompt keeps every variable):\n",
    );
    for l in LIMITS {
        s += &format!(
            "  {:<7} {:>10}  {} ({} or --limit {}=N)\n",
            l.name,
            value(l.name),
            l.doc,
            l.env,
            l.name
        );
    }
    s.trim_end().to_string()
}

/// Runs `f`, turning a panic in native code into a script error so the process and the prompt's
/// variables survive it.
pub fn guarded<T>(
    f: impl FnOnce() -> Result<T, Box<EvalAltResult>>,
) -> Result<T, Box<EvalAltResult>> {
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
