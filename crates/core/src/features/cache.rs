//! The content-addressed feature cache. A folder per (network, weights digest, preprocessing,
//! reducer), a sub-folder per tap, and in it chunk files of `(image content hash, features)`
//! rows. Chunks are written to a temporary name and renamed, so a killed run loses at most the
//! chunk in flight, and shards written on other machines merge by copying folders together.
//! Each chunk ends with a checksum; a damaged chunk is reported and its images computed again.

use crate::error::{Context, Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Chunks written now end with the first 8 bytes of the sha256 of everything before them.
const MAGIC: &[u8; 6] = b"PLFC2\n";
/// Chunks of the first format (no checksum) are still read.
const MAGIC_V1: &[u8; 6] = b"PLFC1\n";
const CHECK: usize = 8;

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

/// One chunk file: where it is and its shape.
struct Chunk {
    path: PathBuf,
    n: usize,
    d: usize,
    /// Whether the chunk ends with a checksum.
    checked: bool,
}

/// The cached features of one tap. Opening it reads only the chunks' headers (which images are
/// where); the features of the rows a dataset needs are read by [`TapCache::load`], so a large
/// shared cache costs a small dataset only the headers.
pub struct TapCache {
    dir: PathBuf,
    chunks: Vec<Chunk>,
    /// Every cached image: its chunk and its row in that chunk.
    index: HashMap<Hash, (usize, usize)>,
    /// Rows read by `load` or written by this run.
    rows: HashMap<Hash, Vec<f32>>,
    /// Chunk files already seen (indexed, or skipped as damaged).
    seen: HashSet<PathBuf>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TapCache {
    /// Reads the headers of every complete chunk in `dir` (creating it). Damaged chunks are
    /// reported and skipped.
    pub fn open(dir: &Path) -> Result<TapCache> {
        std::fs::create_dir_all(dir).at(dir)?;
        let mut cache = TapCache {
            dir: dir.to_path_buf(),
            chunks: Vec::new(),
            index: HashMap::new(),
            rows: HashMap::new(),
            seen: HashSet::new(),
        };
        cache.refresh()?;
        Ok(cache)
    }

    /// Reads the headers of the chunks written since the last look (by other processes sharing
    /// the cache); returns how many new chunks it found.
    pub fn refresh(&mut self) -> Result<usize> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .at(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "bin") && !self.seen.contains(p))
            .collect();
        paths.sort();
        let found = paths.len();
        for p in paths {
            match read_header(&p) {
                Ok((chunk, hashes)) => {
                    let c = self.chunks.len();
                    for (i, h) in hashes.into_iter().enumerate() {
                        self.index.insert(h, (c, i));
                    }
                    self.chunks.push(chunk);
                }
                Err(e) => eprintln!("warning: feature cache: skipping damaged chunk {e}"),
            }
            self.seen.insert(p);
        }
        Ok(found)
    }

    /// Reads the features of `wanted` images that are cached and not read yet, chunk by chunk.
    /// A chunk whose checksum does not match is reported and forgotten, so its images count as
    /// missing and are computed again.
    pub fn load(&mut self, wanted: &[Hash]) -> Result<()> {
        let mut by_chunk: HashMap<usize, Vec<(usize, Hash)>> = HashMap::new();
        for h in wanted {
            if self.rows.contains_key(h) {
                continue;
            }
            if let Some(&(c, i)) = self.index.get(h) {
                by_chunk.entry(c).or_default().push((i, *h));
            }
        }
        for (c, want) in by_chunk {
            let chunk = &self.chunks[c];
            let b = std::fs::read(&chunk.path).at(&chunk.path)?;
            let body = b
                .len()
                .saturating_sub(if chunk.checked { CHECK } else { 0 });
            if chunk.checked && hash_bytes(&b[..body])[..CHECK] != b[body..] {
                eprintln!(
                    "warning: feature cache: {} is damaged (checksum); the images wanted from it are computed again",
                    chunk.path.display()
                );
                self.index.retain(|_, (cc, _)| *cc != c);
                continue;
            }
            let data = &b[14 + chunk.n * 32..body];
            for (i, h) in want {
                let row = data[i * chunk.d * 4..(i + 1) * chunk.d * 4]
                    .chunks_exact(4)
                    .map(|v| f32::from_le_bytes(v.try_into().unwrap()))
                    .collect();
                self.rows.insert(h, row);
            }
        }
        Ok(())
    }

    /// The row of an image, once loaded (or written by this run).
    pub fn get(&self, h: &Hash) -> Option<&[f32]> {
        self.rows.get(h).map(|v| v.as_slice())
    }

    /// Writes one chunk atomically and remembers its rows.
    pub fn write_chunk(&mut self, hashes: &[Hash], rows: &[Vec<f32>]) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let d = rows[0].len();
        let mut buf = Vec::with_capacity(14 + hashes.len() * (32 + 4 * d) + CHECK);
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
        let check = hash_bytes(&buf);
        buf.extend_from_slice(&check[..CHECK]);
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
        self.seen.insert(fin);
        for (h, r) in hashes.iter().zip(rows) {
            self.rows.insert(*h, r.clone());
        }
        Ok(())
    }
}

/// A chunk's shape and image hashes, checked against the file's length.
fn read_header(p: &Path) -> Result<(Chunk, Vec<Hash>)> {
    let bad = || Error::file(p, "truncated or not a patholab feature chunk");
    let mut f = std::fs::File::open(p).at(p)?;
    let len = f.metadata().at(p)?.len();
    let mut head = [0u8; 14];
    f.read_exact(&mut head).map_err(|_| bad())?;
    let checked = match &head[..6] {
        m if m == MAGIC => true,
        m if m == MAGIC_V1 => false,
        _ => return Err(bad()),
    };
    let n = u32::from_le_bytes(head[6..10].try_into().unwrap()) as usize;
    let d = u32::from_le_bytes(head[10..14].try_into().unwrap()) as usize;
    let chunk = Chunk {
        path: p.to_path_buf(),
        n,
        d,
        checked,
    };
    let expected = (n as u64)
        .checked_mul(32 + 4 * d as u64)
        .and_then(|b| b.checked_add(14 + if checked { CHECK as u64 } else { 0 }));
    if expected != Some(len) {
        return Err(bad());
    }
    let mut hashes = vec![0u8; n * 32];
    f.read_exact(&mut hashes).map_err(|_| bad())?;
    Ok((
        chunk,
        hashes
            .chunks_exact(32)
            .map(|h| h.try_into().unwrap())
            .collect(),
    ))
}

/// What the cache holds: settings, chunk files, images, bytes.
pub fn info() -> Result<String> {
    info_at(&root())
}

/// What the cache at `r` holds (another job's cache, say).
pub fn info_at(r: &Path) -> Result<String> {
    let r = r.to_path_buf();
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
            .filter(|p| p.is_dir() && !p.ends_with("claims"))
            .collect();
        tap_dirs.sort();
        let claims = std::fs::read_dir(m.join("claims"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "claim"))
                    .count()
            })
            .unwrap_or(0);
        for t in tap_dirs {
            let mut n_img = 0;
            for c in std::fs::read_dir(&t).at(&t)?.flatten() {
                let p = c.path();
                if p.extension().is_some_and(|x| x == "bin") {
                    files += 1;
                    bytes += c.metadata().map(|m| m.len()).unwrap_or(0);
                    if let Ok((chunk, _)) = read_header(&p) {
                        n_img += chunk.n;
                    }
                }
            }
            taps.push(format!(
                "{} ({n_img} images)",
                t.file_name().unwrap().to_string_lossy()
            ));
        }
        lines.push(format!(
            "  {}: {}{}",
            m.file_name().unwrap().to_string_lossy(),
            taps.join(", "),
            match claims {
                0 => String::new(),
                n => format!("; {n} chunk(s) claimed by running processes"),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash {
        [i; 32]
    }

    #[test]
    fn opening_reads_headers_and_load_reads_the_wanted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = TapCache::open(dir.path()).unwrap();
        c.write_chunk(&[h(1), h(2)], &[vec![1.0, 1.5], vec![2.0, 2.5]])
            .unwrap();
        c.write_chunk(&[h(3)], &[vec![3.0, 3.5]]).unwrap();
        // A chunk cut short, as by a full disk: skipped with a warning, the rest still open.
        std::fs::write(dir.path().join("chunk-cut.bin"), &MAGIC[..]).unwrap();
        let mut c = TapCache::open(dir.path()).unwrap();
        assert_eq!(c.get(&h(2)), None, "rows are read on demand");
        c.load(&[h(2), h(3), h(4)]).unwrap();
        assert_eq!(c.get(&h(2)), Some(&[2.0f32, 2.5][..]));
        assert_eq!(c.get(&h(3)), Some(&[3.0f32, 3.5][..]));
        assert_eq!((c.get(&h(1)), c.get(&h(4))), (None, None));
    }

    #[test]
    fn a_chunk_with_a_flipped_bit_is_forgotten_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = TapCache::open(dir.path()).unwrap();
        c.write_chunk(&[h(1)], &[vec![1.0, 1.5]]).unwrap();
        c.write_chunk(&[h(2)], &[vec![2.0, 2.5]]).unwrap();
        let first = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| read_header(p).unwrap().1 == vec![h(1)])
            .unwrap();
        let mut b = std::fs::read(&first).unwrap();
        let at = 14 + 32 + 5; // inside the features
        b[at] ^= 0x10;
        std::fs::write(&first, &b).unwrap();
        let mut c = TapCache::open(dir.path()).unwrap();
        c.load(&[h(1), h(2)]).unwrap();
        assert_eq!(c.get(&h(1)), None, "the damaged row counts as missing");
        assert_eq!(c.get(&h(2)), Some(&[2.0f32, 2.5][..]));
    }
}
