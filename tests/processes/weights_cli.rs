//! `patholab weights import FILE --as NAME` and `patholab weights verify` on a weights folder of
//! the test's own: an imported file verifies, a damaged one fails naming the file, a file whose
//! tensors do not fit the network is not imported.

use patholab_core::nets::weights;
use std::path::Path;
use std::process::Output;

fn weights_cmd(dir: &Path, args: &[&str]) -> Output {
    crate::common::patholab()
        .env("PATHOLAB_WEIGHTS", dir)
        .args(["--quiet", "weights"])
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The resnet18 fixture's weights saved in tch's own format (`.ot`), so the import converts.
fn resnet18_ot(path: &Path, change: impl Fn(&str, tch::Tensor) -> tch::Tensor) -> usize {
    let t = weights::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/generated/resnet18.safetensors"),
    )
    .expect("run scripts/make-fixtures");
    let w: Vec<(String, tch::Tensor)> = t
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("weights/")
                .map(|k| (k.to_string(), change(k, v.shallow_clone())))
        })
        .collect();
    let named: Vec<(&str, &tch::Tensor)> = w.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::save_multi(&named, path).unwrap();
    w.len()
}

#[test]
fn import_then_verify_then_a_damaged_file_fails_verify_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("weights");
    let src = tmp.path().join("downloaded.ot");
    let n = resnet18_ot(&src, |_, t| t);

    let out = weights_cmd(&dir, &["import", src.to_str().unwrap(), "--as", "resnet18"]);
    assert!(out.status.success(), "{}", text(&out));
    let stored = dir.join("resnet18.safetensors");
    assert!(
        text(&out).contains(&format!("imported {}", stored.display())),
        "{}",
        text(&out)
    );
    // Stored as safetensors, the same tensors as the source (BatchNorm's step counters, which
    // inference never reads, are left out).
    let a = weights::read(&src).unwrap();
    let b = weights::read(&stored).unwrap();
    let counters = a
        .iter()
        .filter(|(m, _)| m.ends_with("num_batches_tracked"))
        .count();
    assert_eq!(b.len(), n - counters);
    for (name, t) in a
        .iter()
        .filter(|(m, _)| !m.ends_with("num_batches_tracked"))
    {
        let g = &b
            .iter()
            .find(|(m, _)| m == name)
            .unwrap_or_else(|| panic!("{name} not imported"))
            .1;
        assert!(g.equal(t), "{name} differs after import");
    }

    let out = weights_cmd(&dir, &["verify"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let line = t.lines().find(|l| l.starts_with("resnet18 ")).unwrap_or("");
    assert!(
        line.contains("ok") && line.contains(&stored.display().to_string()),
        "{t}"
    );

    // Damaged on disk (its last kilobyte gone): verify fails and names the file.
    let bytes = std::fs::read(&stored).unwrap();
    std::fs::write(&stored, &bytes[..bytes.len() - 1024]).unwrap();
    let out = weights_cmd(&dir, &["verify"]);
    let t = text(&out);
    assert!(!out.status.success(), "verify passed a damaged file: {t}");
    let line = t.lines().find(|l| l.contains("resnet18 ")).unwrap_or("");
    assert!(
        line.contains("FAIL") && line.contains(&stored.display().to_string()),
        "{t}"
    );
}

#[test]
fn a_file_that_does_not_fit_the_network_is_not_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("weights");
    let src = tmp.path().join("other.ot");
    resnet18_ot(&src, |k, t| {
        if k == "layer1.0.conv1.weight" {
            t.narrow(0, 0, 32).contiguous()
        } else {
            t
        }
    });
    let out = weights_cmd(&dir, &["import", src.to_str().unwrap(), "--as", "resnet18"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("layer1.0.conv1.weight") && t.contains("[32, 64, 3, 3]"),
        "{t}"
    );
    assert!(!dir.join("resnet18.safetensors").exists());
}
