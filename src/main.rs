use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    attnx::install_panic_hook();
    let cli = attnx::cli::Cli::parse();
    match attnx::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", attnx::cli::one_line(&err));
            ExitCode::from(attnx::cli::exit_code(&err))
        }
    }
}
