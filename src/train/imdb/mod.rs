//! E2/E3/E4: training an IMDB classifier through burn-train (`Learner` + `SupervisedTraining`,
//! burn's `DataLoader`, loss and accuracy metrics), evaluated on the whole test set after every
//! epoch (or on a validation split carved from the training reviews, the test set then being
//! evaluated once, after training), checkpointed after every epoch. attnx plugs in through burn-train's extension points:
//! the models' [`step`]s, a [`batch`]er with attnx's dropout masks, a metric logger and an
//! early-stopping rule ([`history`]), atomic checkpointers ([`checkpoint`]) and a renderer on
//! attnx's progress bars ([`render`]).

mod batch;
mod checkpoint;
mod history;
mod render;
mod step;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::train::checkpoint::{
    CheckpointingStrategy, ComposedCheckpointingStrategy, KeepLastNCheckpoints,
    MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{InferenceStep, Learner, SupervisedTraining};
use rand::RngExt;

pub use checkpoint::RepeatCheckpoints;
pub use history::RepeatState;

use self::batch::{DropoutMasks, ImdbBatch, ImdbBatcher, Part, ResumedLoader};
use self::checkpoint::RECORDS;
use self::history::{History, HistoryLogger, OnEpoch, PatienceStopping};
use self::render::ProgressRenderer;
use super::ImdbStudy;
use crate::config::{ImdbTask, OptimizerConfig, Output};
use crate::data::prepare::{ImdbData, stratified_split};
use crate::error::InputError;
use crate::models::classifier::TextClassifier;
use crate::progress::Progress;
use crate::rng::{self, Stream};

/// Reviews per forward pass at evaluation (no gradients are kept, so bigger is cheaper).
pub const EVAL_BATCH: usize = 500;

/// Per-review loss `[B]` for the labels `labels`.
pub fn per_review_loss(
    output: Output,
    logits: Tensor<2>,
    labels: &[u8],
    device: &Device,
) -> Tensor<1> {
    let b = labels.len();
    match output {
        // Binary cross-entropy on the logit: -(y log s(z) + (1 - y) log s(-z)).
        Output::Sigmoid => {
            let y: Vec<f32> = labels.iter().map(|&l| f32::from(l)).collect();
            let y = Tensor::<2>::from_data(TensorData::new(y, [b, 1]), device);
            let z = logits;
            let loss = y.clone() * log_sigmoid(z.clone()) + (y.neg() + 1.0) * log_sigmoid(z.neg());
            loss.neg().reshape([b])
        }
        // Categorical cross-entropy over the classes (a unit each).
        Output::Softmax => {
            let k = logits.dims()[1];
            let mut y = vec![0.0f32; k * b];
            for (i, &l) in labels.iter().enumerate() {
                y[k * i + usize::from(l)] = 1.0;
            }
            let y = Tensor::<2>::from_data(TensorData::new(y, [b, k]), device);
            (log_softmax(logits, 1) * y).sum_dim(1).neg().reshape([b])
        }
    }
}

/// Trains one repeat of an IMDB config through burn-train and evaluates it on the held-out split
/// after every epoch: the test set, or with `task.validation_split` the repeat's validation
/// reviews, and then the test set once, on the model of the best validation epoch. Every
/// finished epoch is checkpointed in `checkpoints`; a repeat whose folder holds a complete epoch
/// resumes after it and ends with the record an uninterrupted run gives.
pub fn train_imdb(
    study: &ImdbStudy,
    optimizer_config: &OptimizerConfig,
    seed: u64,
    device: &Device,
    checkpoints: &RepeatCheckpoints,
    progress: &Progress,
    label: &str,
) -> anyhow::Result<ImdbOutcome> {
    let ImdbTask {
        num_words,
        maxlen,
        epochs,
        batch_size,
        ..
    } = study.task;
    crate::fsutil::create_dir_all(&checkpoints.dir)?;
    let resumed = checkpoints.resume_point();
    let (done, state) = resumed.unwrap_or_else(|| (0, RepeatState::default()));
    if done > 0 {
        progress.println(&format!(
            "{label}: resuming after epoch {done} of {epochs} (checkpoint in {})",
            checkpoints.dir.display()
        ));
    }
    // A repeat killed after its stopping epoch was checkpointed stops there again.
    let stopping = study
        .task
        .early_stopping
        .map(|rule| PatienceStopping { rule });
    let last_epoch = stopping
        .as_ref()
        .and_then(|s| s.stop_after(&s.values(&state.epochs)))
        .unwrap_or(epochs);

    let model = TextClassifier::new(
        &study.model,
        num_words,
        maxlen,
        study.data.classes.len(),
        &mut rng::rng(seed, Stream::Init),
        &device.clone().autodiff(),
    );
    let rows = Rows::of(study, seed)?;
    let (train, held_out) = loaders(study, &rows, seed, model.pooled_width(), done);
    let history = History::shared(
        state,
        rows.validation.is_some(),
        epoch_callback(checkpoints, progress, label, epochs),
    );
    let renderer = ProgressRenderer::new(
        progress.clone(),
        label.to_string(),
        epochs,
        batch_size,
        history.clone(),
    );
    let mut training = SupervisedTraining::new(&checkpoints.dir, train, held_out)
        .num_epochs(last_epoch)
        .metrics((LossMetric::new(), AccuracyMetric::new()))
        .with_metric_logger(HistoryLogger::new(history.clone()))
        .renderer(Box::new(renderer))
        .with_application_logger(None)
        .with_custom_checkpointers(
            checkpoints.checkpointer(RECORDS[0]),
            checkpoints.checkpointer(RECORDS[1]),
            checkpoints.checkpointer(RECORDS[2]),
        )
        .with_checkpointing_strategy(checkpointing(&study.task));
    if done > 0 {
        training = training.checkpoint(done);
    }
    if let Some(stopping) = &stopping {
        training = training.early_stopping(stopping.clone());
    }
    let learner = Learner::new(
        model,
        super::keras_adam(),
        ConstantLr::new(optimizer_config.lr()),
    );
    let result = training.launch(learner);
    if let Some(error) = result.error {
        anyhow::bail!("{error}");
    }
    let state = history.lock().expect("history lock").state().clone();
    let mut outcome = finished(state, stopping.as_ref(), epochs, result.model, study)?;
    if rows.validation.is_none() {
        if study.data.text.is_some() {
            confusion_of_last_epoch(&mut outcome, study, device, progress, label);
        }
        return Ok(outcome);
    }
    let outcome = test_selected(outcome, study, checkpoints, device)?;
    if let Some(t) = &outcome.tested {
        progress.println(&format!(
            "{label}: the model of epoch {} (best on validation) on the test set: loss {:.4} acc {:.2}%",
            t.epoch,
            t.loss,
            100.0 * t.correct as f64 / outcome.test_reviews.max(1) as f64
        ));
    }
    Ok(outcome)
}

/// The training reviews a repeat trains on, and those it holds out for validation
/// (`task.validation_split`: stratified by class, drawn from the repeat's seed).
struct Rows {
    train: Vec<usize>,
    validation: Option<Vec<usize>>,
}

impl Rows {
    fn of(study: &ImdbStudy, seed: u64) -> Result<Self, InputError> {
        let reviews = study.data.train.len();
        let held = study
            .task
            .validation_reviews(reviews)
            .map_err(|e| InputError(e.to_string()))?;
        if held == 0 {
            return Ok(Rows {
                train: (0..reviews).collect(),
                validation: None,
            });
        }
        let mut rng = rng::rng(seed, Stream::Validation);
        let classes = study.data.classes.len();
        let (validation, train) =
            stratified_split(&study.data.train.labels, classes, held, &mut rng);
        Ok(Rows {
            train,
            validation: Some(validation),
        })
    }
}

/// Which epochs' records burn-train keeps: the last two, so that a kill while the three
/// records of epoch k are written still leaves a complete epoch k - 1; with a validation split
/// also the best epoch so far, whose model is the one tested.
fn checkpointing(task: &ImdbTask) -> Box<dyn CheckpointingStrategy> {
    let last_two = KeepLastNCheckpoints::new(2);
    if task.validation_split.is_none() {
        return Box::new(last_two);
    }
    let metric = task.selection_metric();
    let best = if metric.is_loss() {
        MetricCheckpointingStrategy::new(
            &LossMetric::new(),
            Aggregate::Mean,
            Direction::Lowest,
            Split::Valid,
        )
    } else {
        MetricCheckpointingStrategy::new(
            &AccuracyMetric::new(),
            Aggregate::Mean,
            Direction::Highest,
            Split::Valid,
        )
    };
    Box::new(
        ComposedCheckpointingStrategy::builder()
            .add(last_two)
            .add(best)
            .build(),
    )
}

/// With a validation split: the model of the best validation epoch (restored from its
/// checkpoint unless it is the last), evaluated once on the test set.
fn test_selected(
    mut outcome: ImdbOutcome,
    study: &ImdbStudy,
    checkpoints: &RepeatCheckpoints,
    device: &Device,
) -> anyhow::Result<ImdbOutcome> {
    let epoch = history::best_epoch(study.task.selection_metric(), &outcome.state.epochs)
        .ok_or_else(|| anyhow::anyhow!("no finished epoch to test"))?;
    if epoch != outcome.state.epochs.len() {
        let record = burn::train::checkpoint::Checkpointer::restore(
            &checkpoints.checkpointer(RECORDS[0]),
            epoch,
        )
        .map_err(|e| anyhow::anyhow!("cannot restore the model of epoch {epoch}: {e}"))?;
        outcome.model = outcome
            .model
            .try_load_record(record)
            .map_err(|e| anyhow::anyhow!("cannot restore the model of epoch {epoch}: {e:?}"))?;
    }
    let started = std::time::Instant::now();
    let evaluation = evaluate(&outcome.model, &study.data, device);
    outcome.state.eval_seconds += started.elapsed().as_secs_f64();
    outcome.tested = Some(TestedEpoch {
        epoch,
        loss: evaluation.loss,
        correct: evaluation.correct,
    });
    if study.data.text.is_some() {
        outcome.confusion = Some(evaluation.confusion);
    }
    Ok(outcome)
}

/// A text task's confusion matrix for the model of the last epoch, from one more pass over the
/// test split (its time counted as evaluation). Its correct predictions are those burn-train
/// counted after that epoch, the same batches through the same step; a difference (which would
/// be a bug, or a GPU's nondeterminism) is said, and the record keeps burn-train's accuracy.
fn confusion_of_last_epoch(
    outcome: &mut ImdbOutcome,
    study: &ImdbStudy,
    device: &Device,
    progress: &Progress,
    label: &str,
) {
    let started = std::time::Instant::now();
    let evaluation = evaluate(&outcome.model, &study.data, device);
    outcome.state.eval_seconds += started.elapsed().as_secs_f64();
    let accuracy = outcome
        .state
        .epochs
        .last()
        .map_or(0.0, |m| m.held_out.accuracy());
    let counted = (accuracy * outcome.test_reviews as f64 / 100.0).round() as usize;
    if evaluation.correct != counted {
        progress.println(&format!(
            "{label}: warning: the test pass for the confusion matrix found {} correct, burn-train's last epoch {counted}",
            evaluation.correct
        ));
    }
    outcome.confusion = Some(evaluation.confusion);
}

/// The outcome of a repeat whose training ended: every epoch, or up to the one early stopping
/// names (anything shorter is a failure).
fn finished(
    state: RepeatState,
    stopping: Option<&PatienceStopping>,
    epochs: usize,
    model: TextClassifier,
    study: &ImdbStudy,
) -> anyhow::Result<ImdbOutcome> {
    let stopped_at = stopping.and_then(|s| s.stop_after(&s.values(&state.epochs)));
    let expected = stopped_at.unwrap_or(epochs);
    if state.epochs.len() != expected {
        anyhow::bail!(
            "training ended after {} of {expected} epochs",
            state.epochs.len()
        );
    }
    Ok(ImdbOutcome {
        state,
        stopped_at,
        model,
        test_reviews: study.data.test.len(),
        tested: None,
        confusion: None,
    })
}

/// burn's loaders over the tokenized data: the training rows in shuffled batches with attnx's
/// dropout masks (advanced past `done` finished epochs), the validation rows or else the test
/// reviews in order.
fn loaders(
    study: &ImdbStudy,
    rows: &Rows,
    seed: u64,
    pooled_width: usize,
    done: usize,
) -> (
    Arc<dyn DataLoader<ImdbBatch>>,
    Arc<dyn DataLoader<ImdbBatch>>,
) {
    let (_, dropout) = study.model.head();
    let batches = study.task.batches(rows.train.len());
    let masks = Arc::new(DropoutMasks {
        rate: dropout,
        width: pooled_width,
        seed,
        batches: AtomicU64::new((done * batches) as u64),
    });
    let train = Arc::new(ResumedLoader {
        inner: DataLoaderBuilder::new(ImdbBatcher {
            data: study.data.clone(),
            part: Part::Train,
            dropout: Some(masks),
        })
        .batch_size(study.task.batch_size)
        .shuffle(rng::rng(seed, Stream::TrainData).random())
        .build(InMemDataset::new(rows.train.clone())),
        epochs: done,
    });
    let (part, held_out) = match &rows.validation {
        Some(validation) => (Part::Train, validation.clone()),
        None => (Part::Test, (0..study.data.test.len()).collect()),
    };
    let held_out = DataLoaderBuilder::new(ImdbBatcher::evaluation(study.data.clone(), part))
        .batch_size(EVAL_BATCH)
        .build(InMemDataset::new(held_out));
    (train, held_out)
}

/// What a finished IMDB repeat hands the runner.
pub struct ImdbOutcome {
    pub state: RepeatState,
    /// The epoch early stopping ended training after, if it did.
    pub stopped_at: Option<usize>,
    /// The model of the last epoch, or of the tested epoch.
    pub model: TextClassifier,
    pub test_reviews: usize,
    /// With a validation split: the epoch whose model was evaluated on the test set, and how.
    pub tested: Option<TestedEpoch>,
    /// A text task's confusion matrix on the test set, for the model the accuracy is of.
    pub confusion: Option<Vec<Vec<usize>>>,
}

/// The one evaluation on the test set of a repeat with a validation split.
pub struct TestedEpoch {
    pub epoch: usize,
    pub loss: f64,
    pub correct: usize,
}

/// After each epoch: the checkpoint's state file, and one line of figures.
fn epoch_callback(
    checkpoints: &RepeatCheckpoints,
    progress: &Progress,
    label: &str,
    epochs: usize,
) -> OnEpoch {
    let checkpoints = RepeatCheckpoints::new(checkpoints.dir.clone());
    let progress = progress.clone();
    let label = label.to_string();
    Box::new(move |state: &RepeatState| {
        if let Err(e) = checkpoints.save_state(state) {
            progress.println(&format!("{label}: cannot write a checkpoint: {e:#}"));
        }
        if let Some(m) = state.epochs.last() {
            progress.println(&format!(
                "{label} epoch {}/{epochs}: loss {:.4} acc {:.2}%  {} loss {:.4} acc {:.2}%  ({:.1} s)",
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.held_out.split(),
                m.held_out.loss(),
                m.held_out.accuracy(),
                m.seconds
            ));
        }
    })
}

/// A model's figures on the whole test split.
pub struct Evaluation {
    pub loss: f64,
    pub correct: usize,
    /// `confusion[true][predicted]`, classes by id.
    pub confusion: Vec<Vec<usize>>,
}

/// The model on the whole test split, without dropout: the same batches and the same step as
/// burn-train's validation (for `attnx attention`'s check that a saved model reproduces its
/// record, and a text task's confusion matrix).
pub fn evaluate(model: &TextClassifier, data: &Arc<ImdbData>, device: &Device) -> Evaluation {
    let batcher = ImdbBatcher::evaluation(data.clone(), Part::Test);
    let rows: Vec<usize> = (0..data.test.len()).collect();
    let k = data.classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut loss_sum = 0.0f64;
    for chunk in rows.chunks(EVAL_BATCH) {
        let out = InferenceStep::step(model, batcher.batch(chunk.to_vec(), device));
        loss_sum += f64::from(out.loss.sum().into_scalar::<f32>());
        let predicted = out.output.argmax(1).reshape([chunk.len()]);
        let predicted = predicted.into_data().convert::<i64>().try_into_vec::<i64>();
        let predicted = predicted.expect("argmax gives integers");
        for (&row, class) in chunk.iter().zip(predicted) {
            confusion[usize::from(data.test.labels[row])][class as usize] += 1;
        }
    }
    let correct = (0..k).map(|c| confusion[c][c]).sum();
    Evaluation {
        loss: loss_sum / rows.len() as f64,
        correct,
        confusion,
    }
}
