//! The Jupyter kernel end to end: `patholab kernel install` into a temporary prefix, then Python's
//! jupyter_client (the library JupyterLab and nbclient use) drives it: the protocol test suite of
//! `jupyter_kernel_test`, interrupt, badly signed messages, and every teaching notebook under
//! nbclient. The Python side is in tests/kernel/.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Installs the kernel as `name` under `dir/prefix` and returns the Jupyter data folder.
fn install(dir: &Path, name: &str) -> PathBuf {
    let prefix = dir.join("prefix");
    let out = common::patholab()
        .args(["kernel", "install", "--name", name, "--prefix"])
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    prefix.join("share/jupyter")
}

/// Runs `tests/kernel/<module>.py` with the kernel installed; fails with its output.
fn python(module: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = install(dir.path(), "patholab-test");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let t0 = std::time::Instant::now();
    // The kernel is started by jupyter_client with this environment: isolated as the binary is.
    let out = common::isolate(&mut Command::new(root().join(".venv/bin/python")))
        .args(["-m", "unittest", "-v", module])
        .current_dir(root().join("tests/kernel"))
        .env("JUPYTER_PATH", &data)
        .env("JUPYTER_DATA_DIR", dir.path().join("jupyter-data"))
        .env("JUPYTER_RUNTIME_DIR", dir.path().join("jupyter-runtime"))
        .env("JUPYTER_PLATFORM_DIRS", "1")
        .env("PATHOLAB_KERNEL_NAME", "patholab-test")
        .env("PATHOLAB_KERNEL_WORK", &work)
        .output()
        .unwrap();
    let text = common::text(&out);
    eprintln!("{module}: {:.1} s\n{text}", t0.elapsed().as_secs_f64());
    assert!(out.status.success(), "{module} failed:\n{text}");
}

#[test]
fn install_writes_a_kernelspec_with_logos() {
    let dir = tempfile::tempdir().unwrap();
    let data = install(dir.path(), "patholab-spec");
    let spec = data.join("kernels/patholab-spec");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec.join("kernel.json")).unwrap()).unwrap();
    let argv: Vec<&str> = json["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(Path::new(argv[0]).is_absolute() && argv[0].ends_with("patholab"));
    assert_eq!(
        &argv[1..],
        &["kernel", "--connection-file", "{connection_file}"]
    );
    assert_eq!(json["language"], "rhai");
    assert_eq!(json["interrupt_mode"], "message");
    for size in [32, 64] {
        let png = std::fs::read(spec.join(format!("logo-{size}x{size}.png"))).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (size, size));
    }
    let bad = common::patholab()
        .args(["kernel", "install", "--name", "no spaces", "--prefix"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn protocol_suite_interrupt_and_signatures() {
    python("test_protocol");
}

#[test]
fn teaching_notebooks_run_under_nbclient() {
    python("test_notebooks");
}

#[test]
fn teaching_notebooks_match_their_rhai_sources() {
    let out = Command::new("python3")
        .arg(root().join("scripts/notebooks"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "examples/teaching/*.ipynb drifted from the .rhai files: run scripts/notebooks\n{}",
        common::text(&out)
    );
}
