//! Claim files: how any number of processes that share one feature cache (one machine or many,
//! over NFS) split the work without computing an image twice. Before computing a chunk of images
//! a process claims it by creating `<cache setting>/claims/<chunk id>.claim`, which names its
//! host, pid, a heartbeat time and the chunk's image hashes. The file is written under a private
//! name and hard-linked to the claim name, which fails when the name exists: an atomic create in
//! one directory, which NFS honours (no `flock`). A heartbeat thread rewrites the time while the
//! chunk is computed; the claim is removed when the chunk is written, on error, on cancel and on
//! unwinding. A claim is stale when its holder is on this host and its pid is gone, or when its
//! heartbeat is older than [`stale_after`]; a stale claim is taken over by renaming it away
//! (one rename wins) and claiming again.

use super::cache::Hash;
use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds without a heartbeat after which another host's claim counts as abandoned:
/// `$PATHOLAB_CLAIM_STALE` or 120.
pub fn stale_after() -> Duration {
    std::env::var("PATHOLAB_CLAIM_STALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(120), Duration::from_secs_f64)
}

/// How often a held claim's heartbeat is rewritten: a quarter of the stale time, at most 10 s.
fn heartbeat_every() -> Duration {
    (stale_after() / 4).min(Duration::from_secs(10))
}

/// This machine's name, as claims record it.
pub fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if ok && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown-host".into()
    }
}

/// True when a process with this pid exists on this machine.
fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The id of a chunk: the same in every process that forms it from the same images.
pub fn chunk_id(hashes: &[Hash]) -> String {
    let mut sorted = hashes.to_vec();
    sorted.sort();
    let h = super::cache::hash_bytes(&sorted.concat());
    h[..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(h)
}

/// What a claim file says.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimInfo {
    pub host: String,
    pub pid: u32,
    /// Unique to one claim of one process: a takeover checks it before deleting.
    pub token: String,
    /// Unix time of the last heartbeat.
    pub heartbeat: f64,
    pub images: Vec<Hash>,
}

impl ClaimInfo {
    fn render(&self) -> String {
        let mut s = format!(
            "patholab claim\nhost {}\npid {}\ntoken {}\nheartbeat {:.3}\nimages {}\n",
            self.host,
            self.pid,
            self.token,
            self.heartbeat,
            self.images.len()
        );
        for h in &self.images {
            s.push_str(&hex(h));
            s.push('\n');
        }
        s
    }

    fn parse(text: &str) -> Option<ClaimInfo> {
        let mut lines = text.lines();
        if lines.next()? != "patholab claim" {
            return None;
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_string)
        };
        let host = field("host")?;
        let pid = field("pid")?.parse().ok()?;
        let token = field("token")?;
        let heartbeat = field("heartbeat")?.parse().ok()?;
        let n: usize = field("images")?.parse().ok()?;
        let images: Vec<Hash> = lines.map_while(unhex).collect();
        (images.len() == n).then_some(ClaimInfo {
            host,
            pid,
            token,
            heartbeat,
            images,
        })
    }

    /// Whether the holder has given up: a dead pid on this host, or no heartbeat for `stale`.
    pub fn is_stale(&self, stale: Duration) -> bool {
        (self.host == host() && !pid_alive(self.pid))
            || now() - self.heartbeat > stale.as_secs_f64()
    }
}

/// The claims folder of one cache setting.
pub struct Claims {
    dir: PathBuf,
    stale: Duration,
}

/// A claim file that was there when the folder was read.
pub struct Seen {
    pub path: PathBuf,
    pub info: ClaimInfo,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn token() -> String {
    format!(
        "{}-{}-{}-{}",
        host(),
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Claims {
    /// The claims of the cache setting in `setting_dir` (the folder is created).
    pub fn open(setting_dir: &Path) -> Result<Claims> {
        let dir = setting_dir.join("claims");
        std::fs::create_dir_all(&dir).at(&dir)?;
        Ok(Claims {
            dir,
            stale: stale_after(),
        })
    }

    /// Every readable claim file now in the folder.
    pub fn list(&self) -> Result<Vec<Seen>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).at(&self.dir)?.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "claim") {
                continue;
            }
            // A claim released between the listing and the read is simply gone.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match ClaimInfo::parse(&text) {
                Some(info) => out.push(Seen { path, info }),
                None => {
                    // Claim files are complete when they appear (hard link of a written file);
                    // one that does not parse is foreign or damaged: removed once it is old.
                    let old = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > self.stale);
                    if old {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The live claims (stale ones are taken over on the way) and how many were taken over.
    pub fn live(&self) -> Result<(Vec<Seen>, usize)> {
        let mut live = Vec::new();
        let mut taken = 0;
        for s in self.list()? {
            if s.info.is_stale(self.stale) {
                if self.take_over(&s)? {
                    eprintln!(
                        "feature cache: took over a stale claim of {} (pid {}, heartbeat {:.0} s ago)",
                        s.info.host,
                        s.info.pid,
                        now() - s.info.heartbeat
                    );
                    taken += 1;
                }
            } else {
                live.push(s);
            }
        }
        Ok((live, taken))
    }

    /// Removes a stale claim so that its chunk can be claimed again. The rename of the claim to
    /// a private name succeeds in one process only; if what was renamed is not the claim judged
    /// stale (its holder refreshed it, or another process claimed it anew meanwhile), it is put
    /// back.
    fn take_over(&self, s: &Seen) -> Result<bool> {
        let grave = self.dir.join(format!("{}.stale", token()));
        if std::fs::rename(&s.path, &grave).is_err() {
            return Ok(false); // another process took it over, or its holder released it
        }
        let same = std::fs::read_to_string(&grave)
            .ok()
            .and_then(|t| ClaimInfo::parse(&t))
            .is_some_and(|i| i.token == s.info.token && i.heartbeat == s.info.heartbeat);
        if !same {
            let _ = std::fs::hard_link(&grave, &s.path);
        }
        let _ = std::fs::remove_file(&grave);
        Ok(same)
    }

    /// Claims the chunk of `images`; `None` when another process holds it.
    pub fn try_claim(&self, images: &[Hash]) -> Result<Option<Claim>> {
        let path = self.dir.join(format!("{}.claim", chunk_id(images)));
        let info = ClaimInfo {
            host: host(),
            pid: std::process::id(),
            token: token(),
            heartbeat: now(),
            images: images.to_vec(),
        };
        let tmp = self.dir.join(format!("{}.tmp", info.token));
        write_claim(&tmp, &info.render())?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            // A file system without hard links: an exclusive create, then the text.
            Err(_) => match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(info.render().as_bytes()).at(&path)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
                Err(e) => return Err(Error::file(&path, format!("cannot create a claim: {e}"))),
            },
        }
        Ok(Some(Claim::start(path, info, self.dir.clone())))
    }
}

/// A claim's text, written whole before it is linked or renamed into place. Not synced: a claim
/// that a crash loses is a claim nobody holds, and other processes see it once it is closed.
fn write_claim(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).at(path)
}

/// A held claim: its heartbeat runs until it is dropped, which removes the file.
pub struct Claim {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
    token: String,
}

impl Claim {
    fn start(path: PathBuf, info: ClaimInfo, dir: PathBuf) -> Claim {
        let stop = Arc::new(AtomicBool::new(false));
        let token = info.token.clone();
        let beat = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || heartbeat(path, info, dir, stop))
        };
        Claim {
            path,
            stop,
            beat: Some(beat),
            token,
        }
    }

    /// The images this claim covers are ours to compute.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Rewrites the claim's heartbeat until `stop`, as long as the file is still this claim's.
fn heartbeat(path: PathBuf, mut info: ClaimInfo, dir: PathBuf, stop: Arc<AtomicBool>) {
    let every = heartbeat_every();
    let step = Duration::from_millis(50).min(every);
    let mut last = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        if last.elapsed() < every {
            continue;
        }
        last = std::time::Instant::now();
        let mine = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| ClaimInfo::parse(&t))
            .is_some_and(|i| i.token == info.token);
        if !mine {
            continue; // taken over (we looked dead to someone): nothing of ours to refresh
        }
        info.heartbeat = now();
        let tmp = dir.join(format!("{}.beat", info.token));
        if write_claim(&tmp, &info.render()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(b) = self.beat.take() {
            let _ = b.join();
        }
        let mine = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| ClaimInfo::parse(&t))
            .is_some_and(|i| i.token == self.token);
        if mine {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash {
        [i; 32]
    }

    #[test]
    fn a_chunk_is_claimed_once_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let c = Claims::open(dir.path()).unwrap();
        let first = c.try_claim(&[h(2), h(1)]).unwrap().expect("free");
        assert!(
            c.try_claim(&[h(1), h(2)]).unwrap().is_none(),
            "the same images in another order are the same chunk"
        );
        let (live, taken) = c.live().unwrap();
        assert_eq!((live.len(), taken), (1, 0), "our own live claim");
        assert_eq!(live[0].info.images, vec![h(2), h(1)]);
        drop(first);
        assert!(c.list().unwrap().is_empty());
        assert!(c.try_claim(&[h(1), h(2)]).unwrap().is_some());
    }

    #[test]
    fn claims_of_a_dead_pid_or_without_heartbeat_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let c = Claims::open(dir.path()).unwrap();
        // A process that exited: its pid is gone.
        let child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        let mut child = child;
        child.wait().unwrap();
        let info = ClaimInfo {
            host: host(),
            pid: dead,
            token: "t1".into(),
            heartbeat: now(),
            images: vec![h(1)],
        };
        std::fs::write(dir.path().join("claims/a.claim"), info.render()).unwrap();
        // Another host's claim whose heartbeat stopped long ago.
        let old = ClaimInfo {
            host: "elsewhere".into(),
            pid: 1,
            token: "t2".into(),
            heartbeat: now() - 3600.0,
            images: vec![h(2)],
        };
        std::fs::write(dir.path().join("claims/b.claim"), old.render()).unwrap();
        // Another host's live claim.
        let live = ClaimInfo {
            host: "elsewhere".into(),
            pid: 1,
            token: "t3".into(),
            heartbeat: now(),
            images: vec![h(3)],
        };
        std::fs::write(dir.path().join("claims/c.claim"), live.render()).unwrap();
        let (seen, taken) = c.live().unwrap();
        assert_eq!(taken, 2);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].info.token, live.token);
        assert_eq!(c.list().unwrap().len(), 1, "the stale files are gone");
    }

    #[test]
    fn claim_text_round_trips() {
        let i = ClaimInfo {
            host: "node-7".into(),
            pid: 42,
            token: "tok".into(),
            heartbeat: 1234.5,
            images: vec![h(9), h(10)],
        };
        assert_eq!(ClaimInfo::parse(&i.render()), Some(i));
        assert_eq!(ClaimInfo::parse("patholab claim\nhost x\n"), None);
    }
}
