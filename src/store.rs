//! The result store: one JSON record per finished repeat, under
//! `<root>/<experiment>/<config-hash>/repeat-NNN.json`.
//!
//! Records are written atomically (a temporary file in the same folder, synced, then renamed
//! over the final name), so a crash or Ctrl-C leaves either the whole record or none of it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{Backend, ExperimentConfig};

/// Everything known about one finished repeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepeatRecord {
    pub attnx_version: String,
    /// The commit attnx was built from, when it was built from a git checkout.
    pub git_commit: Option<String>,
    pub experiment: String,
    pub config_hash: String,
    /// The full resolved config, defaults filled in.
    pub config: ExperimentConfig,
    pub repeat: usize,
    /// The repeat's own seed, derived from (config seed, repeat).
    pub seed: u64,
    pub backend: Backend,
    /// The device that ran it, as burn describes it.
    pub device: String,
    /// Final accuracy in percent: exact match on the evaluation pairs (echo), test accuracy
    /// after the last epoch (IMDB).
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    pub loss_curve: LossCurve,
    /// Per-epoch metrics (IMDB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<crate::train::EpochMetrics>,
    /// sha256 of the data archive the repeat was trained on, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    /// Training time charged to this repeat (its share of its stack's time).
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// How many repeats were trained together as one stacked model.
    pub stack_size: usize,
    /// Unix time (seconds) the record was written.
    pub finished_at: u64,
    /// The saved weights, a burnpack file beside the record, when they were saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_file: Option<String>,
}

/// Mean training loss over consecutive windows of `every` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossCurve {
    pub every: usize,
    pub values: Vec<f32>,
}

/// The records of one config, and the files that could not be read.
#[derive(Debug, Default)]
pub struct StoredRepeats {
    pub records: BTreeMap<usize, RepeatRecord>,
    pub unreadable: Vec<(PathBuf, String)>,
}

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

    /// Writes `record` atomically, and the config beside it the first time. The model (if
    /// any) is written first, so that a record never names weights that are not there.
    pub fn save(&self, record: &RepeatRecord) -> Result<PathBuf> {
        self.save_with_model(record, None)
    }

    /// [`save`](Self::save), with the repeat's trained weights.
    pub fn save_with_model(
        &self,
        record: &RepeatRecord,
        model: Option<&crate::train::TrainedModel>,
    ) -> Result<PathBuf> {
        let dir = self.config_dir(&record.config);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if let (Some(model), Some(name)) = (model, &record.model_file) {
            model.save(&dir.join(name))?;
        }
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            write_atomic(&config_path, &serde_json::to_vec_pretty(&record.config)?)?;
        }
        let path = Self::record_path(&dir, record.repeat);
        write_atomic(&path, &serde_json::to_vec_pretty(record)?)?;
        Ok(path)
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the whole new one, never a
/// part: temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
