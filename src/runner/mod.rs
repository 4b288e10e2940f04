//! Runs the missing repeats of one or more configs, in parallel, and records each one:
//! [`plan`] finds what is missing and cuts it into stacks, [`execute`] trains them on worker
//! threads and hands each finished repeat to the store.

mod execute;
mod plan;
pub mod sequential;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

pub use plan::default_stack;

use crate::backend;
use crate::config::{Backend, ExperimentConfig, Override};
use crate::error::InputError;
use crate::progress::Mode;
use crate::record::ConfigRecords;
use crate::store::ResultStore;
use crate::store::claim::ClaimBook;
use std::time::{SystemTime, UNIX_EPOCH};

/// Command-line overrides and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub repeats: Option<usize>,
    pub backend: Option<Backend>,
    /// The wgpu adapter (overrides the config's `device`).
    pub device: Option<crate::config::WgpuDevice>,
    pub seed: Option<u64>,
    /// Worker threads; each trains one stack of repeats at a time.
    pub jobs: usize,
    /// Repeats trained together as one stacked model; `None`: [`default_stack`].
    pub stack: Option<usize>,
    /// Run every repeat again, even those already recorded.
    pub force: bool,
    pub progress: Mode,
    /// Where the data set is (overrides the config's `data`).
    pub data: Option<PathBuf>,
    /// Save each repeat's trained weights beside its record; `None`: only for configs of a
    /// single repeat.
    pub save_model: Option<bool>,
    /// Keep each IMDB repeat's per-epoch checkpoints after its record is written.
    pub keep_checkpoints: bool,
    /// Wait for repeats another process is training (and take them over if it dies), rather
    /// than leaving them to it (Slurm array tasks do not wait).
    pub wait_for_others: bool,
}

impl Default for RunOptions {
    /// No overrides, one worker, no progress: what tests and library callers start from.
    fn default() -> Self {
        RunOptions {
            repeats: None,
            backend: None,
            device: None,
            seed: None,
            jobs: 1,
            stack: None,
            force: false,
            progress: Mode::Quiet,
            data: None,
            save_model: None,
            keep_checkpoints: false,
            wait_for_others: true,
        }
    }
}

/// Applies the command line's overrides to a loaded (valid) config, and checks the one rule
/// they can break: a wgpu device needs the wgpu backend.
pub fn apply_overrides(
    mut config: ExperimentConfig,
    options: &RunOptions,
) -> Result<ExperimentConfig, InputError> {
    if let Some(repeats) = options.repeats {
        config.repeats = Some(repeats);
    }
    if let Some(backend) = options.backend {
        config.backend = backend;
        if backend != Backend::Wgpu {
            // The config's wgpu adapter means nothing on a CPU backend.
            config.device = None;
        }
    }
    if let Some(device) = options.device {
        config.device = Some(device);
    }
    if let Some(seed) = options.seed {
        config.seed = seed;
    }
    if let Some(device) = config.device
        && config.backend != Backend::Wgpu
    {
        return Err(InputError(format!(
            "{}: device {device} needs the wgpu backend, and this run is on {} (add --backend wgpu)",
            config.name(),
            config.backend
        )));
    }
    Ok(config)
}

/// Runs what is missing of `configs` and returns every config's records.
pub fn run(
    store: &ResultStore,
    configs: Vec<ExperimentConfig>,
    options: &RunOptions,
) -> Result<Vec<ConfigRecords>> {
    let progress_mode = options.progress;
    let say = |message: &str| {
        if progress_mode != Mode::Quiet {
            eprintln!("{message}");
        }
    };
    plan::refuse_duplicates(&configs)?;
    // Check every backend and load every data set before any training starts.
    let devices = configs
        .iter()
        .map(|config| backend::device(config.backend, config.device))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut results, missing) = plan::recorded_and_missing(store, configs, options.force, &say)?;
    if missing.iter().all(Vec::is_empty) {
        return Ok(finish(results));
    }
    let configs: Vec<ExperimentConfig> = results.iter().map(|r| r.config.clone()).collect();
    plan::check_memory(&configs, &missing, &devices, options)?;
    let data = plan::prepare_data(&configs, options.data.as_deref(), &say)?;
    plan::refuse_other_data(store, &results, &data)?;
    let units = plan::plan_units(&configs, &missing, &data, options);

    let claims = ClaimBook::new(crate::store::claim::stale_after());
    let work = execute::Work {
        store,
        configs: &configs,
        data: &data,
        devices: &devices,
        options,
        claims: &claims,
        started: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let executed = work.execute(units);
    for line in &executed.left_to_others {
        say(&format!("left to another process: {line}"));
    }
    for (config, record) in executed.finished {
        results[config].records.push(record);
    }
    // The records of repeats other processes trained meanwhile.
    for (result, missing) in results.iter_mut().zip(&missing) {
        for &repeat in missing {
            if !result.records.iter().any(|r| r.repeat == repeat)
                && let Some(record) = store.load_one(&result.config, repeat)
            {
                result.records.push(record);
            }
        }
    }
    let failures = executed.failures;
    if let Some(first) = failures.first() {
        let more = failures.len() - 1;
        if more > 0 {
            bail!("{first} (and {more} more failure(s))");
        }
        bail!("{first}");
    }
    Ok(finish(results))
}

/// Each config's records and its missing repeats, training nothing (what a Slurm submission
/// sizes its array by, and reads back once the array is done).
pub fn recorded_and_missing(
    store: &ResultStore,
    configs: Vec<ExperimentConfig>,
) -> Result<(Vec<ConfigRecords>, Vec<Vec<usize>>)> {
    let (results, missing) = plan::recorded_and_missing(store, configs, false, &|_| {})?;
    Ok((finish(results), missing))
}

fn finish(mut results: Vec<ConfigRecords>) -> Vec<ConfigRecords> {
    for r in &mut results {
        r.records.sort_by_key(|rec| rec.repeat);
    }
    results
}

/// Loads the configs named on the command line (`baseline` or `path/to/x.json`), each with
/// the fields `--set` changes.
pub fn load_configs(names: &[String], overrides: &[Override]) -> Result<Vec<ExperimentConfig>> {
    let mut configs = Vec::with_capacity(names.len());
    for name in names {
        let path = crate::config::resolve_config_path(name)?;
        configs.push(ExperimentConfig::load_with(Path::new(&path), overrides)?);
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ExperimentConfig {
        ExperimentConfig::parse(text, Path::new("x.json")).unwrap()
    }

    #[test]
    fn overrides_apply_and_keep_the_device_rule() {
        let base = config(
            r#"{"name": "a", "task": {"kind": "echo"}, "model": {"kind": "baseline"}, "backend": "wgpu", "device": "cpu"}"#,
        );
        let mut options = RunOptions {
            repeats: Some(3),
            backend: Some(Backend::Flex),
            seed: Some(9),
            ..RunOptions::default()
        };
        // Moving to a CPU backend drops the config's wgpu adapter; seed and repeats change.
        let moved = apply_overrides(base.clone(), &options).unwrap();
        assert_eq!(
            (moved.backend, moved.device, moved.seed, moved.repeats()),
            (Backend::Flex, None, 9, 3)
        );
        assert_ne!(moved.hash(), base.hash());
        // Naming a device on the command line while staying on flex is refused.
        options.device = Some(crate::config::WgpuDevice::Cpu);
        let err = apply_overrides(base, &options).unwrap_err().to_string();
        assert!(err.contains("needs the wgpu backend"), "{err}");
    }
}
