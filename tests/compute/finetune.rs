//! Fine-tuning: gradient and Adam-update parity with PyTorch, and exact resume after a kill.

use patholab_core::finetune::{train_step, Adam};
use patholab_core::nets::{registry, weights, NetOptions, Network, Weights};
use std::path::Path;

#[test]
fn one_training_step_matches_pytorch() {
    let t = weights::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/generated/finetune_step.safetensors"),
    )
    .expect("run scripts/make-fixtures");
    let pick = |prefix: &str| -> Vec<(String, tch::Tensor)> {
        t.iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .map(|k| (k.to_string(), v.shallow_clone()))
            })
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("before.safetensors");
    weights::write_safetensors(&w, &pick("before/")).unwrap();
    let classes: Vec<String> = (0..5).map(|i| i.to_string()).collect();
    let net = Network::build(
        registry::find("resnet18").unwrap(),
        NetOptions {
            weights: Weights::File(w),
            ..Default::default()
        },
        5,
        classes,
    )
    .unwrap();
    let mut vs = net.vs.variables();
    let params: Vec<(String, tch::Tensor)> = {
        let mut p: Vec<(String, tch::Tensor)> = vs
            .drain()
            .filter(|(k, _)| !k.contains("running_"))
            .collect();
        p.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, v) in &p {
            let _ = v.set_requires_grad(true);
        }
        p
    };
    let mut adam = Adam::new(
        params
            .iter()
            .map(|(n, p)| (n.clone(), p.shallow_clone()))
            .collect(),
        1e-3,
        (0.99, 0.999),
        1e-2,
    );
    let get = |k: &str| t.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone();
    for step in 0..3 {
        train_step(
            &net,
            &mut adam,
            &get(&format!("x{step}")),
            &get(&format!("y{step}")),
            false,
            true,
        );
        if step > 0 {
            continue;
        }
        for (name, p) in &params {
            let (g, want) = (p.grad(), get(&format!("grad/{name}")));
            let rel = max_abs(&(&g - &want)) / max_abs(&want).max(1e-12);
            assert!(
                rel <= 1e-4,
                "{name}: gradient differs from PyTorch's by {rel:e} (relative to its max)"
            );
        }
    }
    // Compare what the three Adam steps changed, not the weights: the updates are ~1e-3 of weights ~1,
    // so an absolute bound on the weights would pass with a wrong sign, wrong betas or no bias correction.
    let after = pick("after/");
    assert_eq!(
        after.len(),
        pick("before/").len(),
        "fixture: before/after tensors differ in number"
    );
    let mut compared = 0;
    for (name, want_after) in after {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let before = get(&format!("before/{name}"));
        let got = net.vs.variables()[&name].shallow_clone();
        let (want, got) = (&want_after - &before, &got - &before);
        let rel = max_abs(&(&got - &want)) / max_abs(&want).max(1e-12);
        assert!(
            rel <= 1e-2,
            "{name}: the update of three Adam steps differs from PyTorch's by {rel:e} (relative to its max)"
        );
        compared += 1;
    }
    assert_eq!(
        compared,
        params.len() + 2 * 20,
        "every parameter and BN running statistic compared"
    );
}

fn max_abs(t: &tch::Tensor) -> f64 {
    f64::try_from(t.abs().max()).unwrap()
}

fn run(script: &str, cache: &Path) -> std::process::Child {
    crate::common::patholab()
        .env("PATHOLAB_CACHE", cache)
        .args(["run", script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_run_killed_after_an_epoch_resumes_to_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, resume: bool| {
        let p = dir.path().join(format!("{name}.rhai"));
        std::fs::write(&p, format!(
            "let data = dataset(\"demo:kather\");\nlet split = data.split(#{{ train: 0.5, val: 0.25, test: 0.25, seed: 1 }});\n\
             let ft = network(\"efficientnet_lite0\").finetune(data, split, #{{ head_epochs: 1, epochs: 3, batch: 6, seed: 5, lr: 1e-4, checkpoints: \"{}\", resume: {resume} }});\n\
             ft.save(\"{}\");\n",
            dir.path().join(name).display(), dir.path().join(format!("{name}-final.safetensors")).display())).unwrap();
        p
    };
    let full = script("full", false);
    assert!(run(full.to_str().unwrap(), dir.path())
        .wait()
        .unwrap()
        .success());

    let part = script("part", true);
    let mut child = run(part.to_str().unwrap(), dir.path());
    let ckpt = dir.path().join("part/epoch-002.safetensors");
    let t0 = std::time::Instant::now();
    while !ckpt.with_extension("json").exists() && t0.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !dir.path().join("part/epoch-004.safetensors").exists(),
        "killed too late to test resume"
    );
    let out = run(part.to_str().unwrap(), dir.path())
        .wait_with_output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && log.contains("resuming after epoch"),
        "{log}"
    );
    for e in 1..=4 {
        let a = weights::read(&dir.path().join(format!("full/epoch-{e:03}.safetensors"))).unwrap();
        let b = weights::read(&dir.path().join(format!("part/epoch-{e:03}.safetensors"))).unwrap();
        assert_eq!(a.len(), b.len(), "epoch {e}: tensor counts differ");
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(
                ta.equal(tb),
                "epoch {e}: {na} differs between the uninterrupted and the resumed run"
            );
        }
    }
    let a = weights::read(&dir.path().join("full-final.safetensors")).unwrap();
    let b = weights::read(&dir.path().join("part-final.safetensors")).unwrap();
    assert_eq!(a.len(), b.len(), "final weights: tensor counts differ");
    assert!(
        a.iter().zip(&b).all(|((_, x), (_, y))| x.equal(y)),
        "final weights differ"
    );
}
