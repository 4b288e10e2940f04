//! Training and evaluation: E1's echo models (stacked over repeats) and the IMDB classifiers.

pub mod adam;
pub mod echo;
pub mod imdb;
mod loss_curve;
mod metric_names;

pub use loss_curve::{LOSS_WINDOW, LossWindows};
pub(crate) use metric_names::{ACCURACY, LOSS, MetricNames};

/// burn-train's renderers must also serve evaluation runs (`Evaluator`), which attnx never
/// starts: the evaluation half of a renderer, as no-ops, for attnx's two renderers.
macro_rules! no_evaluation_rendering {
    ($renderer:ty) => {
        impl burn::train::logger::EvaluationProgressLogger for $renderer {
            fn start_global_progress(&mut self, _: usize) {}
            fn start_test(&mut self, _: &str, _: usize) {}
            fn update_test_progress(&mut self, _: usize) {}
            fn end_test(&mut self) {}
            fn end_global_progress(&mut self) {}
            fn log_event_evaluation(&mut self, _: String) {}
        }

        impl burn::train::renderer::MetricsRendererEvaluation for $renderer {
            fn update_test(
                &mut self,
                _: burn::train::renderer::EvaluationName,
                _: burn::train::renderer::MetricState,
            ) {
            }

            fn on_test_end(
                &mut self,
                _: Option<burn::train::LearnerSummary>,
            ) -> Result<(), Box<dyn core::error::Error>> {
                Ok(())
            }
        }
    };
}
pub(crate) use no_evaluation_rendering;

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;

use crate::config::{Corpus, EchoModel, EchoTask, ImdbTask, OptimizerConfig, Study, TextModel};
use crate::data::prepare::ImdbData;
use crate::progress::Progress;

/// Adam as the articles' Keras has it: beta 0.9 / 0.999, epsilon 1e-7 (burn's default is 1e-5);
/// burn's Adam's numbers in one pass per parameter (see [`adam`]).
pub fn keras_adam() -> burn::optim::ModuleOptimizer {
    adam::FusedAdam::new(0.9, 0.999, 1e-7).init()
}

/// What one repeat produced.
#[derive(Debug, Clone)]
pub struct RepeatOutcome {
    pub index: usize,
    pub seed: u64,
    /// The final accuracy on the evaluation data, in percent (echo: exact match of the whole
    /// sequence; IMDB: test accuracy after the last epoch, or of the selected epoch's model).
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    /// Echo: per output position, the evaluation pairs right there.
    pub position_correct: Option<Vec<usize>>,
    /// Mean training loss over each window of [`LOSS_WINDOW`] steps (the last may be shorter).
    pub loss_curve: Vec<f32>,
    /// Per-epoch metrics (IMDB); empty for the echo task.
    pub epochs: Vec<crate::record::EpochMetrics>,
    /// The epoch early stopping ended training after, if it did (IMDB).
    pub stopped_at: Option<usize>,
    /// The epoch whose model was tested, picked on validation (IMDB with a validation split).
    pub selected_epoch: Option<usize>,
    /// A text task's confusion matrix on the test set (`[true][predicted]`).
    pub confusion: Option<Vec<Vec<usize>>>,
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

/// An echo study: its pairs are drawn as training goes.
#[derive(Debug, Clone)]
pub struct EchoStudy {
    pub task: EchoTask,
    pub model: EchoModel,
}

/// An IMDB study with its data set, loaded once and shared by every repeat.
#[derive(Debug, Clone)]
pub struct ImdbStudy {
    pub task: ImdbTask,
    pub model: TextModel,
    pub data: Arc<ImdbData>,
}

impl ImdbStudy {
    /// Reviews a repeat trains on: the training split less the validation reviews.
    pub fn training_reviews(&self) -> usize {
        let reviews = self.data.train.len();
        reviews - self.task.validation_reviews(reviews).unwrap_or(0)
    }
}

/// A config's task and model with the data they train on, ready before any training.
#[derive(Debug, Clone)]
pub enum PreparedStudy {
    Echo(EchoStudy),
    Imdb(ImdbStudy),
}

impl PreparedStudy {
    /// Pairs an echo study with nothing and a classifier's study with `load()`'s data (called
    /// only for classifiers).
    pub fn new<E>(
        study: &Study,
        load: impl FnOnce(&ImdbTask, &Corpus) -> Result<Arc<ImdbData>, E>,
    ) -> Result<Self, E> {
        Ok(match study {
            &Study::Echo { task, model } => PreparedStudy::Echo(EchoStudy { task, model }),
            Study::Imdb {
                task,
                model,
                corpus,
            } => PreparedStudy::Imdb(ImdbStudy {
                task: *task,
                model: *model,
                data: load(task, corpus)?,
            }),
        })
    }

    /// Training steps of one repeat (for progress).
    pub fn steps_per_repeat(&self) -> usize {
        match self {
            PreparedStudy::Echo(s) => s.task.train_steps,
            PreparedStudy::Imdb(s) => s.task.epochs * s.task.batches(s.training_reviews()),
        }
    }

    /// A text task's files and classes.
    pub fn text_data(&self) -> Option<crate::record::TextData> {
        match self {
            PreparedStudy::Echo(_) => None,
            PreparedStudy::Imdb(s) => s.data.text.clone(),
        }
    }

    /// The checksum of the data set's archive, when it came from one.
    pub fn data_checksum(&self) -> Option<String> {
        match self {
            PreparedStudy::Echo(_) => None,
            PreparedStudy::Imdb(s) => s.data.checksum.clone(),
        }
    }
}

/// Where and how a stack trains.
pub struct StackRun<'a> {
    pub device: &'a Device,
    pub progress: &'a Progress,
    /// Names the stack in progress lines.
    pub label: &'a str,
    /// The checkpoint folder of repeat `i` (IMDB repeats checkpoint every epoch).
    pub checkpoint_dir: &'a (dyn Fn(usize) -> PathBuf + Sync),
}

/// Trains and evaluates the repeats `indices` (seeded by `seeds`) of `study`: echo repeats as
/// one stacked model, IMDB repeats one after the other.
pub fn train_stack(
    study: &PreparedStudy,
    optimizer: &OptimizerConfig,
    indices: &[usize],
    seeds: &[u64],
    run: &StackRun<'_>,
) -> anyhow::Result<Vec<RepeatOutcome>> {
    let StackRun {
        device,
        progress,
        label,
        ..
    } = *run;
    match study {
        PreparedStudy::Echo(echo) => {
            let bar = Arc::new(progress.stack(
                label.to_string(),
                study.steps_per_repeat(),
                indices.len(),
            ));
            let shown = bar.clone();
            let on_step: echo::OnStep = Arc::new(move |step, loss| shown.step(step, loss));
            let outcomes = echo::train_echo_stack(echo, optimizer, indices, seeds, device, on_step);
            bar.finish();
            outcomes
        }
        PreparedStudy::Imdb(imdb) => indices
            .iter()
            .zip(seeds)
            .map(|(&index, &seed)| {
                let checkpoints = imdb::RepeatCheckpoints::new((run.checkpoint_dir)(index));
                let outcome =
                    imdb::train_imdb(imdb, optimizer, seed, device, &checkpoints, progress, label)?;
                Ok(RepeatOutcome::of_imdb(index, seed, outcome))
            })
            .collect(),
    }
}

impl RepeatOutcome {
    fn of_imdb(index: usize, seed: u64, outcome: imdb::ImdbOutcome) -> Self {
        let imdb::ImdbOutcome {
            state,
            stopped_at,
            model,
            test_reviews,
            tested,
            confusion,
        } = outcome;
        let (accuracy, correct) = match &tested {
            Some(tested) => (
                100.0 * tested.correct as f64 / test_reviews.max(1) as f64,
                tested.correct,
            ),
            None => {
                let accuracy = state.epochs.last().map_or(0.0, |m| m.held_out.accuracy());
                // burn's accuracy metric gives a percentage; the count it came from is exact.
                let correct = (accuracy * test_reviews as f64 / 100.0).round() as usize;
                (accuracy, correct)
            }
        };
        RepeatOutcome {
            index,
            seed,
            accuracy,
            correct,
            total: test_reviews,
            position_correct: None,
            loss_curve: state.windows.finish().swap_remove(0),
            epochs: state.epochs,
            stopped_at,
            selected_epoch: tested.map(|t| t.epoch),
            confusion,
            train_seconds: state.train_seconds,
            eval_seconds: state.eval_seconds,
            model: TrainedModel::Imdb(model),
        }
    }
}
