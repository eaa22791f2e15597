//! Small cohorts (issue 19): pooled out-of-fold scores equal scikit-learn's `cross_val_predict`
//! then `roc_auc_score` on the same folds (tests/fixtures/make_cohort.py), and the whole study in
//! quick mode finishes on a 7-patient 2-class CSV cohort and on a 4-slide one, the binary driven
//! as a user would, its rows saying how they were scored.

use crate::common;
use patholab_core::data::split::{Cv, CvOptions, Folds, Scoring};
use patholab_core::eval::results::Results;
use patholab_core::features::{Column, FeatureSet};
use patholab_core::learn::linear_svm::LinearSvm;
use patholab_core::learn::tune::{cross_val, search};
use patholab_core::learn::{fit, Classifier};
use std::path::{Path, PathBuf};

struct Fixture {
    f: FeatureSet,
    svm: LinearSvm,
    cases: serde_json::Value,
}

fn fixture() -> Fixture {
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/cohort.json"),
        )
        .expect("run scripts/make-fixtures"),
    )
    .unwrap();
    let x: Vec<Vec<f64>> = serde_json::from_value(v["x"].clone()).unwrap();
    let y: Vec<usize> = serde_json::from_value(v["y"].clone()).unwrap();
    let slides: Vec<String> = serde_json::from_value(v["slides"].clone()).unwrap();
    let (n, d) = (x.len(), x[0].len());
    let f = FeatureSet::new(
        x.iter().flatten().map(|v| *v as f32).collect(),
        (0..n).map(|i| i.to_string()).collect(),
        y,
        slides,
        vec!["negative".into(), "positive".into()],
        (0..d)
            .map(|c| Column {
                network: "x".into(),
                tap: "t".into(),
                reduce: "gap".into(),
                channel: c,
            })
            .collect(),
    )
    .unwrap();
    let svm = LinearSvm {
        C: v["C"].as_f64().unwrap(),
        tol: v["tol"].as_f64().unwrap(),
        ..Default::default()
    };
    Fixture {
        f,
        svm,
        cases: v["cases"].clone(),
    }
}

fn close(ours: f64, theirs: &serde_json::Value, what: &str) {
    let theirs = theirs.as_f64().unwrap();
    assert!(
        (ours - theirs).abs() <= 1e-9,
        "{what}: pooled AUC {ours} vs scikit-learn {theirs}"
    );
}

#[test]
fn pooled_scores_equal_cross_val_predict_then_roc_auc() {
    let fx = fixture();
    // Leave one slide out: every test part holds one class, so auto pools.
    let t = cross_val(
        &fx.svm,
        &fx.f,
        &Cv::leave_one_slide_out(CvOptions::default()),
    )
    .unwrap();
    assert_eq!(t.scoring, Scoring::Pooled);
    assert!(t.folds[0].iter().all(|s| s.is_nan()), "no fold has an AUC");
    close(
        t.pooled[0],
        &fx.cases["leave_one_slide_out"]["auc"],
        "leave one slide out",
    );
    assert_eq!(t.score(0), t.pooled[0]);

    // GroupKFold's folds, one of which holds one class: the same through the shared grid search.
    let case = &fx.cases["group_kfold"];
    let fold_of: Vec<usize> = serde_json::from_value(case["folds"].clone()).unwrap();
    let folds = Folds::from_assignment(
        &fold_of,
        &fx.f.slides,
        &fx.f.labels,
        &fx.f.classes,
        Scoring::Pooled,
    )
    .unwrap();
    let t = search(vec![vec![]], &folds, &fx.f.labels, true, |_, fold| {
        let m = fit(&fx.svm as &dyn Classifier, &fx.f.subset(fold.train)?)?;
        m.decision(&fx.f.subset(fold.test)?)
    })
    .unwrap();
    close(t.pooled[0], &case["auc"], "GroupKFold");
    let one_class: Vec<usize> = serde_json::from_value(case["one_class_folds"].clone()).unwrap();
    for (i, s) in t.folds[0].iter().enumerate() {
        assert_eq!(s.is_nan(), one_class.contains(&i), "fold {i}: {s}");
    }
    // Asked for per-fold scores on those folds: an error that names the fold and the fix.
    let per_fold = Folds {
        scoring: Scoring::PerFold,
        ..folds
    };
    let e = search(vec![vec![]], &per_fold, &fx.f.labels, true, |_, _| {
        Ok(vec![])
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(&format!(
            "fold {} of 4 given folds: its test part holds ",
            one_class[0]
        )),
        "{e}"
    );
    assert!(e.contains("scoring: \"pooled\""), "{e}");
}

/// A CSV cohort of demo white-blood-cell crops: `slides` slides of `Infected` (neutrophils) and
/// `NotInfected` (eosinophils), `(label, images)` per slide.
fn cohort(dir: &Path, name: &str, slides: &[(&str, usize)]) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo/bccd-wbc");
    let images = |class: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(demo.join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let (mut infected, mut not) = (
        images("Neutrophil").into_iter(),
        images("Eosinophil").into_iter(),
    );
    let mut csv = String::from("path,label,slide\n");
    for (s, (label, n)) in slides.iter().enumerate() {
        let source = if *label == "Infected" {
            &mut infected
        } else {
            &mut not
        };
        for _ in 0..*n {
            let p = source.next().expect("enough demo images");
            csv += &format!("{},{label},patient{s}\n", p.display());
        }
    }
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, csv).unwrap();
    path
}

/// Runs the whole study in quick mode on one CSV cohort; returns the log and the results.
fn study(dir: &Path, csv: &Path) -> (String, Results) {
    let out = dir.join("runs/all");
    let o = common::patholab_in(dir)
        .args(["--quiet", "run"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/paper/all.rhai"))
        .args(["--set", &format!("datasets=[\"{}\"]", csv.display())])
        .args(["--set", "quick=true"])
        .args(["--set", &format!("out=\"{}\"", out.display())])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "the study failed on {}:\n{log}",
        csv.display()
    );
    let t2 = std::fs::read_to_string(out.join("table2.md")).unwrap_or_default();
    for strategy in [
        "baseline (ET-FL)",
        "last layer",
        "feature selection",
        "inner layers",
        "fine-tuning",
    ] {
        assert!(
            t2.contains(strategy),
            "{strategy} missing from table2.md:\n{t2}\n{log}"
        );
    }
    let r = Results::load(&out.join("results.parquet")).unwrap();
    for row in &r.rows {
        let want: &[&str] = if row.classifier == "network" {
            &["holdout"]
        } else {
            &["pooled", "per_fold"]
        };
        assert!(want.contains(&row.scoring.as_str()), "{row:?}");
        assert!(row.score.is_finite(), "{row:?}");
    }
    (log, r)
}

#[test]
fn the_whole_study_finishes_on_small_cohorts() {
    let dir = tempfile::tempdir().unwrap();
    // 7 patients, 4 with the positive class and 3 without, 200 images.
    let csv = cohort(
        dir.path(),
        "cohort7",
        &[
            ("Infected", 30),
            ("Infected", 30),
            ("Infected", 30),
            ("Infected", 30),
            ("NotInfected", 27),
            ("NotInfected", 27),
            ("NotInfected", 26),
        ],
    );
    let (log, r) = study(dir.path(), &csv);
    // train+val keeps 2 of NotInfected's 3 slides: 3 folds cannot all hold it; said once.
    let said =
        "class NotInfected has 2 slides in the 5 slides given; 3 slide folds cannot all hold it";
    assert_eq!(log.matches(said).count(), 1, "{log}");
    assert!(
        r.rows.iter().all(|row| row.scoring != "per_fold"),
        "every CV pooled"
    );
    assert!(
        r.rows.iter().any(|row| row.note.contains(said)),
        "{:?}",
        r.rows[0]
    );
    assert!(
        r.rows.iter().all(|row| row.metric == "roc_auc"),
        "the test set holds both classes"
    );

    // 4 slides, 2 per class: the test set holds one slide, so one class.
    let dir = tempfile::tempdir().unwrap();
    let csv = cohort(
        dir.path(),
        "cohort4",
        &[
            ("Infected", 20),
            ("Infected", 20),
            ("NotInfected", 20),
            ("NotInfected", 20),
        ],
    );
    let (log, r) = study(dir.path(), &csv);
    assert!(
        log.contains("train, val and test cannot all hold it"),
        "{log}"
    );
    for row in &r.rows {
        assert_eq!(row.metric, "accuracy", "{row:?}");
        assert!(row.note.contains("test set holds one class"), "{row:?}");
    }
}
