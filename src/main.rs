use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
    attnx::install_panic_hook();
    let cli = attnx::commands::Cli::parse();
    match attnx::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", attnx::commands::one_line(&err));
            ExitCode::from(attnx::commands::exit_code(&err))
        }
    }
}
