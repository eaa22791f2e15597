//! Slide-level learning end to end: examples/slide_mil.rhai through the binary. Its first part is
//! the witness task (bags of real BCCD cells, positive when they hold a few lymphocytes, images
//! disjoint between training and test bags): ABMIL must reach a test ROC AUC ≥ 0.90, at least
//! 0.05 above the mean-pooled floor, and rank the witnesses first (recall at the number of
//! witnesses ≥ 0.8). Its second part draws the attention over a slide's tiles as a PNG.

use std::path::Path;

/// The number printed after `label` on a line of `log`.
fn number_after(log: &str, label: &str) -> f64 {
    let line = log
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no line starting {label:?} in:\n{log}"));
    line[label.len()..]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {line}"))
}

#[test]
fn attention_mil_solves_the_witness_task_and_draws_its_attention() {
    let dir = tempfile::tempdir().unwrap();
    let o = crate::common::patholab_in(dir.path())
        .args(["--quiet", "run"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slide_mil.rhai"))
        .output()
        .unwrap();
    let log = crate::common::text(&o);
    assert!(o.status.success(), "{log}");
    let abmil = number_after(&log, "abmil: test ROC AUC");
    let floor = number_after(&log, "mean_mil: test ROC AUC");
    let recall = number_after(&log, "abmil: attention recall at the number of witnesses");
    eprintln!("witness task: abmil {abmil:.4}, mean_mil {floor:.4}, recall {recall:.3}");
    assert!(abmil >= 0.90, "ABMIL's test AUC {abmil} < 0.90\n{log}");
    assert!(
        abmil >= floor + 0.05,
        "ABMIL {abmil} is not 0.05 above mean pooling {floor}\n{log}"
    );
    assert!(recall >= 0.8, "attention recall {recall} < 0.8\n{log}");
    let png = dir.path().join("runs/slide_mil/attention.png");
    let img = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}\n{log}", png.display()));
    assert!(img.width() > 100, "{log}");
    // The checkpoint and its options are written beside it.
    assert!(dir
        .path()
        .join("runs/slide_mil/abmil.safetensors.json")
        .exists());
}
