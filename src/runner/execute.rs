//! Trains planned stacks on worker threads, each taking the next off one queue, and records
//! every repeat as it finishes.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::RunOptions;
use super::plan::Unit;
use crate::backend;
use crate::config::ExperimentConfig;
use crate::progress::Progress;
use crate::record::{LossCurve, RepeatRecord};
use crate::rng::repeat_seed;
use crate::store::{ResultStore, WriteModel};
use crate::train::{self, LOSS_WINDOW, PreparedStudy, RepeatOutcome, StackRun};

/// What the workers share: the planned configs (by index), their data and devices.
pub(super) struct Work<'a> {
    pub store: &'a ResultStore,
    pub configs: &'a [ExperimentConfig],
    pub data: &'a [PreparedStudy],
    pub devices: &'a [burn::tensor::Device],
    pub options: &'a RunOptions,
}

impl Work<'_> {
    /// Trains the units on `options.jobs` workers, each taking the next unit off one queue, and
    /// records every repeat as it finishes. Returns the records (with their config's index)
    /// and one line per failure.
    pub fn execute(&self, units: Vec<Unit>) -> (Vec<(usize, RepeatRecord)>, Vec<String>) {
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
        let checkpoint_dir = |repeat: usize| self.store.checkpoint_dir(config, repeat);
        if self.options.force {
            // A forced run starts every repeat afresh.
            for &repeat in &unit.indices {
                let _ = self.store.remove_checkpoints(config, repeat);
            }
        }
        let run = StackRun {
            device,
            progress,
            label: &label,
            checkpoint_dir: &checkpoint_dir,
        };
        let outcomes = match crate::quietly(|| train_unit(config, data, &unit.indices, &run)) {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(reason)) => {
                return (
                    Vec::new(),
                    vec![format!("{label}: training failed: {reason:#}")],
                );
            }
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
                Ok(_) => {
                    // The record is safe: its checkpoints are no longer needed.
                    if !self.options.keep_checkpoints
                        && let Err(e) = self.store.remove_checkpoints(config, record.repeat)
                    {
                        failures.push(format!("{label}: {e:#}"));
                    }
                    records.push((unit.config, record))
                }
                Err(e) => failures.push(format!("{label}: {e:#}")),
            }
        }
        (records, failures)
    }
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
    run: &StackRun<'_>,
) -> anyhow::Result<Vec<RepeatOutcome>> {
    let seeds: Vec<u64> = indices
        .iter()
        .map(|&i| repeat_seed(config.seed, i))
        .collect();
    let outcomes = train::train_stack(data, &config.optimizer, indices, &seeds, run)?;
    let accuracies: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{:.2}", o.accuracy))
        .collect();
    run.progress.println(&format!(
        "{}: done, accuracy % [{}]",
        run.label,
        accuracies.join(", ")
    ));
    Ok(outcomes)
}

fn make_record(
    config: &ExperimentConfig,
    data: &PreparedStudy,
    device: &burn::tensor::Device,
    outcome: RepeatOutcome,
    stack_size: usize,
) -> RepeatRecord {
    RepeatRecord {
        device: backend::describe(config.backend, device),
        accuracy: outcome.accuracy,
        correct: outcome.correct,
        total: outcome.total,
        data_sha256: data.data_checksum(),
        epochs: outcome.epochs,
        stopped_at: outcome.stopped_at,
        selected_epoch: outcome.selected_epoch,
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
        ..RepeatRecord::new(config, outcome.index, outcome.seed)
    }
}
