//! `tune`: the grid point it keeps is the best of the grid as cross-validation scores each point
//! on its own, and the model it returns is that point refitted on all the rows it was given.

use patholab_core::data::split::Cv;
use patholab_core::features::{Column, FeatureSet};
use patholab_core::learn::linear_svm::LinearSvm;
use patholab_core::learn::tune::{cross_val, tune};
use patholab_core::learn::{fit, Classifier, Param};
use patholab_core::rng::Rng;

/// Two classes, 20 slides of 4 images, 30 columns of which 3 carry the class weakly: small C
/// underfits, large C fits the noise, so the grid's scores differ.
fn cohort() -> FeatureSet {
    let mut r = Rng::new(7);
    let (n, d) = (80, 30);
    let labels: Vec<usize> = (0..n).map(|i| (i / 4) % 2).collect();
    let mut x = Vec::with_capacity(n * d);
    for y in &labels {
        for c in 0..d {
            let signal = if c < 3 { (*y as f64 - 0.5) * 0.8 } else { 0.0 };
            x.push((signal + r.uniform() * 2.0 - 1.0) as f32);
        }
    }
    FeatureSet::new(
        x,
        (0..n).map(|i| format!("img{i}")).collect(),
        labels,
        (0..n).map(|i| format!("slide{}", i / 4)).collect(),
        vec!["a".into(), "b".into()],
        (0..d)
            .map(|c| Column {
                network: "n".into(),
                tap: "t".into(),
                reduce: "gap".into(),
                channel: c,
            })
            .collect(),
    )
    .unwrap()
}

fn svm(c: f64) -> Box<dyn Classifier> {
    let mut s: Box<dyn Classifier> = Box::new(LinearSvm::default());
    s.set("C", &Param::Float(c)).unwrap();
    s
}

#[test]
fn tune_keeps_the_best_grid_point_and_refits_it_on_all_rows() {
    let f = cohort();
    let cv = Cv::slide_kfold(4);
    let cs = [1e-5, 1e-3, 1e-1, 10.0, 1e3];
    let grid = vec![(
        "C".to_string(),
        cs.iter().map(|c| Param::Float(*c)).collect::<Vec<_>>(),
    )];
    let m = tune(&LinearSvm::default(), &f, &grid, &cv).unwrap();
    let table = m.cv.as_ref().unwrap();

    // Each point scored on its own, by cross_val with that C.
    let alone: Vec<f64> = cs
        .iter()
        .map(|c| {
            let t = cross_val(svm(*c).as_ref(), &f, &cv).unwrap();
            t.score(0)
        })
        .collect();
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(table.params[i], vec![("C".to_string(), Param::Float(*c))]);
        assert!(
            (table.score(i) - alone[i]).abs() < 1e-12,
            "C = {c}: tune scored {}, alone {}",
            table.score(i),
            alone[i]
        );
    }
    let best = (0..cs.len()).fold(0, |b, i| if alone[i] > alone[b] { i } else { b });
    assert!(
        alone.iter().any(|s| (s - alone[best]).abs() > 0.02),
        "the grid's scores hardly differ, the test would not see a wrong pick: {alone:?}"
    );
    assert_eq!(table.best(), best, "scores {alone:?}");
    let chosen = m.classifier.params();
    assert!(
        chosen.contains(&("C".to_string(), Param::Float(cs[best]))),
        "kept {chosen:?}, the best is C = {}",
        cs[best]
    );

    // The refit: the same decisions as a model fitted directly on all rows with the best C, and
    // not those of a fit on part of the rows or with another C.
    let direct = fit(svm(cs[best]).as_ref(), &f).unwrap();
    assert_eq!(m.decision(&f).unwrap(), direct.decision(&f).unwrap());
    let part = fit(
        svm(cs[best]).as_ref(),
        &f.subset(&(0..60).collect::<Vec<_>>()).unwrap(),
    )
    .unwrap();
    assert_ne!(m.decision(&f).unwrap(), part.decision(&f).unwrap());
    let other = (best + 1) % cs.len();
    let wrong = fit(svm(cs[other]).as_ref(), &f).unwrap();
    assert_ne!(m.decision(&f).unwrap(), wrong.decision(&f).unwrap());
}
