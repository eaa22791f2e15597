//! Every script in examples/ and scripts/paper/ runs (small settings), the whole study produces
//! Table 2 and the rank plot with every strategy, and ranks and the Friedman test equal scipy's
//! on the paper's own Table 2.

use patholab_core::data::split::{Split, SplitOptions};
use patholab_core::data::Dataset;
use patholab_core::eval::results::{Results, Row};
use std::collections::BTreeSet;
use std::path::Path;

/// Runs a script in `out` with a feature cache of its own (inside `out`, never the user's).
fn run(script: &str, sets: &[&str], out: &Path) -> String {
    let mut c = crate::common::patholab();
    c.current_dir(out)
        .env("PATHOLAB_CACHE", out.join(".cache"))
        .arg("--quiet")
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script));
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{script} failed:\n{log}");
    log
}

#[test]
fn examples_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = run("examples/hello.rhai", &["name=\"test\""], dir.path());
    assert!(log.contains("hello, test"));
    let log = run("examples/quickstart.rhai", &[], dir.path());
    assert!(
        log.contains("linear_svm") && log.contains("confusion.png") && log.contains("ranks.png"),
        "{log}"
    );
    assert!(dir.path().join("runs/quickstart/ranks.png").exists());
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/teaching")).unwrap()
    {
        let p = entry.unwrap().path();
        // The notebooks beside them are generated from these scripts (tests/processes/kernel.rs runs those).
        if p.extension().is_none_or(|e| e != "rhai") {
            continue;
        }
        run(
            &format!(
                "examples/teaching/{}",
                p.file_name().unwrap().to_string_lossy()
            ),
            &[],
            dir.path(),
        );
    }
    assert!(images_in(dir.path()) >= 3, "the examples wrote no charts");
}

/// Decodes every PNG and SVG under `dir` (a chart that is written but empty or broken fails here),
/// and returns how many there were.
fn images_in(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            match p.extension().and_then(|e| e.to_str()) {
                Some("png") => {
                    let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    assert!(
                        img.width() >= 100 && img.height() >= 100,
                        "{}: {}x{}",
                        p.display(),
                        img.width(),
                        img.height()
                    );
                    // A chart has more than one colour.
                    let rgb = img.to_rgb8();
                    let first = *rgb.get_pixel(0, 0);
                    assert!(
                        rgb.pixels().any(|q| *q != first),
                        "{}: a blank image",
                        p.display()
                    );
                }
                Some("svg") => {
                    let t = std::fs::read_to_string(&p).unwrap();
                    let open = t
                        .find("<svg")
                        .unwrap_or_else(|| panic!("{}: no <svg>", p.display()));
                    let size = |attr: &str| -> f64 {
                        let rest = &t[open..];
                        let v = rest.split(&format!("{attr}=\"")).nth(1).unwrap_or("0");
                        v.split('"')
                            .next()
                            .unwrap()
                            .trim_end_matches("px")
                            .parse()
                            .unwrap_or(0.0)
                    };
                    assert!(
                        size("width") >= 100.0
                            && size("height") >= 100.0
                            && t.trim_end().ends_with("</svg>"),
                        "{}: not a whole SVG chart",
                        p.display()
                    );
                    assert!(
                        t.matches("<text").count()
                            + t.matches("<path").count()
                            + t.matches("<rect").count()
                            > 3
                    );
                }
                _ => continue,
            }
            n += 1;
        }
    }
    n
}

#[test]
fn each_paper_script_runs_on_small_settings() {
    let dir = tempfile::tempdir().unwrap();
    for s in [
        "last_layer",
        "feature_selection",
        "merge_networks",
        "merge_layers",
        "inner_layers",
        "fine_tuning",
        "et_fl_baseline",
    ] {
        let out = format!("out=\"runs/{s}\"");
        run(
            &format!("scripts/paper/{s}.rhai"),
            &[
                "datasets=[\"demo:kather\"]",
                "networks=[\"efficientnet_lite0\", \"efficientnet_lite1\"]",
                "quick=true",
                &out,
            ],
            dir.path(),
        );
        let t2 = std::fs::read_to_string(dir.path().join(format!("runs/{s}/table2.md"))).unwrap();
        assert!(t2.contains("demo:kather"), "{t2}");
        let r = Results::load(&dir.path().join(format!("runs/{s}/results.parquet"))).unwrap();
        assert!(!r.rows.is_empty(), "{s}: no rows");
        for row in &r.rows {
            assert!(
                row.score.is_finite() && (0.0..=1.0).contains(&row.score),
                "{s}: {row:?}"
            );
        }
    }
    assert!(
        images_in(dir.path()) >= 7,
        "the paper scripts wrote no charts"
    );
}

#[test]
fn the_whole_study_over_both_shared_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let log = run(
        "scripts/paper/all.rhai",
        &[
            "datasets=[\"demo\", \"demo:kather\"]",
            "quick=true",
            "out=\"runs/all\"",
        ],
        dir.path(),
    );
    let t2 = std::fs::read_to_string(dir.path().join("runs/all/table2.md")).unwrap();
    for strategy in [
        "baseline (ET-FL)",
        "last layer",
        "feature selection",
        "merge networks",
        "merge layers",
        "inner layers",
        "fine-tuning",
    ] {
        assert!(
            t2.contains(strategy),
            "{strategy} missing from table2.md:\n{t2}"
        );
    }
    for f in ["ranks.png", "cd.png", "results.parquet", "results.csv"] {
        assert!(
            dir.path().join("runs/all").join(f).exists(),
            "{f} missing\n{log}"
        );
    }
    let r = Results::load(&dir.path().join("runs/all/results.parquet")).unwrap();
    // Exactly the rows of the study: per dataset ET-FL once, last layer per network × classifier,
    // feature selection / merge networks / merge layers / inner layers per classifier, fine-tuning once.
    let nets = [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ];
    let classifiers = ["linear_svm", "extra_trees", "perceptron"];
    let mut want = BTreeSet::new();
    for d in ["demo", "demo:kather"] {
        let mut add = |s: &str, n: &str, c: &str| {
            want.insert((d.to_string(), s.to_string(), n.to_string(), c.to_string()))
        };
        add("baseline (ET-FL)", "", "et_fl");
        add("fine-tuning", nets[0], "network");
        for c in classifiers {
            for n in nets {
                add("last layer", n, c);
            }
            add("feature selection", nets[0], c);
            add("merge networks", &nets.join("+"), c);
            add("merge layers", nets[0], c);
            add("inner layers (efficientnet_lite0)", nets[0], c);
        }
    }
    let got: Vec<_> = r
        .rows
        .iter()
        .map(|x| {
            (
                x.dataset.clone(),
                x.strategy.clone(),
                x.network.clone(),
                x.classifier.clone(),
            )
        })
        .collect();
    assert_eq!(got.len(), want.len(), "rows: {got:#?}");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    for row in &r.rows {
        assert!(
            row.score.is_finite() && (0.0..=1.0).contains(&row.score) && row.metric == "accuracy",
            "{row:?}"
        );
    }
    // The last-layer SVM on the white-blood-cell demo is clearly better than always saying the
    // test split's most common class.
    let demo = Dataset::open("demo", &Default::default()).unwrap();
    let split = Split::new(&demo, &SplitOptions::default()).unwrap();
    let counts = demo.subset(&split.test).unwrap().class_counts();
    let majority = *counts.iter().max().unwrap() as f64 / split.test.len() as f64;
    let svm = r
        .rows
        .iter()
        .find(|x| x.dataset == "demo" && x.strategy == "last layer" && x.classifier == "linear_svm")
        .unwrap();
    assert!(
        svm.score >= majority + 0.1,
        "last-layer SVM {} vs majority rate {majority}",
        svm.score
    );
    // The Friedman test over the two datasets is printed with finite statistics.
    let friedman = log
        .lines()
        .find(|l| l.contains("\"chi2\"") && l.contains("\"p_value\""))
        .unwrap_or_else(|| panic!("no Friedman output:\n{log}"));
    let value = |k: &str| -> f64 {
        friedman
            .split(&format!("\"{k}\": "))
            .nth(1)
            .unwrap()
            .split([',', '}'])
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        value("chi2") > 0.0 && (0.0..=1.0).contains(&value("p_value")),
        "{friedman}"
    );
    assert!(images_in(&dir.path().join("runs/all")) >= 2);
}

#[test]
fn strategies_are_short() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib/strategies.rhai"),
    )
    .unwrap();
    let mut name = String::new();
    let mut lines = 0;
    for l in src.lines() {
        if let Some(rest) = l.strip_prefix("fn ") {
            name = rest.split('(').next().unwrap().to_string();
            lines = 0;
        }
        if !name.is_empty() {
            lines += 1;
            assert!(lines <= 25, "strategy {name} is longer than 25 lines");
        }
        if l == "}" {
            name.clear();
        }
    }
}

#[test]
fn ranks_and_friedman_equal_scipy_on_the_papers_table() {
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/ranks.json"),
        )
        .expect("run scripts/make-fixtures"),
    )
    .unwrap();
    let strategies: Vec<String> = serde_json::from_value(v["strategies"].clone()).unwrap();
    let datasets: Vec<String> = serde_json::from_value(v["datasets"].clone()).unwrap();
    let table: Vec<Vec<f64>> = serde_json::from_value(v["table"].clone()).unwrap();
    let mut r = Results::default();
    for (s, row) in strategies.iter().zip(&table) {
        for (d, score) in datasets.iter().zip(row) {
            r.rows.push(Row {
                dataset: d.clone(),
                strategy: s.clone(),
                score: *score,
                ..Default::default()
            });
        }
    }
    let ranks = r.ranks().unwrap();
    let want: Vec<f64> = serde_json::from_value(v["mean_ranks"].clone()).unwrap();
    for (s, w) in strategies.iter().zip(&want) {
        let i = ranks.methods.iter().position(|m| m == s).unwrap();
        assert!(
            (ranks.mean[i] - w).abs() < 1e-12,
            "{s}: {} vs scipy {w}",
            ranks.mean[i]
        );
    }
    let f = ranks.friedman().unwrap();
    assert!(
        (f.chi2 - v["chi2"].as_f64().unwrap()).abs() < 1e-9,
        "chi2 {} vs {}",
        f.chi2,
        v["chi2"]
    );
    assert!(
        (f.p_value - v["p_value"].as_f64().unwrap()).abs() < 1e-9,
        "p {} vs {}",
        f.p_value,
        v["p_value"]
    );
}

#[test]
fn foundation_models_example_on_random_weights_has_a_row_per_block() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("no-weights");
    let example = |sets: &[&str]| {
        let mut c = crate::common::patholab_in(dir.path());
        c.env("PATHOLAB_WEIGHTS", &weights)
            .args(["--quiet", "run"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/foundation_models.rhai"));
        for s in sets {
            c.args(["--set", s]);
        }
        let o = c.output().unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    // Without weights it says how to get them and stops.
    let (_, log) = example(&[]);
    assert!(
        log.contains("patholab weights fetch kaiko_vits16") && log.contains("random=true"),
        "{log}"
    );
    // Every third image: the workflow is what is checked here, and it is the longest test.
    let (ok, log) = example(&["random=true", "every=3"]);
    assert!(ok, "{log}");
    let r = Results::load(&dir.path().join("runs/foundation_models/results.csv")).unwrap();
    let blocks: Vec<&Row> = r
        .rows
        .iter()
        .filter(|row| row.strategy == "FM block")
        .collect();
    assert_eq!(blocks.len(), 12, "one row per block of ViT-S");
    assert_eq!(blocks[11].taps, "blocks.11");
    for strategy in [
        "last layer",
        "inner layers (kaiko_vits16)",
        "merge layers",
        "merge networks",
    ] {
        assert!(
            r.rows.iter().any(|row| row.strategy == strategy),
            "{strategy}"
        );
    }
    assert!(r
        .rows
        .iter()
        .any(|row| row.network == "kaiko_vits16+efficientnet_lite0"));
}

/// The slide-level strategy: the paper script on the witness task (two taps, quick), and the
/// stdlib strategy on a dataset's own split (BCCD: one bag per patient).
#[test]
fn the_slide_level_strategy_runs_on_witness_bags_and_on_a_split() {
    let dir = tempfile::tempdir().unwrap();
    run(
        "scripts/paper/slide_level.rhai",
        &[
            "taps=[\"_blocks.10\", \"last\"]",
            "bags=40",
            "quick=true",
            "out=\"runs/slide_level\"",
        ],
        dir.path(),
    );
    let r = Results::load(&dir.path().join("runs/slide_level/results.parquet")).unwrap();
    assert_eq!(r.rows.len(), 4, "two taps × (abmil, mean_mil)");
    for row in &r.rows {
        assert!(
            row.score.is_finite() && (0.0..=1.0).contains(&row.score),
            "{row:?}"
        );
        assert_eq!(row.strategy, "slide level");
        assert_eq!(row.metric, "roc_auc");
    }
    let script = dir.path().join("cohort.rhai");
    std::fs::write(
        &script,
        r#"import "strategies" as s;
let data = dataset("demo");
let cfg = #{ cv: slide_kfold(3), mil: #{ epochs: 2, quiet: true }, mil_grid: #{ lr: [1e-3] } };
let r = results();
s::slide_level(r, "demo", data, data.split(#{ seed: 0 }), ["efficientnet_lite0"], ["last"], #{ by: "patient" }, cfg);
r.save("runs/cohort/results.parquet");
"#,
    )
    .unwrap();
    run(script.to_str().unwrap(), &[], dir.path());
    let r = Results::load(&dir.path().join("runs/cohort/results.parquet")).unwrap();
    assert_eq!(r.rows.len(), 2, "abmil and mean_mil");
}
