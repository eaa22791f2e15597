//! Weight files: every format reads to the same tensors; hostile pickles are refused; and a
//! mutation fuzzer over every reader (short here; `FUZZ_SECONDS=600 cargo test --release --test
//! compute weights::fuzz -- --nocapture` for a long run) finds no panic and no hang.

use patholab_core::nets::weights;
use patholab_core::rng::Rng;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generated/weights")
}

#[test]
fn every_format_gives_the_same_tensors() {
    let reference =
        weights::read(&dir().join("tiny.safetensors")).expect("run scripts/make-fixtures");
    for f in ["tiny_zip.pt", "tiny_legacy.pth", "tiny_wrapped.pth"] {
        let got = weights::read(&dir().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(got.len(), reference.len(), "{f}");
        for (name, t) in &reference {
            let g = &got
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{f}: {name} missing"))
                .1;
            assert_eq!(g.size(), t.size(), "{f} {name}");
            assert!(g.equal(t), "{f}: {name} differs");
        }
    }
    // tch's own format.
    let tmp = tempfile::tempdir().unwrap();
    let ot = tmp.path().join("w.ot");
    let named: Vec<(&str, &tch::Tensor)> = reference.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::save_multi(&named, &ot).unwrap();
    assert_eq!(weights::read(&ot).unwrap().len(), reference.len());
}

fn pickle_with(global: &str, arg: &str) -> Vec<u8> {
    let (module, name) = global.rsplit_once('.').unwrap();
    let mut p = vec![0x80, 2];
    p.extend(format!("c{module}\n{name}\n").bytes());
    p.push(b'X');
    p.extend((arg.len() as u32).to_le_bytes());
    p.extend(arg.bytes());
    p.extend(b"\x85R.");
    p
}

#[test]
fn hostile_pickles_are_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, g) in [
        "os.system",
        "builtins.eval",
        "builtins.exec",
        "subprocess.Popen",
        "posix.system",
        "torch.load",
    ]
    .iter()
    .enumerate()
    {
        let p = tmp.path().join(format!("evil{i}.pth"));
        std::fs::write(&p, pickle_with(g, "touch /tmp/pwned")).unwrap();
        let err = weights::read(&p).unwrap_err().to_string();
        assert!(
            err.contains(&format!("refused global {g}")) && err.contains("evil"),
            "{err}"
        );
    }
    // A pickle inside a zip checkpoint is held to the same rules.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("archive/data.pkl", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, &pickle_with("os.system", "id")).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let p = tmp.path().join("evil.pt");
    std::fs::write(&p, bytes).unwrap();
    assert!(weights::read(&p)
        .unwrap_err()
        .to_string()
        .contains("refused global os.system"));
    assert!(!Path::new("/tmp/pwned").exists());
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        if d.is_empty() {
            d.push(rng.below(256) as u8);
        }
        let at = rng.below(d.len());
        match rng.below(7) {
            0 => d[at] ^= 1 << rng.below(8),
            1 => d[at] = rng.below(256) as u8,
            2 => d.truncate(at),
            3 => {
                let n = rng.below(16);
                d.splice(at..at, (0..n).map(|_| rng.below(256) as u8));
            }
            4 => {
                // An interesting 4- or 8-byte integer.
                let v: u64 =
                    [0, 1, 0x7f, 0xff, 0xffff_ffff, u64::MAX, 1 << 31, 1 << 40][rng.below(8)];
                let bytes = v.to_le_bytes();
                let w = if rng.below(2) == 0 { 4 } else { 8 };
                for (k, b) in bytes[..w].iter().enumerate() {
                    if at + k < d.len() {
                        d[at + k] = *b;
                    }
                }
            }
            5 => {
                let len = rng.below(64).min(d.len() - at);
                let chunk: Vec<u8> = d[at..at + len].to_vec();
                let to = rng.below(d.len());
                d.splice(to..to, chunk);
            }
            _ => {
                let end = (at + rng.below(32)).min(d.len());
                d.drain(at..end);
            }
        }
    }
    d
}

#[test]
fn fuzz_every_reader() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().unwrap();
    let mut seeds: Vec<(String, Vec<u8>)> = [
        "tiny_zip.pt",
        "tiny_legacy.pth",
        "tiny_wrapped.pth",
        "tiny.safetensors",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            std::fs::read(dir().join(f)).expect("run scripts/make-fixtures"),
        )
    })
    .collect();
    let reference = weights::read(&dir().join("tiny.safetensors")).unwrap();
    let named: Vec<(&str, &tch::Tensor)> = reference.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::Tensor::save_multi(&named, tmp.path().join("seed.ot")).unwrap();
    seeds.push((
        "tiny.ot".into(),
        std::fs::read(tmp.path().join("seed.ot")).unwrap(),
    ));
    let mut rng = Rng::new(
        std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
    );
    let start = std::time::Instant::now();
    let (mut runs, mut accepted) = (0u64, 0u64);
    let mut slowest = std::time::Duration::ZERO;
    while start.elapsed().as_secs() < seconds {
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let data = mutate(seed, &mut rng);
        let ext = name.rsplit('.').next().unwrap();
        let p = tmp.path().join(format!("case.{ext}"));
        std::fs::write(&p, &data).unwrap();
        let t0 = std::time::Instant::now();
        // A watchdog: each input is read on its own thread, so a true infinite loop fails the test
        // (the stuck thread is left behind) instead of stalling the run.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = p.clone();
        std::thread::spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(|| {
                weights::read(&path).map(|v| v.len())
            }));
        });
        let keep = |data: &[u8]| {
            let keep =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-crash-{runs}.{ext}"));
            std::fs::write(&keep, data).unwrap();
            keep
        };
        let result = match rx.recv_timeout(std::time::Duration::from_secs(5)) {
            Ok(r) => r,
            Err(_) => panic!(
                "reader still running after 5 s on a mutation of {name} (a hang); input kept in {}",
                keep(&data).display()
            ),
        };
        let took = t0.elapsed();
        slowest = slowest.max(took);
        match result {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(_)) => {}
            Err(_) => panic!(
                "reader panicked on a mutation of {name}; input kept in {}",
                keep(&data).display()
            ),
        }
        runs += 1;
    }
    eprintln!("fuzz: {runs} inputs in {seconds} s, {accepted} accepted, slowest {slowest:?}");
    assert!(runs > 100);
}

#[test]
fn inputs_the_fuzzer_once_crashed_on_are_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        assert!(
            weights::read(&p).is_err(),
            "{} should be refused",
            p.display()
        );
    }
}
