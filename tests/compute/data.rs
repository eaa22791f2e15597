//! Datasets: broken files, manifests, slide-wise splits, and preprocessing parity with PIL.

use patholab_core::data::loader::{prepare_one, Prepare};
use patholab_core::data::split::{shared_slides, Split, SplitOptions};
use patholab_core::data::{Dataset, Item, OnError, OpenOptions};
use patholab_core::input::{Interpolation, Normalization, Preprocess};
use patholab_core::rng::Rng;
use std::path::{Path, PathBuf};

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = Vec::new();
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]))
        .write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Png)
        .unwrap();
    b
}

fn encoded(fmt: image::ImageFormat) -> Vec<u8> {
    let mut b = Vec::new();
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 3]))
        .write_to(&mut std::io::Cursor::new(&mut b), fmt)
        .unwrap();
    b
}

/// A folder with good images of several formats and eleven kinds of bad files.
fn broken_folder() -> (tempfile::TempDir, Vec<&'static str>) {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("alpha");
    let b = dir.path().join("beta");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("good1.png"), png(30, 20)).unwrap();
    std::fs::write(a.join("good2.jpg"), encoded(image::ImageFormat::Jpeg)).unwrap();
    std::fs::write(b.join("good3.tif"), encoded(image::ImageFormat::Tiff)).unwrap();
    std::fs::write(b.join("good4.bmp"), encoded(image::ImageFormat::Bmp)).unwrap();
    std::fs::write(b.join("good5.webp"), encoded(image::ImageFormat::WebP)).unwrap();
    let jpeg = encoded(image::ImageFormat::Jpeg);
    let p = png(30, 20);
    let tif = encoded(image::ImageFormat::Tiff);
    let mut absurd = p.clone();
    absurd[16..20].copy_from_slice(&200_000u32.to_be_bytes()); // IHDR width
    let mut zero = p.clone();
    zero[16..20].copy_from_slice(&0u32.to_be_bytes());
    let mut rng = Rng::new(3);
    let random: Vec<u8> = (0..500).map(|_| rng.below(256) as u8).collect();
    std::fs::write(a.join("empty.png"), b"").unwrap();
    std::fs::write(a.join("truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(a.join("random.png"), &random).unwrap();
    std::fs::write(a.join("text.jpg"), b"this is not an image at all\n").unwrap();
    std::fs::create_dir_all(a.join("folder.png")).unwrap();
    std::fs::write(a.join("absurd.png"), &absurd).unwrap();
    std::fs::write(b.join("zero.png"), &zero).unwrap();
    std::fs::write(b.join("truncated.png"), &p[..p.len() - 20]).unwrap();
    std::fs::write(b.join("truncated.tif"), &tif[..tif.len() / 2]).unwrap();
    std::fs::write(b.join("header.bmp"), b"BM\x36\x00\x00\x00").unwrap();
    std::fs::write(b.join("junk.webp"), b"RIFF\x10\x00\x00\x00WEBPVP8 junkjunk").unwrap();
    let bad = vec![
        "empty.png",
        "truncated.jpg",
        "random.png",
        "text.jpg",
        "folder.png",
        "absurd.png",
        "zero.png",
        "truncated.png",
        "truncated.tif",
        "header.bmp",
        "junk.webp",
    ];
    (dir, bad)
}

#[test]
fn broken_files_are_listed_under_fail_and_skipped_under_skip() {
    let (dir, bad) = broken_folder();
    let path = dir.path().to_str().unwrap();
    let err = Dataset::open(path, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    for b in &bad {
        assert!(err.contains(b), "{b} not reported in:\n{err}");
    }
    assert!(err.contains("11 unreadable"), "{err}");
    let ds = Dataset::open(
        path,
        &OpenOptions {
            on_error: OnError::Skip,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ds.len(), 5);
    assert_eq!(ds.skipped.len(), 11);
    assert!(ds.describe().contains("11 unreadable file(s) skipped"));
    assert_eq!(ds.classes, vec!["alpha", "beta"]);
    assert!(
        !ds.warnings.is_empty(),
        "one slide per image is warned about"
    );
}

#[test]
fn manifest_with_slides_and_split_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("img")).unwrap();
    let mut csv = String::from("file,diagnosis,patient,part\n");
    for i in 0..12 {
        std::fs::write(dir.path().join(format!("img/{i}.png")), png(10 + i, 12)).unwrap();
        let part = ["train", "train", "val", "test"][(i / 3) as usize];
        csv += &format!(
            "img/{i}.png,{},P{},{part}\n",
            if i % 2 == 0 { "tumour" } else { "normal" },
            i / 3
        );
    }
    std::fs::write(dir.path().join("m.csv"), csv).unwrap();
    let mut o = OpenOptions::default();
    o.columns = [
        "file".into(),
        "diagnosis".into(),
        "patient".into(),
        "part".into(),
    ];
    let ds = Dataset::open(dir.path().join("m.csv").to_str().unwrap(), &o).unwrap();
    assert_eq!((ds.len(), ds.n_slides()), (12, 4));
    assert_eq!(ds.items[5].width, 15);
    let split = Split::new(&ds, &SplitOptions::default()).unwrap();
    assert_eq!(
        (split.train.len(), split.val.len(), split.test.len()),
        (6, 3, 3)
    );

    // A manifest that puts one patient on two sides is refused.
    let mut csv = std::fs::read_to_string(dir.path().join("m.csv")).unwrap();
    csv = csv.replace("img/8.png,tumour,P2,val", "img/8.png,tumour,P2,test");
    std::fs::write(dir.path().join("m2.csv"), csv).unwrap();
    let ds = Dataset::open(dir.path().join("m2.csv").to_str().unwrap(), &o).unwrap();
    let err = Split::new(&ds, &SplitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("slide leakage") && err.contains("P2"), "{err}");
    assert!(Split::new(
        &ds,
        &SplitOptions {
            allow_slide_leakage: true,
            ..Default::default()
        }
    )
    .is_ok());

    // A bad manifest line names the file and line.
    std::fs::write(dir.path().join("m3.csv"), "file,diagnosis\nimg/0.png,\n").unwrap();
    let err = Dataset::open(dir.path().join("m3.csv").to_str().unwrap(), &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("m3.csv") && err.contains("line 2"), "{err}");
}

fn synthetic(seed: u64) -> Dataset {
    let mut r = Rng::new(seed);
    let k = 2 + r.below(4);
    let n_slides = 5 + r.below(40);
    let mut items = Vec::new();
    for s in 0..n_slides {
        let main = r.below(k);
        for _ in 0..1 + r.below(10) {
            let label = if r.below(5) == 0 { r.below(k) } else { main };
            items.push(Item {
                path: PathBuf::from(format!("s{s}/{}.png", items.len())),
                label,
                slide: format!("slide{s}"),
                split: None,
                width: 1,
                height: 1,
                tile: None,
            });
        }
    }
    Dataset {
        name: "synthetic".into(),
        root: PathBuf::new(),
        classes: (0..k).map(|c| c.to_string()).collect(),
        items,
        slide_info: String::new(),
        skipped: vec![],
        warnings: vec![],
        stain: None,
    }
}

#[test]
fn random_splits_never_share_a_slide_and_repeat_with_the_seed() {
    for seed in 0..300 {
        let ds = synthetic(seed);
        let mut r = Rng::new(seed + 1000);
        let o = SplitOptions {
            train: 0.2 + r.uniform() * 0.6,
            val: r.uniform() * 0.3,
            test: 0.1 + r.uniform() * 0.3,
            seed,
            ..Default::default()
        };
        let s = Split::new(&ds, &o).unwrap();
        let slides: Vec<String> = ds.items.iter().map(|i| i.slide.clone()).collect();
        assert!(shared_slides(&slides, &s.train, &s.test).is_empty());
        assert!(shared_slides(&slides, &s.train, &s.val).is_empty());
        assert!(shared_slides(&slides, &s.val, &s.test).is_empty());
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), ds.len());
        let again = Split::new(&ds, &o).unwrap();
        assert_eq!(
            (s.train, s.val, s.test),
            (again.train, again.val, again.test)
        );
    }
}

#[test]
fn stratified_split_keeps_class_proportions_when_slides_allow() {
    // 100 single-class slides of 4 images; classes 70/30.
    let items = (0..400)
        .map(|i| Item {
            path: PathBuf::from(format!("{i}.png")),
            label: usize::from((i / 4) % 10 >= 7),
            slide: format!("s{}", i / 4),
            split: None,
            width: 1,
            height: 1,
            tile: None,
        })
        .collect();
    let ds = Dataset {
        name: "x".into(),
        root: PathBuf::new(),
        classes: vec!["a".into(), "b".into()],
        items,
        slide_info: String::new(),
        skipped: vec![],
        warnings: vec![],
        stain: None,
    };
    let s = Split::new(
        &ds,
        &SplitOptions {
            seed: 4,
            ..Default::default()
        },
    )
    .unwrap();
    for (part, want) in [(&s.train, 240.0), (&s.val, 80.0), (&s.test, 80.0)] {
        let b = part.iter().filter(|i| ds.items[**i].label == 1).count() as f64;
        assert!(
            (part.len() as f64 - want).abs() <= 4.0,
            "{} vs {want}",
            part.len()
        );
        assert!(
            (b / part.len() as f64 - 0.3).abs() < 0.03,
            "{b} of {}",
            part.len()
        );
    }
}

/// Mean and max absolute difference, in 8-bit pixel levels, between our network inputs for the
/// fixture images and PIL + torchvision's (`reference`, already normalised as `norm` does).
fn preprocessing_error(
    size: u32,
    interpolation: Interpolation,
    norm: Normalization,
    reference: &tch::Tensor,
) -> Vec<(String, f64, f64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<String> = serde_json::from_slice(
        &std::fs::read(root.join("tests/fixtures/generated/preprocess.json"))
            .expect("run scripts/make-fixtures"),
    )
    .unwrap();
    assert_eq!(reference.size()[0], files.len() as i64);
    let prep = Prepare {
        pre: Preprocess {
            size,
            interpolation,
            normalization: norm,
        },
        stain: None,
        augment: None,
        seed: 0,
    };
    let std = tch::Tensor::from_slice(&norm.mean_std().1).reshape([3, 1, 1]) * 255.0;
    let s = size as i64;
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ours = tch::Tensor::from_slice(&prepare_one(&root.join(f), 0, &prep).unwrap())
                .reshape([3, s, s]);
            let levels = (ours - reference.get(i as i64)).abs() * &std;
            (
                f.clone(),
                f64::try_from(levels.mean(tch::Kind::Double)).unwrap(),
                f64::try_from(levels.max()).unwrap(),
            )
        })
        .collect()
}

/// The fixture's `[0, 1]` pixels normalised as `norm` does.
fn normalised(t: &tch::Tensor, norm: Normalization) -> tch::Tensor {
    let (mean, std) = norm.mean_std();
    let m = tch::Tensor::from_slice(&mean).reshape([1, 3, 1, 1]);
    let s = tch::Tensor::from_slice(&std).reshape([1, 3, 1, 1]);
    (t - m) / s
}

/// Error bounds in pixel levels (mean, max). Lossless files (the Kather TIFFs) differ from PIL by
/// rounding only (measured: mean ≤ 0.22, max ≤ 3 at 299 px); JPEGs add the two decoders' IDCT
/// differences (zune-jpeg vs libjpeg-turbo; measured mean ≤ 0.35, max ≤ 5).
fn bounds(file: &str) -> (f64, f64) {
    if file.ends_with(".jpg") {
        (0.5, 6.01)
    } else {
        (0.3, 3.01)
    }
}

#[test]
fn preprocessing_matches_pil_and_torchvision() {
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated");
    let refs = patholab_core::nets::weights::read(&gen.join("preprocess.safetensors")).unwrap();
    let fixture = |k: &str| refs.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone();
    let (bilinear, bicubic) = (Interpolation::Bilinear, Interpolation::Bicubic);
    let inception = Normalization::Inception;
    for (what, size, interp, norm, reference) in [
        (
            "bilinear 224",
            224,
            bilinear,
            inception,
            normalised(&fixture("bilinear"), inception),
        ),
        (
            "bicubic 224",
            224,
            bicubic,
            inception,
            normalised(&fixture("bicubic"), inception),
        ),
        (
            "bicubic 299",
            299,
            bicubic,
            inception,
            normalised(&fixture("bicubic299"), inception),
        ),
        // ImageNet mean/std as torchvision's Normalize applies it.
        (
            "bilinear 224 imagenet",
            224,
            bilinear,
            Normalization::ImageNet,
            fixture("bilinear_imagenet"),
        ),
    ] {
        let errors = preprocessing_error(size, interp, norm, &reference);
        let worst = |k: fn(&(String, f64, f64)) -> f64| errors.iter().map(k).fold(0.0, f64::max);
        eprintln!(
            "{what}: worst mean {:.3}, worst max {:.2} levels",
            worst(|e| e.1),
            worst(|e| e.2)
        );
        for (f, mean, max) in errors {
            let (mean_bound, max_bound) = bounds(&f);
            assert!(
                mean <= mean_bound && max <= max_bound,
                "{what} {f}: mean abs error {mean:.3} levels (≤ {mean_bound}), max {max:.2} levels (≤ {max_bound})"
            );
        }
    }
}

#[test]
fn the_preprocessing_check_tells_bilinear_from_bicubic() {
    // Negative control: the bounds must be tight enough to catch the wrong interpolation. On the
    // lossless images they are (measured: max 11-17 levels off); on JPEGs the decoders' own
    // differences are as large as bilinear vs bicubic, so the control uses the lossless ones.
    let gen = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated");
    let refs = patholab_core::nets::weights::read(&gen.join("preprocess.safetensors")).unwrap();
    let bicubic = refs
        .iter()
        .find(|(n, _)| n == "bicubic")
        .unwrap()
        .1
        .shallow_clone();
    let norm = Normalization::Inception;
    let errors = preprocessing_error(
        224,
        Interpolation::Bilinear,
        norm,
        &normalised(&bicubic, norm),
    );
    eprintln!("bilinear against bicubic: {errors:?}");
    let caught = errors
        .iter()
        .filter(|(_, mean, max)| *mean > 1.0 || *max > 2.01)
        .count();
    assert_eq!(
        caught,
        errors.len(),
        "bilinear passed as bicubic: {errors:?}"
    );
}
