//! Trains planned stacks on worker threads, each taking the next off one queue, and records
//! every repeat as it finishes. Each repeat is claimed in the store first: one that another
//! process holds is left to it, and waited for (or, with `--no-wait`, reported).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::RunOptions;
use super::plan::Unit;
use crate::backend;
use crate::config::ExperimentConfig;
use crate::progress::Progress;
use crate::record::{LossCurve, RepeatRecord};
use crate::rng::repeat_seed;
use crate::store::claim::{Attempt, Claim, ClaimBook};
use crate::store::{ResultStore, WriteModel};
use crate::train::{self, LOSS_WINDOW, PreparedStudy, RepeatOutcome, StackRun};

/// What the workers share: the planned configs (by index), their data and devices.
pub(super) struct Work<'a> {
    pub store: &'a ResultStore,
    pub configs: &'a [ExperimentConfig],
    pub data: &'a [PreparedStudy],
    pub devices: &'a [burn::tensor::Device],
    pub options: &'a RunOptions,
    pub claims: &'a ClaimBook,
    /// Unix time the run started: with `--force`, only records written since count as done.
    pub started: u64,
}

/// What the workers did.
#[derive(Default)]
pub(super) struct Executed {
    /// The records this process wrote, with their config's index.
    pub finished: Vec<(usize, RepeatRecord)>,
    /// One line per repeat that failed.
    pub failures: Vec<String>,
    /// One line per repeat left to another process (`--no-wait`).
    pub left_to_others: Vec<String>,
}

/// A repeat another process holds, and who.
type HeldElsewhere = (usize, String);

/// A unit on the queue: its repeats, and when to look again at those another process holds.
struct Queued {
    unit: Unit,
    not_before: Option<Instant>,
}

impl Work<'_> {
    /// Trains the units on `options.jobs` workers, each taking the next unit off one queue, and
    /// records every repeat as it finishes.
    pub fn execute(&self, units: Vec<Unit>) -> Executed {
        let total: usize = units.iter().map(|u| u.indices.len()).sum();
        let total_steps: usize = units
            .iter()
            .map(|u| self.data[u.config].steps_per_repeat() * u.indices.len())
            .sum();
        let progress = Progress::new(self.options.progress, total, total_steps);
        let queue = Mutex::new(
            units
                .into_iter()
                .map(|unit| Queued {
                    unit,
                    not_before: None,
                })
                .collect::<VecDeque<_>>(),
        );
        let executed = Mutex::new(Executed::default());
        let workers = self.options.jobs.max(1).min(total);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    // Take the lock for the pop alone: a `while let` would hold it while training.
                    while let Some(queued) = { queue.lock().unwrap().pop_front() } {
                        if let Some(at) = queued.not_before {
                            std::thread::sleep(at.saturating_duration_since(Instant::now()));
                        }
                        let (claimed, held) = self.claim(&queued.unit, &progress, &executed);
                        if !claimed.is_empty() {
                            let indices: Vec<usize> = claimed.iter().map(|(i, _)| *i).collect();
                            let unit = Unit {
                                config: queued.unit.config,
                                indices,
                            };
                            let (records, failed) = self.train_and_record(&unit, &progress);
                            // Released once the records are written (or training failed).
                            drop(claimed);
                            let mut executed = executed.lock().unwrap();
                            executed.finished.extend(records);
                            executed.failures.extend(failed);
                            progress.repeats_done(unit.indices.len());
                        }
                        if !held.is_empty() {
                            let config = queued.unit.config;
                            self.leave_to_others(config, held, &queue, &executed, &progress);
                        }
                    }
                });
            }
        });
        progress.finish();
        executed.into_inner().unwrap()
    }

    /// Claims what this process can train of `unit`. Returns the claimed repeats and those
    /// another process holds; repeats another process finished meanwhile are neither.
    fn claim(
        &self,
        unit: &Unit,
        progress: &Progress,
        executed: &Mutex<Executed>,
    ) -> (Vec<(usize, Claim)>, Vec<HeldElsewhere>) {
        let config = &self.configs[unit.config];
        let (mut claimed, mut held) = (Vec::new(), Vec::new());
        for &repeat in &unit.indices {
            let done_elsewhere = || {
                self.store
                    .load_one(config, repeat)
                    .is_some_and(|r| !self.options.force || r.finished_at >= self.started)
            };
            let path = self.store.claim_path(config, repeat);
            if done_elsewhere() {
                // A claim its dead owner left after writing the record goes with this one.
                if let Ok(Attempt::Claimed(claim)) = self.claims.try_claim(&path) {
                    drop(claim);
                }
                progress.repeats_done(1);
                continue;
            }
            match self.claims.try_claim(&path) {
                // Finished by its former owner just before the claim: nothing to do.
                Ok(Attempt::Claimed(_)) if done_elsewhere() => progress.repeats_done(1),
                Ok(Attempt::Claimed(claim)) => {
                    if let Some(from) = &claim.took_over {
                        progress.println(&format!(
                            "{} #{repeat}: claim taken over from {from}",
                            config.name()
                        ));
                    }
                    claimed.push((repeat, claim));
                }
                Ok(Attempt::Held(owner)) => held.push((repeat, owner.to_string())),
                Err(e) => executed.lock().unwrap().failures.push(format!(
                    "{} #{repeat}: cannot claim it in {}: {e}",
                    config.name(),
                    self.store.config_dir(config).display()
                )),
            }
        }
        (claimed, held)
    }

    /// Repeats another process holds: looked at again later (their record appears, or their
    /// owner dies and they are taken over), or with `--no-wait` reported and left.
    fn leave_to_others(
        &self,
        config: usize,
        held: Vec<HeldElsewhere>,
        queue: &Mutex<VecDeque<Queued>>,
        executed: &Mutex<Executed>,
        progress: &Progress,
    ) {
        let name = self.configs[config].name();
        if !self.options.wait_for_others {
            progress.repeats_done(held.len());
            executed.lock().unwrap().left_to_others.extend(
                held.iter()
                    .map(|(repeat, owner)| format!("{name} #{repeat}: being trained by {owner}")),
            );
            return;
        }
        let indices: Vec<usize> = held.iter().map(|(repeat, _)| *repeat).collect();
        let poll = (crate::store::claim::stale_after() / 20)
            .clamp(Duration::from_millis(200), Duration::from_secs(5));
        queue.lock().unwrap().push_back(Queued {
            unit: Unit { config, indices },
            not_before: Some(Instant::now() + poll),
        });
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
        let outcomes = match crate::error::quietly(|| train_unit(config, data, &unit.indices, &run))
        {
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

/// `name #3`, `name #0-3`, or `name #0,2-3` when a stack's repeats are not consecutive (some
/// were recorded already).
fn stack_label(name: &str, indices: &[usize]) -> String {
    let Some((&first, rest)) = indices.split_first() else {
        return name.to_string();
    };
    let run = |a: usize, b: usize| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    };
    let (mut runs, mut start, mut end) = (Vec::new(), first, first);
    for &i in rest {
        if i != end + 1 {
            runs.push(run(start, end));
            start = i;
        }
        end = i;
    }
    runs.push(run(start, end));
    format!("{name} #{}", runs.join(","))
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
        position_correct: outcome.position_correct,
        data_sha256: data.data_checksum(),
        data: data.text_data(),
        confusion: outcome.confusion,
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

#[cfg(test)]
mod tests {
    use super::stack_label;

    #[test]
    fn stack_labels_name_exactly_their_repeats() {
        assert_eq!(stack_label("sb", &[3]), "sb #3");
        assert_eq!(stack_label("sb", &[0, 1, 2, 3]), "sb #0-3");
        assert_eq!(stack_label("sb", &[0, 2, 3]), "sb #0,2-3");
        assert_eq!(stack_label("sb", &[1, 4, 6, 7, 9]), "sb #1,4,6-7,9");
    }
}
