//! Classifiers and metrics against scikit-learn on the same features and folds
//! (tests/fixtures/make_learn.py).

use patholab_core::eval::{evaluate_scores, metrics};
use patholab_core::features::{Column, FeatureSet};
use patholab_core::learn::extra_trees::ExtraTrees;
use patholab_core::learn::linear_svm::LinearSvm;
use patholab_core::learn::{fit, tune::paper_score, Classifier};
use std::path::Path;
use tch::Tensor;

struct Data {
    f: FeatureSet,
    folds: Vec<usize>,
    svm: Vec<Vec<f64>>,
    et: Vec<Vec<f64>>,
    importances: Vec<f64>,
}

fn load(name: &str) -> Data {
    let t = patholab_core::nets::weights::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/learn.safetensors"),
    )
    .expect("run scripts/make-fixtures");
    let get = |k: &str| {
        t.iter()
            .find(|(n, _)| n == &format!("{name}/{k}"))
            .unwrap()
            .1
            .shallow_clone()
    };
    let x = get("x");
    let (n, d) = (x.size()[0] as usize, x.size()[1] as usize);
    let y: Vec<i64> = Vec::try_from(get("y")).unwrap();
    let k = (*y.iter().max().unwrap() + 1) as usize;
    let rows = |t: Tensor| -> Vec<Vec<f64>> {
        (0..t.size()[0])
            .map(|i| Vec::try_from(t.get(i)).unwrap())
            .collect()
    };
    let f = FeatureSet::new(
        Vec::try_from(x.flatten(0, -1)).unwrap(),
        (0..n).map(|i| i.to_string()).collect(),
        y.iter().map(|v| *v as usize).collect(),
        (0..n).map(|i| format!("s{}", i / 6)).collect(),
        (0..k).map(|c| c.to_string()).collect(),
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
    Data {
        f,
        folds: Vec::<i64>::try_from(get("folds"))
            .unwrap()
            .iter()
            .map(|v| *v as usize)
            .collect(),
        svm: rows(get("svm")),
        et: rows(get("et")),
        importances: Vec::try_from(get("importances")).unwrap(),
    }
}

fn fold_scores(c: &dyn Classifier, d: &Data) -> Vec<f64> {
    (0..5)
        .map(|k| {
            let tr: Vec<usize> = (0..d.f.n).filter(|i| d.folds[*i] != k).collect();
            let te: Vec<usize> = (0..d.f.n).filter(|i| d.folds[*i] == k).collect();
            let m = fit(c, &d.f.subset(&tr).unwrap()).unwrap();
            paper_score(&m, &d.f.subset(&te).unwrap()).unwrap()
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn linear_svm_matches_linearsvc() {
    for name in ["multi", "binary"] {
        let d = load(name);
        for (i, c) in [0.001, 0.01, 0.1, 1.0].iter().enumerate() {
            let ours = fold_scores(
                &LinearSvm {
                    C: *c,
                    ..Default::default()
                },
                &d,
            );
            for (a, b) in ours.iter().zip(&d.svm[i]) {
                assert!(
                    (a - b).abs() <= 0.01,
                    "{name} C={c}: {ours:?} vs scikit-learn {:?}",
                    d.svm[i]
                );
            }
        }
    }
}

#[test]
fn extra_trees_match_on_average_and_rank_features_alike() {
    for name in ["multi", "binary"] {
        let d = load(name);
        let ours: Vec<f64> = (0..5)
            .map(|s| {
                mean(&fold_scores(
                    &ExtraTrees {
                        n_trees: 100,
                        seed: s,
                        ..Default::default()
                    },
                    &d,
                ))
            })
            .collect();
        let theirs: Vec<f64> = d.et.iter().map(|r| mean(r)).collect();
        assert!(
            (mean(&ours) - mean(&theirs)).abs() <= 0.02,
            "{name}: {ours:?} vs {theirs:?}"
        );
        let m = fit(
            &ExtraTrees {
                n_trees: 500,
                seed: 0,
                ..Default::default()
            },
            &d.f,
        )
        .unwrap();
        let rho = spearman(&m.importances().unwrap(), &d.importances);
        assert!(rho >= 0.9, "{name}: Spearman {rho}");
    }
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (
        patholab_core::eval::results::rank_row(a),
        patholab_core::eval::results::rank_row(b),
    );
    let (ma, mb) = (mean(&ra), mean(&rb));
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn metrics_equal_scikit_learn() {
    let cases: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/learn.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for c in cases {
        let k = c["k"].as_u64().unwrap() as usize;
        let y: Vec<usize> = c["y"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let s: Vec<f64> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let classes: Vec<String> = (0..k).map(|i| i.to_string()).collect();
        let e = evaluate_scores(&y, &s, &classes).unwrap();
        let close = |a: f64, b: &serde_json::Value, what: &str| {
            assert!(
                (a - b.as_f64().unwrap()).abs() <= 1e-9,
                "{what}: {a} vs {b}"
            )
        };
        close(e.accuracy, &c["accuracy"], "accuracy");
        close(
            e.balanced_accuracy,
            &c["balanced_accuracy"],
            "balanced accuracy",
        );
        close(e.auc.unwrap(), &c["auc"], "auc");
        let cm: Vec<Vec<usize>> = serde_json::from_value(c["confusion"].clone()).unwrap();
        assert_eq!(e.confusion, cm);
    }
}

#[test]
fn undefined_metrics_are_errors_not_nan() {
    let err = metrics::roc_auc(&[true, true, true], &[0.1, 0.5, 0.9])
        .unwrap_err()
        .to_string();
    assert!(err.contains("only one class"), "{err}");
    assert!(metrics::roc_auc_ovr(
        &[0, 0, 1],
        &[0.2, 0.3, 0.5, 0.6, 0.1, 0.2, 0.3, 0.3, 0.4],
        3
    )
    .is_err());
    assert!(metrics::accuracy(&[], &[]).is_err());
    assert!(metrics::roc_auc(&[true, false], &[f64::NAN, 0.1]).is_err());
}
