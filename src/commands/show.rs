//! `attnx show CONFIG`: a config as resolved, every default filled in.

use anyhow::Result;
use clap::Args;

use crate::config::{ExperimentConfig, Override};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A config: a file, a name in ./configs/, or a built-in config's name.
    pub config: String,
    /// Change a field first, as `run` does (repeatable).
    #[arg(long, value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
}

pub fn run(args: &ShowArgs) -> Result<()> {
    let path = crate::config::resolve_config_path(&args.config)?;
    let mut config = ExperimentConfig::load_with(&path, &args.set)?;
    eprintln!(
        "{} (hash {}), from {}; saved without its name, a file runs under its own",
        config.name(),
        config.hash(),
        path.display()
    );
    // Saved as `mine.json`, the config is `mine`, its records apart from the original's.
    config.name = None;
    println!("{}", serde_json::to_string_pretty(&config)?);
    Ok(())
}
