//! Progress bars: shown on a terminal, silent otherwise or with `--quiet`; and warnings that a
//! long computation would otherwise repeat, printed once per process.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences every progress bar (`--quiet`).
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::SeqCst);
}

/// A bar of `len` steps with rate and ETA; hidden when quiet or stderr is not a terminal.
pub fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    let b = ProgressBar::new(len);
    if quiet || QUIET.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        b.set_draw_target(ProgressDrawTarget::hidden());
    }
    b.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Prints `warning: {message}` on stderr the first time this exact message comes, and returns
/// whether it did. A study tunes many models on the same rows: the reason behind a choice made
/// for those rows is said once, not once per model. Not silenced by `--quiet` (a warning is not
/// progress).
pub fn warn_once(message: &str) -> bool {
    let mut seen = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.insert(message.to_string()) {
        return false;
    }
    eprintln!("warning: {message}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_printed_once() {
        assert!(warn_once("progress test: said once"));
        assert!(!warn_once("progress test: said once"));
        assert!(warn_once("progress test: another"));
    }
}
