//! E1 through burn-train: the stacked echo model as a `TrainStep`, one step per fresh pair of
//! each repeat (burn's `DataLoader` over the step numbers, a batcher drawing from the repeats'
//! own generators), burn's `LossMetric` for the progress bar, and a metric that keeps every
//! repeat's loss for its loss curve (burn's `LossMetric` sees one number per step).

use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::tensor::TensorReadError;
use burn::train::logger::{MetricLogger, TrainingProgressLogger};
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{
    Adaptor, ItemLazy, LossInput, Metric, MetricDefinition, MetricMetadata, MetricName,
    NumericEntry, SerializedEntry,
};
use burn::train::renderer::{MetricState, MetricsRenderer, MetricsRendererTraining};
use burn::train::{InferenceStep, LearnerSummary, TrainOutput, TrainStep};
use rand::rngs::StdRng;

use super::{draw_batch, gumbel_noise, per_repeat_loss};
use crate::config::EchoTask;
use crate::models::echo::EchoModel;
use crate::train::{LOSS, LossWindows, MetricNames};

/// One step: a fresh pair per repeat `[R, 1, T, V]`, and hard attention's Gumbel noise.
#[derive(Debug, Clone)]
pub struct EchoBatch {
    x: Tensor<4>,
    y: Tensor<4>,
    gumbel: Option<Tensor<4>>,
}

/// Draws each step's pairs (and noise) from the repeats' own generators, in step order.
pub struct EchoBatcher {
    pub task: EchoTask,
    pub data: Mutex<Vec<StdRng>>,
    pub noise: Option<Mutex<Vec<StdRng>>>,
}

impl Batcher<usize, EchoBatch> for EchoBatcher {
    fn batch(&self, _steps: Vec<usize>, device: &Device) -> EchoBatch {
        let (x, y, _) = draw_batch(&self.task, &mut self.data.lock().unwrap(), 1, device);
        let gumbel = self
            .noise
            .as_ref()
            .map(|rngs| gumbel_noise(&mut rngs.lock().unwrap(), 1, self.task.n_in, device));
        EchoBatch { x, y, gumbel }
    }
}

/// The loss of each repeat of the stack `[R]`.
pub struct StackLosses {
    losses: Tensor<1>,
}

impl ItemLazy for StackLosses {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.losses.device().flush()?;
        Ok(StackLosses {
            losses: self.losses.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for StackLosses {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.losses.clone())
    }
}

impl Adaptor<RepeatLossesInput> for StackLosses {
    fn adapt(&self) -> RepeatLossesInput {
        RepeatLossesInput {
            losses: self.losses.clone(),
        }
    }
}

impl TrainStep for EchoModel {
    type Input = EchoBatch;
    type Output = StackLosses;

    fn step(&self, batch: EchoBatch) -> TrainOutput<StackLosses> {
        let losses = per_repeat_loss(self.forward_train(batch.x, batch.gumbel), batch.y);
        // Summed, not averaged: each repeat's gradient is then exactly its own.
        let grads = losses.clone().sum().backward();
        TrainOutput::new(self, grads, StackLosses { losses })
    }
}

impl InferenceStep for EchoModel {
    type Input = EchoBatch;
    type Output = StackLosses;

    fn step(&self, batch: EchoBatch) -> StackLosses {
        StackLosses {
            losses: per_repeat_loss(self.forward(batch.x), batch.y),
        }
    }
}

pub struct RepeatLossesInput {
    losses: Tensor<1>,
}

/// Every repeat's loss of a step, kept exactly (as the bits of each f32) for the loss curves.
#[derive(Clone)]
pub struct RepeatLosses;

pub const REPEAT_LOSSES: &str = "Repeat losses";

impl Metric for RepeatLosses {
    type Input = RepeatLossesInput;

    fn name(&self) -> MetricName {
        Arc::new(REPEAT_LOSSES.to_string())
    }

    fn update(
        &mut self,
        input: &RepeatLossesInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let values = input.losses.clone().into_data().convert::<f32>();
        let bits: Vec<String> = values
            .iter::<f32>()
            .map(|v| v.to_bits().to_string())
            .collect();
        Ok(SerializedEntry::new(String::new(), bits.join(",")))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(SerializedEntry::new(String::new(), String::new()))
    }

    fn clear(&mut self) {}
}

/// burn-train's metric logger for a stack: every step's losses into the loss curves.
pub struct CurveLogger {
    pub windows: Arc<Mutex<LossWindows>>,
    names: MetricNames,
}

impl CurveLogger {
    pub fn new(windows: Arc<Mutex<LossWindows>>) -> Self {
        Self {
            windows,
            names: MetricNames::default(),
        }
    }
}

impl MetricLogger for CurveLogger {
    fn log(&mut self, update: MetricsUpdate, _epoch: usize, split: &Split) {
        if *split != Split::Train {
            return;
        }
        for entry in &update.entries {
            if self.names.name(&entry.metric_id) != Some(REPEAT_LOSSES) {
                continue;
            }
            let values: Vec<f32> = entry
                .serialized_entry
                .serialized
                .split(',')
                .filter_map(|bits| bits.parse::<u32>().ok().map(f32::from_bits))
                .collect();
            if !values.is_empty() {
                self.windows.lock().expect("windows lock").push(&values);
            }
        }
    }

    fn read_numeric(&mut self, _: &str, _: usize, _: &Split) -> Result<Vec<NumericEntry>, String> {
        Ok(Vec::new())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.register(definition);
    }

    fn log_epoch_summary(&mut self, _summary: EpochSummary) {}
}

/// Reports (steps done, mean loss of the stack's latest step) to attnx's progress.
pub struct StepRenderer {
    pub on_step: super::OnStep,
    names: MetricNames,
    loss: f32,
}

impl StepRenderer {
    pub fn new(on_step: super::OnStep) -> Self {
        Self {
            on_step,
            names: MetricNames::default(),
            loss: f32::NAN,
        }
    }
}

impl TrainingProgressLogger for StepRenderer {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _: usize) {}
    fn start_split(&mut self, _: &str, _: usize) {}
    fn update_split(&mut self, items_processed: usize) {
        (self.on_step)(items_processed, self.loss);
    }
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

impl MetricsRendererTraining for StepRenderer {
    fn update_train(&mut self, state: MetricState) {
        if let MetricState::Numeric(
            entry,
            Some(NumericEntry::Aggregated {
                aggregated_value, ..
            }),
        ) = state
            && self.names.name(&entry.metric_id) == Some(LOSS)
        {
            self.loss = aggregated_value as f32;
        }
    }

    fn update_valid(&mut self, _: MetricState) {}

    fn on_train_end(
        &mut self,
        _: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

crate::train::no_evaluation_rendering!(StepRenderer);

impl MetricsRenderer for StepRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.register(definition);
    }
}
