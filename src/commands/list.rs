//! `attnx list`: the configs and experiments attnx can run here, one line each, with where each
//! comes from (a file in the folder, or built into attnx).

use std::path::Path;

use anyhow::Result;

use crate::builtin;
use crate::config::{CONFIG_DIR, ExperimentConfig};
use crate::experiment::{EXPERIMENT_DIR, Experiment};
use crate::report;

/// Where a file listed comes from, in words.
fn origin(path: &Path) -> String {
    if builtin::is_builtin(path) {
        "built in".into()
    } else {
        path.display().to_string()
    }
}

pub fn run(configs_dir: &Path, experiments_dir: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for (name, path) in builtin::merged(configs_dir, CONFIG_DIR) {
        rows.push(match ExperimentConfig::load(&path) {
            Ok(c) => vec![
                name,
                c.study.task_kind().to_string(),
                c.study.model_kind().to_string(),
                c.backend.to_string(),
                c.repeats().to_string(),
                origin(&path),
                c.description.clone().unwrap_or_default(),
            ],
            Err(e) => vec![
                name,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                origin(&path),
                format!("invalid: {e}"),
            ],
        });
    }
    print!(
        "{}",
        report::table_aligned(
            &[
                "config",
                "task",
                "model",
                "backend",
                "repeats",
                "from",
                "description"
            ],
            &rows,
            &[0, 1, 2, 3, 5, 6]
        )
    );
    let mut rows = Vec::new();
    for (name, path) in builtin::merged(experiments_dir, EXPERIMENT_DIR) {
        rows.push(match Experiment::load(&path) {
            Ok(e) => vec![
                name,
                e.configs.len().to_string(),
                e.claims.len().to_string(),
                origin(&path),
                e.title.clone(),
            ],
            Err(e) => vec![
                name,
                "-".into(),
                "-".into(),
                origin(&path),
                format!("invalid: {e}"),
            ],
        });
    }
    println!();
    print!(
        "{}",
        report::table_aligned(
            &["experiment", "configs", "claims", "from", "title"],
            &rows,
            &[0, 3, 4]
        )
    );
    Ok(())
}
