//! The result store: one JSON record per finished repeat, under
//! `<root>/<experiment>/<config-hash>/repeat-NNN.json`.
//!
//! Records are written atomically (a temporary file in the same folder, synced, then renamed
//! over the final name), so a crash or Ctrl-C leaves either the whole record or none of it.
//! A repeat is [`claim`]ed before it is trained, so that many writers share one folder.

pub mod claim;

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

    /// Where a running repeat keeps its checkpoints (IMDB: one set per finished epoch), until
    /// its record is written.
    pub fn checkpoint_dir(&self, config: &ExperimentConfig, repeat: usize) -> PathBuf {
        self.config_dir(config)
            .join("checkpoints")
            .join(format!("repeat-{repeat:03}"))
    }

    /// Removes a repeat's checkpoints (and the `checkpoints` folder once it is empty).
    pub fn remove_checkpoints(&self, config: &ExperimentConfig, repeat: usize) -> Result<()> {
        let dir = self.checkpoint_dir(config, repeat);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", dir.display()));
            }
            _ => {}
        }
        if let Some(parent) = dir.parent() {
            // Fails while another repeat still has checkpoints there, as it should.
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }

    /// The claim file of a repeat being trained (see [`claim`]).
    pub fn claim_path(&self, config: &ExperimentConfig, repeat: usize) -> PathBuf {
        self.config_dir(config)
            .join("claims")
            .join(format!("repeat-{repeat:03}.claim"))
    }

    /// The record of one repeat, if there is a readable one of this config.
    pub fn load_one(&self, config: &ExperimentConfig, repeat: usize) -> Option<RepeatRecord> {
        RepeatRecord::read(&Self::record_path(&self.config_dir(config), repeat))
            .ok()
            .filter(|r| r.config_hash == config.hash() && r.repeat == repeat)
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
        let mut stored = StoredRepeats::default();
        let hash = config.hash();
        for path in crate::fsutil::files_named(&self.config_dir(config), "repeat-", ".json")? {
            match RepeatRecord::read(&path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, seed: u64) -> ExperimentConfig {
        let text = format!(
            r#"{{"name": "{name}", "task": {{"kind": "echo"}}, "model": {{"kind": "baseline"}}, "seed": {seed}}}"#
        );
        ExperimentConfig::parse(&text, Path::new("x.json")).unwrap()
    }

    fn record(config: &ExperimentConfig, repeat: usize) -> RepeatRecord {
        RepeatRecord {
            accuracy: 50.0,
            correct: 50,
            total: 100,
            ..RepeatRecord::new(config, repeat, repeat as u64)
        }
    }

    #[test]
    fn records_round_trip_under_name_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::new(dir.path());
        let a = config("a", 0);
        for repeat in [2, 0] {
            store.save(&record(&a, repeat)).unwrap();
        }
        let folder = dir.path().join("a").join(a.hash());
        assert!(folder.join("config.json").is_file());
        let stored = store.load(&a).unwrap();
        assert_eq!(stored.records.keys().copied().collect::<Vec<_>>(), [0, 2]);
        assert!(stored.unreadable.is_empty());
        // Another seed is another config: its folder is empty.
        assert!(store.load(&config("a", 1)).unwrap().records.is_empty());
    }

    #[test]
    fn damaged_or_foreign_records_are_reported_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::new(dir.path());
        let a = config("a", 0);
        store.save(&record(&a, 0)).unwrap();
        let folder = store.config_dir(&a);
        fs::write(folder.join("repeat-001.json"), b"{\"cut").unwrap();
        let other = config("a", 5);
        let text = serde_json::to_vec(&record(&other, 2)).unwrap();
        fs::write(folder.join("repeat-002.json"), text).unwrap();
        let stored = store.load(&a).unwrap();
        assert_eq!(stored.records.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(stored.unreadable.len(), 2, "{:?}", stored.unreadable);
        assert!(
            stored
                .unreadable
                .iter()
                .any(|(_, why)| why.contains(&format!("belongs to config {}", other.hash())))
        );
    }

    #[test]
    fn a_failed_model_write_leaves_no_record_and_no_model() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::new(dir.path());
        let a = config("a", 0);
        let mut rec = record(&a, 0);
        rec.model_file = Some(ResultStore::model_file_name(0));
        let failing = |path: &Path| -> Result<()> {
            fs::write(path, b"half a model")?;
            anyhow::bail!("No space left on device")
        };
        let err = store.save_with_model(&rec, Some(&failing)).unwrap_err();
        assert!(
            format!("{err:#}").contains("No space left on device"),
            "{err:#}"
        );
        let files: Vec<_> = fs::read_dir(store.config_dir(&a))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(files.is_empty(), "{files:?}");

        let writing = |path: &Path| -> Result<()> { Ok(fs::write(path, b"weights")?) };
        store.save_with_model(&rec, Some(&writing)).unwrap();
        let folder = store.config_dir(&a);
        assert_eq!(
            fs::read(folder.join("repeat-000.model.bpk")).unwrap(),
            b"weights"
        );
        assert_eq!(store.load(&a).unwrap().records.len(), 1);
    }
}
