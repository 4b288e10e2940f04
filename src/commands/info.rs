//! `attnx info`: the build, and whether each backend can run here.

use anyhow::Result;

use crate::config::Backend;

pub fn run() -> Result<()> {
    println!(
        "attnx {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        option_env!("ATTNX_GIT_COMMIT")
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown")
    );
    let built: Vec<&str> = crate::backend::compiled()
        .iter()
        .map(|b| b.name())
        .collect();
    println!("backends in this build: {}", built.join(", "));
    println!(
        "default backend: {}; default jobs: {}",
        Backend::default(),
        super::default_jobs()
    );
    for (backend, state) in crate::backend::report() {
        println!("{:<8} {state}", backend.name());
    }
    println!(
        "cache folder: {}",
        crate::data::prepare::cache_dir().display()
    );
    Ok(())
}
