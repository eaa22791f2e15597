//! Progress bars: shown on a terminal, silent otherwise or with `--quiet`, and in a notebook one
//! line redrawn with `\r` on stderr (a notebook front end shows the last state only); and warnings
//! that a long computation would otherwise repeat, printed once per process.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static QUIET: AtomicBool = AtomicBool::new(false);
static CARRIAGE: AtomicBool = AtomicBool::new(false);

/// Draws bars as one `\r`-redrawn line on stderr even when it is not a terminal (a notebook
/// kernel, whose stderr becomes the cell's output).
pub fn set_carriage_return(on: bool) {
    CARRIAGE.store(on, Ordering::SeqCst);
}

/// A terminal that knows only "go back to the start of the line".
#[derive(Debug)]
struct CarriageReturn;

impl indicatif::TermLike for CarriageReturn {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        write!(std::io::stderr(), "\r{s}")
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}

/// Silences every progress bar (`--quiet`).
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::SeqCst);
}

/// A bar of `len` steps with rate and ETA; hidden when quiet or stderr is not a terminal.
pub fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    let b = ProgressBar::new(len);
    if quiet || QUIET.load(Ordering::Relaxed) {
        b.set_draw_target(ProgressDrawTarget::hidden());
    } else if CARRIAGE.load(Ordering::Relaxed) {
        b.set_draw_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(CarriageReturn),
            4,
        ));
    } else if !std::io::stderr().is_terminal() {
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
