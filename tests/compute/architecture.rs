//! The layering of the workspace is a property we test. Across crates the compiler keeps it
//! (`patholab-core` cannot name `patholab-script`, which cannot name the binary), and the core
//! crate's dependencies must not pull a script engine, an async runtime or a terminal in. Inside
//! the core crate, each room (a folder of `crates/core/src`, or a top-level file) may import only
//! the rooms below it. The order, lowest first:
//!
//!   base (lib, error, options, rng, cancel, memory, progress, input) → slide → nets → data →
//!   features → learn → eval → finetune, baseline → plot → cluster
//!
//! Rooms on one level above the base (finetune and baseline) may not import each other. An
//! import is any path that reaches a room: `crate::room`, each member of a `crate::{a, b}` group,
//! `super::…` climbing out of the file's room, in `use`, `pub use` (a re-export is an import) and
//! in expressions alike.

use std::path::{Path, PathBuf};

const LEVELS: &[&[&str]] = &[
    &[
        "lib", "error", "options", "rng", "cancel", "memory", "progress", "input",
    ],
    &["slide"],
    &["nets"],
    &["data"],
    &["features"],
    &["learn"],
    &["eval"],
    &["finetune", "baseline"],
    &["plot"],
    &["cluster"],
];

fn level(room: &str) -> Option<usize> {
    LEVELS.iter().position(|l| l.contains(&room))
}

fn core_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src")
}

/// The module path of a file under src/: `nets/vit.rs` → [nets, vit], `nets/mod.rs` → [nets],
/// `lib.rs` → [].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The room of a module path: its first segment, or `lib` for the crate root.
fn room_of(module: &[String]) -> String {
    module.first().cloned().unwrap_or_else(|| "lib".into())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first segment of each path inside a `{ … }` group that starts at `s` (after the brace),
/// nested groups included only at the top level of this group.
fn group_members(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut at_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_start = true,
            c if c.is_whitespace() => {}
            _ if at_start && depth == 0 => {
                at_start = false;
                let name = ident(&s[i..]);
                if !name.is_empty() && name != "self" {
                    out.push(name);
                }
            }
            _ => {}
        }
    }
    out
}

/// Every room of the crate a file's code names (outside its `#[cfg(test)]` module), given the
/// file's module path: `crate::x`, the members of `crate::{x, y}`, and `super::` paths resolved
/// against the module path. `$crate::` (inside macros) is not an import.
fn imports(text: &str, module: &[String]) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    // Comments (doc links included) name rooms without importing them.
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let before = &code[..i];
        if before.ends_with('$') || before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            out.extend(group_members(group));
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    for (i, _) in code.match_indices("super::") {
        let before = &code[..i];
        // Only the first `super::` of a chain starts a path.
        if before.ends_with("super::")
            || before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let mut rest = &code[i..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        // A file's own module is its path; `super` is its parent.
        let Some(base) = module.len().checked_sub(up) else {
            continue;
        };
        if base > 0 {
            continue; // still inside the file's own room
        }
        if let Some(group) = rest.strip_prefix('{') {
            out.extend(group_members(group));
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Every upward or sideways import of the rooms in `files` (path relative to src, text).
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut upward = Vec::new();
    for (rel, text) in files {
        let module = module_path(rel);
        let room = room_of(&module);
        let Some(mine) = level(&room) else {
            upward.push(format!(
                "{}: room {room:?} is not in the layering order; add it to LEVELS",
                rel.display()
            ));
            continue;
        };
        for used in imports(text, &module) {
            // A crate-root item (Error, Result, parse_device, SOURCE_ROOT) or a macro.
            let Some(theirs) = level(&used) else { continue };
            let sideways = theirs == mine && mine != 0; // the base rooms lean on each other
            if used != room && (theirs > mine || sideways) {
                upward.push(format!("{}: {room} imports {used}", rel.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    upward
}

#[test]
fn no_room_of_the_core_imports_a_room_above_it() {
    let src = core_src();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    assert!(
        paths.len() > 50,
        "found only {} files under {}",
        paths.len(),
        src.display()
    );
    let files: Vec<(PathBuf, String)> = paths
        .iter()
        .map(|p| {
            (
                p.strip_prefix(&src).unwrap().to_path_buf(),
                std::fs::read_to_string(p).unwrap(),
            )
        })
        .collect();
    let upward = violations(&files);
    assert!(
        upward.is_empty(),
        "{} upward or sideways import(s):\n{}",
        upward.len(),
        upward.join("\n")
    );
}

fn cargo_tree(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "-p", "patholab-core", "-e", "normal"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The crate names of a `cargo tree --prefix depth` listing, with their depth.
fn tree_names(tree: &str) -> Vec<(usize, String)> {
    tree.lines()
        .filter_map(|l| {
            let digits: String = l.chars().take_while(|c| c.is_ascii_digit()).collect();
            let depth = digits.parse().ok()?;
            let name = l[digits.len()..].split(' ').next()?.to_string();
            Some((depth, name))
        })
        .collect()
}

#[test]
fn the_core_crate_depends_on_no_script_engine_runtime_or_terminal() {
    let tree = tree_names(&cargo_tree(&["--prefix", "depth"]));
    assert!(tree.len() > 20, "cargo tree printed {tree:?}");
    // polars is pinned below 0.54, whose polars-core needs tokio unconditionally.
    for (_, name) in &tree {
        for banned in [
            "rhai",
            "tokio",
            "zeromq",
            "zmq",
            "rustyline",
            "jupyter-protocol",
        ] {
            assert!(name != banned, "patholab-core pulls in {banned}: {tree:?}");
        }
    }
}

fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    list.iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect()
}

#[test]
fn the_test_reads_plain_paths_and_ignores_macros_and_tests() {
    let m = ["data".to_string()];
    let text = "use crate::nets::Network;\nlet x = $crate::options::Field;\n#[cfg(test)]\nuse crate::plot;";
    assert_eq!(imports(text, &m), vec!["nets".to_string()]);
    // An expression path counts as much as a use line.
    assert_eq!(
        imports("let n = crate::learn::argmax_rows(&s, 2);", &m),
        vec!["learn"]
    );
    // A doc link is not an import.
    assert!(imports("//! See [`crate::plot::Figure`].\n/// [`crate::eval`]", &m).is_empty());
}

#[test]
fn the_test_reads_groups() {
    let m = ["data".to_string()];
    let text = "use crate::{\n    error::Result,\n    plot::{self, Figure},\n    nets,\n};";
    assert_eq!(imports(text, &m), vec!["error", "plot", "nets"]);
    assert_eq!(
        violations(&files(&[("data/mod.rs", text)])),
        vec!["data/mod.rs: data imports plot"]
    );
}

#[test]
fn the_test_resolves_super_paths() {
    // Inside a room, super:: stays in the room.
    let inner = ["nets".to_string(), "vit".to_string()];
    assert!(imports("use super::body::Body;", &inner).is_empty());
    // Climbing out of the room reaches another room.
    let deep = [
        "nets".to_string(),
        "weights".to_string(),
        "pickle".to_string(),
    ];
    assert_eq!(
        imports("use super::super::super::eval::table;", &deep),
        vec!["eval"]
    );
    assert_eq!(
        violations(&files(&[(
            "nets/weights/pickle.rs",
            "use super::super::super::{error::Error, plot};"
        )])),
        vec!["nets/weights/pickle.rs: nets imports plot"]
    );
    // From a top-level file, super:: is the crate root.
    assert_eq!(
        imports("use super::features::FeatureSet;", &["memory".to_string()]),
        vec!["features"]
    );
}

#[test]
fn the_test_counts_re_exports_and_unknown_rooms() {
    assert_eq!(
        violations(&files(&[(
            "learn/mod.rs",
            "pub use crate::eval::table::Table;"
        )])),
        vec!["learn/mod.rs: learn imports eval"]
    );
    // Sideways on one level is refused; the base rooms may lean on each other.
    assert_eq!(
        violations(&files(&[
            ("finetune/mod.rs", "use crate::baseline::EtFl;"),
            ("rng.rs", "use crate::error::Result;"),
        ])),
        vec!["finetune/mod.rs: finetune imports baseline"]
    );
    assert_eq!(
        violations(&files(&[("viewer/mod.rs", "")])),
        vec!["viewer/mod.rs: room \"viewer\" is not in the layering order; add it to LEVELS"]
    );
}
