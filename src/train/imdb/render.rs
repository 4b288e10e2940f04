//! burn-train's renderer for attnx: the repeat's epochs on attnx's indicatif bars (or plain
//! lines), and the split times for the record. burn's own TUI and CLI renderers are not built.

use std::time::Instant;

use burn::train::LearnerSummary;
use burn::train::logger::TrainingProgressLogger;
use burn::train::metric::{MetricDefinition, NumericEntry};
use burn::train::renderer::{MetricState, MetricsRenderer, MetricsRendererTraining};

use super::history::SharedHistory;
use crate::progress::{Progress, StackProgress};
use crate::train::{LOSS, MetricNames};

pub struct ProgressRenderer {
    pub progress: Progress,
    pub label: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub history: SharedHistory,
    epoch: usize,
    bar: Option<StackProgress>,
    names: MetricNames,
    /// The training loss so far this epoch: sum over reviews, reviews.
    loss: (f64, usize),
    split_started: Instant,
    train_seconds: f64,
}

impl ProgressRenderer {
    pub fn new(
        progress: Progress,
        label: String,
        epochs: usize,
        batch_size: usize,
        history: SharedHistory,
    ) -> Self {
        Self {
            progress,
            label,
            epochs,
            batch_size,
            history,
            epoch: 1,
            bar: None,
            names: MetricNames::default(),
            loss: (0.0, 0),
            split_started: Instant::now(),
            train_seconds: 0.0,
        }
    }
}

impl TrainingProgressLogger for ProgressRenderer {
    fn start(
        &mut self,
        _total: usize,
        starting_epoch: usize,
        _items: Option<usize>,
        _: Option<&str>,
    ) {
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split_started = Instant::now();
        if split == "train" {
            self.loss = (0.0, 0);
            self.bar = Some(self.progress.stack(
                format!("{} epoch {}/{}", self.label, self.epoch, self.epochs),
                total_items.div_ceil(self.batch_size),
                1,
            ));
        }
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            let mean = self.loss.0 / self.loss.1.max(1) as f64;
            bar.step(items_processed.div_ceil(self.batch_size), mean as f32);
        }
    }

    fn end_split(&mut self) {
        let seconds = self.split_started.elapsed().as_secs_f64();
        match self.bar.take() {
            Some(bar) => {
                bar.finish();
                self.train_seconds = seconds;
            }
            None => self
                .history
                .lock()
                .expect("history lock")
                .set_times(self.train_seconds, seconds),
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }

    fn log_event_training(&mut self, _event: String) {}
}

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, state: MetricState) {
        if let MetricState::Numeric(
            entry,
            Some(NumericEntry::Aggregated {
                aggregated_value,
                count,
            }),
        ) = state
            && self.names.name(&entry.metric_id) == Some(LOSS)
        {
            self.loss.0 += aggregated_value * count as f64;
            self.loss.1 += count;
        }
    }

    fn update_valid(&mut self, _state: MetricState) {}

    /// attnx prints its own epoch lines and tables; burn's summary would repeat them.
    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

crate::train::no_evaluation_rendering!(ProgressRenderer);

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.register(definition);
    }
}
