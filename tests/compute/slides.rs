//! Whole-slide images: parity with openslide-python (region bytes identical, resampled tiles within
//! 1/255 of Pillow), the tissue mask against the Python implementation of the same method (IoU),
//! tile datasets through the script surface, bad slides with clear errors, a short fuzz of the
//! slide path, and examples/wsi.rhai. References: tests/fixtures/make_wsi.py.

use crate::common;

use patholab_core::slide::grid::{grid, GridOptions, Tile};
use patholab_core::slide::tissue::{detect, TissueOptions};
use patholab_core::slide::Slide;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn gen() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/wsi")
}

fn svs() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/wsi-cmu1-small/CMU-1-Small-Region.svs");
    if p.exists() {
        p
    } else {
        PathBuf::from("/work/shared/datasets/wsi-cmu1-small/CMU-1-Small-Region.svs")
    }
}

fn slide_path(name: &str) -> PathBuf {
    match name {
        "svs" => svs(),
        "pyramid" => gen().join("cmu-pyramid.tif"),
        "large" => gen().join("large-pyramid.tif"),
        _ => unreachable!(),
    }
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(gen().join(name)).unwrap()).unwrap()
}

#[test]
fn properties_match_openslide_python() {
    let s = Slide::open(&svs()).unwrap();
    let r = json("properties.json");
    let levels: Vec<(u64, u64, f64)> = s
        .levels
        .iter()
        .map(|l| (l.width, l.height, l.downsample))
        .collect();
    let want: Vec<(u64, u64, f64)> = r["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l[0].as_u64().unwrap(),
                l[1].as_u64().unwrap(),
                l[2].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(levels, want);
    for (k, v) in r["properties"].as_object().unwrap() {
        assert_eq!(s.properties.get(k).map(|s| s.as_str()), v.as_str(), "{k}");
    }
    assert_eq!(
        s.properties.len(),
        r["properties"].as_object().unwrap().len()
    );
    assert_eq!(s.mpp(), Some((0.499, 0.499)));
    assert_eq!(s.objective_power(), Some(20.0));
    assert_eq!(s.vendor(), Some("aperio"));
    let names: Vec<&str> = s.associated.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(names, ["label", "macro", "thumbnail"]);
    for (name, wh) in r["associated"].as_object().unwrap() {
        let img = s.associated_image(name).unwrap();
        assert_eq!(
            (img.width as u64, img.height as u64),
            (wh[0].as_u64().unwrap(), wh[1].as_u64().unwrap())
        );
        let want = std::fs::read(gen().join(format!("regions/associated-{name}.rgba"))).unwrap();
        assert!(img.data == want, "associated image {name} differs");
    }
}

#[test]
fn region_reads_are_the_same_bytes_as_openslide_python() {
    for r in json("regions.json").as_array().unwrap() {
        let s = patholab_core::slide::shared(&slide_path(r["slide"].as_str().unwrap())).unwrap();
        let g = |k: &str| r[k].as_i64().unwrap();
        let img = s
            .read(
                g("x"),
                g("y"),
                g("level") as usize,
                g("w") as u32,
                g("h") as u32,
            )
            .unwrap();
        let want = std::fs::read(gen().join("regions").join(r["file"].as_str().unwrap())).unwrap();
        assert_eq!(img.data.len(), want.len());
        let diff = img.data.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{r}: {diff} bytes differ");
    }
}

#[test]
fn resampled_tiles_match_pillow_and_the_grid_rule() {
    for r in json("tiles.json").as_array().unwrap() {
        let s = patholab_core::slide::shared(&slide_path(r["slide"].as_str().unwrap())).unwrap();
        let o = GridOptions {
            size: r["size"].as_u64().unwrap() as u32,
            mpp: r["mpp"].as_f64(),
            ..Default::default()
        };
        let g = grid(&s, &o, None).unwrap();
        assert_eq!(g.len() as u64, r["count"].as_u64().unwrap(), "{r}");
        let t: Tile = g[r["index"].as_u64().unwrap() as usize].0;
        let want_t = (
            r["level"].as_u64().unwrap() as u32,
            r["x"].as_i64().unwrap(),
            r["y"].as_i64().unwrap(),
            r["w"].as_u64().unwrap() as u32,
        );
        assert_eq!((t.level, t.x, t.y, t.w), want_t, "{r}");
        let px = t.read(&s).unwrap();
        let want = std::fs::read(gen().join("tiles").join(r["file"].as_str().unwrap())).unwrap();
        assert_eq!(px.data.len(), want.len());
        let mad: f64 = px
            .data
            .iter()
            .zip(&want)
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .sum::<f64>()
            / want.len() as f64;
        assert!(mad <= 1.0, "{r}: mean abs difference {mad:.3} > 1/255");
        eprintln!(
            "tile {} mpp {}: mean abs diff {mad:.4}",
            r["slide"], r["mpp"]
        );
    }
}

#[test]
fn tissue_mask_matches_the_python_method() {
    for r in json("masks.json").as_array().unwrap() {
        let s = Slide::open(&slide_path(r["slide"].as_str().unwrap())).unwrap();
        let m = detect(
            &s,
            &TissueOptions {
                downsample: r["downsample"].as_f64().unwrap(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (m.width as u64, m.height as u64),
            (r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap())
        );
        let want = std::fs::read(gen().join("masks").join(r["file"].as_str().unwrap())).unwrap();
        let (mut inter, mut union) = (0usize, 0usize);
        for (a, b) in m.data.iter().zip(&want) {
            let b = *b != 0;
            inter += (*a && b) as usize;
            union += (*a || b) as usize;
        }
        let iou = inter as f64 / union.max(1) as f64;
        eprintln!("mask {} at 1/{}: IoU {iou:.4}", r["slide"], r["downsample"]);
        assert!(iou >= 0.95, "{r}: IoU {iou:.4} < 0.95");
    }
}

#[test]
fn tiles_are_a_dataset_kept_together_by_slide() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_script(
        dir.path(),
        r#"
        let d = tiles(`${demo_dir()}/cmu-regions/manifest.csv`, #{ size: 112, mpp: 0.5, labels: `${demo_dir()}/cmu-regions` });
        print(`classes ${d.classes()}`);
        print(d);
        let s = d.split(#{ train: 0.5, val: 0.0, test: 0.5, seed: 1 });
        print(s.audit());
        let again = dataset("demo:slide");
        print(`demo ${again.len()} ${d.len()}`);
        "#,
        &[],
    );
    let log = common::text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("classes [\"epithelium\", \"stroma\"]"),
        "{log}"
    );
    assert!(log.contains("6 slides"), "{log}");
    let demo = log.lines().find(|l| l.starts_with("demo ")).unwrap();
    let n: Vec<&str> = demo.split_whitespace().collect();
    assert_eq!(n[1], n[2], "{log}");
}

#[test]
fn bad_slides_are_clear_errors_naming_the_file() {
    let bad = gen().join("bad");
    let cases: &[(&str, &str)] = &[
        ("truncated.svs", "truncated.svs"),
        ("striped.tif", "not tiled"),
        ("photo.svs", "plain JPEG"),
        ("missing.svs", "missing.svs"),
    ];
    for (file, says) in cases {
        let e = match Slide::open(&bad.join(file)) {
            Err(e) => e.to_string(),
            Ok(s) => {
                // A truncated slide may open and fail when its tiles are read.
                let (w, h) = s.dimensions();
                match s.read(0, 0, 0, w.min(4096) as u32, h.min(4096) as u32) {
                    Err(e) => e.to_string(),
                    Ok(_) => panic!("{file} read without error"),
                }
            }
        };
        assert!(e.contains(file) && e.contains(says), "{file}: {e}");
    }
    let s = Slide::open(&bad.join("corrupt-level.tif")).unwrap();
    let e = s.read(0, 0, 1, 256, 256).unwrap_err().to_string();
    assert!(
        e.contains("corrupt-level.tif") && e.contains("level 1"),
        "{e}"
    );
    let e = patholab_core::slide::annotations::Annotations::read(&bad.join("open-ring.geojson"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("open-ring.geojson") && e.contains("feature 0") && e.contains("not closed"),
        "{e}"
    );

    // Through the script: a tile dataset over a folder with the bad slides, skipping them.
    let dir = tempfile::tempdir().unwrap();
    let slides = dir.path().join("slides");
    std::fs::create_dir(&slides).unwrap();
    for f in [
        "truncated.svs",
        "striped.tif",
        "photo.svs",
        "corrupt-level.tif",
    ] {
        std::fs::copy(bad.join(f), slides.join(f)).unwrap();
    }
    std::fs::copy(gen().join("cmu-pyramid.tif"), slides.join("good.tif")).unwrap();
    let out = common::run_script(
        dir.path(),
        r#"let d = tiles("slides", #{ mpp: 1.0, on_error: "skip" }); print(d);
           let e = 0; try { tiles("slides", #{ mpp: 1.0 }); } catch (err) { print(`failed: ${err}`); }"#,
        &[],
    );
    let log = common::text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("tiles of 1 slide(s)"), "{log}");
    assert!(
        log.contains("4 unreadable slide(s)") && log.contains("corrupt-level.tif"),
        "{log}"
    );
}

/// Mutations of the real SVS (bytes flipped in the header and tile directories, random
/// truncations) through OpenSlide and our code: each is an error or a readable slide, never a
/// panic. 20 s here; the long run: PATHOLAB_FUZZ_SECONDS=600.
#[test]
fn fuzzed_slides_never_crash() {
    let seconds: u64 = std::env::var("PATHOLAB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let original = std::fs::read(svs()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = patholab_core::rng::Rng::new(7);
    let start = std::time::Instant::now();
    let (mut n, mut opened, mut failed) = (0usize, 0usize, 0usize);
    while start.elapsed().as_secs() < seconds {
        let mut b = original.clone();
        match rng.below(3) {
            0 => {
                // Header and directories: the first 64 KiB.
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(65536.min(b.len()));
                    b[i] = rng.below(256) as u8;
                }
            }
            1 => {
                for _ in 0..1 + rng.below(32) {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            _ => b.truncate(rng.below(b.len())),
        }
        let p = dir.path().join(format!("m{}.svs", n % 4));
        std::fs::write(&p, &b).unwrap();
        n += 1;
        let r = std::panic::catch_unwind(|| -> patholab_core::Result<()> {
            let s = Slide::open(&p)?;
            let (w, h) = s.dimensions();
            s.read(0, 0, 0, w.min(600) as u32, h.min(600) as u32)?;
            s.read(w as i64 / 2, h as i64 / 2, 0, 300, 300)?;
            detect(
                &s,
                &TissueOptions {
                    downsample: 32.0,
                    ..Default::default()
                },
            )?;
            Ok(())
        });
        match r {
            Ok(Ok(())) => opened += 1,
            Ok(Err(e)) => {
                failed += 1;
                assert!(
                    e.to_string().contains(&*p.to_string_lossy()),
                    "error without the file: {e}"
                );
            }
            Err(_) => panic!("mutation {n} panicked"),
        }
    }
    eprintln!("fuzz: {n} mutations in {seconds} s: {opened} read, {failed} clear errors");
    assert!(n > 10);
}

#[test]
fn wsi_example_writes_a_heatmap() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::patholab_in(dir.path())
        .args(["--quiet", "run"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wsi.rhai"))
        .output()
        .unwrap();
    let log = common::text(&o);
    assert!(o.status.success(), "{log}");
    let png = dir.path().join("runs/wsi/heatmap.png");
    let img = image::open(&png).unwrap();
    assert!(img.width() > 100, "{log}");
    assert!(log.contains("slide-wise CV score"), "{log}");
}

/// The whole study (every strategy and the ET-FL baseline, quick settings) on the demo tile
/// dataset: tiles work wherever images do.
#[test]
fn the_whole_study_runs_on_a_tile_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::patholab_in(dir.path())
        .args(["--quiet", "run"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/paper/all.rhai"))
        .args(["--set", r#"datasets=["demo:slide"]"#])
        .args(["--set", r#"networks=["efficientnet_lite0"]"#])
        .args(["--set", "quick=true"])
        .output()
        .unwrap();
    let log = common::text(&o);
    assert!(o.status.success(), "{log}");
    for s in [
        "baseline (ET-FL)",
        "last layer",
        "feature selection",
        "merge layers",
        "inner layers",
        "fine-tuning",
    ] {
        assert!(log.contains(s), "no {s} row:\n{log}");
    }
}
