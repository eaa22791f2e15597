//! `patholab weights fetch` against a local HTTP server on 127.0.0.1: a full download, an
//! interrupted one that resumes (also from a server that ignores `Range`), a checksum mismatch
//! and a file of the right checksum whose tensors do not fit the network, both refused.

use crate::common;
use patholab_core::nets::weights;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Serves `body` for every request; the first `cut` responses stop after half the bytes.
fn serve(body: Vec<u8>, cut: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    serve_with(body, cut, true)
}

/// As [`serve`]; a server that does not `honour_range` answers every request with 200 and the
/// whole body, as some mirrors and proxies do.
fn serve_with(body: Vec<u8>, cut: usize, honour_range: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().take(20).enumerate() {
            let mut s = stream.unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut range_from = 0usize;
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range_from = v.trim().trim_end_matches('-').parse().unwrap();
                }
            }
            seen.lock()
                .unwrap()
                .push(format!("{} from {range_from}", first.trim()));
            if !honour_range {
                range_from = 0;
            }
            let part = &body[range_from..];
            let status = if range_from > 0 {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            let n = if i < cut { part.len() / 2 } else { part.len() };
            let _ = s.write_all(&part[..n]);
            let _ = s.flush();
        }
    });
    (addr, log)
}

fn weights_file() -> Vec<u8> {
    weights_file_with(|_, t| t)
}

/// The resnet18 fixture's weights as a safetensors file, each tensor passed through `change`.
fn weights_file_with(change: impl Fn(&str, tch::Tensor) -> tch::Tensor) -> Vec<u8> {
    let t = weights::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/generated/resnet18.safetensors"),
    )
    .expect("run scripts/make-fixtures");
    let w: Vec<(String, tch::Tensor)> = t
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("weights/")
                .map(|k| (k.to_string(), change(k, v.shallow_clone())))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    weights::write_safetensors(&p, &w).unwrap();
    std::fs::read(p).unwrap()
}

fn fetch(endpoint: &str, dir: &Path, sha: &str) -> std::process::Output {
    common::patholab()
        .env("PATHOLAB_HF_ENDPOINT", endpoint)
        .env("PATHOLAB_WEIGHTS", dir)
        .args(["--quiet", "weights", "fetch", "resnet18", "--sha256", sha])
        .output()
        .unwrap()
}

#[test]
fn full_download_then_strict_load() {
    let body = weights_file();
    let sha = format!("{:x}", Sha256::digest(&body));
    let (url, log) = serve(body.clone(), 0);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch(&url, dir.path(), &sha);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("resnet18.safetensors")).unwrap(),
        body
    );
    assert!(log.lock().unwrap()[0]
        .starts_with("GET /timm/resnet18.tv_in1k/resolve/main/model.safetensors"));
}

#[test]
fn an_interrupted_download_resumes() {
    let body = weights_file();
    let sha = format!("{:x}", Sha256::digest(&body));
    let (url, log) = serve(body.clone(), 1);
    let dir = tempfile::tempdir().unwrap();
    let first = fetch(&url, dir.path(), &sha);
    assert!(!first.status.success());
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("again to resume"), "{err}");
    let part = std::fs::metadata(dir.path().join("resnet18.safetensors.part"))
        .unwrap()
        .len();
    assert!(part > 0 && part < body.len() as u64);
    let second = fetch(&url, dir.path(), &sha);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("resnet18.safetensors")).unwrap(),
        body
    );
    assert!(
        log.lock().unwrap()[1].ends_with(&format!("from {part}")),
        "{:?}",
        log.lock().unwrap()
    );
}

#[test]
fn a_checksum_mismatch_is_refused() {
    let (url, _) = serve(weights_file(), 0);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch(&url, dir.path(), &"0".repeat(64));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    assert!(!dir.path().join("resnet18.safetensors").exists());
    assert!(!dir.path().join("resnet18.safetensors.part").exists());
}

#[test]
fn a_server_that_ignores_range_still_gives_a_correct_file() {
    let body = weights_file();
    let sha = format!("{:x}", Sha256::digest(&body));
    // The first answer stops half-way; the second, to a request with a Range header, is a 200
    // with the whole body: appending it to the partial file would corrupt it.
    let (url, log) = serve_with(body.clone(), 1, false);
    let dir = tempfile::tempdir().unwrap();
    assert!(!fetch(&url, dir.path(), &sha).status.success());
    let part = std::fs::metadata(dir.path().join("resnet18.safetensors.part"))
        .unwrap()
        .len();
    assert!(part > 0 && part < body.len() as u64);
    let second = fetch(&url, dir.path(), &sha);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        log.lock().unwrap()[1].ends_with(&format!("from {part}")),
        "the second request asked for a range: {:?}",
        log.lock().unwrap()
    );
    assert_eq!(
        std::fs::read(dir.path().join("resnet18.safetensors")).unwrap(),
        body
    );
    assert!(!dir.path().join("resnet18.safetensors.part").exists());
}

#[test]
fn a_file_with_the_right_checksum_but_mis_shaped_tensors_is_refused_and_not_kept() {
    // The classifier cut to 10 classes: a genuine file, just not for this network.
    let body = weights_file_with(|k, t| {
        if k.starts_with("fc.") {
            t.narrow(0, 0, 10).contiguous()
        } else {
            t
        }
    });
    let sha = format!("{:x}", Sha256::digest(&body));
    let (url, _) = serve(body, 0);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch(&url, dir.path(), &sha);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(
        err.contains("fc.weight") && err.contains("[10, 512]") && err.contains("[1000, 512]"),
        "the error names the tensor and both shapes: {err}"
    );
    assert!(!dir.path().join("resnet18.safetensors").exists());
    // Nothing of it is left behind: a next fetch starts afresh instead of "resuming" a file
    // that is already complete.
    assert!(
        !dir.path().join("resnet18.safetensors.part").exists(),
        "the refused download is still in the weights folder"
    );
}

/// Answers every request with `status` (as Hugging Face does for a gated repository).
fn refuse(status: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(5) {
            let mut s = stream.unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                head.push(line.trim().to_string());
            }
            seen.lock().unwrap().push(head.join(" | "));
            let body = "Access to model MahmoodLab/UNI is restricted.";
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (addr, log)
}

#[test]
fn a_gated_repository_that_refuses_says_what_to_do() {
    let (url, log) = refuse("401 Unauthorized");
    let dir = tempfile::tempdir().unwrap();
    let out = common::patholab()
        .env("PATHOLAB_HF_ENDPOINT", &url)
        .env("PATHOLAB_WEIGHTS", dir.path())
        .env_remove("HF_TOKEN")
        .args(["--quiet", "weights", "fetch", "uni"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "MahmoodLab/UNI refused the download",
        "gated repository",
        "HF_TOKEN is not set",
        "accept the model's terms",
        "patholab weights import FILE --as uni",
    ] {
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
    assert!(
        log.lock().unwrap()[0].starts_with("GET /MahmoodLab/UNI/resolve/main/pytorch_model.bin")
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing is left behind"
    );

    // With a token: it is sent, and a refusal says the token was refused.
    let (url, log) = refuse("403 Forbidden");
    let out = common::patholab()
        .env("PATHOLAB_HF_ENDPOINT", &url)
        .env("PATHOLAB_WEIGHTS", dir.path())
        .env("HF_TOKEN", "hf_test")
        .args(["--quiet", "weights", "fetch", "uni"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("HTTP 403")
            && err.contains("token in HF_TOKEN was refused"),
        "{err}"
    );
    assert!(log.lock().unwrap()[0]
        .to_ascii_lowercase()
        .contains("authorization: bearer hf_test"));
}

#[test]
fn weights_list_shows_every_foundation_model_with_its_repository() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::patholab()
        .env("PATHOLAB_WEIGHTS", dir.path())
        .args(["weights", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    for (name, repo) in [
        ("uni ", "MahmoodLab/UNI, gated"),
        ("uni2_h", "MahmoodLab/UNI2-h, gated"),
        ("phikon ", "owkin/phikon)"),
        ("phikon_v2", "owkin/phikon-v2"),
        ("virchow ", "paige-ai/Virchow, gated"),
        ("virchow2", "paige-ai/Virchow2, gated"),
        ("h_optimus_0", "bioptimus/H-optimus-0, gated"),
        ("h_optimus_1", "bioptimus/H-optimus-1, gated"),
        ("gigapath", "prov-gigapath/prov-gigapath, gated"),
        ("kaiko_vits16", "kaiko_ai"),
        ("kaiko_vitb16", "kaiko_ai"),
        ("kaiko_vitl14", "kaiko_ai"),
        ("lunit_vits8", "lunit_dino"),
        ("dinov2_vitl14_reg4", "timm/vit_large_patch14_reg4_dinov2"),
        ("vit_base_patch16_224", "timm/vit_base_patch16_224"),
    ] {
        let line = list
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in:\n{list}"));
        assert!(line.contains(repo), "{line}");
    }
}
