//! The rooms of src/ stand in layers: a room imports only rooms below it (DESIGN.md). Read from
//! the source: every `crate::<room>` a file names must sit lower than (or in) the file's room.

use std::path::Path;

/// Rooms, lowest first; rooms on one line share a level.
const LEVELS: &[&[&str]] = &[
    &["error", "rng", "cancel", "memory", "progress", "options", "Result", "Error", "home_cache", "parse_device", "options!", "choice!"],
    &["nets"],
    &["data"],
    &["features"],
    &["learn"],
    &["eval"],
    &["finetune", "baseline"],
    &["plot"],
    &["script", "bench"],
    &["repl"],
];

/// Imports known to break the order, owned by other work: `(room, imported room)`.
const KNOWN: &[(&str, &str)] = &[
    // nets predicts one image through data's loader and features' preprocessing, and keeps
    // fine-tuning curves.
    ("nets", "data"),
    ("nets", "features"),
    ("nets", "finetune"),
    // The script runner installs the prompt's Ctrl-C handler; src/script/ is being rewritten.
    ("script", "repl"),
];

fn level(room: &str) -> Option<usize> {
    LEVELS.iter().position(|l| l.contains(&room))
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_room_imports_only_rooms_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let room = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = level(&room) else { continue };
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            for part in line.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '!')
                    .collect();
                let name = name.trim_end_matches('!');
                let name = if line.contains(&format!("crate::{name}!")) { format!("{name}!") } else { name.to_string() };
                let Some(theirs) = level(&name) else { continue };
                if theirs > own && !KNOWN.contains(&(room.as_str(), name.as_str())) {
                    wrong.push(format!("{}:{}: {room} imports {name}", rel.display(), i + 1));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports from a room above:\n{}", wrong.join("\n"));
}
