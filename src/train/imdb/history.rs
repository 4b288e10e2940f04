//! What a repeat's record needs from burn-train, gathered as its events arrive: the per-epoch
//! train and held-out (test or validation) figures of burn's loss and accuracy metrics, the per-step loss curve, and the
//! time of each split. A [`MetricLogger`] and the renderer fill one shared [`History`]; a
//! finished epoch is handed to a callback (the checkpoint's state file, a progress line).

use std::sync::{Arc, Mutex};

use burn::train::EarlyStoppingStrategy;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{Aggregate, EpochSummary, EventStoreClient, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, NumericEntry};
use serde::{Deserialize, Serialize};

use crate::config::{EarlyStopping, StopMetric};
use crate::record::{EpochMetrics, HeldOut};
use crate::train::{ACCURACY, LOSS, LossWindows, MetricNames};

/// Everything about a repeat's finished epochs that burn's checkpoint records do not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatState {
    pub epochs: Vec<EpochMetrics>,
    pub windows: LossWindows,
    /// Seconds spent training and evaluating, over the finished epochs.
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

impl Default for RepeatState {
    fn default() -> Self {
        RepeatState {
            epochs: Vec::new(),
            windows: LossWindows::new(1),
            train_seconds: 0.0,
            eval_seconds: 0.0,
        }
    }
}

/// The figures of the running epoch, as they arrive (from two threads: the metric store's and
/// the renderer's).
#[derive(Debug, Default)]
struct OpenEpoch {
    train_loss: Option<f64>,
    train_accuracy: Option<f64>,
    held_out_loss: Option<f64>,
    held_out_accuracy: Option<f64>,
    train_seconds: Option<f64>,
    eval_seconds: Option<f64>,
}

/// Called with the state after each finished epoch.
pub type OnEpoch = Box<dyn FnMut(&RepeatState) + Send>;

pub struct History {
    state: RepeatState,
    /// Whether burn-train's validation split is a validation split (`task.validation_split`)
    /// rather than the test split.
    validation: bool,
    open: OpenEpoch,
    on_epoch: OnEpoch,
}

pub type SharedHistory = Arc<Mutex<History>>;

impl History {
    pub fn shared(state: RepeatState, validation: bool, on_epoch: OnEpoch) -> SharedHistory {
        Arc::new(Mutex::new(History {
            state,
            validation,
            open: OpenEpoch::default(),
            on_epoch,
        }))
    }

    pub fn state(&self) -> &RepeatState {
        &self.state
    }

    /// The split times of the epoch, from the renderer.
    pub fn set_times(&mut self, train_seconds: f64, eval_seconds: f64) {
        self.open.train_seconds = Some(train_seconds);
        self.open.eval_seconds = Some(eval_seconds);
        self.finish_epoch_if_complete();
    }

    fn finish_epoch_if_complete(&mut self) {
        let o = &self.open;
        let (
            Some(train_loss),
            Some(train_accuracy),
            Some(loss),
            Some(accuracy),
            Some(train_seconds),
            Some(eval_seconds),
        ) = (
            o.train_loss,
            o.train_accuracy,
            o.held_out_loss,
            o.held_out_accuracy,
            o.train_seconds,
            o.eval_seconds,
        )
        else {
            return;
        };
        self.state.epochs.push(EpochMetrics {
            epoch: self.state.epochs.len() + 1,
            train_loss,
            train_accuracy,
            held_out: HeldOut::new(self.validation, loss, accuracy),
            seconds: train_seconds + eval_seconds,
        });
        self.state.train_seconds += train_seconds;
        self.state.eval_seconds += eval_seconds;
        self.open = OpenEpoch::default();
        (self.on_epoch)(&self.state);
    }
}

/// burn-train's metric logger for one repeat: turns metric updates into [`History`].
pub struct HistoryLogger {
    history: SharedHistory,
    names: MetricNames,
}

impl HistoryLogger {
    pub fn new(history: SharedHistory) -> Self {
        Self {
            history,
            names: MetricNames::default(),
        }
    }
}

impl MetricLogger for HistoryLogger {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        let mut history = self.history.lock().expect("history lock");
        for numeric in &update.entries_numeric {
            let Some(name) = self.names.name(&numeric.entry.metric_id) else {
                continue;
            };
            let open = &mut history.open;
            match (&numeric.numeric_entry, split, name) {
                // One training step: its mean loss, a point of the loss curve.
                (
                    Some(NumericEntry::Aggregated {
                        aggregated_value, ..
                    }),
                    Split::Train,
                    LOSS,
                ) => {
                    let loss = *aggregated_value as f32;
                    history.state.windows.push(&[loss]);
                }
                (Some(NumericEntry::Final(value)), Split::Train, LOSS) => {
                    open.train_loss = Some(*value)
                }
                (Some(NumericEntry::Final(value)), Split::Train, ACCURACY) => {
                    open.train_accuracy = Some(*value)
                }
                (Some(NumericEntry::Final(value)), Split::Valid, LOSS) => {
                    open.held_out_loss = Some(*value)
                }
                (Some(NumericEntry::Final(value)), Split::Valid, ACCURACY) => {
                    open.held_out_accuracy = Some(*value)
                }
                _ => {}
            }
        }
    }

    /// Finished epochs' figures, for early stopping and the best-epoch checkpoint (one value
    /// per epoch).
    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        let history = self.history.lock().expect("history lock");
        let Some(m) = history.state.epochs.get(epoch.wrapping_sub(1)) else {
            return Ok(Vec::new());
        };
        let value = match (split, name) {
            (Split::Valid, LOSS) => m.held_out.loss(),
            (Split::Valid, ACCURACY) => m.held_out.accuracy(),
            (Split::Train, LOSS) => m.train_loss,
            (Split::Train, ACCURACY) => m.train_accuracy,
            _ => return Ok(Vec::new()),
        };
        Ok(vec![NumericEntry::Final(value)])
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.register(definition);
    }

    fn log_epoch_summary(&mut self, _summary: EpochSummary) {
        self.history
            .lock()
            .expect("history lock")
            .finish_epoch_if_complete();
    }
}

/// Stops a repeat once the monitored held-out figure has not improved for `patience` epochs.
/// It keeps no state of its own: each decision is taken again from the finished epochs, so a
/// resumed repeat stops where an uninterrupted one would.
#[derive(Clone)]
pub struct PatienceStopping {
    pub rule: EarlyStopping,
}

impl PatienceStopping {
    /// The epoch to stop after, given the finished epochs' figures (`values[e - 1]`: epoch e).
    pub fn stop_after(&self, values: &[f64]) -> Option<usize> {
        let better = better(self.rule.metric);
        let mut best = 0;
        for (i, &value) in values.iter().enumerate() {
            if i == 0 || better(value, values[best]) {
                best = i;
            } else if i - best >= self.rule.patience {
                return Some(i + 1);
            }
        }
        None
    }

    pub fn metric_name(&self) -> &'static str {
        metric_name(self.rule.metric)
    }

    /// The monitored figure of each finished epoch.
    pub fn values(&self, epochs: &[EpochMetrics]) -> Vec<f64> {
        values(self.rule.metric, epochs)
    }
}

/// burn's name of the metric behind a held-out figure.
pub fn metric_name(metric: StopMetric) -> &'static str {
    if metric.is_loss() { LOSS } else { ACCURACY }
}

/// Whether figure `a` is strictly better than `b`.
fn better(metric: StopMetric) -> impl Fn(f64, f64) -> bool {
    move |a, b| if metric.is_loss() { a < b } else { a > b }
}

/// `metric`'s figure for each finished epoch.
fn values(metric: StopMetric, epochs: &[EpochMetrics]) -> Vec<f64> {
    epochs
        .iter()
        .map(|m| {
            if metric.is_loss() {
                m.held_out.loss()
            } else {
                m.held_out.accuracy()
            }
        })
        .collect()
}

/// The first epoch with the best `metric` figure (the rule of burn's best-epoch checkpoint).
pub fn best_epoch(metric: StopMetric, epochs: &[EpochMetrics]) -> Option<usize> {
    let better = better(metric);
    let values = values(metric, epochs);
    (0..values.len())
        .reduce(|best, i| {
            if better(values[i], values[best]) {
                i
            } else {
                best
            }
        })
        .map(|i| i + 1)
}

impl EarlyStoppingStrategy for PatienceStopping {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        // Read through burn's store: the logger answers from the finished epochs, and the
        // store's queue guarantees this epoch's figures have arrived.
        let values: Vec<f64> = (1..=epoch)
            .map_while(|e| store.find_metric(self.metric_name(), e, Aggregate::Mean, &Split::Valid))
            .collect();
        self.stop_after(&values) == Some(epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_counts_epochs_without_improvement() {
        let stop = |metric, patience, values: &[f64]| {
            PatienceStopping {
                rule: EarlyStopping { metric, patience },
            }
            .stop_after(values)
        };
        let loss = [0.5, 0.4, 0.45, 0.41, 0.39, 0.5];
        assert_eq!(stop(StopMetric::TestLoss, 1, &loss), Some(3));
        assert_eq!(stop(StopMetric::TestLoss, 2, &loss), Some(4));
        assert_eq!(stop(StopMetric::TestLoss, 3, &loss), None);
        let accuracy = [80.0, 84.0, 83.0, 82.0];
        assert_eq!(stop(StopMetric::TestAccuracy, 2, &accuracy), Some(4));
        assert_eq!(stop(StopMetric::TestAccuracy, 1, &[80.0]), None);
        assert_eq!(stop(StopMetric::ValidationAccuracy, 2, &accuracy), Some(4));
    }

    #[test]
    fn best_epoch_is_the_first_best_by_the_metric() {
        let epochs: Vec<EpochMetrics> = [(0.5, 80.0), (0.4, 84.0), (0.45, 84.0), (0.38, 83.0)]
            .iter()
            .enumerate()
            .map(|(i, &(loss, accuracy))| EpochMetrics {
                epoch: i + 1,
                train_loss: 0.0,
                train_accuracy: 0.0,
                held_out: HeldOut::new(true, loss, accuracy),
                seconds: 0.0,
            })
            .collect();
        assert_eq!(best_epoch(StopMetric::ValidationAccuracy, &epochs), Some(2));
        assert_eq!(best_epoch(StopMetric::ValidationLoss, &epochs), Some(4));
        assert_eq!(best_epoch(StopMetric::ValidationLoss, &[]), None);
    }
}
