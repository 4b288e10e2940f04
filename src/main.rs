// Each `unsafe` block says what makes it sound.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps freed memory in the process instead of handing it back to the OS.
///
/// mimalloc purges freed pages a while after they empty; an IMDB step frees and re-allocates the
/// same multi-megabyte tensors every few milliseconds, so each came back as fresh pages the
/// kernel had to zero (perf: 5% in `clear_page_erms`, more in page faults). Never purging made
/// an `imdb_pe` epoch faster (docs/performance.md gives by how much); the process keeps its
/// peak footprint until it exits. A `MIMALLOC_PURGE_DELAY` the user set is left alone.
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // `mi_option_purge_delay` in mimalloc v3 (libmimalloc-sys 0.1.49, which does not export
    // the constant). Its default (1000 ms in this build, 10 in the header's comment) guards
    // against another numbering.
    const PURGE_DELAY: std::ffi::c_int = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain calls into the linked allocator's option table.
    unsafe {
        if matches!(mi_option_get(PURGE_DELAY), 10 | 1000) {
            mi_option_set(PURGE_DELAY, -1);
        }
    }
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`attnx report | head`) fails, and
    // println! panics; a command-line tool should end quietly instead, as `cat` does.
    // SAFETY: restores a signal's default action before any thread exists; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // wgpu probes its GL backend too, and Mesa's EGL then looks for a Wayland display and prints
    // "error: XDG_RUNTIME_DIR is invalid" on headless machines. attnx never draws to a screen.
    if std::env::var_os("EGL_PLATFORM").is_none() {
        // SAFETY: the first statement of main, before any thread exists.
        unsafe { std::env::set_var("EGL_PLATFORM", "surfaceless") };
    }
    // attnx names every device it trains on; burn falls back to its default device only where
    // it needs somewhere to put data, e.g. the optimizer state of a resumed checkpoint (moved
    // to the parameters' device at the next step). With wgpu compiled in that default would be
    // the GPU, opened for nothing: make it the CPU.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: still before any thread exists.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    keep_freed_memory();
    attnx::error::install_panic_hook();
    let cli = attnx::commands::Cli::parse();
    match attnx::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", attnx::commands::one_line(&err));
            ExitCode::from(attnx::commands::exit_code(&err))
        }
    }
}
