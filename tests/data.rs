//! Datasets: broken files, manifests, slide-wise splits, and preprocessing parity with PIL.

use patholab::data::loader::{prepare_one, Prepare};
use patholab::data::split::{shared_slides, Split, SplitOptions};
use patholab::data::transform::Preprocess;
use patholab::data::{Dataset, Item, OnError, OpenOptions};
use patholab::nets::registry::{Interpolation, Normalisation};
use patholab::rng::Rng;
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

#[test]
fn preprocessing_matches_pil_and_torchvision() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gen = root.join("tests/fixtures/generated");
    let files: Vec<String> = serde_json::from_slice(
        &std::fs::read(gen.join("preprocess.json")).expect("run scripts/make-fixtures"),
    )
    .unwrap();
    let refs = patholab::nets::weights::read(&gen.join("preprocess.safetensors")).unwrap();
    for (mode, interp) in [
        ("bilinear", Interpolation::Bilinear),
        ("bicubic", Interpolation::Bicubic),
    ] {
        let want = refs
            .iter()
            .find(|(n, _)| n == mode)
            .unwrap()
            .1
            .shallow_clone();
        let prep = Prepare {
            pre: Preprocess {
                size: 224,
                interpolation: interp,
                normalisation: Normalisation::Inception,
            },
            augment: None,
            seed: 0,
        };
        for (i, f) in files.iter().enumerate() {
            let px = prepare_one(&root.join(f), 0, &prep).unwrap();
            let ours = tch::Tensor::from_slice(&px).reshape([3, 224, 224]) * 0.5 + 0.5; // back to [0, 1]
            let mae =
                f64::try_from((ours - want.get(i as i64)).abs().mean(tch::Kind::Double)).unwrap();
            assert!(
                mae <= 1.0 / 255.0,
                "{mode} {f}: mean abs error {mae} > 1/255"
            );
        }
    }
}
