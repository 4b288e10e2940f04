//! The records of a results folder, grouped by config ([`Group`]) and set against the configs
//! in `configs/` as they are now.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::{ExperimentConfig, Study};
use crate::record::{ConfigRecords, EpochMetrics, RepeatRecord, numerics_current};
use crate::stats::Summary;

/// How a group of records relates to the configs in `configs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Recorded with the config as it is now.
    Current,
    /// Recorded with another version of the config: the differing settings, `path=value`.
    Changed(String),
    /// No config of that name exists any more.
    NoConfig,
}

/// The records of one config (one experiment name and config hash).
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub hash: String,
    pub config: ExperimentConfig,
    pub records: Vec<RepeatRecord>,
    pub status: Status,
    /// attnx versions that wrote the records.
    pub versions: BTreeSet<String>,
}

impl Group {
    /// The records a run just made or found, for the config as it is now.
    pub fn current(results: &ConfigRecords) -> Self {
        Group {
            name: results.config.name().to_string(),
            hash: results.config.hash(),
            config: results.config.clone(),
            records: results.records.clone(),
            status: Status::Current,
            versions: results
                .records
                .iter()
                .map(|r| r.attnx_version.clone())
                .collect(),
        }
    }

    /// The name, with what sets it apart from the current config and attnx: a config changed
    /// since, and the versions of records whose figures this attnx would compute differently.
    pub fn label(&self) -> String {
        let mut label = match &self.status {
            Status::Current => self.name.clone(),
            Status::Changed(diff) => format!("{} [{diff}]", self.name),
            Status::NoConfig => format!("{} [no config]", self.name),
        };
        let others: Vec<&str> = self
            .versions
            .iter()
            .map(String::as_str)
            .filter(|v| !numerics_current(v, &self.config))
            .collect();
        if !others.is_empty() {
            label.push_str(&format!(" (attnx {})", others.join(", ")));
        }
        label
    }

    /// The split each epoch was evaluated on: `test`, or `validation` (IMDB configs with
    /// `task.validation_split`, whose test figure is measured once, after training).
    pub fn held_out_split(&self) -> &'static str {
        match self.config.study {
            Study::Imdb { task, .. } if task.validation_split.is_some() => "validation",
            _ => "test",
        }
    }

    /// The variant family: groups with the same changes are compared with one another.
    pub fn family(&self) -> String {
        match &self.status {
            Status::Current => String::new(),
            Status::Changed(diff) => diff.clone(),
            Status::NoConfig => "no config".into(),
        }
    }

    pub fn accuracies(&self) -> Vec<f64> {
        self.records.iter().map(|r| r.accuracy).collect()
    }

    /// Each repeat's macro-F1 (%), for records with a confusion matrix (text tasks).
    pub fn macro_f1s(&self) -> Vec<f64> {
        self.records
            .iter()
            .filter_map(|r| r.figure(crate::record::At::MacroF1))
            .collect()
    }

    /// The class labels and the confusion matrices of all repeats summed, for a text task's
    /// records (`None` without any, or when the repeats disagree on the classes).
    pub fn summed_confusion(&self) -> Option<(Vec<String>, Vec<Vec<usize>>)> {
        let mut labels: Option<Vec<String>> = None;
        let mut sum: Option<Vec<Vec<usize>>> = None;
        for record in &self.records {
            let (Some(data), Some(confusion)) = (&record.data, &record.confusion) else {
                continue;
            };
            let these: Vec<String> = data.classes.iter().map(|c| c.label.clone()).collect();
            if labels.get_or_insert_with(|| these.clone()) != &these {
                return None;
            }
            let total = sum.get_or_insert_with(|| vec![vec![0; these.len()]; these.len()]);
            for (row, counts) in total.iter_mut().zip(confusion) {
                for (cell, n) in row.iter_mut().zip(counts) {
                    *cell += n;
                }
            }
        }
        labels.zip(sum)
    }

    /// Each repeat's share of evaluation pairs right at each output position (echo, in
    /// percent); `None` unless every record has the counts.
    pub fn position_accuracies(&self) -> Option<Vec<Vec<f64>>> {
        if self.records.is_empty() {
            return None;
        }
        self.records
            .iter()
            .map(RepeatRecord::position_accuracy)
            .collect()
    }

    pub fn is_imdb(&self) -> bool {
        self.config.study.is_imdb()
    }

    /// Mean over repeats of a per-epoch figure, per epoch (IMDB records).
    pub fn epoch_means(&self, pick: fn(&EpochMetrics) -> f64) -> Vec<Summary> {
        let epochs = self
            .records
            .iter()
            .map(|r| r.epochs.len())
            .max()
            .unwrap_or(0);
        (0..epochs)
            .filter_map(|e| {
                let values: Vec<f64> = self
                    .records
                    .iter()
                    .filter_map(|r| r.epochs.get(e).map(pick))
                    .collect();
                Summary::of(&values)
            })
            .collect()
    }

    /// The epoch (1-based) with the best mean test accuracy, and that accuracy (`None` when
    /// the epochs were evaluated on a validation split).
    pub fn best_epoch(&self) -> Option<(usize, f64)> {
        if self.held_out_split() != "test" {
            return None;
        }
        self.epoch_means(|m| m.held_out.accuracy())
            .iter()
            .enumerate()
            .map(|(i, s)| (i + 1, s.mean))
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
    }
}

/// What the result store holds.
#[derive(Debug, Default)]
pub struct Scan {
    pub groups: Vec<Group>,
    /// Records that could not be read, one line each.
    pub warnings: Vec<String>,
}

/// Reads every record under `results` (`<name>/<hash>/repeat-*.json`). An unreadable record
/// becomes a warning, never an error.
pub fn scan(results: &Path, configs_dir: &Path) -> Result<Scan> {
    let mut scan = Scan::default();
    let current = current_configs(configs_dir);
    let mut by_key: BTreeMap<(String, String), Vec<RepeatRecord>> = BTreeMap::new();
    let names = std::fs::read_dir(results)
        .with_context(|| format!("{}: cannot read the results folder", results.display()))?;
    let mut files = Vec::new();
    for name_dir in names
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
    {
        for hash_dir in std::fs::read_dir(&name_dir)?.filter_map(|e| e.ok().map(|e| e.path())) {
            files.extend(
                crate::fsutil::files_named(&hash_dir, "repeat-", ".json").unwrap_or_default(),
            );
        }
    }
    files.sort();
    for file in files {
        let shown = file
            .strip_prefix(results)
            .unwrap_or(&file)
            .display()
            .to_string();
        match RepeatRecord::read(&file) {
            Ok(record) => by_key
                .entry((record.experiment.clone(), record.config_hash.clone()))
                .or_default()
                .push(record),
            Err(e) => scan
                .warnings
                .push(format!("{shown}: unreadable record, skipped ({e})")),
        }
    }
    for ((name, hash), mut records) in by_key {
        records.sort_by_key(|r| r.repeat);
        records.dedup_by_key(|r| r.repeat);
        let config = records[0].config.clone();
        let status = match current.get(&name) {
            Some(now) if now.hash() == hash => Status::Current,
            Some(now) => Status::Changed(differences(now, &config)),
            None => Status::NoConfig,
        };
        let versions = records.iter().map(|r| r.attnx_version.clone()).collect();
        scan.groups.push(Group {
            name,
            hash,
            config,
            records,
            status,
            versions,
        });
    }
    Ok(scan)
}

/// The configs in `configs/` and the built-in ones it does not shadow, by experiment name.
fn current_configs(dir: &Path) -> BTreeMap<String, ExperimentConfig> {
    crate::builtin::merged(dir, crate::config::CONFIG_DIR)
        .iter()
        .filter_map(|(_, p)| ExperimentConfig::load(p).ok())
        .map(|c| (c.name().to_string(), c))
        .collect()
}

/// `path=value` for every setting of `then` that differs from `now` (hash-relevant ones only).
fn differences(now: &ExperimentConfig, then: &ExperimentConfig) -> String {
    fn leaves(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&path, v, out);
                }
            }
            other => {
                out.insert(
                    prefix.to_string(),
                    other.to_string().trim_matches('"').to_string(),
                );
            }
        }
    }
    // Only what counts for the hash: the fields that change a result.
    let flat = |c: &ExperimentConfig| {
        let mut out = BTreeMap::new();
        leaves(
            "",
            &serde_json::to_value(c.hash_key()).unwrap_or(Value::Null),
            &mut out,
        );
        out
    };
    let (a, b) = (flat(now), flat(then));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}={}", b.get(k).map_or("-", String::as_str)))
        .collect();
    if diffs.is_empty() {
        // Same settings, another hash: recorded under an older training protocol (IMDB).
        "older protocol".into()
    } else {
        diffs.join(", ")
    }
}
