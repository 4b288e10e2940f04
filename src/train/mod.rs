//! Training and evaluation: E1's echo models (stacked over repeats) and the IMDB classifiers.

pub mod echo;
pub mod imdb;

use std::sync::Arc;

use burn::tensor::Device;

use crate::config::{ExperimentConfig, TaskConfig};
use crate::data::prepare::ImdbData;
use crate::progress::Progress;

/// Adam as the articles' Keras has it: beta 0.9 / 0.999, epsilon 1e-7 (burn's default is 1e-5).
pub fn keras_adam() -> burn::optim::ModuleOptimizer {
    burn::optim::AdamConfig::new().with_epsilon(1e-7).init()
}

/// Steps per point of the recorded loss curve.
pub const LOSS_WINDOW: usize = 100;

/// What one repeat produced.
#[derive(Debug, Clone)]
pub struct RepeatOutcome {
    pub index: usize,
    pub seed: u64,
    /// The final accuracy on the evaluation data, in percent (echo: exact match of the whole
    /// sequence; IMDB: test accuracy after the last epoch).
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    /// Mean training loss over each window of [`LOSS_WINDOW`] steps (the last may be shorter).
    pub loss_curve: Vec<f32>,
    /// Per-epoch metrics (IMDB); empty for the echo task.
    pub epochs: Vec<crate::record::EpochMetrics>,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// The trained model of this repeat alone (without autodiff), to be saved.
    pub model: TrainedModel,
}

/// A repeat's trained weights.
#[allow(clippy::large_enum_variant)] // one per repeat, moved out once
#[derive(Debug, Clone)]
pub enum TrainedModel {
    /// An echo model with a stack of one.
    Echo(crate::models::echo::EchoModel),
    Imdb(crate::models::classifier::TextClassifier),
    /// Taken (saved or dropped) already.
    None,
}

impl TrainedModel {
    /// Writes the weights (burnpack) to `path`, as it is: [`crate::store::ResultStore`] makes
    /// the write atomic.
    pub fn write(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use burn::module::Module;
        let written = match self {
            TrainedModel::Echo(m) => m.clone().save_file(path),
            TrainedModel::Imdb(m) => m.clone().save_weights(path),
            TrainedModel::None => return Ok(()),
        };
        written.map_err(|e| anyhow::anyhow!("{}", crate::models::record_error(&e)))
    }
}

/// A task's data, prepared once before any training.
#[derive(Debug, Clone)]
pub enum TaskData {
    /// Echo pairs are drawn as training goes.
    Echo,
    Imdb(Arc<ImdbData>),
}

/// Training steps of one repeat (for progress).
pub fn steps_per_repeat(config: &ExperimentConfig, data: &TaskData) -> usize {
    match (&config.task, data) {
        (TaskConfig::Echo(crate::config::EchoTask { train_steps, .. }), _) => *train_steps,
        (
            TaskConfig::Imdb(crate::config::ImdbTask {
                epochs, batch_size, ..
            }),
            TaskData::Imdb(data),
        ) => epochs * data.train.len().div_ceil(*batch_size),
        (TaskConfig::Imdb(_), TaskData::Echo) => 0,
    }
}

/// Trains and evaluates the repeats `indices` (seeded by `seeds`) of `config` on `device`:
/// echo repeats as one stacked model, IMDB repeats one after the other.
pub fn train_stack(
    config: &ExperimentConfig,
    data: &TaskData,
    indices: &[usize],
    seeds: &[u64],
    device: &Device,
    progress: &Progress,
    label: &str,
) -> Vec<RepeatOutcome> {
    match data {
        TaskData::Echo => {
            let bar = progress.stack(
                label.to_string(),
                steps_per_repeat(config, data),
                indices.len(),
            );
            let outcomes = echo::train_echo_stack(config, indices, seeds, device, &|step, loss| {
                bar.step(step, loss)
            });
            bar.finish();
            outcomes
        }
        TaskData::Imdb(data) => indices
            .iter()
            .zip(seeds)
            .map(|(&index, &seed)| {
                imdb::train_imdb(config, data, index, seed, device, progress, label)
            })
            .collect(),
    }
}
