//! Hostile scripts (`tests/hostile/*.rhai`) never abort the binary: each one ends in an error
//! message. Every script runs as `patholab run FILE` and must exit with code 1 (not a signal, not
//! an abort or panic code) within 60 s, its stderr holding the text of its first line
//! `// expect: <part of the error>`. Then all of them are typed into one prompt session, which must
//! print each error and still hold the variable defined before them.
//!
//! A line `// generate: parens|blocks|arrays N` stands for a body nested N deep, built here so the
//! 10,000-deep cases are not committed (the prompt gets them 300 deep, still past every limit).
//! Each script runs in a fresh folder that holds an empty folder `empty/`.
//!
//! A line `// limit: name=N` runs the script with `--limit name=N`. The scripts that grow an array or a
//! map one item at a time use it: with size limits on, Rhai measures a value each time it grows, so
//! reaching the default limits (16 Mi items) that way takes hours, not an abort; a lower limit shows
//! the same error in seconds. A map grown by `m[key] = v` is never size-checked by Rhai: the memory
//! limit stops it. The prompt session runs with lower limits throughout (`PROMPT_LIMITS`).
//!
//! Scripts in `tests/hostile/pending/` (none now) would run with their outcome printed, not asserted.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Seconds a script may run before it counts as hung.
const LIMIT: Duration = Duration::from_secs(60);

/// One script of the corpus.
struct Case {
    name: String,
    expect: String,
    /// The script text (generated when it asks to be), comments included.
    source: String,
    /// The body nested this deep at the prompt, for generated scripts.
    prompt_source: String,
    pending: bool,
    /// `--limit` values for this script.
    limits: Vec<String>,
}

/// The limits the prompt session runs with (see the `// limit:` lines).
const PROMPT_LIMITS: &[&str] = &["array=100000", "map=100000", "memory=1500"];

fn corpus() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut cases = Vec::new();
    for (dir, pending) in [(root.clone(), false), (root.join("pending"), true)] {
        if !dir.exists() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("// expect: "))
                .unwrap_or_else(|| panic!("{name}: the first line must be `// expect: ...`"))
                .trim()
                .to_string();
            let generated = text
                .lines()
                .find_map(|l| l.strip_prefix("// generate: "))
                .map(|g| {
                    let (kind, n) = g.trim().split_once(' ').unwrap();
                    let n: usize = n.parse().unwrap();
                    (nested(kind, n), nested(kind, n.min(300)))
                });
            let (source, prompt_source) = match generated {
                Some((deep, shallow)) => (format!("{text}\n{deep}\n"), shallow),
                None => (text.clone(), text.clone()),
            };
            let limits = text
                .lines()
                .filter_map(|l| l.strip_prefix("// limit: "))
                .map(|l| l.trim().to_string())
                .collect();
            cases.push(Case {
                name,
                expect,
                source,
                prompt_source,
                pending,
                limits,
            });
        }
    }
    assert!(
        cases.iter().filter(|c| !c.pending).count() >= 18,
        "the corpus has at least 18 asserted scripts"
    );
    cases
}

/// An expression nested `n` deep.
fn nested(kind: &str, n: usize) -> String {
    let (open, close) = match kind {
        "parens" => ("(", ")"),
        "blocks" => ("{ ", " }"),
        "arrays" => ("[", "]"),
        other => panic!("unknown generator {other:?}"),
    };
    format!("{}1{}", open.repeat(n), close.repeat(n))
}

/// A fresh working folder with the empty folder scripts may open.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    dir
}

/// How one `patholab run` ended.
enum Outcome {
    /// Exit code and stderr.
    Exited(i32, String),
    Signal(i32, String),
    Hung,
}

fn run(case: &Case) -> (Outcome, Duration) {
    use std::os::unix::process::ExitStatusExt;
    let dir = workdir();
    let script = dir.path().join(format!("{}.rhai", case.name));
    std::fs::write(&script, &case.source).unwrap();
    let err_path = dir.path().join("stderr.txt");
    let mut child = common::patholab_in(dir.path())
        .args(case.limits.iter().flat_map(|l| ["--limit", l.as_str()]))
        .args(["--quiet", "run"])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let outcome = match status {
        None => Outcome::Hung,
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => Outcome::Exited(c, stderr),
            (None, Some(sig)) => Outcome::Signal(sig, stderr),
            (None, None) => Outcome::Signal(-1, stderr),
        },
    };
    (outcome, start.elapsed())
}

/// The last line of an error message that says what went wrong (skipping the caret lines).
fn headline(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("error"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}

#[test]
fn every_hostile_script_ends_in_an_error_not_an_abort() {
    let mut failures = Vec::new();
    let mut report = String::from("\nhostile corpus, `patholab run`:\n");
    for case in corpus() {
        let (outcome, took) = run(&case);
        let (verdict, ok) = match &outcome {
            Outcome::Hung => (
                format!("still running after {} s, killed", LIMIT.as_secs()),
                false,
            ),
            Outcome::Signal(sig, err) => {
                (format!("ABORTED by signal {sig}: {}", headline(err)), false)
            }
            Outcome::Exited(1, err) if err.contains(&case.expect) => (headline(err), true),
            Outcome::Exited(1, err) => (
                format!(
                    "exit 1 but stderr lacks {:?}: {}",
                    case.expect,
                    headline(err)
                ),
                false,
            ),
            Outcome::Exited(0, _) => ("ran without an error".to_string(), false),
            Outcome::Exited(c, err) => (
                format!("ABORTED with exit code {c}: {}", headline(err)),
                false,
            ),
        };
        let tag = match (case.pending, ok) {
            (true, _) => "pending",
            (false, true) => "ok",
            (false, false) => "FAIL",
        };
        report += &format!(
            "  {tag:<8}{:<32}{:>6.1}s  {verdict}\n",
            case.name,
            took.as_secs_f64()
        );
        if !ok && !case.pending {
            failures.push(format!("{}: {verdict}", case.name));
        }
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// rexpect hands over each byte of the terminal as one char; this puts UTF-8 text back together.
fn utf8(s: &str) -> String {
    match s
        .chars()
        .map(|c| u8::try_from(c as u32))
        .collect::<Result<Vec<u8>, _>>()
    {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => s.to_string(),
    }
}

/// Pastes `text` as one input (bracketed paste, so rustyline takes it whole) and presses Enter.
fn paste(p: &mut rexpect::session::PtySession, text: &str) {
    p.send(&format!("\x1b[200~{text}\x1b[201~")).unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
}

/// The script as the prompt gets it: comment lines dropped, a marker that prints only when the
/// script ran to its end.
fn at_prompt(case: &Case, i: usize) -> String {
    let body: Vec<&str> = case
        .prompt_source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    format!("{};\n`ran-to-the-end-${{{i}}}`", body.join("\n").trim_end())
}

#[test]
fn one_prompt_session_survives_the_whole_corpus() {
    let dir = workdir();
    let mut c = common::patholab_in(dir.path());
    c.env("TERM", "xterm")
        .args(PROMPT_LIMITS.iter().flat_map(|l| ["--limit", *l]))
        .arg("--quiet");
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(LIMIT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    let mut p = rexpect::session::spawn_with_options(c, options).unwrap();
    p.exp_string("patholab> ").unwrap();
    paste(&mut p, "let keep = 42;");
    p.exp_string("patholab> ").unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let mut failures = Vec::new();
    let mut report = String::from("\nhostile corpus at the prompt:\n");
    for (i, case) in corpus().iter().enumerate() {
        let text = at_prompt(case, i);
        assert!(
            !text.contains("error"),
            "{}: the word `error` in a script would confuse the prompt test",
            case.name
        );
        let start = Instant::now();
        paste(&mut p, &text);
        let marker = format!("ran-to-the-end-{i}");
        let (before, found) = match p.exp_regex(&format!("error|{marker}")) {
            Ok(x) => x,
            Err(_) => {
                // Still running after the limit: Ctrl-C, as a user would, and go on.
                p.send_control('c').unwrap();
                p.exp_string("interrupted")
                    .unwrap_or_else(|e| panic!("{}: Ctrl-C did not stop it: {e}", case.name));
                p.exp_string("patholab> ").unwrap();
                let verdict = format!(
                    "still running after {} s, stopped with Ctrl-C",
                    LIMIT.as_secs()
                );
                report += &format!(
                    "  {:<8}{:<32}{:>6.1}s  {verdict}\n",
                    if case.pending { "pending" } else { "FAIL" },
                    case.name,
                    start.elapsed().as_secs_f64()
                );
                if !case.pending {
                    failures.push(format!("{}: {verdict}", case.name));
                }
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
        };
        let rest = p
            .exp_string("patholab> ")
            .unwrap_or_else(|e| panic!("{}: no prompt after it: {e}\n{before}{found}", case.name));
        let message = utf8(&format!("{found}{rest}"));
        let ok = found == "error" && message.contains(&case.expect);
        let line = message
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(140)
            .collect::<String>();
        let tag = match (case.pending, ok) {
            (true, _) => "pending",
            (false, true) => "ok",
            (false, false) => "FAIL",
        };
        report += &format!(
            "  {tag:<8}{:<32}{:>6.1}s  {}\n",
            case.name,
            start.elapsed().as_secs_f64(),
            if found == "error" {
                line.as_str()
            } else {
                "ran without an error"
            }
        );
        if !ok && !case.pending {
            failures.push(format!("{}: {}", case.name, message.trim()));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("{report}");
    paste(&mut p, "`keep is ${keep}`");
    p.exp_string("keep is 42")
        .unwrap_or_else(|e| panic!("the prompt lost `keep`: {e}"));
    p.exp_string("patholab> ").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
