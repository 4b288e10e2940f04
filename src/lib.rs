//! attnx: re-run and compare the attention models of four Keras articles, on burn.
//!
//! The binary (`src/main.rs`) is a thin shell over [`commands`] (one file per subcommand).
//! Dependencies point one way: commands -> [`runner`] (plan: what is missing; execute:
//! workers) -> [`train`] -> [`models`] -> [`kernels`] (the CPU ops with their own backward
//! passes) -> [`data`] -> [`config`] (the JSON schema) and
//! [`record`] (the on-disk schema). [`store`] reads and writes records and knows nothing of
//! training; [`report`] turns records into tables and plots with [`stats`]. Shared plumbing:
//! [`fsutil`] (atomic writes, sha256), [`rng`] (per-repeat generators), [`error`] (bad input,
//! exit 2), [`backend`] (config backend -> burn `Device`), [`experiment`]
//! (experiments/*.json), [`sequential`] (the design of `--until-decided`), [`machine`] (the CPU
//! and SIMD level records name), [`progress`] (indicatif bars).

// `unsafe` only where it must be (the kernels' gemm call and SIMD dispatch allow it for their
// modules), each block with the invariant it relies on.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod backend;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fsutil;
pub mod kernels;
pub mod machine;
pub mod models;
pub mod progress;
pub mod record;
pub mod report;
pub mod rng;
pub mod runner;
pub mod sequential;
pub mod stats;
pub mod store;
pub mod train;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

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
