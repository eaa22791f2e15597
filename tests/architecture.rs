//! The layering of the library is a property we test: each room of `src/` may import only the
//! rooms below it, so the house keeps standing as it grows. The order, lowest first:
//!
//!   base (error, rng, cancel, memory, progress, options, lib) → slide → nets → data → features → learn →
//!   eval → finetune, baseline → plot → script, cluster → repl, kernel → main, bench
//!
//! Rooms on one level above the base (finetune and baseline, script and cluster) may not import
//! each other.

use std::path::Path;

const LEVELS: &[&[&str]] = &[
    &[
        "error", "rng", "cancel", "memory", "progress", "options", "lib",
    ],
    &["slide"],
    &["nets"],
    &["data"],
    &["features"],
    &["learn"],
    &["eval"],
    &["finetune", "baseline"],
    &["plot"],
    &["script", "cluster"],
    &["repl", "kernel"],
    &["main", "bench"],
];

fn level(room: &str) -> Option<usize> {
    LEVELS.iter().position(|l| l.contains(&room))
}

/// The room of a file: its first folder under src/, or its stem for a top-level file.
fn room_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .to_string();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::room` a file names, outside its `#[cfg(test)]` module.
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let before = &code[..i];
        // `$crate::` in macros and `patholab::` are not imports of a room.
        if before.ends_with('$') || name.is_empty() {
            continue;
        }
        out.push(name);
    }
    out
}

#[test]
fn no_room_imports_a_room_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for f in &files {
        let room = room_of(f, &src);
        let Some(mine) = level(&room) else {
            panic!(
                "{}: room {room:?} is not in the layering order; add it to LEVELS",
                f.display()
            );
        };
        for used in imports(&std::fs::read_to_string(f).unwrap()) {
            let Some(theirs) = level(&used) else { continue }; // a crate-root item (Error, Result, parse_device)
            let sideways = theirs == mine && mine != 0; // the base rooms lean on each other
            if used != room && (theirs > mine || sideways) {
                upward.push(format!(
                    "{}: {room} imports {used}",
                    f.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "{} upward or sideways import(s):\n{}",
        upward.len(),
        upward.join("\n")
    );
}

#[test]
fn the_test_reads_imports() {
    let text = "use crate::nets::Network;\nlet x = $crate::options::Field;\n#[cfg(test)]\nuse crate::plot;";
    assert_eq!(imports(text), vec!["nets".to_string()]);
}
