//! The Vision Transformer against its reference implementations, family by family: a
//! reduced-depth model (2 blocks, published widths) with random weights from timm (Hugging Face
//! transformers for Phikon and Phikon-v2, whose files keep their HF names), every block tap, the
//! final norm and the published pooled embedding within 1e-4 of the reference's max; and the
//! full-size parameter count of every registry entry equal to the reference's (fixtures made by
//! tests/fixtures/make_vits.py at setup time).

use patholab_core::features::extract::Reduce;
use patholab_core::nets::{imagenet, registry, vit, weights, NetOptions, Network, Weights};
use std::path::PathBuf;
use std::sync::Arc;
use tch::Tensor;

fn generated() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated")
}

/// The registry entry `name` at the fixture's depth, with the fixture's weights.
fn reduced(name: &str, depth: usize) -> (Network, Vec<(String, Tensor)>) {
    let st = generated().join(format!("vit_{name}.safetensors"));
    assert!(
        st.exists(),
        "{} missing: run scripts/make-fixtures",
        st.display()
    );
    let tensors = weights::read(&st).unwrap();
    let w: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix("weights/")
                .map(|k| (k.to_string(), t.shallow_clone()))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let wpath = dir.path().join("w.safetensors");
    weights::write_safetensors(&wpath, &w).unwrap();
    let spec = registry::find(name).unwrap();
    let config = spec.vit.expect("a ViT entry").with_depth(depth);
    let net = Network::build_with(
        spec,
        Arc::new(move |p: &tch::nn::Path| vit::build(p, &config)),
        NetOptions {
            weights: Weights::File(wpath),
            ..Default::default()
        },
        1000,
        imagenet::class_names(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    (net, tensors)
}

fn relative_error(got: &Tensor, want: &Tensor) -> f64 {
    let err = f64::try_from((got - want).abs().max()).unwrap();
    err / f64::try_from(want.abs().max()).unwrap().max(1e-12)
}

fn check(name: &str) {
    let (net, tensors) = reduced(name, 2);
    let get = |k: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, t)| t.shallow_clone())
    };
    let x = get("input").unwrap();
    let taps = net.taps();
    assert_eq!(taps, ["blocks.0", "blocks.1", "norm"], "{name}: taps");
    let outs = tch::no_grad(|| net.forward_taps(&x, &taps, false));
    let mut worst = 0f64;
    for (t, out) in taps.iter().zip(&outs) {
        let want = get(&format!("tap/{t}")).unwrap();
        assert_eq!(out.size(), want.size(), "{name} {t}: shape");
        let e = relative_error(out, &want);
        assert!(e <= 1e-4, "{name} tap {t}: relative error {e:e}");
        worst = worst.max(e);
    }
    let pooled = Reduce::Default
        .resolve(&net)
        .unwrap()
        .apply_tokens(&outs[2], net.tokens());
    let e = relative_error(&pooled, &get("pooled").unwrap());
    assert!(
        e <= 1e-4,
        "{name} published embedding: relative error {e:e}"
    );
    if let Some(want) = get("logits") {
        let e = relative_error(&tch::no_grad(|| net.logits(&x, false)), &want);
        assert!(e <= 1e-4, "{name} logits: relative error {e:e}");
    }
    println!("{name}: max relative error over taps {worst:.2e}");
}

#[test]
fn vit_base_imagenet() {
    check("vit_base_patch16_224")
}
#[test]
fn dinov2_resamples_its_518_px_position_embedding() {
    check("dinov2_vits14")
}
#[test]
fn dinov2_with_registers() {
    check("dinov2_vits14_reg4")
}
#[test]
fn uni() {
    check("uni")
}
#[test]
fn uni2_h() {
    check("uni2_h")
}
#[test]
fn virchow() {
    check("virchow")
}
#[test]
fn virchow2() {
    check("virchow2")
}
#[test]
fn h_optimus() {
    check("h_optimus_0")
}
#[test]
fn gigapath() {
    check("gigapath")
}
#[test]
fn kaiko() {
    check("kaiko_vits16");
    check("kaiko_vitl14");
}
#[test]
fn lunit() {
    check("lunit_vits8")
}
#[test]
fn phikon_from_hugging_face_names() {
    check("phikon")
}
#[test]
fn phikon_v2_from_hugging_face_names() {
    check("phikon_v2")
}

#[test]
fn full_size_parameter_counts_are_the_published_ones() {
    let path = generated().join("vit_param_counts.json");
    let counts: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut checked = 0;
    for spec in registry::networks().filter(|s| s.vit.is_some()) {
        let want = counts[spec.name]
            .as_i64()
            .unwrap_or_else(|| panic!("{} not in {}", spec.name, path.display()));
        let mut got = spec.vit.unwrap().parameter_count();
        if spec.name == "vit_base_patch16_224" {
            got += 768 * 1000 + 1000; // the ImageNet classifier
        }
        assert_eq!(got, want, "{}", spec.name);
        checked += 1;
    }
    assert_eq!(checked, 20);
    // The model cards' round figures.
    for (name, millions) in [
        ("uni", 303),
        ("uni2_h", 681),
        ("virchow", 631),
        ("virchow2", 631),
        ("phikon", 86),
        ("gigapath", 1135),
    ] {
        let n = registry::find(name).unwrap().vit.unwrap().parameter_count();
        assert_eq!((n as f64 / 1e6).round() as i64, millions, "{name}");
    }
}

#[test]
fn the_forward_pass_stops_at_the_deepest_tap_and_any_patch_multiple_is_a_valid_input() {
    let (net, tensors) = reduced("uni", 2);
    let x = tensors
        .iter()
        .find(|(n, _)| n == "input")
        .unwrap()
        .1
        .shallow_clone();
    let first = tch::no_grad(|| net.forward_taps(&x, &["blocks.0".to_string()], false));
    assert_eq!(first.len(), 1);
    let small = tch::no_grad(|| {
        net.forward_taps(&x.narrow(2, 0, 160).narrow(3, 0, 192), &net.taps(), false)
    });
    assert_eq!(small[2].size(), [2, 1 + 10 * 12, 1024]);
}

#[test]
fn presets_over_blocks() {
    let net = Network::new(
        "kaiko_vits16",
        NetOptions {
            weights: Weights::Random(0),
            ..Default::default()
        },
    )
    .unwrap();
    let q = net.resolve_taps(&["quarters".into()]).unwrap();
    assert_eq!(q, ["blocks.2", "blocks.5", "blocks.8", "blocks.11"]);
    assert_eq!(net.resolve_taps(&["last".into()]).unwrap(), ["norm"]);
    assert_eq!(net.resolve_taps(&["paper".into()]).unwrap().len(), 12);
    assert_eq!(net.resolve_taps(&["all".into()]).unwrap().len(), 13);
}

#[test]
fn token_reducers_know_the_prefix_tokens() {
    let (net, tensors) = reduced("virchow2", 2);
    let x = tensors
        .iter()
        .find(|(n, _)| n == "input")
        .unwrap()
        .1
        .shallow_clone();
    let out = tch::no_grad(|| net.forward_taps(&x, &["norm".to_string()], false)).remove(0);
    let tk = net.tokens().unwrap();
    assert_eq!(tk.prefix, 5);
    let dim = |r: Reduce| {
        r.resolve(&net)
            .unwrap()
            .apply_tokens(&out, net.tokens())
            .size()[1]
    };
    assert_eq!(
        [
            dim(Reduce::Cls),
            dim(Reduce::Mean),
            dim(Reduce::ClsMean),
            dim(Reduce::Default),
            dim(Reduce::GapGmp)
        ],
        [1280, 1280, 2560, 2560, 2560]
    );
    let mean = Reduce::Mean.apply_tokens(&out, net.tokens());
    let by_hand = out.narrow(1, 5, 256).mean_dim(1, false, tch::Kind::Float);
    assert!(
        relative_error(&mean, &by_hand) < 1e-6,
        "registers are excluded from the mean"
    );
    let cnn = Network::new(
        "resnet18",
        NetOptions {
            weights: Weights::Random(0),
            ..Default::default()
        },
    )
    .unwrap();
    let err = Reduce::Cls.resolve(&cnn).unwrap_err().to_string();
    assert!(err.contains("resnet18 is a CNN"), "{err}");
    assert_eq!(Reduce::Default.resolve(&cnn).unwrap(), Reduce::Gap);
}
