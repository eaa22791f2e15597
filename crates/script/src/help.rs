//! Help, read from the declarations of `registry`: `help`, `help("topic")`, `help("name")` at the
//! prompt, `inspect` in notebooks, and the generated `docs/reference.md`.

use super::registry::{Api, Doc, Form, OptionList};
use std::sync::OnceLock;

/// Every declaration, collected once by registering into a bare engine.
pub fn entries() -> &'static [Doc] {
    static ALL: OnceLock<Vec<Doc>> = OnceLock::new();
    ALL.get_or_init(|| super::register(&mut rhai::Engine::new_raw()))
}

/// Topics in the order help lists them.
pub const TOPICS: &[(&str, &str)] = &[
    ("data", "datasets, splits and cross-validation folds"),
    ("networks", "networks, taps, weights and fine-tuning"),
    (
        "features",
        "feature extraction, feature sets, PCA, the cache",
    ),
    (
        "learning",
        "classifiers, tuning, feature selection, the ET-FL baseline",
    ),
    (
        "slide-level",
        "bags of tile features per slide or patient, attention MIL, attention per tile",
    ),
    ("evaluation", "metrics, results tables, ranks"),
    (
        "tables",
        "looking into tables: rows, columns, sorting, filtering, grouping",
    ),
    ("plots", "charts written as PNG or SVG"),
    (
        "slides",
        "whole-slide images: properties, regions, tissue, tiles as datasets, slide maps",
    ),
    ("prompt", "using the prompt: help, limits"),
];

const PROMPT: &str = "At the prompt: statements end with ';' or a newline when complete; an unfinished statement\n\
    continues on the next line (the prompt shows '...'). Tab completes functions, methods of a variable\n\
    (net.<Tab>), variables, and network or tap names inside strings. Ctrl-C stops a running computation;\n\
    Ctrl-D exits. `vars` lists variables; history is kept in ~/.local/share/patholab/history.";

/// Registers `help` itself.
pub fn register(api: &mut Api) {
    api.func("help() -> ()", "Lists the help topics.", "help()", || {
        println!("{}", help(None))
    });
    api.func(
        "help(name: String) -> ()",
        "Help on a topic or a function: signature, options with their defaults, an example.",
        r#"help("tune") // => ()"#,
        |s: &str| println!("{}", help(Some(s))),
    );
}

/// `help` or `help("name" | "topic")`.
pub fn help(what: Option<&str>) -> String {
    match what {
        None => {
            let mut s = String::from("patholab help. Topics (help(\"topic\")):\n");
            for (t, d) in TOPICS {
                s += &format!("  {t:<11} {d}\n");
            }
            s += "help(\"name\") shows one function; `vars` lists your variables; Tab completes.";
            s
        }
        Some("prompt") => format!("{PROMPT}\n\n{}", super::limits::describe()),
        Some(t) if TOPICS.iter().any(|(n, _)| *n == t) => {
            let mut s = format!("{t}:\n");
            for e in entries().iter().filter(|e| e.topic == t) {
                s += &format!("  {:<52} {}\n", e.signature, e.summary());
            }
            s.trim_end().to_string()
        }
        Some(name) => {
            let found: Vec<&Doc> = entries().iter().filter(|e| e.name == name).collect();
            if found.is_empty() {
                let all: Vec<&str> = entries().iter().map(|e| e.name.as_str()).collect();
                let near = patholab_core::options::closest(name, &all)
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                return format!("no function {name:?}{near} (help() lists the topics)");
            }
            found
                .iter()
                .map(|e| text(e))
                .collect::<Vec<_>>()
                .join("\n\n")
        }
    }
}

/// The help text of one declaration.
pub fn text(e: &Doc) -> String {
    let mut s = format!("{}\n  {}", e.signature, e.doc.replace('\n', "\n  "));
    if let Some(o) = &e.options {
        s += &format!(
            "\n  options (name, type, default, meaning):\n{}",
            option_lines(o, "    ")
        );
    }
    s + format!("\n  example: {}", e.example).as_str()
}

fn option_lines(o: &OptionList, indent: &str) -> String {
    let w = o
        .fields
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0);
    let kw = o
        .fields
        .iter()
        .map(|f| f.kind.chars().count())
        .max()
        .unwrap_or(0);
    let dw = o
        .fields
        .iter()
        .map(|f| f.default.chars().count())
        .max()
        .unwrap_or(0);
    o.fields
        .iter()
        .map(|f| {
            format!(
                "{indent}{:<w$}  {:<kw$}  {:<dw$}  {}",
                f.name,
                f.kind,
                f.default,
                f.doc.trim()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole reference as markdown (`patholab docs`), one section per topic.
pub fn reference() -> String {
    let mut s = String::from(
        "# patholab script reference\n\nGenerated by `patholab docs` from the declarations in `src/script/`; \
         do not edit by hand (`make docs` rewrites it, a test checks it).\n",
    );
    for (topic, about) in TOPICS {
        s += &format!("\n## {topic}\n\n{about}.\n");
        for e in entries().iter().filter(|e| e.topic == *topic) {
            let form = match e.form {
                Form::Function => "",
                Form::Method => " (method)",
                Form::Getter => " (property)",
            };
            s += &format!("\n### `{}`{form}\n\n{}\n", e.signature, e.doc);
            if let Some(o) = &e.options {
                s += "\n| option | type | default | meaning |\n|---|---|---|---|\n";
                for f in &o.fields {
                    s += &format!(
                        "| `{}` | {} | `{}` | {} |\n",
                        f.name,
                        f.kind.replace('|', "\\|"),
                        f.default.replace('|', "\\|"),
                        f.doc.trim()
                    );
                }
            }
            s += &format!("\n```\n{}\n```\n", e.example);
        }
    }
    s
}
