//! Feature extraction: equality with the Python reference, the cache (second call computes
//! nothing, new images only), crash safety under SIGKILL, and shards.

use crate::common;

use patholab_core::data::{Dataset, OpenOptions};
use patholab_core::features::extract::{extract, ExtractOptions, Reduce};
use patholab_core::nets::{NetOptions, Network};
use std::path::Path;

fn lite0() -> Network {
    Network::new("efficientnet_lite0", NetOptions::default())
        .expect("setup installs the lite0 weights")
}

#[test]
fn pooled_taps_equal_the_reference() {
    let refs = patholab_core::nets::weights::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/generated/features_lite0.safetensors"),
    )
    .expect("run scripts/make-fixtures");
    let get = |k: &str| refs.iter().find(|(n, _)| n == k).unwrap().1.shallow_clone();
    let net = lite0();
    let taps: Vec<String> = ["_blocks.5", "_blocks.15", "_conv_head"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let outs = tch::no_grad(|| net.forward_taps(&get("input"), &taps, false));
    for (t, o) in taps.iter().zip(&outs) {
        for (name, r) in [("gap", Reduce::Gap), ("gmp", Reduce::Gmp)] {
            let want = get(&format!("{name}/{t}"));
            let rel = f64::try_from((r.apply(o) - &want).abs().max()).unwrap()
                / f64::try_from(want.abs().max()).unwrap();
            assert!(rel <= 1e-4, "{t} {name}: relative error {rel:e}");
        }
    }
}

fn run_features(cache: &Path, extra: &str) -> (bool, String) {
    let expr = format!("let f = network(\"efficientnet_lite0\").features(dataset(\"demo:kather\"), #{{ taps: [\"_blocks.9\", \"last\"], batch: 4, chunk: 4 {extra} }}); f.save(\"{}\"); f.dims()", cache.join("out.safetensors").display());
    let out = common::patholab()
        .env("PATHOLAB_CACHE", cache)
        .args(["-e", &expr])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ),
    )
}

fn computed(log: &str) -> usize {
    common::counters(log)[0]
}

#[test]
fn second_call_reads_the_cache_and_new_images_only_are_computed() {
    let cache = tempfile::tempdir().unwrap();
    let (ok, log) = run_features(cache.path(), "");
    assert!(ok, "{log}");
    assert_eq!(computed(&log), 24);
    let first = std::fs::read(cache.path().join("out.safetensors")).unwrap();
    let (_, log) = run_features(cache.path(), "");
    assert_eq!(computed(&log), 0, "{log}");
    assert_eq!(
        std::fs::read(cache.path().join("out.safetensors")).unwrap(),
        first,
        "cached features are identical"
    );

    // A flipped bit in one chunk (chunks of 4 images): those 4 are computed again, with a
    // warning, and the result is the same.
    let chunk = walk(cache.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .unwrap();
    let mut b = std::fs::read(&chunk).unwrap();
    let last = b.len() - 20;
    b[last] ^= 0x01;
    std::fs::write(&chunk, &b).unwrap();
    let (ok, log) = run_features(cache.path(), "");
    assert!(ok, "{log}");
    assert!(log.contains("is damaged (checksum)"), "{log}");
    assert_eq!(computed(&log), 4, "{log}");
    assert_eq!(
        std::fs::read(cache.path().join("out.safetensors")).unwrap(),
        first,
        "recomputed features are identical"
    );

    // A dataset with two more images computes just those two.
    let data = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo/kather2016-samples");
    for class in std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        let dst = data.path().join(class.file_name());
        std::fs::create_dir_all(&dst).unwrap();
        for f in std::fs::read_dir(class.path()).unwrap().flatten() {
            std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
        }
    }
    let mut img = image::open(src.join("01_TUMOR/1A11_CRC-Prim-HE-07_022.tif_Row_601_Col_151.tif"))
        .unwrap()
        .to_rgb8();
    image::imageops::flip_horizontal_in_place(&mut img);
    img.save(data.path().join("01_TUMOR/new1_CRC-Prim-HE-07_999.png"))
        .unwrap();
    // The same new content again, in the last class: listed far from the first copy.
    let last = walk_classes(data.path()).pop().unwrap();
    std::fs::copy(
        data.path().join("01_TUMOR/new1_CRC-Prim-HE-07_999.png"),
        last.join("copy_CRC-Prim-HE-07_997.png"),
    )
    .unwrap();
    image::imageops::flip_vertical_in_place(&mut img);
    img.save(data.path().join("01_TUMOR/new2_CRC-Prim-HE-07_998.png"))
        .unwrap();
    let ds = Dataset::open(data.path().to_str().unwrap(), &OpenOptions::default()).unwrap();
    std::env::set_var("PATHOLAB_CACHE", cache.path());
    let f = extract(
        &lite0(),
        &ds,
        &ExtractOptions {
            taps: patholab_core::options::Names(vec!["_blocks.9".into(), "last".into()]),
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    // Three new rows, two new contents: the copy is computed once.
    assert_eq!((f.n, f.computed), (27, 2));
    let row = |name: &str| {
        let i = f.ids.iter().position(|id| id.contains(name)).unwrap();
        f.x[i * f.d..(i + 1) * f.d].to_vec()
    };
    assert_eq!(row("new1_CRC"), row("copy_CRC"));
}

#[test]
fn a_killed_run_loses_at_most_the_chunk_in_flight() {
    let reference = tempfile::tempdir().unwrap();
    let (ok, log) = run_features(reference.path(), "");
    assert!(ok, "{log}");
    let cache = tempfile::tempdir().unwrap();
    let expr =
        "network(\"efficientnet_lite0\").features(dataset(\"demo\"), #{ batch: 4, chunk: 8 })";
    let mut child = common::patholab()
        .env("PATHOLAB_CACHE", cache.path())
        .args(["-e", expr])
        .spawn()
        .unwrap();
    // Kill once a few chunks are on disk.
    let chunks = || {
        walk(cache.path())
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .count()
    };
    let t0 = std::time::Instant::now();
    while chunks() < 3 && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc_kill(child.id() as i32, 9) };
    let _ = child.wait();
    let done = chunks();
    assert!(done >= 3, "the run was killed before writing chunks");
    // The rerun computes the rest, and the result equals an uninterrupted run.
    let out = common::patholab()
        .env("PATHOLAB_CACHE", cache.path())
        .args(["-e", expr])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(computed(&log), 351 - 8 * done, "{log}");
    let full = tempfile::tempdir().unwrap();
    let save = |c: &Path| {
        let e = format!("network(\"efficientnet_lite0\").features(dataset(\"demo\"), #{{ batch: 4 }}).save(\"{}\")", c.join("f.safetensors").display());
        assert!(common::patholab()
            .env("PATHOLAB_CACHE", c)
            .args(["-e", &e])
            .status()
            .unwrap()
            .success());
        std::fs::read(c.join("f.safetensors")).unwrap()
    };
    assert_eq!(
        save(cache.path()),
        save(full.path()),
        "resumed features equal an uninterrupted run"
    );
}

#[test]
fn shards_fill_the_cache_for_a_full_read() {
    let cache = tempfile::tempdir().unwrap();
    let (ok0, log0) = run_features(cache.path(), ", shard: [0, 2]");
    let (ok1, log1) = run_features(cache.path(), ", shard: [1, 2]");
    assert!(ok0 && ok1, "{log0}{log1}");
    assert_eq!(computed(&log0) + computed(&log1), 24);
    let (_, log) = run_features(cache.path(), "");
    assert_eq!(computed(&log), 0, "{log}");
}

/// The class folders of an ImageFolder tree, sorted.
fn walk_classes(p: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
