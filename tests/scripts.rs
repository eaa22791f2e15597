//! Every script in examples/ and scripts/paper/ runs (small settings), the whole study produces
//! Table 2 and the rank plot with every strategy, and ranks and the Friedman test equal scipy's
//! on the paper's own Table 2.

use patholab::eval::results::{Results, Row};
use std::path::Path;
use std::process::Command;

fn run(script: &str, sets: &[&str], out: &Path) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_patholab"));
    c.current_dir(out)
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
        run(
            &format!(
                "examples/teaching/{}",
                p.file_name().unwrap().to_string_lossy()
            ),
            &[],
            dir.path(),
        );
    }
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
        assert!(dir
            .path()
            .join(format!("runs/{s}/results.parquet"))
            .exists());
    }
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
    assert!(r.rows.len() >= 2 * 7, "{} rows", r.rows.len());
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
        let mut c = Command::new(env!("CARGO_BIN_EXE_patholab"));
        c.current_dir(dir.path())
            .env("PATHOLAB_WEIGHTS", &weights)
            .env("PATHOLAB_CACHE", dir.path().join("cache"))
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
    let (ok, log) = example(&["random=true"]);
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
