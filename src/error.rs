//! The one error type for bad input: what the user can fix by changing what they typed or
//! pointed at. Every other failure is an `anyhow::Error` from running.
//!
//! Errors are one line, panics included: the panic hook replaces Rust's trace, and
//! [`quietly`] turns a panic inside burn into an error message.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

/// An invalid config or option, a missing or corrupt data set, a backend that cannot run here,
/// a size that cannot fit: one line naming the problem, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

thread_local! {
    /// Set while [`quietly`] runs: its panics become errors, so the hook stays silent.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Replaces Rust's panic trace with one line: attnx never shows users a backtrace.
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        if QUIET.get() {
            return;
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error: {}{location}",
            payload_message(info.payload())
        );
    }));
}

/// Runs `f`, turning a panic (burn reports some device failures that way) into an error
/// message instead of a trace.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let was = QUIET.replace(true);
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.set(was);
    outcome.map_err(|payload| payload_message(payload.as_ref()))
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    };
    // One line: the first line of the message is the informative one.
    text.lines().next().unwrap_or_default().trim().to_string()
}
