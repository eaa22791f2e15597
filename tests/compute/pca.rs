//! PCA fitted on training rows and applied to other rows, against scikit-learn
//! (tests/fixtures/make_pca.py; both sides make each axis's largest loading positive).

use patholab_core::features::pca::Pca;
use patholab_core::features::{Column, FeatureSet};
use std::path::Path;
use tch::Tensor;

fn fixture() -> Vec<(String, Tensor)> {
    patholab_core::nets::weights::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/pca/pca.safetensors"),
    )
    .expect("run tests/fixtures/make_pca.py (scripts/make-fixtures)")
}

fn get(t: &[(String, Tensor)], name: &str) -> Tensor {
    t.iter().find(|(n, _)| n == name).unwrap().1.shallow_clone()
}

fn set(x: &Tensor, prefix: &str) -> FeatureSet {
    let (n, d) = (x.size()[0] as usize, x.size()[1] as usize);
    FeatureSet::new(
        Vec::try_from(x.flatten(0, -1)).unwrap(),
        (0..n).map(|i| format!("{prefix}{i}")).collect(),
        vec![0; n],
        (0..n).map(|i| format!("{prefix}-slide{i}")).collect(),
        vec!["a".into()],
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

/// Largest absolute difference between our projection and scikit-learn's, relative to the
/// largest value of scikit-learn's.
fn relative(ours: &FeatureSet, want: &Tensor) -> f64 {
    let got = Tensor::from_slice(&ours.x)
        .reshape([ours.n as i64, ours.d as i64])
        .to_kind(tch::Kind::Double);
    f64::try_from((got - want).abs().max()).unwrap() / f64::try_from(want.abs().max()).unwrap()
}

#[test]
fn pca_fitted_on_training_rows_projects_other_rows_as_scikit_learn() {
    let t = fixture();
    let train = set(&get(&t, "train"), "tr");
    let test = set(&get(&t, "test"), "te");
    let p = Pca::fit(5, &train).unwrap();

    let want: Vec<f64> = Vec::try_from(get(&t, "explained_variance_ratio")).unwrap();
    for (i, (a, b)) in p.explained_variance_ratio.iter().zip(&want).enumerate() {
        assert!(
            (a - b).abs() < 1e-9,
            "explained variance ratio {i}: {a} vs {b}"
        );
    }

    let g = p.transform(&test).unwrap();
    assert_eq!(g.dims(), (15, 5));
    assert_eq!(g.ids, test.ids, "rows keep their images");
    let e = relative(&g, &get(&t, "test_projected"));
    assert!(e < 1e-5, "test rows: relative error {e:e}");
    let e = relative(&p.transform(&train).unwrap(), &get(&t, "train_projected"));
    assert!(e < 1e-5, "training rows: relative error {e:e}");

    // Fitted on the test rows instead, the axes and the centring differ: the fixture tells.
    let wrong = Pca::fit(5, &test).unwrap().transform(&test).unwrap();
    let e = relative(&wrong, &get(&t, "test_projected"));
    assert!(e > 1e-2, "a PCA fitted on the test rows passes too ({e:e})");

    // Another number of columns is refused.
    let fewer = test.select_columns(&[0, 1, 2]).unwrap();
    let err = p.transform(&fewer).unwrap_err().to_string();
    assert!(
        err.contains("fitted on 12 columns, this set has 3"),
        "{err}"
    );
}
