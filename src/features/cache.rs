//! The content-addressed feature cache. A folder per (network, weights digest, preprocessing,
//! reducer), a sub-folder per tap, and in it chunk files of `(image content hash, features)`
//! rows. Chunks are written to a temporary name and renamed, so a killed run loses at most the
//! chunk in flight, and shards written on other machines merge by copying folders together.

use crate::error::{Context, Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 6] = b"PLFC1\n";

/// A 32-byte content hash.
pub type Hash = [u8; 32];

/// sha256 of bytes.
pub fn hash_bytes(b: &[u8]) -> Hash {
    Sha256::digest(b).into()
}

/// The cache root: `$PATHOLAB_CACHE` or `~/.cache/patholab/features`.
pub fn root() -> PathBuf {
    std::env::var_os("PATHOLAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::home_cache().join("features"))
}

/// The folder for one extraction setting; `description` is written beside the chunks.
pub fn model_dir(network: &str, description: &str) -> PathBuf {
    let key = hash_bytes(description.as_bytes());
    let hex: String = key[..10].iter().map(|b| format!("{b:02x}")).collect();
    root().join(format!("{network}-{hex}"))
}

/// The cached features of one tap.
pub struct TapCache {
    dir: PathBuf,
    rows: HashMap<Hash, Vec<f32>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TapCache {
    /// Reads every complete chunk in `dir` (creating it). Damaged chunks are reported and skipped.
    pub fn open(dir: &Path) -> Result<TapCache> {
        std::fs::create_dir_all(dir).at(dir)?;
        let mut rows = HashMap::new();
        for e in std::fs::read_dir(dir).at(dir)?.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "bin") {
                continue;
            }
            match read_chunk(&p) {
                Ok(chunk) => rows.extend(chunk),
                Err(e) => eprintln!("warning: feature cache: skipping damaged chunk {e}"),
            }
        }
        Ok(TapCache {
            dir: dir.to_path_buf(),
            rows,
        })
    }

    /// The cached row of an image.
    pub fn get(&self, h: &Hash) -> Option<&[f32]> {
        self.rows.get(h).map(|v| v.as_slice())
    }

    /// Writes one chunk atomically and remembers its rows.
    pub fn write_chunk(&mut self, hashes: &[Hash], rows: &[Vec<f32>]) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let d = rows[0].len();
        let mut buf = Vec::with_capacity(14 + hashes.len() * (32 + 4 * d));
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(hashes.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(d as u32).to_le_bytes());
        for h in hashes {
            buf.extend_from_slice(h);
        }
        for r in rows {
            for v in r {
                buf.extend_from_slice(&v.to_le_bytes());
            }
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "chunk-{}-{stamp}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = self.dir.join(format!("{name}.tmp"));
        let fin = self.dir.join(format!("{name}.bin"));
        {
            let mut f = std::fs::File::create(&tmp).at(&tmp)?;
            f.write_all(&buf).at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        std::fs::rename(&tmp, &fin).at(&fin)?;
        for (h, r) in hashes.iter().zip(rows) {
            self.rows.insert(*h, r.clone());
        }
        Ok(())
    }
}

fn read_chunk(p: &Path) -> Result<Vec<(Hash, Vec<f32>)>> {
    let b = std::fs::read(p).at(p)?;
    let bad = || Error::file(p, "truncated or not a patholab feature chunk");
    if b.len() < 14 || &b[..6] != MAGIC {
        return Err(bad());
    }
    let n = u32::from_le_bytes(b[6..10].try_into().unwrap()) as usize;
    let d = u32::from_le_bytes(b[10..14].try_into().unwrap()) as usize;
    if b.len() != 14 + n * 32 + n * d * 4 {
        return Err(bad());
    }
    let data = &b[14 + n * 32..];
    Ok((0..n)
        .map(|i| {
            let h: Hash = b[14 + i * 32..14 + (i + 1) * 32].try_into().unwrap();
            let row = data[i * d * 4..(i + 1) * d * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (h, row)
        })
        .collect())
}

/// What the cache holds: settings, chunk files, images, bytes.
pub fn info() -> Result<String> {
    let r = root();
    if !r.exists() {
        return Ok(format!("feature cache {}: empty", r.display()));
    }
    let mut lines = vec![format!("feature cache {}", r.display())];
    let (mut files, mut bytes) = (0usize, 0u64);
    let mut entries: Vec<_> = std::fs::read_dir(&r)
        .at(&r)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for m in entries.into_iter().filter(|p| p.is_dir()) {
        let mut taps = Vec::new();
        let mut tap_dirs: Vec<_> = std::fs::read_dir(&m)
            .at(&m)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        tap_dirs.sort();
        for t in tap_dirs {
            let mut n_img = 0;
            for c in std::fs::read_dir(&t).at(&t)?.flatten() {
                let p = c.path();
                if p.extension().is_some_and(|x| x == "bin") {
                    files += 1;
                    bytes += c.metadata().map(|m| m.len()).unwrap_or(0);
                    if let Ok(b) = std::fs::read(&p) {
                        if b.len() >= 10 {
                            n_img += u32::from_le_bytes(b[6..10].try_into().unwrap()) as usize;
                        }
                    }
                }
            }
            taps.push(format!(
                "{} ({n_img} images)",
                t.file_name().unwrap().to_string_lossy()
            ));
        }
        lines.push(format!(
            "  {}: {}",
            m.file_name().unwrap().to_string_lossy(),
            taps.join(", ")
        ));
    }
    lines.push(format!("{files} chunk files, {:.1} MB", bytes as f64 / 1e6));
    Ok(lines.join("\n"))
}

/// Deletes the whole cache; returns what it removed.
pub fn clear() -> Result<String> {
    let r = root();
    if r.exists() {
        std::fs::remove_dir_all(&r).at(&r)?;
        Ok(format!("removed {}", r.display()))
    } else {
        Ok(format!("{} was already empty", r.display()))
    }
}
