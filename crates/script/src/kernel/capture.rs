//! The kernel's stdout and stderr become the cell's `stream` output. Both file descriptors are
//! redirected into pipes that two threads read, so everything reaches the notebook: `print`,
//! warnings of the library, libtorch's messages, progress bars. The original stderr stays the
//! kernel's log. [`Capture::sync`] waits until all output written so far has been handed on, so
//! that a picture or a result never overtakes the text printed before it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Written into both pipes by `sync`; the readers count it and never forward it.
const MARK: &[u8] = b"\x1b[patholab-sync]\x1b";

/// Which stream a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The redirected descriptors and how far each reader has got.
pub struct Capture {
    /// Marks seen by the stdout and the stderr reader, and marks written.
    seen: Arc<(Mutex<[u64; 2]>, Condvar)>,
    written: Mutex<u64>,
}

impl Capture {
    /// Redirects fds 1 and 2 into pipes read by threads that call `forward` with each piece of
    /// text; returns the capture and the original stderr, for the kernel's log.
    pub fn start(
        forward: impl Fn(Stream, String) + Send + Clone + 'static,
    ) -> std::io::Result<(Capture, File)> {
        let seen = Arc::new((Mutex::new([0u64; 2]), Condvar::new()));
        // SAFETY: plain descriptor calls; the duplicates are owned by the Files made from them.
        let log = unsafe {
            let fd = libc::dup(2);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            File::from_raw_fd(fd)
        };
        for (slot, (fd, stream)) in [(1, Stream::Stdout), (2, Stream::Stderr)]
            .into_iter()
            .enumerate()
        {
            let mut ends = [0i32; 2];
            // SAFETY: `ends` has room for the two descriptors pipe() writes.
            let reader = unsafe {
                if libc::pipe(ends.as_mut_ptr()) != 0 || libc::dup2(ends[1], fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(ends[1]);
                File::from_raw_fd(ends[0])
            };
            let (seen, forward) = (seen.clone(), forward.clone());
            std::thread::Builder::new()
                .name(format!("capture-{fd}"))
                .spawn(move || read_pipe(reader, stream, slot, &seen, &forward))?;
        }
        Ok((
            Capture {
                seen,
                written: Mutex::new(0),
            },
            log,
        ))
    }

    /// Returns once everything written to stdout and stderr before the call has been forwarded
    /// (or after two seconds, should a reader be stuck).
    pub fn sync(&self) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        *written += 1;
        let target = *written;
        for mut out in [
            Box::new(std::io::stdout().lock()) as Box<dyn Write>,
            Box::new(std::io::stderr().lock()),
        ] {
            let _ = out.flush();
            let _ = out.write_all(MARK);
            let _ = out.flush();
        }
        let (lock, cv) = &*self.seen;
        let seen = lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(seen, Duration::from_secs(2), |s| {
            s[0] < target || s[1] < target
        });
    }
}

fn read_pipe(
    mut pipe: File,
    stream: Stream,
    slot: usize,
    seen: &(Mutex<[u64; 2]>, Condvar),
    forward: &dyn Fn(Stream, String),
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match pipe.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(i) = find(&pending, MARK) {
            send_text(&pending[..i], stream, forward);
            pending.drain(..i + MARK.len());
            let (lock, cv) = seen;
            lock.lock().unwrap_or_else(|e| e.into_inner())[slot] += 1;
            cv.notify_all();
        }
        // Keep what may be the start of a mark or of a character cut in two.
        let keep = mark_prefix_len(&pending).max(utf8_tail(&pending));
        let ready = pending.len() - keep;
        send_text(&pending[..ready], stream, forward);
        pending.drain(..ready);
    }
}

fn send_text(bytes: &[u8], stream: Stream, forward: &dyn Fn(Stream, String)) {
    if !bytes.is_empty() {
        forward(stream, String::from_utf8_lossy(bytes).into_owned());
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the longest end of `b` that begins the mark.
fn mark_prefix_len(b: &[u8]) -> usize {
    (1..MARK.len().min(b.len() + 1))
        .rev()
        .find(|&k| b.ends_with(&MARK[..k]))
        .unwrap_or(0)
}

/// Bytes at the end of `b` that begin a UTF-8 character not yet complete.
fn utf8_tail(b: &[u8]) -> usize {
    match std::str::from_utf8(b) {
        Err(e) if e.error_len().is_none() => b.len() - e.valid_up_to(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_marks_and_characters_are_held_back() {
        assert_eq!(mark_prefix_len(b"abc\x1b[pat"), 5);
        assert_eq!(mark_prefix_len(b"abc"), 0);
        assert_eq!(utf8_tail("é".as_bytes().split_at(1).0), 1);
        assert_eq!(utf8_tail(b"plain"), 0);
    }
}
