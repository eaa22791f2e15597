//! The script reference is generated from the declarations, and every declared function, method
//! and getter has help with an example that runs.

use crate::common;

use patholab_script::{self as script, help, registry::Doc};
use rhai::{Dynamic, Scope};

/// The variables the examples use, made once.
const PRELUDE: &str = r#"
let data = dataset("demo");
let rows = []; for i in range(0, 351, 12) { rows.push(i); }
let small = data.subset(rows);
let split = data.split(#{ seed: 0 });
let net = network("efficientnet_lite0");
let f = net.features(data, #{ quiet: true });
let train = f.subset(split.train_val);
let test = f.subset(split.test);
let m = tune(linear_svm(), train, #{ C: [0.01, 0.1] }, slide_kfold(3));
let sel = rfe(extra_trees(#{ n_trees: 10 }), #{ step: 0.5 }).fit(train);
let ft = net.finetune(small, small.split(), #{ head_epochs: 1, epochs: 0, batch: 8, quiet: true });
let r = results();
for d in ["a", "b", "c"] {
    r.add(#{ dataset: d, strategy: "last layer", network: "n", classifier: "svm", score: 0.8 });
    r.add(#{ dataset: d, strategy: "inner layers", network: "n", classifier: "svm", score: 0.7 });
}
"#;

#[test]
fn the_committed_reference_is_what_the_binary_generates() {
    let out = common::patholab()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("docs")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/reference.md differs from `patholab docs`; run `make docs` and commit it"
    );
}

#[test]
fn every_declaration_has_help_and_its_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("PATHOLAB_CACHE", dir.path().join("cache"));
    // Examples write files where they run; the folder is given back before it is deleted.
    let home = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    patholab_core::progress::set_quiet(true);
    let engine = script::engine();
    let mut scope = Scope::new();
    engine
        .run_with_scope(&mut scope, PRELUDE)
        .expect("the prelude runs");
    let docs: &[Doc] = help::entries();
    assert!(docs.len() > 100, "only {} declarations", docs.len());
    let mut failures = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for d in docs {
        if d.doc.trim().is_empty() || d.example.trim().is_empty() || d.signature.trim().is_empty() {
            failures.push(format!("{}: missing doc, signature or example", d.name));
            continue;
        }
        if !d.example.contains(&d.name) {
            failures.push(format!(
                "{}: the example does not use it: {}",
                d.name, d.example
            ));
        }
        let mut s = scope.clone();
        let got = match engine.eval_with_scope::<Dynamic>(&mut s, &d.example) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{} — `{}`: {e}", d.signature, d.example));
                continue;
            }
        };
        if let Some(want) = d.expected() {
            checked.insert(d.topic);
            match engine.eval::<Dynamic>(want) {
                Ok(w) if w.to_string() == got.to_string() && w.type_name() == got.type_name() => {}
                Ok(w) => failures.push(format!(
                    "{} — `{}` gives {got} ({}), the example states {w} ({})",
                    d.signature,
                    d.example,
                    got.type_name(),
                    w.type_name()
                )),
                Err(e) => failures.push(format!("{}: the stated value {want:?}: {e}", d.signature)),
            }
        }
    }
    // Every family states the value of at least one example.
    for topic in docs
        .iter()
        .map(|d| d.topic)
        .collect::<std::collections::BTreeSet<_>>()
    {
        if !checked.contains(topic) {
            failures.push(format!(
                "{topic}: no example states its value (`// => value`)"
            ));
        }
    }
    std::env::set_current_dir(home).unwrap();
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn help_shows_options_with_their_defaults() {
    let h = help::help(Some("finetune"));
    let line = h
        .lines()
        .find(|l| l.trim_start().starts_with("head_epochs"))
        .unwrap_or("");
    assert!(
        line.contains("int ≥ 0")
            && line.contains(" 5 ")
            && line.contains("Epochs of the head phase"),
        "{h}"
    );
    assert!(h.contains("example: "), "{h}");
    let h = help::help(Some("et_fl"));
    assert!(h.contains("(default 10)") || h.contains("C "), "{h}");
    let h = help::help(Some("network"));
    assert!(h.contains("inception_v3"), "{h}");
    let h = help::help(Some("tset"));
    assert!(h.contains("did you mean \"test\"?"), "{h}");
}
