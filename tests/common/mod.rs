//! What the integration tests share to drive the real binary: a command with its own feature
//! cache (never the user's), and a way to run script text from a file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A cache folder for this test process, under the system's temporary folder.
pub fn cache() -> PathBuf {
    std::env::temp_dir().join(format!("patholab-test-cache-{}", std::process::id()))
}

/// The binary, with a feature cache of this test process.
pub fn patholab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patholab"));
    c.env("PATHOLAB_CACHE", cache());
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
