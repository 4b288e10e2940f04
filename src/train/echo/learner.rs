//! E1 through burn-train: the stacked echo model as a `TrainStep`, one step per fresh pair of
//! each repeat (burn's `DataLoader` over the step numbers, a batcher drawing from the repeats'
//! own generators), burn's `LossMetric` for the progress bar, and burn-train's training loop as
//! a custom strategy ([`EchoStrategy`]) that keeps every repeat's loss for its loss curve.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::train::logger::TrainingProgressLogger;
use burn::train::metric::{Adaptor, ItemLazy, LossInput, MetricDefinition, NumericEntry};
use burn::train::renderer::{MetricState, MetricsRenderer, MetricsRendererTraining};
use burn::train::{
    EventProcessorTraining, InferenceStep, Learner, LearnerEvent, LearnerSummary,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainOutput,
    TrainStep, TrainingComponents, TrainingItem, ValidLoader,
};
use rand::rngs::StdRng;

use super::{draw_batch, gumbel_noise, per_repeat_loss};
use crate::config::EchoTask;
use crate::models::echo::EchoModel;
use crate::train::{LOSS, LOSS_WINDOW, LossWindows, MetricNames};

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

/// How often the loop hands a step to burn-train's event processor (the progress bar).
const REPORT_EVERY: Duration = Duration::from_millis(50);

/// burn-train's single-device training loop (its `SingleDeviceTrainingStrategy`: `train_step`,
/// `lr_step`, `optimizer_step`, the interrupter, the same events), for E1's one epoch of
/// one-pair steps, with one change: it records every step's losses itself and hands burn-train's
/// event processor a step only every [`REPORT_EVERY`] (and the last). The default loop sends
/// every step to the processor's thread, which wakes it and its metric store's thread: at
/// E1's sub-millisecond steps, with both cores training, that made E1's comparison measurably
/// slower (CHANGELOG.md, 0.9.2, has the rounds).
pub struct EchoStrategy {
    pub device: Device,
    /// Every step's losses, for the loss curves.
    pub windows: Arc<Mutex<LossWindows>>,
}

impl EchoStrategy {
    /// Reads the pending steps' losses (one read for many steps: on a GPU each read waits for
    /// the device) into the loss curves.
    fn record(&self, pending: &mut Vec<Tensor<1>>) {
        if pending.is_empty() {
            return;
        }
        let repeats = pending[0].dims()[0];
        let values = Tensor::cat(std::mem::take(pending), 0)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 losses");
        let mut windows = self.windows.lock().expect("windows lock");
        for step in values.chunks_exact(repeats) {
            windows.push(step);
        }
    }
}

impl SupervisedLearningStrategy<EchoModel> for EchoStrategy {
    fn fit(
        &self,
        components: TrainingComponents<EchoModel>,
        mut learner: Learner<EchoModel>,
        train: TrainLoader<EchoModel>,
        _: ValidLoader<EchoModel>,
        epoch: usize,
    ) -> (EchoModel, SupervisedTrainingEventProcessor<EchoModel>) {
        let train = train.to_device(&self.device);
        learner.fork(&self.device);
        let (mut processor, interrupter) = (components.event_processor, components.interrupter);
        interrupter.fail_on_error(processor.process_train(LearnerEvent::StartSplit {
            epoch_number: epoch,
            total_items: train.num_items(),
        }));
        let mut steps = train.iter();
        let (mut iteration, mut reported) = (0, Instant::now());
        let mut pending = Vec::with_capacity(LOSS_WINDOW);
        while let Some(batch) = steps.next() {
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    interrupter.fail(error);
                    break;
                }
            };
            iteration += 1;
            let progress = steps.progress();
            let output = learner.train_step(batch);
            learner.lr_step();
            learner.optimizer_step(output.grads);
            pending.push(output.item.losses.clone().without_autodiff());
            if pending.len() == LOSS_WINDOW {
                self.record(&mut pending);
            }
            if progress.is_completed() || reported.elapsed() >= REPORT_EVERY {
                reported = Instant::now();
                let lr = Some(learner.lr_current());
                let item = TrainingItem::new(output.item, progress, Some(iteration), lr);
                interrupter
                    .fail_on_error(processor.process_train(LearnerEvent::ProcessedItem(item)));
            }
            if interrupter.should_stop() {
                break;
            }
        }
        self.record(&mut pending);
        interrupter.fail_on_error(processor.process_train(LearnerEvent::EndSplit(epoch)));
        interrupter.fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch)));
        (learner.model(), processor)
    }
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

#[cfg(test)]
mod tests {
    use super::super::{build_model, evaluate, train_echo_stack};
    use super::*;
    use crate::config::{self, BaselineModel, OptimizerConfig};
    use crate::rng::{self, Stream};
    use crate::train::{EchoStudy, keras_adam};

    /// burn-train with [`EchoStrategy`] trains a stack as a plain loop over the model's
    /// `TrainStep` and the optimizer does, step for step (the same loss at every step, the same
    /// final model), and its loss curves keep every step, the last window's 50 included.
    #[test]
    fn the_strategy_trains_as_a_plain_loop_and_keeps_every_steps_loss() {
        let device = Device::flex();
        let task = EchoTask {
            n_in: 5,
            n_out: 2,
            cardinality: 50,
            train_steps: 250,
            eval_samples: 200,
        };
        let model = config::EchoModel::Baseline(BaselineModel {
            hidden: 8,
            recurrent_activation: Default::default(),
        });
        let study = EchoStudy { task, model };
        let (seeds, optimizer) = ([3, 4], OptimizerConfig::default());
        let outcomes = train_echo_stack(
            &study,
            &optimizer,
            &[0, 1],
            &seeds,
            &device,
            Arc::new(|_, _| {}),
        )
        .expect("trains");

        let autodiff = device.clone().autodiff();
        let mut model = build_model(&task, &model, &seeds, &autodiff);
        let batcher = EchoBatcher {
            task,
            data: Mutex::new(
                seeds
                    .iter()
                    .map(|&s| rng::rng(s, Stream::TrainData))
                    .collect(),
            ),
            noise: None,
        };
        let mut adam = keras_adam();
        let mut windows = LossWindows::new(seeds.len());
        for step in 0..task.train_steps {
            let output = TrainStep::step(&model, batcher.batch(vec![step], &autodiff));
            let losses = output.item.losses.clone().into_data().try_into_vec::<f32>();
            windows.push(&losses.expect("f32 losses"));
            model = adam.step(optimizer.lr(), model, output.grads);
        }
        let curves = windows.finish();
        let scores = evaluate(&model, &task, &seeds, task.eval_samples, &device);

        for (r, outcome) in outcomes.iter().enumerate() {
            assert_eq!(outcome.loss_curve.len(), 3, "250 steps in windows of 100");
            assert_eq!(outcome.loss_curve, curves[r], "repeat {r}'s loss curve");
            assert_eq!(
                outcome.correct, scores[r].correct,
                "repeat {r}'s trained model"
            );
            assert_eq!(
                outcome.position_correct.as_ref(),
                Some(&scores[r].positions),
                "repeat {r}'s per-position counts"
            );
        }
        assert_ne!(curves[0], curves[1], "the repeats train on their own data");
    }
}
