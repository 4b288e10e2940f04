//! `attnx list`: the configs in a folder, one line each.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::ExperimentConfig;
use crate::error::InputError;
use crate::report;

pub fn run(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InputError(format!("{}: cannot list configs: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut rows = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        match ExperimentConfig::load(&path) {
            Ok(c) => rows.push(vec![
                stem,
                c.study.model_kind().to_string(),
                c.backend.to_string(),
                c.repeats().to_string(),
                c.description.clone().unwrap_or_default(),
            ]),
            Err(e) => rows.push(vec![
                stem,
                "-".into(),
                "-".into(),
                "-".into(),
                format!("invalid: {e}"),
            ]),
        }
    }
    print!(
        "{}",
        report::table_aligned(
            &["config", "model", "backend", "repeats", "description"],
            &rows,
            &[0, 1, 2, 4]
        )
    );
    Ok(())
}
