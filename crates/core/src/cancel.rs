//! The process-wide cancel flag: Ctrl-C sets it, long loops check it and stop with
//! [`Error::Cancelled`], and the prompt clears it before each statement.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Asks the running computation to stop.
pub fn request() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Clears a previous request (the prompt does this before each statement).
pub fn reset() {
    CANCELLED.store(false, Ordering::SeqCst);
}

/// True when a stop was requested.
pub fn requested() -> bool {
    CANCELLED.load(Ordering::Relaxed)
}

/// Returns [`Error::Cancelled`] when a stop was requested.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Makes Ctrl-C (SIGINT) request a stop instead of killing the process; the prompt and the
/// script runner install it once.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(request);
}
