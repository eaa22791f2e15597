//! Help text for every script function, recorded where the function is registered (one place),
//! used by `help`, `help("name")` and tab completion.

use std::sync::OnceLock;

/// One documented function.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: &'static str,
    pub topic: &'static str,
    /// Type of the first parameter when the function reads as a method (`net.taps()`).
    pub receiver: Option<&'static str>,
    pub signature: &'static str,
    pub doc: &'static str,
    pub example: &'static str,
}

/// Every entry, collected once from the registration code.
pub fn entries() -> &'static [Entry] {
    static ALL: OnceLock<Vec<Entry>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut e = rhai::Engine::new_raw();
        super::api::register_with_help(&mut e)
    })
}

const TOPICS: &[(&str, &str)] = &[
    ("data", "datasets, splits and cross-validation folds"),
    ("networks", "networks, taps and weights"),
    (
        "features",
        "feature extraction, feature sets, PCA, the cache",
    ),
    ("learning", "classifiers, tuning, feature selection"),
    ("evaluation", "metrics and results tables, ranks"),
    ("plots", "charts written as PNG or SVG"),
    ("prompt", "using the prompt"),
];

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
        Some("prompt") => "At the prompt: statements end with ';' or a newline when complete; an unfinished statement\n\
            continues on the next line. Tab completes functions, methods of a variable (net.<Tab>), variables,\n\
            and network or tap names inside strings. Ctrl-C stops a running computation; Ctrl-D exits.\n\
            `vars` lists variables; history is kept in ~/.local/share/patholab/history."
            .into(),
        Some(t) if TOPICS.iter().any(|(n, _)| *n == t) => {
            let mut s = format!("{t}:\n");
            for e in entries().iter().filter(|e| e.topic == t) {
                s += &format!("  {:<48} {}\n", e.signature, e.doc.lines().next().unwrap_or(""));
            }
            s.trim_end().to_string()
        }
        Some(name) => {
            let found: Vec<&Entry> = entries().iter().filter(|e| e.name == name).collect();
            if found.is_empty() {
                let near: Vec<&str> = entries().iter().map(|e| e.name).filter(|n| n.contains(name)).collect();
                return format!("no function {name:?}{}", if near.is_empty() { String::new() } else { format!("; similar: {}", near.join(", ")) });
            }
            found
                .iter()
                .map(|e| format!("{}\n  {}\n  example: {}", e.signature, e.doc.replace('\n', "\n  "), e.example))
                .collect::<Vec<_>>()
                .join("\n\n")
        }
    }
}
