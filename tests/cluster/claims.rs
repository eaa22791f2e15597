//! Claim files: processes that share a feature cache, with no `--shard`, split the work. Three
//! processes started together on 500 images compute each image about once (at most 500 + 3 ×
//! chunk in all) and each gets the matrix of a single run byte for byte; a SIGKILLed process's
//! claims are taken over by the next one.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::OnceLock;

const IMAGES: usize = 500;
const CHUNK: usize = 16;

/// 500 distinct images in class folders: the demo's white blood cells, small, each in one of
/// four orientations, so that every file has its own content hash.
fn images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("patholab-claims-{}", std::process::id()));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo/bccd-wbc");
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for class in std::fs::read_dir(&src).unwrap().flatten() {
            if class.path().is_dir() {
                for f in std::fs::read_dir(class.path()).unwrap().flatten() {
                    files.push((class.file_name().to_string_lossy().into(), f.path()));
                }
            }
        }
        files.sort();
        let mut hashes = std::collections::HashSet::new();
        for i in 0..IMAGES {
            let (class, path) = &files[i % files.len()];
            let img = image::open(path)
                .unwrap()
                .resize_exact(64, 64, image::imageops::FilterType::Triangle)
                .to_rgb8();
            let img = match i / files.len() {
                0 => img,
                1 => image::imageops::flip_horizontal(&img),
                2 => image::imageops::flip_vertical(&img),
                _ => image::imageops::rotate180(&img),
            };
            std::fs::create_dir_all(dir.join(class)).unwrap();
            let out = dir.join(class).join(format!("img_{i:03}.png"));
            img.save(&out).unwrap();
            assert!(
                hashes.insert(std::fs::read(&out).unwrap()),
                "image {i} repeats another"
            );
        }
        dir
    })
}

fn expr(out: &Path) -> String {
    format!(
        "network(\"efficientnet_lite0\").features(dataset(\"{}\", #{{ slide: \"image\" }}), #{{ taps: [\"_blocks.1\"], batch: 8, chunk: {CHUNK} }}).save(\"{}\")",
        images().display(),
        out.display()
    )
}

fn start(cache: &Path, out: &Path) -> Child {
    common::patholab()
        .env("PATHOLAB_CACHE", cache)
        .args(["-e", &expr(out)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn log(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// The counters of a log's `features:` line: (computed here, from cache, computed elsewhere).
fn counters(log: &str) -> (usize, usize, usize) {
    let n = common::counters(log);
    (n[0], n[1], n[2])
}

/// The matrix of one process alone on an empty cache.
fn reference() -> &'static [u8] {
    static REF: OnceLock<Vec<u8>> = OnceLock::new();
    REF.get_or_init(|| {
        let cache = tempfile::tempdir().unwrap();
        let out = cache.path().join("ref.safetensors");
        let o = start(cache.path(), &out).wait_with_output().unwrap();
        assert!(o.status.success(), "{}", log(&o));
        assert_eq!(counters(&log(&o)), (IMAGES, 0, 0));
        std::fs::read(&out).unwrap()
    })
}

fn files_with(dir: &Path, ext: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += files_with(&p, ext);
        } else if p.extension().is_some_and(|x| x == ext) {
            n += 1;
        }
    }
    n
}

#[test]
fn three_processes_on_one_cache_compute_each_image_once() {
    let reference = reference();
    let cache = tempfile::tempdir().unwrap();
    let outs: Vec<PathBuf> = (0..3)
        .map(|i| cache.path().join(format!("out{i}.safetensors")))
        .collect();
    let t0 = std::time::Instant::now();
    let children: Vec<Child> = outs.iter().map(|o| start(cache.path(), o)).collect();
    let logs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", log(&o));
            log(&o)
        })
        .collect();
    let counts: Vec<_> = logs.iter().map(|l| counters(l)).collect();
    let computed: usize = counts.iter().map(|c| c.0).sum();
    eprintln!(
        "3 processes: computed {:?} = {computed} of {IMAGES} in {:.1} s",
        counts.iter().map(|c| c.0).collect::<Vec<_>>(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        computed <= IMAGES + 3 * CHUNK,
        "{computed} images computed for {IMAGES}: {counts:?}"
    );
    assert!(computed >= IMAGES);
    for (c, l) in counts.iter().zip(&logs) {
        assert_eq!(c.0 + c.1 + c.2, IMAGES, "{l}");
    }
    assert!(
        counts.iter().filter(|c| c.0 > 0).count() >= 2,
        "the work was shared: {counts:?}"
    );
    for o in &outs {
        assert!(
            std::fs::read(o).unwrap() == reference,
            "{} differs from a single run",
            o.display()
        );
    }
    assert_eq!(files_with(cache.path(), "claim"), 0, "claims are released");
}

#[test]
fn a_killed_process_claims_are_taken_over() {
    let reference = reference();
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("killed.safetensors");
    let mut victim = start(cache.path(), &out);
    // Kill it while it holds claims, after a few chunks are written.
    let t0 = std::time::Instant::now();
    while (files_with(cache.path(), "bin") < 3 || files_with(cache.path(), "claim") == 0)
        && t0.elapsed().as_secs() < 120
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    unsafe { libc::kill(victim.id() as i32, libc::SIGKILL) };
    victim.wait().unwrap();
    let written = files_with(cache.path(), "bin");
    let left = files_with(cache.path(), "claim");
    assert!(
        written >= 3 && left >= 1,
        "killed with {written} chunks written and {left} claims held"
    );
    assert!(
        written * CHUNK < IMAGES,
        "the victim finished before the kill"
    );
    let out = cache.path().join("after.safetensors");
    let o = start(cache.path(), &out).wait_with_output().unwrap();
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    assert!(l.contains("took over a stale claim"), "{l}");
    let (computed, cached, elsewhere) = counters(&l);
    assert_eq!(
        (computed, cached, elsewhere),
        (IMAGES - written * CHUNK, written * CHUNK, 0),
        "{l}"
    );
    assert!(std::fs::read(&out).unwrap() == reference);
    assert_eq!(files_with(cache.path(), "claim"), 0);
}
