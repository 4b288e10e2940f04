//! What burn-train's per-step machinery would cost E1: the same batch-1 echo training (one
//! repeat, the attention model, fresh pairs each step) through attnx's own loop and through
//! burn-train's `Learner` + `SupervisedTraining` with a `DataLoader` and `LossMetric`, timed
//! side by side, alternating, on flex.
//!
//! `cargo run --release --example echo_loops -- [STEPS] [ROUNDS]` (defaults 2000 and 3).

use std::sync::Mutex;
use std::time::Instant;

use attnx::config::{AttentionModel, EchoModel as EchoModelConfig, EchoTask, OptimizerConfig};
use attnx::models::echo::EchoModel;
use attnx::rng::{self, Stream};
use attnx::train::echo::{build_model, per_repeat_loss, train_echo_stack};
use attnx::train::{EchoStudy, keras_adam};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::Module;
use burn::prelude::*;
use burn::train::logger::{EvaluationProgressLogger, InMemoryMetricLogger, TrainingProgressLogger};
use burn::train::metric::{LossMetric, MetricDefinition};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{
    InferenceStep, Learner, LearnerSummary, RegressionOutput, SupervisedTraining, TrainOutput,
    TrainStep,
};
use rand::rngs::StdRng;

/// E1's model as a burn-train model (a local type, so that burn-train's traits can be
/// implemented for it).
#[derive(Module, Debug)]
struct Echo {
    inner: EchoModel,
}

#[derive(Debug, Clone)]
struct Pair {
    x: Tensor<4>,
    y: Tensor<4>,
}

/// One fresh pair per step, from the repeat's training generator (as attnx's loop draws them).
struct PairBatcher {
    task: EchoTask,
    rng: Mutex<StdRng>,
}

impl Batcher<usize, Pair> for PairBatcher {
    fn batch(&self, _items: Vec<usize>, device: &Device) -> Pair {
        let pair = self.task.draw(&mut self.rng.lock().unwrap());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        self.task.one_hot_into(&pair.input, &mut x);
        self.task.one_hot_into(&pair.target, &mut y);
        let shape = [1, 1, self.task.n_in, self.task.cardinality];
        Pair {
            x: Tensor::from_data(TensorData::new(x, shape), device),
            y: Tensor::from_data(TensorData::new(y, shape), device),
        }
    }
}

impl Echo {
    fn output(&self, pair: Pair) -> RegressionOutput {
        let loss = per_repeat_loss(self.inner.forward_train(pair.x, None), pair.y); // [1]
        let shown = loss.clone().reshape([1, 1]);
        RegressionOutput::new(loss, shown.clone(), shown.detach())
    }
}

impl TrainStep for Echo {
    type Input = Pair;
    type Output = RegressionOutput;

    fn step(&self, pair: Pair) -> TrainOutput<RegressionOutput> {
        let output = self.output(pair);
        let grads = output.loss.clone().sum().backward();
        TrainOutput::new(self, grads, output)
    }
}

impl InferenceStep for Echo {
    type Input = Pair;
    type Output = RegressionOutput;

    fn step(&self, pair: Pair) -> RegressionOutput {
        self.output(pair)
    }
}

/// Draws nothing: the timing is of training, not of a terminal.
struct Silent;

impl TrainingProgressLogger for Silent {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _: usize) {}
    fn start_split(&mut self, _: &str, _: usize) {}
    fn update_split(&mut self, _: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _: String) {}
}

impl EvaluationProgressLogger for Silent {
    fn start_global_progress(&mut self, _: usize) {}
    fn start_test(&mut self, _: &str, _: usize) {}
    fn update_test_progress(&mut self, _: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _: String) {}
}

impl MetricsRendererTraining for Silent {
    fn update_train(&mut self, _: MetricState) {}
    fn update_valid(&mut self, _: MetricState) {}
    fn on_train_end(
        &mut self,
        _: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for Silent {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
}

impl MetricsRenderer for Silent {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _: MetricDefinition) {}
}

fn task(steps: usize) -> EchoTask {
    EchoTask {
        n_in: 5,
        n_out: 2,
        cardinality: 50,
        train_steps: steps,
        eval_samples: 1,
    }
}

fn model_config() -> EchoModelConfig {
    EchoModelConfig::Attention(AttentionModel {
        hidden: 150,
        score: Default::default(),
        attention: Default::default(),
        temperature: None,
    })
}

fn attnx_loop(steps: usize, device: &Device) -> f64 {
    let study = EchoStudy {
        task: task(steps),
        model: model_config(),
    };
    let started = Instant::now();
    train_echo_stack(
        &study,
        &OptimizerConfig::default(),
        &[0],
        &[7],
        device,
        &|_, _| {},
    );
    started.elapsed().as_secs_f64()
}

fn burn_train(steps: usize, device: &Device) -> f64 {
    let task = task(steps);
    let batcher = |stream| PairBatcher {
        task,
        rng: Mutex::new(rng::rng(7, stream)),
    };
    let train = DataLoaderBuilder::new(batcher(Stream::TrainData))
        .batch_size(1)
        .build(InMemDataset::new((0..steps).collect()));
    let valid = DataLoaderBuilder::new(batcher(Stream::EvalData))
        .batch_size(1)
        .build(InMemDataset::new(vec![0]));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let model = Echo {
        inner: build_model(&task, &model_config(), &[7], &device.clone().autodiff()),
    };
    let result = SupervisedTraining::new(dir.path(), train, valid)
        .num_epochs(1)
        .metric_train_numeric(LossMetric::new())
        .with_metric_logger(InMemoryMetricLogger::new())
        .renderer(Box::new(Silent))
        .with_application_logger(None)
        .launch(Learner::new(model, keras_adam(), ConstantLr::new(1e-3)));
    assert!(result.error.is_none());
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let steps = args.first().copied().unwrap_or(2000);
    let rounds = args.get(1).copied().unwrap_or(3);
    let device = Device::flex();
    attnx_loop(50, &device);
    burn_train(50, &device);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        ours.push(attnx_loop(steps, &device));
        theirs.push(burn_train(steps, &device));
        println!(
            "round {round}: attnx loop {:.2} ms/step, burn-train {:.2} ms/step",
            1e3 * ours[round - 1] / steps as f64,
            1e3 * theirs[round - 1] / steps as f64
        );
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "best of {rounds}: burn-train / attnx loop = {:.3}x ({steps} steps, E1 attention, flex)",
        best(&theirs) / best(&ours)
    );
}
