//! The feature cache key knows the code: every architecture family and the preprocessing carry a
//! version (`VERSION` in each `crates/core/src/nets/<family>.rs`, `features::extract::VERSION`), and this test
//! keeps a golden output of each. When a change alters the numbers of a family without a bump of
//! its version, this test fails, so old cached features are never served for new code.
//!
//! After a deliberate change: bump the version, then `PATHOLAB_BLESS=1 cargo test --release --test
//! compute code_version::` rewrites `tests/fixtures/code_versions.json` (commit it with the bump).

use patholab_core::data::decode::Rgb;
use patholab_core::data::transform::{normalize_into, square_resize};
use patholab_core::input::{Interpolation, Normalization, Preprocess};
use patholab_core::nets::registry::networks;
use patholab_core::nets::{NetOptions, Network, Weights};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// libtorch's random generator is global: tests that build random networks take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/code_versions.json"
);

/// A fixed, smooth input image of the network's size.
fn input(size: i64) -> Tensor {
    let h = Tensor::arange(size, (Kind::Float, tch::Device::Cpu)).view([1, 1, size, 1]);
    let w = Tensor::arange(size, (Kind::Float, tch::Device::Cpu)).view([1, 1, 1, size]);
    let c = Tensor::arange(3, (Kind::Float, tch::Device::Cpu)).view([1, 3, 1, 1]);
    ((&h * 0.07 + &w * 0.05 + &c).sin() + (&h * &w * 0.001).cos()) * 0.5
}

/// A short signature of a family's computation: the last tap's GAP of the fixed input.
fn signature(spec_name: &str) -> Vec<f64> {
    let net = Network::new(
        spec_name,
        NetOptions {
            weights: Weights::Random(0),
            ..Default::default()
        },
    )
    .unwrap();
    let taps = net.resolve_taps(&["last".to_string()]).unwrap();
    let out = tch::no_grad(|| net.forward_taps(&input(net.spec.input_size), &taps, false));
    // A convolutional map [1, c, h, w] is averaged over its grid, a token tensor [1, t, c] over its tokens.
    let dims: &[i64] = if out[0].dim() == 4 { &[2, 3] } else { &[1] };
    let v = out[0].mean_dim(dims, false, Kind::Double).flatten(0, -1);
    let v: Vec<f64> = Vec::try_from(v).unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mut s: Vec<f64> = v.iter().take(6).copied().collect();
    s.extend([mean, std]);
    s
}

/// The preprocessing's signature: a synthetic 37×29 image through crop, resize and normalization.
fn preprocessing_signature() -> Vec<f64> {
    let pixels: Vec<u8> = (0..37 * 29 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
    let img = Rgb {
        width: 37,
        height: 29,
        pixels,
    };
    let mut out = Vec::new();
    for (interpolation, normalization) in [
        (Interpolation::Bilinear, Normalization::ImageNet),
        (Interpolation::Bicubic, Normalization::Inception),
    ] {
        let p = Preprocess {
            size: 16,
            interpolation,
            normalization,
        };
        let px = square_resize(&img, &p, None);
        let mut f = vec![0f32; 3 * 16 * 16];
        normalize_into(&px, 16, normalization, &mut f);
        out.push(f.iter().map(|v| *v as f64).sum::<f64>());
        out.push(f.iter().map(|v| (*v as f64).powi(2)).sum::<f64>());
    }
    out
}

/// Equal within 1e-4 of the signature's scale (its largest value), so a value that sits near zero
/// by cancellation does not make thread-order noise look like a change.
fn close(a: &[f64], b: &[f64]) -> bool {
    let scale = a.iter().chain(b).fold(0f64, |m, v| m.max(v.abs()));
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
}

#[test]
fn outputs_change_only_with_a_version_bump() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let mut now: BTreeMap<String, Value> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for spec in networks().filter(|s| seen.insert(s.family)) {
        now.insert(spec.family.to_string(), json!({ "network": spec.name, "version": spec.version, "signature": signature(spec.name) }));
    }
    now.insert(
        "preprocessing".into(),
        json!({ "version": patholab_core::features::extract::VERSION, "signature": preprocessing_signature() }),
    );
    if std::env::var_os("PATHOLAB_BLESS").is_some() {
        std::fs::write(GOLDEN, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        return;
    }
    let golden: BTreeMap<String, Value> = serde_json::from_str(
        &std::fs::read_to_string(GOLDEN).expect("tests/fixtures/code_versions.json"),
    )
    .unwrap();
    let mut problems = Vec::new();
    for (family, entry) in &now {
        let Some(old) = golden.get(family) else {
            problems.push(format!("{family}: not in the golden file (bless it)"));
            continue;
        };
        let sig = |e: &Value| -> Vec<f64> {
            e["signature"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let same_numbers = close(&sig(entry), &sig(old));
        let same_version = entry["version"] == old["version"];
        if !same_numbers && same_version {
            problems.push(format!(
                "{family}: its output changed but its version did not; bump VERSION (cached features would be stale), then bless"
            ));
        } else if !same_version {
            problems.push(format!(
                "{family}: version {} → {}: bless the golden file",
                old["version"], entry["version"]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_signature_sees_a_small_change_of_the_computation() {
    // The check has teeth: a small numeric change of the computation moves the signature.
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let net = Network::new(
        "resnet18",
        NetOptions {
            weights: Weights::Random(0),
            ..Default::default()
        },
    )
    .unwrap();
    let taps = net.resolve_taps(&["last".to_string()]).unwrap();
    let x = input(net.spec.input_size);
    let a = tch::no_grad(|| net.forward_taps(&x, &taps, false))[0].mean(Kind::Double);
    let b = tch::no_grad(|| net.forward_taps(&(&x * 1.001), &taps, false))[0].mean(Kind::Double);
    let (a, b) = (a.double_value(&[]), b.double_value(&[]));
    assert!(!close(&[a], &[b]), "{a} vs {b}");
}

#[test]
fn another_reducer_is_computed_anew_and_differs() {
    use patholab_core::data::{Dataset, OpenOptions};
    use patholab_core::features::extract::{extract, ExtractOptions, Reduce};
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("PATHOLAB_CACHE", cache.path());
    let ds = Dataset::open("demo:kather", &OpenOptions::default()).unwrap();
    let net = Network::new(
        "efficientnet_lite0",
        NetOptions {
            weights: Weights::Random(3),
            ..Default::default()
        },
    )
    .unwrap();
    let with = |reduce| ExtractOptions {
        reduce,
        quiet: true,
        ..Default::default()
    };
    let gap = extract(&net, &ds, &with(Reduce::Gap)).unwrap();
    let gmp = extract(&net, &ds, &with(Reduce::Gmp)).unwrap();
    let again = extract(&net, &ds, &with(Reduce::Gap)).unwrap();
    assert_eq!((gap.computed, gmp.computed, again.computed), (24, 24, 0));
    assert!(
        gap.x
            .iter()
            .zip(gmp.x.iter())
            .any(|(a, b)| (a - b).abs() > 1e-6),
        "GMP served GAP's numbers"
    );
    assert_eq!(gap.x, again.x);
}
