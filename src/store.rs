//! The result store: one JSON record per finished repeat, under
//! `<root>/<experiment>/<config-hash>/repeat-NNN.json`.
//!
//! Records are written atomically (a temporary file in the same folder, synced, then renamed
//! over the final name), so a crash or Ctrl-C leaves either the whole record or none of it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::ExperimentConfig;
use crate::record::RepeatRecord;
use anyhow::{Context, Result};

/// The records of one config, and the files that could not be read.
#[derive(Debug, Default)]
pub struct StoredRepeats {
    pub records: BTreeMap<usize, RepeatRecord>,
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Writes a repeat's weights to the path it is given (the store chooses the path and makes the
/// write atomic; the caller knows the model).
pub type WriteModel<'a> = dyn Fn(&Path) -> Result<()> + 'a;

/// A results folder.
#[derive(Debug, Clone)]
pub struct ResultStore {
    root: PathBuf,
}

impl ResultStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder of one config's repeats.
    pub fn config_dir(&self, config: &ExperimentConfig) -> PathBuf {
        self.root.join(config.name()).join(config.hash())
    }

    fn record_path(dir: &Path, repeat: usize) -> PathBuf {
        dir.join(format!("repeat-{repeat:03}.json"))
    }

    /// The file name of a repeat's saved weights.
    pub fn model_file_name(repeat: usize) -> String {
        format!("repeat-{repeat:03}.model.bpk")
    }

    /// Reads every record of `config`. A record that cannot be read or belongs to another
    /// config is listed in `unreadable` (and will be run again), never fatal.
    pub fn load(&self, config: &ExperimentConfig) -> Result<StoredRepeats> {
        let dir = self.config_dir(config);
        let mut stored = StoredRepeats::default();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stored),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        let hash = config.hash();
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !(name.starts_with("repeat-") && name.ends_with(".json")) {
                continue;
            }
            let parsed = fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    serde_json::from_str::<RepeatRecord>(&text).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(record) if record.config_hash == hash => {
                    stored.records.insert(record.repeat, record);
                }
                Ok(record) => stored.unreadable.push((
                    path,
                    format!("belongs to config {}, not {hash}", record.config_hash),
                )),
                Err(e) => stored.unreadable.push((path, e)),
            }
        }
        Ok(stored)
    }

    /// Writes `record` atomically, and the config beside it the first time.
    pub fn save(&self, record: &RepeatRecord) -> Result<PathBuf> {
        self.save_with_model(record, None)
    }

    /// [`save`](Self::save), with the repeat's trained weights: `write_model` writes them to the
    /// path it is given (a temporary file, renamed to the record's `model_file` once synced).
    /// The model is written first, so that a record never names weights that are not there.
    pub fn save_with_model(
        &self,
        record: &RepeatRecord,
        write_model: Option<&WriteModel<'_>>,
    ) -> Result<PathBuf> {
        let dir = self.config_dir(&record.config);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if let (Some(write_model), Some(name)) = (write_model, &record.model_file) {
            // burn adds `.bpk` to a path without it: the temporary name keeps the extension.
            crate::fsutil::write_atomic_with(&dir.join(name), ".bpk", write_model)
                .context("cannot save the model")?;
        }
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            crate::fsutil::write_atomic(&config_path, &serde_json::to_vec_pretty(&record.config)?)?;
        }
        let path = Self::record_path(&dir, record.repeat);
        crate::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(record)?)?;
        Ok(path)
    }
}
