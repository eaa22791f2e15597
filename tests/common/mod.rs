//! What the integration tests share. Every start of the binary goes through [`patholab`] (or
//! [`patholab_in`], which is [`patholab`] in a working folder): it has a feature cache, a prompt
//! history and a weights folder of its own, never the user's, and none of the user's settings
//! (`PATHOLAB_*`, `POLARS_*`, `HF_TOKEN`, `VIRTUAL_ENV`) reach it. A test sets what it needs after
//! the call (`.env("PATHOLAB_CACHE", …)`, `.env("PATHOLAB_WEIGHTS", …)`, `.current_dir(…)`), and
//! what it sets wins. A process that starts the binary for the test (Python's Jupyter client)
//! gets the same environment from [`isolate`].
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Variables with these prefixes are the user's configuration of patholab (its settings and
/// limits) or of the tables it prints (`POLARS_FMT_*`, which the binary defaults when unset).
const USER_PREFIXES: &[&str] = &["PATHOLAB_", "POLARS_"];
/// Other variables the binary reads that change what it does or where it looks.
const USER_VARS: &[&str] = &["HF_TOKEN", "VIRTUAL_ENV"];

/// This test process's own folder, made on first use: `<tmp>/patholab-test-<pid>-<random>`. It
/// holds the default feature cache, history and (empty) weights folder of the binaries the test
/// starts. nextest runs each test in a process of its own, so no test sees another's cache; the
/// folders of test processes that have ended are removed when the next one makes its own.
fn own_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        remove_ended(&tmp);
        tempfile::Builder::new()
            .prefix(&format!("patholab-test-{}-", std::process::id()))
            .tempdir_in(&tmp)
            .unwrap()
            .keep()
    })
}

/// Removes the `patholab-test-<pid>-*` folders whose process is gone.
fn remove_ended(tmp: &Path) {
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("patholab-test-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The feature cache of this test process (the default of [`patholab`]).
pub fn cache() -> PathBuf {
    own_dir().join("cache")
}

/// The prompt history of this test process (the default of [`patholab`]).
pub fn history() -> PathBuf {
    own_dir().join("history")
}

/// Gives `c` the environment of the binary under test: none of the user's settings, this test
/// process's cache and history, an empty weights folder (networks take their weights from the
/// project's `.venv` packages, as on a clean machine). Settings made on `c` afterwards win.
pub fn isolate(c: &mut Command) -> &mut Command {
    let user: Vec<OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            USER_PREFIXES.iter().any(|p| k.starts_with(p)) || USER_VARS.contains(&k.as_ref())
        })
        .collect();
    for k in user {
        c.env_remove(k);
    }
    c.env("PATHOLAB_CACHE", cache())
        .env("PATHOLAB_HISTORY", history())
        .env("PATHOLAB_WEIGHTS", own_dir().join("weights"))
}

/// The binary under test, isolated (see [`isolate`]); the one place that starts it.
pub fn patholab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patholab"));
    isolate(&mut c);
    c
}

/// [`patholab`] working in `dir`, with its feature cache (`dir/cache`) and history
/// (`dir/history`) there.
pub fn patholab_in(dir: &Path) -> Command {
    let mut c = patholab();
    c.current_dir(dir)
        .env("PATHOLAB_CACHE", dir.join("cache"))
        .env("PATHOLAB_HISTORY", dir.join("history"));
    c
}

/// Runs `script` (its text) as a file in `dir` with `patholab run`, binding `sets`.
pub fn run_script(dir: &Path, script: &str, sets: &[&str]) -> Output {
    let file = dir.join("script.rhai");
    std::fs::write(&file, script).unwrap();
    let mut c = patholab();
    c.current_dir(dir).arg("run").arg(&file);
    for s in sets {
        c.args(["--set", s]);
    }
    c.output().unwrap()
}

/// stdout and stderr together, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The counters of the first `features:` line of a log: computed here, from the cache, and
/// computed by other processes sharing the cache (0 when the line does not name them).
pub fn counters(log: &str) -> Vec<usize> {
    let l = log
        .lines()
        .find(|l| l.starts_with("features:"))
        .unwrap_or_else(|| panic!("no features line in:\n{log}"));
    l.split('(')
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .split(", ")
        .map(|p| p.split(' ').next().unwrap().parse().unwrap())
        .chain(std::iter::repeat(0))
        .take(3)
        .collect()
}
