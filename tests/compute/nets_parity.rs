//! Every tap of every architecture against the Python reference (fixtures made by
//! tests/fixtures/make_nets.py at setup time): max abs error ≤ 1e-4 × max abs of the reference.

use patholab_core::nets::{imagenet, registry, weights, NetOptions, Network, Weights};
use std::path::PathBuf;
use tch::Tensor;

fn fixture(name: &str) -> (PathBuf, Vec<(String, Tensor)>, Vec<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated");
    let st = dir.join(format!("{name}.safetensors"));
    assert!(
        st.exists(),
        "{} missing: run scripts/make-fixtures (make test does)",
        st.display()
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let taps = meta["taps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    (st.clone(), weights::read(&st).unwrap(), taps)
}

fn check(name: &str) {
    let (path, tensors, taps) = fixture(name);
    let dir = tempfile::tempdir().unwrap();
    let w: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix("weights/")
                .map(|k| (k.to_string(), t.shallow_clone()))
        })
        .collect();
    let wpath = dir.path().join("w.safetensors");
    weights::write_safetensors(&wpath, &w).unwrap();
    let spec = registry::find(name).unwrap();
    let net = Network::build(
        spec,
        NetOptions {
            weights: Weights::File(wpath),
            ..Default::default()
        },
        1000,
        imagenet::class_names(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(net.taps(), taps, "{name}: tap names and order");
    let get = |k: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, t)| t.shallow_clone())
            .unwrap_or_else(|| panic!("{k} in {}", path.display()))
    };
    let x = get("input");
    let outs = tch::no_grad(|| net.forward_taps(&x, &taps, false));
    for (t, out) in taps.iter().zip(&outs) {
        let want = get(&format!("tap/{t}"));
        assert_eq!(out.size(), want.size(), "{name} {t}: shape");
        let err = f64::try_from((out - &want).abs().max()).unwrap();
        let scale = f64::try_from(want.abs().max()).unwrap().max(1e-12);
        assert!(
            err / scale <= 1e-4,
            "{name} tap {t}: max abs error {err:e} vs reference max {scale:e}"
        );
    }
    let logits = tch::no_grad(|| net.logits(&x, false));
    let want = get("logits");
    let err = f64::try_from((logits - &want).abs().max()).unwrap()
        / f64::try_from(want.abs().max()).unwrap();
    assert!(err <= 1e-4, "{name} logits: relative error {err:e}");
}

#[test]
fn resnet18() {
    check("resnet18")
}
#[test]
fn resnet50() {
    check("resnet50")
}
#[test]
fn densenet121() {
    check("densenet121")
}
#[test]
fn vgg16() {
    check("vgg16")
}
#[test]
fn mobilenet_v2() {
    check("mobilenet_v2")
}
#[test]
fn mobilenet_v1() {
    check("mobilenet_v1")
}
#[test]
fn efficientnet_lite0() {
    check("efficientnet_lite0")
}
#[test]
fn efficientnet_lite2() {
    check("efficientnet_lite2")
}

#[test]
fn real_lite0_weights_know_a_cat_and_an_espresso() {
    let net = Network::new("efficientnet_lite0", NetOptions::default())
        .expect("setup installs the lite0 weights");
    let sk = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/lib"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages/skimage/data"))
        .find(|p| p.exists())
        .expect("scikit-image data");
    let cat =
        patholab_core::features::extract::classify(&net, &sk.join("chelsea.png"), 1).unwrap()[0].0;
    let coffee =
        patholab_core::features::extract::classify(&net, &sk.join("coffee.png"), 1).unwrap()[0].0;
    assert!((281..=285).contains(&cat), "chelsea.png → class {cat}");
    assert!((967..=968).contains(&coffee), "coffee.png → class {coffee}");
}

#[test]
fn strict_loading_lists_every_problem() {
    let (_, tensors, _) = fixture("resnet18");
    let mut w: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix("weights/")
                .map(|k| (k.to_string(), t.shallow_clone()))
        })
        .collect();
    w.retain(|(k, _)| k != "layer1.0.conv1.weight");
    w.push((
        "extra.weight".into(),
        Tensor::zeros([3], tch::kind::FLOAT_CPU),
    ));
    for (k, t) in w.iter_mut() {
        if k == "layer2.0.conv1.weight" {
            *t = Tensor::zeros([128, 64, 1, 1], tch::kind::FLOAT_CPU);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.safetensors");
    weights::write_safetensors(&p, &w).unwrap();
    let err = Network::new(
        "resnet18",
        NetOptions {
            weights: Weights::File(p),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing    layer1.0.conv1.weight"), "{err}");
    assert!(err.contains("unexpected extra.weight"), "{err}");
    assert!(
        err.contains(
            "layer2.0.conv1.weight: file has [128, 64, 1, 1], network expects [128, 64, 3, 3]"
        ),
        "{err}"
    );
}

#[test]
fn inception_v3() {
    check("inception_v3")
}

#[test]
fn inception_resnet_v2() {
    check("inception_resnet_v2")
}

#[test]
fn paper_presets_have_the_papers_feature_counts() {
    for (name, taps, features) in [
        ("resnet50", 17, 15_168),
        ("densenet201", 9, 7_744),
        ("inception_resnet_v2", 16, 17_088),
    ] {
        let net = Network::new(
            name,
            NetOptions {
                weights: Weights::Random(0),
                ..Default::default()
            },
        )
        .unwrap();
        let t = net.resolve_taps(&["paper".to_string()]).unwrap();
        let s = net.spec.input_size;
        let outs = tch::no_grad(|| {
            net.forward_taps(
                &Tensor::zeros([1, 3, s, s], tch::kind::FLOAT_CPU),
                &t,
                false,
            )
        });
        let total: i64 = outs.iter().map(|o| o.size()[1]).sum();
        assert_eq!((t.len(), total), (taps, features), "{name}");
    }
}

#[test]
fn the_other_depths() {
    for name in [
        "resnet34",
        "resnet101",
        "resnet152",
        "densenet169",
        "densenet201",
        "vgg19",
        "efficientnet_lite1",
        "efficientnet_lite3",
        "efficientnet_lite4",
    ] {
        check(name);
    }
}
