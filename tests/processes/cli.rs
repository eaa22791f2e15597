//! The binary end to end: -e, run with --set, errors with positions and exit codes.

use crate::common::patholab;

#[test]
fn evaluates_an_expression() {
    let out = patholab().args(["-e", "40 + 2"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}

#[test]
fn version_names_libtorch_and_cuda() {
    let out = patholab().arg("--version").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("patholab 0.") && s.contains("libtorch 2.11.0") && s.contains("CUDA"),
        "{s}"
    );
}

#[test]
fn run_binds_set_variables() {
    let out = patholab()
        .args(["run", "examples/hello.rhai", "--set", "name=\"Ada\""])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello, Ada: 40 + 2 = 42"
    );
    let out = patholab()
        .args(["run", "examples/hello.rhai"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello, world"));
}

#[test]
fn set_values_are_rhai_literals() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("t.rhai");
    std::fs::write(
        &script,
        "print(type_of(xs) + \" \" + xs.len() + \" \" + type_of(k));",
    )
    .unwrap();
    let out = patholab()
        .args([
            "run",
            script.to_str().unwrap(),
            "--set",
            "xs=[1, 2, 3]",
            "--set",
            "k=0.5",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "array 3 f64");
}

#[test]
fn script_errors_exit_non_zero_with_line_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.rhai");
    std::fs::write(&script, "let a = 1;\nlet b = network(\"no_such_net\");\n").unwrap();
    let out = patholab()
        .args(["run", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2, position 9"), "{err}");
    assert!(err.contains("unknown network \"no_such_net\""), "{err}");
    assert!(err.contains("^"), "{err}");
    let out = patholab().args(["-e", "1 +* 2"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1, position"));
}

#[test]
fn stdlib_modules_load_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = patholab()
        .current_dir(dir.path())
        .args([
            "-e",
            "import \"strategies\" as s; s::paper().classifiers.len()",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "3",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shard_flag_computes_a_part_and_the_full_read_the_rest() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("f.rhai");
    std::fs::write(
        &script,
        "network(\"efficientnet_lite0\").features(dataset(\"demo:kather\"));",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = patholab()
            .env("PATHOLAB_CACHE", cache.path())
            .arg("run")
            .arg(&script)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = String::from_utf8_lossy(&out.stderr).to_string();
        log.split('(')
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap()
    };
    let a = run(&["--shard", "0/3"]);
    let b = run(&["--shard", "1/3"]);
    let c = run(&["--shard", "2/3"]);
    assert_eq!(a + b + c, 24);
    assert_eq!(run(&[]), 0, "the full read computes nothing");
    let out = patholab()
        .args(["run", script.to_str().unwrap(), "--shard", "3/3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
