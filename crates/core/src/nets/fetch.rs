//! `patholab weights fetch NAME`: downloads a network's weights from its Hugging Face repository
//! with a progress bar, resumes a partial download, checks the sha256 when known, checks that
//! the file loads strictly into the network, and only then puts it in the weights folder (a
//! PyTorch `.bin` is converted to `.safetensors` on the way). A token in `HF_TOKEN` is sent;
//! a gated repository that refuses the download is a message saying what to do.

use super::registry::{NetSpec, Source};
use super::weights::discover::weights_dir;
use super::{NetOptions, Network, Weights};
use crate::error::{Context, Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The Hugging Face endpoint (`$PATHOLAB_HF_ENDPOINT` overrides it, e.g. for a mirror).
fn endpoint() -> String {
    std::env::var("PATHOLAB_HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into())
}

/// Downloads `spec`'s weights; `sha256` overrides the registry's checksum.
pub fn fetch(spec: &'static NetSpec, sha256: Option<&str>, quiet: bool) -> Result<PathBuf> {
    let (repo, file, known, gated) = spec
        .sources
        .iter()
        .find_map(|s| match s {
            Source::HuggingFace {
                repo,
                file,
                sha256,
                gated,
            } => Some((*repo, *file, *sha256, *gated)),
            _ => None,
        })
        .ok_or_else(|| {
            Error::Invalid(format!(
                "{} has no download source; {}",
                spec.name,
                super::catalogue::fetch_instructions(spec.name)
            ))
        })?;
    let url = format!(
        "{}/{repo}/resolve/main/{file}",
        endpoint().trim_end_matches('/')
    );
    let dir = weights_dir();
    std::fs::create_dir_all(&dir).at(&dir)?;
    let dest = dir.join(format!("{}.safetensors", spec.name));
    let part = dir.join(format!("{}.safetensors.part", spec.name));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let mut req = ureq::get(&url);
    if let Some(t) = &token {
        req = req.header("Authorization", &format!("Bearer {}", t.trim()));
    }
    if have > 0 {
        req = req.header("Range", &format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| match e {
        ureq::Error::StatusCode(code @ (401 | 403)) => {
            Error::Invalid(refused(spec.name, repo, file, code, gated, token.is_some()))
        }
        e => Error::Invalid(format!("download of {url} failed: {e}")),
    })?;
    let resumed = resp.status().as_u16() == 206;
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(resumed)
        .write(true)
        .truncate(!resumed)
        .open(&part)
        .at(&part)?;
    let start = if resumed { have } else { 0 };
    let bar = crate::progress::bar(
        start + total.unwrap_or(0),
        &format!("{} weights", spec.name),
        quiet,
    );
    bar.set_position(start);
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        crate::cancel::check()?;
        let n = body.read(&mut buf).map_err(|e| Error::Invalid(format!("download of {url} interrupted after {} bytes: {e}; run the command again to resume", bar.position())))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).at(&part)?;
        bar.inc(n as u64);
    }
    out.sync_all().at(&part)?;
    bar.finish_and_clear();
    if let Some(t) = total {
        let got = std::fs::metadata(&part).at(&part)?.len();
        if got != start + t {
            return Err(Error::Invalid(format!(
                "download of {url} stopped at {got} of {} bytes; run the command again to resume",
                start + t
            )));
        }
    }
    if let Some(want) = sha256.or(known) {
        let got = format!("{:x}", Sha256::digest(std::fs::read(&part).at(&part)?));
        if !got.eq_ignore_ascii_case(want) {
            std::fs::remove_file(&part).at(&part)?;
            return Err(Error::file(&part, format!("checksum mismatch: expected sha256 {want}, got {got}; the download was removed")));
        }
    }
    if !file.ends_with(".safetensors") {
        // A PyTorch file: checked and converted by the import path, then the download goes.
        let out = super::catalogue::import_weights(&part, spec.name);
        std::fs::remove_file(&part).at(&part)?;
        return out;
    }
    // The file must load strictly into the network before it is kept; a complete download that
    // does not load goes (left as a `.part`, the next fetch would try to resume a finished file).
    if let Err(e) = Network::build(
        spec,
        NetOptions {
            weights: Weights::File(part.clone()),
            ..Default::default()
        },
        1000,
        super::imagenet::class_names(),
    ) {
        std::fs::remove_file(&part).at(&part)?;
        return Err(e);
    }
    std::fs::rename(&part, &dest).at(&dest)?;
    Ok(dest)
}

/// What to do when Hugging Face answers 401/403.
fn refused(name: &str, repo: &str, file: &str, code: u16, gated: bool, had_token: bool) -> String {
    let page = format!("https://huggingface.co/{repo}");
    let why = if had_token {
        "the token in HF_TOKEN was refused (its account has no access to this repository yet, or the token is not valid)"
    } else {
        "no token was sent: HF_TOKEN is not set"
    };
    format!(
        "{repo} refused the download of {file} (HTTP {code}){}: {why}.\n\
         To get {name}: log in at {page}, accept the model's terms of use, create a read token at\n\
         https://huggingface.co/settings/tokens, then run: HF_TOKEN=hf_... patholab weights fetch {name}\n\
         or download {file} yourself and run: patholab weights import FILE --as {name}",
        if gated { "; it is a gated repository" } else { "" }
    )
}
