//! The feature cache as scripts see it: `cache_info()` reports what is on disk (settings, taps,
//! images, chunk files, bytes) and `cache_clear()` removes it; features computed in shards equal,
//! value for value, features computed in one run.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn eval(cache: &Path, expr: &str) -> Output {
    common::patholab()
        .env("PATHOLAB_CACHE", cache)
        .args(["-e", expr])
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn walk(p: &Path) -> Vec<PathBuf> {
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

/// Images computed (not read from the cache), from the `features:` line on stderr.
fn computed(log: &str) -> usize {
    common::counters(log)[0]
}

const FEATURES: &str = r#"network("efficientnet_lite0").features(dataset("demo:kather"), #{ taps: ["_blocks.9", "last"], batch: 8, chunk: 8"#;

#[test]
fn cache_info_reports_what_is_on_disk_and_cache_clear_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = eval(&cache, "cache_info()");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("feature cache {}: empty", cache.display())
    );

    let out = eval(&cache, &format!("{FEATURES} }}); cache_info()"));
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(computed(&t), 24, "{t}");
    let info = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // What is on disk: one settings folder, two tap folders of 24 images in chunks of 8, no claim left.
    let chunks: Vec<PathBuf> = walk(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    assert_eq!(chunks.len(), 6, "{chunks:?}");
    let bytes: u64 = chunks.iter().map(|p| p.metadata().unwrap().len()).sum();
    let settings: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(settings.len(), 1, "{settings:?}");
    // Tap folders, beside the folder of claim files that processes sharing the cache leave.
    let mut taps: Vec<String> = std::fs::read_dir(cache.join(&settings[0]))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir() && e.file_name() != "claims")
        .map(|e| format!("{} (24 images)", e.file_name().to_string_lossy()))
        .collect();
    taps.sort();
    assert_eq!(taps.len(), 2);
    let want = format!(
        "feature cache {}\n  {}: {}\n6 chunk files, {:.1} MB",
        cache.display(),
        settings[0],
        taps.join(", "),
        bytes as f64 / 1e6
    );
    assert_eq!(info, want);
    assert!(settings[0].starts_with("efficientnet_lite0-"), "{info}");

    let out = eval(&cache, "cache_clear()");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("removed {}", cache.display())
    );
    assert!(!cache.exists(), "the cache folder is gone");
    let out = eval(&cache, "cache_clear()");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("was already empty"),
        "{}",
        text(&out)
    );
    // Cleared means cleared: the same features are computed again, all of them.
    let out = eval(&cache, &format!("{FEATURES} }}); cache_info()"));
    assert_eq!(computed(&text(&out)), 24, "{}", text(&out));
}

#[test]
fn features_computed_in_shards_equal_features_computed_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (sharded, whole) = (tmp.path().join("sharded"), tmp.path().join("whole"));
    let mut n = 0;
    for i in 0..3 {
        let out = eval(&sharded, &format!("{FEATURES}, shard: [{i}, 3] }}).dims()"));
        assert!(out.status.success(), "{}", text(&out));
        n += computed(&text(&out));
    }
    assert_eq!(n, 24, "the shards together compute every image once");
    let save = |cache: &Path, file: &str| {
        let out = eval(
            cache,
            &format!(
                "{FEATURES} }}).save(\"{}\")",
                tmp.path().join(file).display()
            ),
        );
        assert!(out.status.success(), "{}", text(&out));
        computed(&text(&out))
    };
    assert_eq!(
        save(&sharded, "sharded.safetensors"),
        0,
        "read from the shards"
    );
    assert_eq!(save(&whole, "whole.safetensors"), 24);
    let read = |file: &str| patholab_core::nets::weights::read(&tmp.path().join(file)).unwrap();
    let (a, b) = (read("sharded.safetensors"), read("whole.safetensors"));
    assert_eq!(a.len(), b.len());
    for (name, t) in &b {
        let s = &a
            .iter()
            .find(|(m, _)| m == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .1;
        assert_eq!(s.size(), t.size(), "{name}");
        assert!(s.equal(t), "{name}: sharded values differ from one run's");
    }
}
