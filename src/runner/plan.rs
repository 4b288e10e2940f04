//! What a run must train: the repeats not yet recorded, whether they fit in memory, their data,
//! and how they are cut into stacks and ordered.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::RunOptions;
use crate::backend;
use crate::config::{Backend, EchoModel, ExperimentConfig, Study};
use crate::data::prepare::{self, ImdbData};
use crate::error::InputError;
use crate::models::footprint;
use crate::record::ConfigRecords;
use crate::store::ResultStore;
use crate::train::{self, PreparedStudy};

/// A stack of repeats of one config, trained together by one worker.
pub struct Unit {
    pub config: usize,
    pub indices: Vec<usize>,
}

/// How many repeats to train as one stacked model when the user does not say: single repeats
/// on the CPU backends, one stack of all on wgpu; IMDB repeats are never stacked.
///
/// A stack trains its repeats as one model with a leading repeat dimension, which pays where a
/// batch-1 step is bound by per-op overhead: on a GPU by kernel-launch latency, which a stack
/// shares. On the CPU backends E1's LSTMs and attention decoder now run as a few fused ops
/// (`kernels::lstm_sequence`, `kernels::decoder`) whose loops take the repeats one by one,
/// so a stack costs its repeats' sum (`attnx bench`, flex: 0.71 ms per step alone, 2.85 for a
/// stack of 5, 7.34 for 10, baseline) and single repeats balance the workers best: the E1
/// comparison (2 workers) took 44.1 s with single repeats against 51.5 s with one stack of 5
/// per worker. IMDB repeats train at batch 32, bound by arithmetic.
pub fn default_stack(config: &ExperimentConfig, repeats: usize) -> usize {
    match (&config.study, config.backend) {
        (Study::Imdb { .. }, _) => 1,
        (_, Backend::Flex | Backend::Ndarray) => 1,
        (_, Backend::Wgpu) => repeats.max(1),
    }
}

/// The same config twice would train the same repeats twice, at once.
pub(super) fn refuse_duplicates(configs: &[ExperimentConfig]) -> Result<()> {
    for (i, config) in configs.iter().enumerate() {
        if configs[..i]
            .iter()
            .any(|c| c.name() == config.name() && c.hash() == config.hash())
        {
            return Err(InputError(format!(
                "{}: named twice; compare each config once",
                config.name()
            ))
            .into());
        }
    }
    Ok(())
}

/// Each config with the records it keeps (none with `force`), and the repeats still to run.
pub(super) fn recorded_and_missing(
    store: &ResultStore,
    configs: Vec<ExperimentConfig>,
    force: bool,
    say: &dyn Fn(&str),
) -> Result<(Vec<ConfigRecords>, Vec<Vec<usize>>)> {
    let mut results = Vec::with_capacity(configs.len());
    let mut missing = Vec::with_capacity(configs.len());
    for config in configs {
        let stored = store.load(&config)?;
        for (path, reason) in &stored.unreadable {
            eprintln!(
                "warning: {}: unreadable record, its repeat will run again ({reason})",
                path.display()
            );
        }
        let dir = store.config_dir(&config);
        let wanted = 0..config.repeats();
        let have = wanted
            .clone()
            .filter(|i| stored.records.contains_key(i))
            .count();
        let todo: Vec<usize> = if force {
            wanted.collect()
        } else {
            wanted.filter(|i| !stored.records.contains_key(i)).collect()
        };
        if have > 0 && force {
            say(&format!(
                "{}: re-running {have} recorded repeat(s) in {} (--force)",
                config.name(),
                dir.display()
            ));
        } else if have > 0 {
            say(&format!(
                "{}: {have} of {} repeats already recorded in {}, skipped (--force runs them again)",
                config.name(),
                config.repeats(),
                dir.display()
            ));
        }
        let records = if force {
            Vec::new()
        } else {
            stored
                .records
                .into_values()
                .filter(|r| r.repeat < config.repeats())
                .collect()
        };
        missing.push(todo);
        results.push(ConfigRecords { config, records });
    }
    Ok((results, missing))
}

/// Refuses, before any data is loaded, a run whose models would not fit in memory: this
/// machine's on the CPU backends, the device's on wgpu (an impossible `hidden` or `maxlen`
/// would otherwise end in the kernel's OOM kill, or a device allocation failure half-way).
/// Each config is checked with as many stacks in flight as the workers allow.
pub(super) fn check_memory(
    configs: &[ExperimentConfig],
    missing: &[Vec<usize>],
    devices: &[burn::tensor::Device],
    options: &RunOptions,
) -> Result<()> {
    let jobs = options.jobs.max(1);
    for ((config, todo), device) in configs.iter().zip(missing).zip(devices) {
        // wgpu reports a device's memory where cubecl can read it (Vulkan through SPIR-V,
        // Metal); elsewhere, and on the CPU backends, this machine's memory is the bound.
        let (available, place) = match backend::gpu_memory_bytes(device) {
            Some(bytes) if config.backend == Backend::Wgpu => (Some(bytes as f64), "on the device"),
            _ if config.backend == Backend::Wgpu => (
                footprint::available_bytes(),
                "on this machine (the GPU reports no memory size)",
            ),
            _ => (footprint::available_bytes(), "here"),
        };
        let Some(available) = available.filter(|_| !todo.is_empty()) else {
            continue;
        };
        let stack = options
            .stack
            .unwrap_or_else(|| default_stack(config, todo.len()))
            .max(1);
        let in_flight = jobs.min(todo.len().div_ceil(stack));
        let one = footprint::estimate(config, train::imdb::EVAL_BATCH);
        let needed = one.bytes * (stack * in_flight) as f64;
        if needed > available {
            return Err(InputError(format!(
                "{}: training needs about {} of memory ({} repeat(s) at once, {:.3e} parameters each), more than the {} available {place}; use smaller sizes{}",
                config.name(),
                footprint::human(needed),
                stack * in_flight,
                one.parameters,
                footprint::human(available),
                if stack * in_flight > 1 { " or fewer --jobs/--stack" } else { "" }
            ))
            .into());
        }
    }
    Ok(())
}

/// Loads each config's data set once (configs that share one share it).
pub(super) fn prepare_data(
    configs: &[ExperimentConfig],
    cli_data: Option<&Path>,
    say: &dyn Fn(&str),
) -> Result<Vec<PreparedStudy>> {
    let mut loaded: HashMap<String, Arc<ImdbData>> = HashMap::new();
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        out.push(PreparedStudy::new(
            &config.study,
            |task, corpus| -> Result<_> {
                let source = prepare::DataSource::locate(
                    corpus,
                    config.seed,
                    cli_data,
                    config.data.as_deref(),
                )?;
                // Everything the prepared data depends on, as the key.
                let key = format!("{source:?} {}", serde_json::to_string(task)?);
                // A validation split too big or too small for the training reviews is a bad
                // config, said before anything trains.
                // And a model whose output cannot tell the data's classes apart (checked for
                // data loaded for another config too).
                let split_fits = |data: &ImdbData| {
                    task.validation_reviews(data.train.len())
                        .map_err(|e| InputError(format!("{}: {e}", config.name())))?;
                    config
                        .study
                        .fits_classes(data.classes.len())
                        .map_err(|e| InputError(format!("{}: {e}", config.name())))
                };
                if let Some(data) = loaded.get(&key) {
                    split_fits(data)?;
                    return Ok(data.clone());
                }
                say(&format!("{}: {}", config.name(), source.describe()));
                let started = std::time::Instant::now();
                let data = Arc::new(source.prepare(task)?);
                let what = source.rows_of(&data);
                say(&format!(
                    "{}: {} training and {} test {what} ready in {:.1} s",
                    config.name(),
                    data.train.len(),
                    data.test.len(),
                    started.elapsed().as_secs_f64()
                ));
                split_fits(&data)?;
                loaded.insert(key, data.clone());
                Ok(data)
            },
        )?);
    }
    Ok(out)
}

/// A text task's files are named by path in its config: a file changed under the same path
/// would mix repeats of two data sets in one config's records. Refused, naming the file and
/// both checksums, before anything trains.
pub(super) fn refuse_other_data(
    store: &ResultStore,
    results: &[ConfigRecords],
    data: &[PreparedStudy],
) -> Result<()> {
    for (result, prepared) in results.iter().zip(data) {
        let Some(now) = prepared.text_data() else {
            continue;
        };
        for record in &result.records {
            let Some(then) = &record.data else { continue };
            for (was, is) in then.files.iter().zip(&now.files) {
                if was.sha256 != is.sha256 {
                    return Err(InputError(format!(
                        "{}: {} has changed since repeat {} was recorded in {} (sha256 {} then, {} now): keep the records of each data set apart (another --out, or another file name)",
                        result.config.name(),
                        is.path,
                        record.repeat,
                        store.config_dir(&result.config).display(),
                        &was.sha256[..12],
                        &is.sha256[..12]
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}

/// Stacks of the missing repeats, longest first, so that no worker is left with a long one at
/// the end.
pub(super) fn plan_units(
    configs: &[ExperimentConfig],
    missing: &[Vec<usize>],
    data: &[PreparedStudy],
    options: &RunOptions,
) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (config, todo) in missing.iter().enumerate() {
        let stack = options
            .stack
            .unwrap_or_else(|| default_stack(&configs[config], todo.len()))
            .max(1);
        for indices in todo.chunks(stack) {
            units.push(Unit {
                config,
                indices: indices.to_vec(),
            });
        }
    }
    units.sort_by_key(|u| std::cmp::Reverse(unit_cost(&data[u.config], u.indices.len())));
    units
}

/// Relative cost of training a stack, to order the work.
fn unit_cost(study: &PreparedStudy, repeats: usize) -> usize {
    let per_step = match study {
        PreparedStudy::Echo(echo) => match echo.model {
            EchoModel::Baseline(_) => 1,
            EchoModel::Attention(_) => 2,
        },
        // A batch of 32 reviews costs far more than one echo pair.
        PreparedStudy::Imdb(_) => 100,
    };
    study.steps_per_repeat() * per_step * (10 + repeats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ExperimentConfig {
        ExperimentConfig::parse(text, Path::new("x.json")).unwrap()
    }

    /// The stacking defaults `attnx bench` chose: single repeats on the CPU backends, one stack
    /// of all on wgpu, and IMDB repeats never stacked.
    #[test]
    fn default_stacks_follow_the_backend_and_task() {
        let echo = |backend: &str| {
            config(&format!(
                r#"{{"task": {{"kind": "echo"}}, "model": {{"kind": "attention"}}, "backend": "{backend}"}}"#
            ))
        };
        assert_eq!(default_stack(&echo("flex"), 10), 1);
        assert_eq!(default_stack(&echo("ndarray"), 3), 1);
        assert_eq!(default_stack(&echo("wgpu"), 10), 10);
        let imdb = config(
            r#"{"task": {"kind": "imdb"}, "model": {"kind": "self_attention"}, "backend": "wgpu"}"#,
        );
        assert_eq!(default_stack(&imdb, 5), 1);
    }

    /// Missing repeats become stacks by the backend's default, the costliest first.
    #[test]
    fn plans_stacks_of_the_missing_repeats_costliest_first() {
        let configs = [
            config(
                r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "backend": "ndarray"}"#,
            ),
            config(r#"{"task": {"kind": "echo"}, "model": {"kind": "attention"}}"#),
        ];
        let missing = [vec![0, 1, 2, 7], vec![3, 4, 9]];
        let options = RunOptions {
            jobs: 2,
            ..RunOptions::default()
        };
        let prepared: Vec<PreparedStudy> = configs
            .iter()
            .map(|c| {
                PreparedStudy::new(&c.study, |_, _| -> Result<_, ()> { unreachable!() }).unwrap()
            })
            .collect();
        let units = plan_units(&configs, &missing, &prepared, &options);
        let plan: Vec<(usize, Vec<usize>)> =
            units.into_iter().map(|u| (u.config, u.indices)).collect();
        // Single repeats on the CPU. An attention step costs about two baseline steps, so the
        // attention repeats go first.
        assert_eq!(
            plan,
            [
                (1, vec![3]),
                (1, vec![4]),
                (1, vec![9]),
                (0, vec![0]),
                (0, vec![1]),
                (0, vec![2]),
                (0, vec![7]),
            ]
        );
    }
}
