//! Runs the missing repeats of one or more configs, in parallel, and records each one.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

use crate::backend;
use crate::config::{Backend, EchoModel, ExperimentConfig, Study};
use crate::data::prepare::{self, ImdbData};
use crate::error::InputError;
use crate::models::footprint;
use crate::progress::{Mode, Progress};
use crate::record::{ConfigRecords, LossCurve, RepeatRecord};
use crate::rng::repeat_seed;
use crate::store::{ResultStore, WriteModel};
use crate::train::{self, LOSS_WINDOW, PreparedStudy, RepeatOutcome};

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

/// A stack of repeats of one config, trained together by one worker.
struct Unit {
    config: usize,
    indices: Vec<usize>,
}

/// How many repeats to train as one stacked model when the user does not say, from
/// `attnx bench` (batch 1, E1 models, 2-core machine): on flex a stack of 10 trains 0.78x
/// (baseline) and 0.85x (attention) as many repeat-steps per second as single repeats, since a
/// step's cost there is the weight gradients and Adam's passes over the weights, which grow with
/// the stack; so flex runs repeats one per worker. On ndarray, whose per-op overhead is larger,
/// a stack of 10 trains 1.58x and 1.66x as many: each worker gets one stack. On a GPU a
/// batch-1 step is bound by kernel-launch latency, which a stack shares: one stack of all.
/// IMDB repeats are never stacked: at batch size 32 they are bound by arithmetic.
pub fn default_stack(config: &ExperimentConfig, repeats: usize, jobs: usize) -> usize {
    match (&config.study, config.backend) {
        (Study::Imdb { .. }, _) => 1,
        (_, Backend::Flex) => 1,
        (_, Backend::Ndarray) => repeats.div_ceil(jobs.max(1)).max(1),
        (_, Backend::Wgpu) => repeats.max(1),
    }
}

/// Loads each config's data set once (configs that share one share it).
fn prepare_data(
    configs: &[ExperimentConfig],
    cli_data: Option<&Path>,
    say: &dyn Fn(&str),
) -> Result<Vec<PreparedStudy>> {
    let mut loaded: HashMap<(PathBuf, String), Arc<ImdbData>> = HashMap::new();
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        out.push(PreparedStudy::new(&config.study, |task| -> Result<_> {
            let (path, origin) = prepare::locate(cli_data, config.data.as_deref())?;
            // Everything the prepared data depends on, as the cache key.
            let key = (path.clone(), serde_json::to_string(task)?);
            if let Some(data) = loaded.get(&key) {
                return Ok(data.clone());
            }
            say(&format!(
                "{}: IMDB data from {} ({origin})",
                config.name(),
                path.display()
            ));
            let started = std::time::Instant::now();
            let data = Arc::new(ImdbData::prepare(task, &path)?);
            say(&format!(
                "{}: {} training and {} test reviews ready in {:.1} s",
                config.name(),
                data.train.len(),
                data.test.len(),
                started.elapsed().as_secs_f64()
            ));
            loaded.insert(key, data.clone());
            Ok(data)
        })?);
    }
    Ok(out)
}

/// Refuses, before any data is loaded, a run whose models would not fit in memory: this
/// machine's on the CPU backends, the device's on wgpu (an impossible `hidden` or `maxlen`
/// would otherwise end in the kernel's OOM kill, or a device allocation failure half-way).
/// Each config is checked with as many stacks in flight as the workers allow.
fn check_memory(
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
            .unwrap_or_else(|| default_stack(config, todo.len(), jobs))
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
    refuse_duplicates(&configs)?;
    // Check every backend and load every data set before any training starts.
    let devices = configs
        .iter()
        .map(|config| backend::device(config.backend, config.device))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut results, missing) = recorded_and_missing(store, configs, options.force, &say)?;
    if missing.iter().all(Vec::is_empty) {
        return Ok(finish(results));
    }
    let configs: Vec<ExperimentConfig> = results.iter().map(|r| r.config.clone()).collect();
    check_memory(&configs, &missing, &devices, options)?;
    let data = prepare_data(&configs, options.data.as_deref(), &say)?;
    let units = plan_units(&configs, &missing, &data, options);

    let work = Work {
        store,
        configs: &configs,
        data: &data,
        devices: &devices,
        options,
    };
    let (finished, failures) = work.execute(units);
    for (config, record) in finished {
        results[config].records.push(record);
    }
    if let Some(first) = failures.first() {
        let more = failures.len() - 1;
        if more > 0 {
            bail!("{first} (and {more} more failure(s))");
        }
        bail!("{first}");
    }
    Ok(finish(results))
}

/// The same config twice would train the same repeats twice, at once.
fn refuse_duplicates(configs: &[ExperimentConfig]) -> Result<()> {
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
fn recorded_and_missing(
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

/// Stacks of the missing repeats, longest first, so that no worker is left with a long one at
/// the end.
fn plan_units(
    configs: &[ExperimentConfig],
    missing: &[Vec<usize>],
    data: &[PreparedStudy],
    options: &RunOptions,
) -> Vec<Unit> {
    let jobs = options.jobs.max(1);
    let mut units: Vec<Unit> = Vec::new();
    for (config, todo) in missing.iter().enumerate() {
        let stack = options
            .stack
            .unwrap_or_else(|| default_stack(&configs[config], todo.len(), jobs))
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

/// What the workers share: the planned configs (by index), their data and devices.
struct Work<'a> {
    store: &'a ResultStore,
    configs: &'a [ExperimentConfig],
    data: &'a [PreparedStudy],
    devices: &'a [burn::tensor::Device],
    options: &'a RunOptions,
}

impl Work<'_> {
    /// Trains the units on `options.jobs` workers, each taking the next unit off one queue, and
    /// records every repeat as it finishes. Returns the records (with their config's index)
    /// and one line per failure.
    fn execute(&self, units: Vec<Unit>) -> (Vec<(usize, RepeatRecord)>, Vec<String>) {
        let total: usize = units.iter().map(|u| u.indices.len()).sum();
        let total_steps: usize = units
            .iter()
            .map(|u| self.data[u.config].steps_per_repeat() * u.indices.len())
            .sum();
        let progress = Progress::new(self.options.progress, total, total_steps);
        let queue = Mutex::new(units.into_iter().collect::<VecDeque<_>>());
        let finished = Mutex::new(Vec::new());
        let failures = Mutex::new(Vec::new());
        let workers = self.options.jobs.max(1).min(total);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    // Take the lock for the pop alone: a `while let` would hold it while training.
                    while let Some(unit) = { queue.lock().unwrap().pop_front() } {
                        let (records, failed) = self.train_and_record(&unit, &progress);
                        finished.lock().unwrap().extend(records);
                        failures.lock().unwrap().extend(failed);
                        progress.repeats_done(unit.indices.len());
                    }
                });
            }
        });
        progress.finish();
        (
            finished.into_inner().unwrap(),
            failures.into_inner().unwrap(),
        )
    }

    /// One unit: train it (a panic becomes a failure), then record each repeat (and its model,
    /// when saved). Returns the recorded repeats and one line per repeat that failed.
    fn train_and_record(
        &self,
        unit: &Unit,
        progress: &Progress,
    ) -> (Vec<(usize, RepeatRecord)>, Vec<String>) {
        let config = &self.configs[unit.config];
        let (data, device) = (&self.data[unit.config], &self.devices[unit.config]);
        let label = stack_label(config.name(), &unit.indices);
        let outcomes = match crate::quietly(|| {
            train_unit(config, data, &unit.indices, device, progress, &label)
        }) {
            Ok(outcomes) => outcomes,
            Err(reason) => {
                return (
                    Vec::new(),
                    vec![format!("{label}: training failed: {reason}")],
                );
            }
        };
        let save_model = self.options.save_model.unwrap_or(config.repeats() == 1);
        let mut records = Vec::new();
        let mut failures = Vec::new();
        for mut outcome in outcomes {
            let model = std::mem::replace(&mut outcome.model, train::TrainedModel::None);
            let mut record = make_record(config, data, device, outcome, unit.indices.len());
            record.model_file = save_model.then(|| ResultStore::model_file_name(record.repeat));
            let write_model = |path: &Path| model.write(path);
            let write_model: &WriteModel<'_> = &write_model;
            match self
                .store
                .save_with_model(&record, save_model.then_some(write_model))
            {
                Ok(_) => records.push((unit.config, record)),
                Err(e) => failures.push(format!("{label}: {e:#}")),
            }
        }
        (records, failures)
    }
}

fn finish(mut results: Vec<ConfigRecords>) -> Vec<ConfigRecords> {
    for r in &mut results {
        r.records.sort_by_key(|rec| rec.repeat);
    }
    results
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

fn stack_label(name: &str, indices: &[usize]) -> String {
    match indices {
        [one] => format!("{name} #{one}"),
        [first, .., last] => format!("{name} #{first}-{last}"),
        [] => name.to_string(),
    }
}

fn train_unit(
    config: &ExperimentConfig,
    data: &PreparedStudy,
    indices: &[usize],
    device: &burn::tensor::Device,
    progress: &Progress,
    label: &str,
) -> Vec<RepeatOutcome> {
    let seeds: Vec<u64> = indices
        .iter()
        .map(|&i| repeat_seed(config.seed, i))
        .collect();
    let outcomes = train::train_stack(
        data,
        &config.optimizer,
        indices,
        &seeds,
        device,
        progress,
        label,
    );
    let accuracies: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{:.2}", o.accuracy))
        .collect();
    progress.println(&format!(
        "{label}: done, accuracy % [{}]",
        accuracies.join(", ")
    ));
    outcomes
}

fn make_record(
    config: &ExperimentConfig,
    data: &PreparedStudy,
    device: &burn::tensor::Device,
    outcome: RepeatOutcome,
    stack_size: usize,
) -> RepeatRecord {
    RepeatRecord {
        attnx_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: Some(env!("ATTNX_GIT_COMMIT").to_string()).filter(|c| !c.is_empty()),
        experiment: config.name().to_string(),
        config_hash: config.hash(),
        config: config.clone(),
        repeat: outcome.index,
        seed: outcome.seed,
        backend: config.backend,
        device: backend::describe(config.backend, device),
        accuracy: outcome.accuracy,
        correct: outcome.correct,
        total: outcome.total,
        data_sha256: data.data_checksum(),
        epochs: outcome.epochs,
        loss_curve: LossCurve {
            every: LOSS_WINDOW,
            values: outcome.loss_curve,
        },
        train_seconds: outcome.train_seconds,
        eval_seconds: outcome.eval_seconds,
        stack_size,
        finished_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model_file: None,
    }
}

/// Loads the configs named on the command line (`baseline` or `path/to/x.json`).
pub fn load_configs(names: &[String]) -> Result<Vec<ExperimentConfig>> {
    let mut configs = Vec::with_capacity(names.len());
    for name in names {
        let path = crate::config::resolve_config_path(name)?;
        configs.push(ExperimentConfig::load(Path::new(&path))?);
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ExperimentConfig {
        ExperimentConfig::parse(text, Path::new("x.json")).unwrap()
    }

    /// The stacking defaults `attnx bench` chose: one repeat per worker on flex, one stack per
    /// worker on ndarray, one stack of all on wgpu, and IMDB repeats never stacked.
    #[test]
    fn default_stacks_follow_the_backend_and_task() {
        let echo = |backend: &str| {
            config(&format!(
                r#"{{"task": {{"kind": "echo"}}, "model": {{"kind": "attention"}}, "backend": "{backend}"}}"#
            ))
        };
        assert_eq!(default_stack(&echo("flex"), 10, 2), 1);
        assert_eq!(default_stack(&echo("ndarray"), 10, 2), 5);
        assert_eq!(default_stack(&echo("ndarray"), 3, 2), 2);
        assert_eq!(default_stack(&echo("wgpu"), 10, 2), 10);
        let imdb = config(
            r#"{"task": {"kind": "imdb"}, "model": {"kind": "self_attention"}, "backend": "wgpu"}"#,
        );
        assert_eq!(default_stack(&imdb, 5, 2), 1);
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
            repeats: None,
            backend: None,
            device: None,
            seed: None,
            jobs: 2,
            stack: None,
            force: false,
            progress: Mode::Quiet,
            data: None,
            save_model: None,
        };
        let prepared: Vec<PreparedStudy> = configs
            .iter()
            .map(|c| PreparedStudy::new(&c.study, |_| -> Result<_, ()> { unreachable!() }).unwrap())
            .collect();
        let units = plan_units(&configs, &missing, &prepared, &options);
        let plan: Vec<(usize, Vec<usize>)> =
            units.into_iter().map(|u| (u.config, u.indices)).collect();
        // ndarray: one stack per worker (2 of 2); flex: one repeat per unit. An attention
        // step costs about two baseline steps, so the attention repeats go first.
        assert_eq!(
            plan,
            [
                (1, vec![3]),
                (1, vec![4]),
                (1, vec![9]),
                (0, vec![0, 1]),
                (0, vec![2, 7]),
            ]
        );
    }

    #[test]
    fn overrides_apply_and_keep_the_device_rule() {
        let base = config(
            r#"{"name": "a", "task": {"kind": "echo"}, "model": {"kind": "baseline"}, "backend": "wgpu", "device": "cpu"}"#,
        );
        let mut options = RunOptions {
            repeats: Some(3),
            backend: Some(Backend::Flex),
            device: None,
            seed: Some(9),
            jobs: 1,
            stack: None,
            force: false,
            progress: Mode::Quiet,
            data: None,
            save_model: None,
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
