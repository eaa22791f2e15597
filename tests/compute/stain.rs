//! Stain normalization and augmentation against torchstain 1.4.1 (numpy backend) on real tissue
//! (fixtures from tests/fixtures/make_stain.py: Kather 2016 tiles and a CMU-1 slide crop), and a
//! stain-normalised dataset through the binary: its fitted target keys the feature cache.

use crate::common;

use patholab_core::data::decode::{decode, Rgb};
use patholab_core::data::stain::{
    macenko_stains, MacenkoOptions, StainAugment, StainMethod, StainNormalizer,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Fixture {
    json: Value,
    pixels: HashMap<String, Vec<u8>>,
}

fn fixture() -> Fixture {
    let dir = repo().join("tests/fixtures/generated/stain");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("stain.json"))
            .expect("stain fixtures: run .venv/bin/python tests/fixtures/make_stain.py"),
    )
    .unwrap();
    let pixels = tch::Tensor::read_safetensors(dir.join("pixels.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, Vec::<u8>::try_from(t.flatten(0, -1)).unwrap()))
        .collect();
    Fixture { json, pixels }
}

fn image(rel: &str) -> Rgb {
    decode(&repo().join(rel)).unwrap()
}

fn matrix(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(matrix).collect(),
        v => vec![v.as_f64().unwrap()],
    }
}

fn sources(f: &Fixture) -> Vec<(usize, &Value, Rgb)> {
    let list = f.json["sources"].as_array().unwrap();
    assert!(list.len() >= 7, "fixture has {} sources", list.len());
    list.iter()
        .enumerate()
        .map(|(i, s)| (i, s, image(s["path"].as_str().unwrap())))
        .collect()
}

/// Largest absolute difference and the fraction of values that differ at all.
fn compare(ours: &[u8], want: &[u8]) -> (u8, f64) {
    assert_eq!(ours.len(), want.len());
    let worst = ours.iter().zip(want).map(|(a, b)| a.abs_diff(*b)).max();
    let differ = ours.iter().zip(want).filter(|(a, b)| a != b).count();
    (worst.unwrap_or(0), differ as f64 / ours.len() as f64)
}

fn assert_close(what: &str, ours: &[f64], want: &[f64], tol: f64) -> f64 {
    assert_eq!(ours.len(), want.len(), "{what}");
    let worst = ours
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tol,
        "{what}: max |diff| {worst:e} > {tol:e}\nours {ours:?}\nwant {want:?}"
    );
    worst
}

/// Checks every source's output of `kind` within 1 of torchstain; prints the figures.
fn pixels_within_one(f: &Fixture, kind: &str, mut ours: impl FnMut(usize, &Rgb) -> Rgb) {
    let (mut worst, mut differ, mut n) = (0u8, 0.0, 0);
    for (i, _, img) in sources(f) {
        assert_eq!(
            img.pixels,
            f.pixels[&format!("input/{i}")],
            "input {i} decodes alike"
        );
        let out = ours(i, &img);
        let (w, d) = compare(&out.pixels, &f.pixels[&format!("{kind}/{i}")]);
        assert!(w <= 1, "{kind} source {i}: a pixel differs by {w}");
        worst = worst.max(w);
        differ += d;
        n += 1;
    }
    println!(
        "{kind}: {n} images, max |diff| {worst}, {:.4}% of values differ",
        100.0 * differ / n as f64
    );
}

#[test]
fn macenko_fit_and_stains_match_torchstain() {
    let f = fixture();
    let mut norm = StainNormalizer::new(StainMethod::Macenko, MacenkoOptions::default());
    norm.fit(&image(f.json["target"].as_str().unwrap()))
        .unwrap();
    let StainNormalizer::Macenko { target, .. } = &norm else {
        unreachable!()
    };
    let he: Vec<f64> = target.he.iter().flatten().copied().collect();
    let w1 = assert_close(
        "fitted HE",
        &he,
        &matrix(&f.json["macenko_fit"]["he"]),
        1e-5,
    );
    let w2 = assert_close(
        "fitted maxC",
        &target.max_c,
        &matrix(&f.json["macenko_fit"]["max_c"]),
        1e-5,
    );
    let mut worst = w1.max(w2);
    for (i, s, img) in sources(&f) {
        let (st, _) = macenko_stains(&img, &MacenkoOptions::default()).unwrap();
        let he: Vec<f64> = st.he.iter().flatten().copied().collect();
        worst = worst.max(assert_close(
            &format!("source {i} HE"),
            &he,
            &matrix(&s["he"]),
            1e-5,
        ));
        worst = worst.max(assert_close(
            &format!("source {i} maxC"),
            &st.max_c,
            &matrix(&s["max_c"]),
            1e-5,
        ));
    }
    println!("macenko stain matrices and maxC: max |diff| {worst:e}");
}

#[test]
fn macenko_pixels_within_one_of_torchstain() {
    let f = fixture();
    let mut norm = StainNormalizer::new(StainMethod::Macenko, MacenkoOptions::default());
    pixels_within_one(&f, "macenko_unfitted", |_, img| {
        norm.normalize(img).unwrap()
    });
    norm.fit(&image(f.json["target"].as_str().unwrap()))
        .unwrap();
    pixels_within_one(&f, "macenko", |_, img| norm.normalize(img).unwrap());
}

#[test]
fn reinhard_matches_torchstain() {
    let f = fixture();
    let mut norm = StainNormalizer::new(StainMethod::Reinhard, MacenkoOptions::default());
    norm.fit(&image(f.json["target"].as_str().unwrap()))
        .unwrap();
    let StainNormalizer::Reinhard { target: Some(t) } = &norm else {
        panic!("fitted")
    };
    let f64s = |v: &[f32; 3]| v.map(|x| x as f64);
    assert_close(
        "Reinhard means",
        &f64s(&t.means),
        &matrix(&f.json["reinhard_fit"]["means"]),
        1e-4,
    );
    assert_close(
        "Reinhard stds",
        &f64s(&t.stds),
        &matrix(&f.json["reinhard_fit"]["stds"]),
        1e-4,
    );
    pixels_within_one(&f, "reinhard", |_, img| norm.normalize(img).unwrap());
}

#[test]
fn macenko_augmentation_matches_torchstain_for_the_same_draws() {
    let f = fixture();
    let aug = StainAugment::default();
    let list = f.json["sources"].as_array().unwrap().clone();
    pixels_within_one(&f, "augment", |i, img| {
        let v = matrix(&list[i]["augment_factors"]);
        aug.apply(img, [v[0], v[1], v[2], v[3]]).unwrap()
    });
}

fn features_line(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("features:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_stain_target_keys_the_feature_cache() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
        let d = dataset("demo:kather").subset([0, 3, 6, 9, 12, 15]);
        let net = network("efficientnet_lite0");
        let a = stain_normalizer("macenko").fit(d.image(0));
        let b = stain_normalizer("macenko").fit(d.image(3));
        let plain = net.features(d, #{ quiet: false });
        let fa = net.features(d.with_stain(a), #{ quiet: false });
        let fb = net.features(d.with_stain(b), #{ quiet: false });
        let fa2 = net.features(d.with_stain(stain_normalizer("macenko").fit(d.image(0))), #{ quiet: false });
        let r = stain_normalizer("reinhard").fit(d.image(0));
        let fr = net.features(d.with_stain(r), #{ quiet: false });
        fn col(f) { let t = f.table(); t.column(t.columns()[4]) }
        print(`differ a/plain ${col(fa) != col(plain)}`);
        print(`differ a/b ${col(fa) != col(fb)}`);
        print(`differ a/reinhard ${col(fa) != col(fr)}`);
        print(`same a/a2 ${col(fa) == col(fa2)}`);
    "#;
    let out = common::run_script(dir.path(), script, &[]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    let lines = features_line(&text);
    assert_eq!(lines.len(), 5, "{text}");
    for (i, l) in lines.iter().enumerate() {
        let want = if i == 3 {
            "(0 computed, 6 from cache)"
        } else {
            "(6 computed, 0 from cache)"
        };
        assert!(l.ends_with(want), "extraction {i}: {l}\n{text}");
    }
    for l in [
        "differ a/plain true",
        "differ a/b true",
        "differ a/reinhard true",
        "same a/a2 true",
    ] {
        assert!(text.contains(l), "{l}\n{text}");
    }
}

#[test]
fn background_only_images_are_errors_naming_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let white = dir.path().join("white.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([245, 245, 245]))
        .save(&white)
        .unwrap();
    let script = format!(
        r#"stain_normalizer("macenko").fit(image({:?}));"#,
        white.display().to_string()
    );
    let out = common::run_script(dir.path(), &script, &[]);
    let text = common::text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("white.png") && text.contains("no tissue pixels above beta 0.15"),
        "{text}"
    );
    assert!(!text.contains("NaN"), "{text}");
    // A dataset holding such an image names it when its features are computed.
    let root = dir.path().join("ds");
    for c in ["a", "b"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    std::fs::copy(&white, root.join("a/white.png")).unwrap();
    let tile = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "data/demo/kather2016-samples/01_TUMOR/1A11_CRC-Prim-HE-07_022.tif_Row_601_Col_151.tif",
    );
    std::fs::copy(&tile, root.join("b/tumour.tif")).unwrap();
    let script = format!(
        r#"let d = dataset({:?}).with_stain(stain_normalizer("macenko").fit(image({:?})));
           network("efficientnet_lite0").features(d, #{{ quiet: true }});"#,
        root.display().to_string(),
        tile.display().to_string()
    );
    let out = common::run_script(dir.path(), &script, &[]);
    let text = common::text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("a/white.png: stain normalization (macenko): no tissue pixels"),
        "{text}"
    );
}

#[test]
fn finetuning_with_stain_augmentation_is_seeded_and_changes_training() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
        let d = dataset("demo:kather");
        let s = d.split(#{ seed: 1 });
        let net = network("efficientnet_lite0");
        let o = #{ head_epochs: 1, epochs: 0, batch: 8, quiet: true, seed: 3 };
        let plain = net.finetune(d, s, o).curve().column("train_loss");
        let a = net.finetune(d, s, o + #{ stain_augment: true }).curve().column("train_loss");
        let b = net.finetune(d, s, o + #{ stain_augment: true }).curve().column("train_loss");
        let c = net.finetune(d, s, o + #{ stain_augment: true, stain_sigma: [0.5, 0.5] }).curve().column("train_loss");
        print(`repeat ${a == b}`);
        print(`differs ${a != plain}`);
        print(`sigma ${a != c}`);
    "#;
    let out = common::run_script(dir.path(), script, &[]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    for l in ["repeat true", "differs true", "sigma true"] {
        assert!(text.contains(l), "{l}\n{text}");
    }
}
