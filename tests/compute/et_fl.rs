//! The ET-FL baseline: above the majority class on BCCD with slide-grouped CV, deterministic,
//! and sparse end to end (bounded memory with 200,000+ leaves).

use patholab_core::baseline::et_fl::{cross_val, EtFl};
use patholab_core::data::split::Cv;
use patholab_core::data::{Dataset, OpenOptions};

#[test]
fn beats_the_majority_class_and_repeats_with_its_seed() {
    let ds = Dataset::open("demo", &OpenOptions::default()).unwrap();
    let all: Vec<usize> = (0..ds.len()).collect();
    let p = EtFl {
        n_subwindows: 200,
        seed: 1,
        ..Default::default()
    };
    let t = cross_val(&p, &ds, &all, &Cv::slide_kfold(5)).unwrap();
    let (scores, mean) = (&t.folds[0], t.score(0));
    let majority = *ds.class_counts().iter().max().unwrap() as f64 / ds.len() as f64;
    assert!(
        mean >= majority + 0.1,
        "ET-FL {mean:.3} vs majority {majority:.3}: {scores:?}"
    );

    let train: Vec<usize> = (0..ds.len()).filter(|i| i % 3 != 0).collect();
    let test: Vec<usize> = (0..ds.len()).filter(|i| i % 3 == 0).collect();
    let a = p.fit(&ds, &train).unwrap().decision(&ds, &test).unwrap();
    let b = p.fit(&ds, &train).unwrap().decision(&ds, &test).unwrap();
    assert_eq!(a, b, "same seed, same predictions");
    let c = EtFl {
        seed: 2,
        ..p.clone()
    }
    .fit(&ds, &train)
    .unwrap()
    .decision(&ds, &test)
    .unwrap();
    assert_ne!(a, c, "another seed changes the model");
}

#[test]
fn two_hundred_thousand_leaves_stay_under_a_gigabyte() {
    let out = crate::common::patholab()
        .args([
            "-e",
            "fit(et_fl(#{ n_subwindows: 300, min_samples_leaf: 6 }), dataset(\"demo\")).n_leaves()",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leaves: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(leaves >= 200_000, "only {leaves} leaves");
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let peak_mb = usage.ru_maxrss as f64 / 1024.0;
    assert!(
        peak_mb < 1024.0,
        "peak RSS {peak_mb:.0} MB with {leaves} leaves"
    );
}
