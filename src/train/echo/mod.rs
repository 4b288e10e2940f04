//! E1: training and evaluation of a stack of echo repeats (see [`crate::models::stacked`]),
//! trained through burn-train ([`learner`]).

mod learner;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::constant::ConstantLr;
use burn::prelude::*;
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};
use rand::RngExt;
use rand::rngs::StdRng;

use super::EchoStudy;
use super::{LossWindows, RepeatOutcome, TrainedModel};
use crate::config::{self, Attending, EchoTask, OptimizerConfig};
use crate::data::echo::EchoPair;
use crate::kernels::cross_entropy::cross_entropy;
use crate::models::echo::{AttentionModel, BaselineEncoderDecoder, DecoderVariant, EchoModel};
use crate::models::stacked::TakeRepeat;
use crate::rng::{self, Stream};

/// Evaluation batch per repeat: large enough to amortise per-op overhead, small enough to
/// keep memory flat however many pairs are evaluated.
const EVAL_BATCH: usize = 500;

/// Called as training goes: (steps done, mean loss over the stack's latest step).
pub type OnStep = Arc<dyn Fn(usize, f32) + Send + Sync>;

/// Builds the model with one slice per repeat seed, initialised from those seeds.
pub fn build_model(
    task: &EchoTask,
    model: &config::EchoModel,
    seeds: &[u64],
    device: &Device,
) -> EchoModel {
    let mut rngs: Vec<StdRng> = seeds.iter().map(|&s| rng::rng(s, Stream::Init)).collect();
    let features = task.cardinality;
    match *model {
        config::EchoModel::Baseline(config::BaselineModel {
            hidden,
            recurrent_activation,
        }) => EchoModel::Baseline(BaselineEncoderDecoder::new(
            &mut rngs,
            features,
            hidden,
            recurrent_activation,
            device,
        )),
        config::EchoModel::Attention(config::AttentionModel {
            hidden,
            score,
            attention,
            temperature,
            recurrent_activation,
            decoder_init,
        }) => {
            let variant = DecoderVariant {
                score,
                hard: (attention == Attending::Hard).then(|| temperature.unwrap_or(1.0)),
                init: decoder_init,
            };
            EchoModel::Attention(AttentionModel::new(
                &mut rngs,
                features,
                hidden,
                variant,
                recurrent_activation,
                device,
            ))
        }
    }
}

/// One batch of `batch` pairs per repeat, each drawn from its repeat's generator: see
/// [`one_hot_batch`].
fn draw_batch(
    task: &EchoTask,
    rngs: &mut [StdRng],
    batch: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Vec<Vec<usize>>) {
    let pairs: Vec<Vec<EchoPair>> = rngs
        .iter_mut()
        .map(|rng| (0..batch).map(|_| task.draw(rng)).collect())
        .collect();
    one_hot_batch(task, &pairs, device)
}

/// The pairs of each repeat (`pairs[r]`, all of one length `B`) as one-hot inputs and targets
/// `[R, B, T, V]`, with the targets' values.
fn one_hot_batch(
    task: &EchoTask,
    pairs: &[Vec<EchoPair>],
    device: &Device,
) -> (Tensor<4>, Tensor<4>, Vec<Vec<usize>>) {
    let (r, b, t, v) = (pairs.len(), pairs[0].len(), task.n_in, task.cardinality);
    let mut inputs = Vec::with_capacity(r * b * t * v);
    let mut targets = Vec::with_capacity(r * b * t * v);
    let mut target_values = Vec::with_capacity(r * b);
    for pair in pairs.iter().flatten() {
        task.one_hot_into(&pair.input, &mut inputs);
        task.one_hot_into(&pair.target, &mut targets);
        target_values.push(pair.target.clone());
    }
    let shape = [r, b, t, v];
    (
        Tensor::from_data(TensorData::new(inputs, shape), device),
        Tensor::from_data(TensorData::new(targets, shape), device),
        target_values,
    )
}

/// Standard Gumbel noise `-ln(-ln u)`, `[R, B, T, T]`, one block per repeat from its generator.
fn gumbel_noise(rngs: &mut [StdRng], batch: usize, t: usize, device: &Device) -> Tensor<4> {
    let mut noise = Vec::with_capacity(rngs.len() * batch * t * t);
    for rng in rngs.iter_mut() {
        for _ in 0..batch * t * t {
            // u in (0, 1): `random` gives [0, 1); 0 would give an infinite draw.
            let mut u = rng.random::<f64>();
            while u == 0.0 {
                u = rng.random::<f64>();
            }
            noise.push(-(-u.ln()).ln() as f32);
        }
    }
    Tensor::from_data(TensorData::new(noise, [rngs.len(), batch, t, t]), device)
}

/// Categorical cross-entropy of each repeat, averaged over its batch and output steps: `[R]`.
///
/// On the CPU backends one op ([`cross_entropy`]), whose sums do not depend on the CPU's vector
/// width (burn-flex's `log_softmax` does); on a GPU burn's ops.
pub fn per_repeat_loss(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let [r, b, t, v] = logits.dims();
    cross_entropy(
        logits.reshape([r, b * t, v]),
        targets.reshape([r, b * t, v]),
    )
}

/// Trains the repeats `indices` of `study` (seeded by `seeds`) as one stacked model on
/// `device` through burn-train, then evaluates each repeat on its own fresh pairs.
pub fn train_echo_stack(
    study: &EchoStudy,
    optimizer_config: &OptimizerConfig,
    indices: &[usize],
    seeds: &[u64],
    device: &Device,
    on_step: OnStep,
) -> anyhow::Result<Vec<RepeatOutcome>> {
    let task = study.task;
    let EchoTask {
        train_steps,
        eval_samples,
        ..
    } = task;
    let model = build_model(&task, &study.model, seeds, &device.clone().autodiff());
    let rngs = |stream| {
        seeds
            .iter()
            .map(|&s| rng::rng(s, stream))
            .collect::<Vec<_>>()
    };
    // Hard attention's Gumbel noise comes from each repeat's own generator (soft models draw
    // none, so their data and results do not change).
    let batcher = learner::EchoBatcher {
        task,
        data: Mutex::new(rngs(Stream::TrainData)),
        noise: model.is_hard().then(|| Mutex::new(rngs(Stream::Dropout))),
    };
    let steps = DataLoaderBuilder::new(batcher)
        .batch_size(1)
        .build(InMemDataset::new((0..train_steps).collect()));
    // Evaluation draws its own pairs after training (exact match of whole sequences), so
    // burn-train's validation split is empty.
    let none = DataLoaderBuilder::new(learner::EchoBatcher {
        task,
        data: Mutex::new(Vec::new()),
        noise: None,
    })
    .batch_size(1)
    .build(InMemDataset::new(Vec::new()));

    let windows = Arc::new(Mutex::new(LossWindows::new(seeds.len())));
    let scratch = tempfile::tempdir()?;
    let started = Instant::now();
    let result = SupervisedTraining::new(scratch.path(), steps, none)
        .num_epochs(1)
        .metric_train_numeric(LossMetric::new())
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(learner::EchoStrategy {
            device: device.clone().autodiff(),
            windows: windows.clone(),
        })))
        .renderer(Box::new(learner::StepRenderer::new(on_step)))
        .with_application_logger(None)
        .launch(Learner::new(
            model,
            super::keras_adam(),
            ConstantLr::new(optimizer_config.lr()),
        ));
    if let Some(error) = result.error {
        anyhow::bail!("{error}");
    }
    let train_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let model = result.model;
    let scores = evaluate(&model, &task, seeds, eval_samples, device);
    let eval_seconds = started.elapsed().as_secs_f64();

    let curves = windows.lock().expect("windows lock").clone().finish();
    let points = train_steps.div_ceil(super::LOSS_WINDOW);
    if curves.iter().any(|c| c.len() != points) {
        anyhow::bail!("the loss curve missed steps ({points} points expected)");
    }
    let trained = Trained {
        model: &model,
        curves,
        scores,
        train_seconds,
        eval_seconds,
    };
    Ok(trained.outcomes(indices, seeds, eval_samples))
}

/// A trained and evaluated stack, before it is split into its repeats.
struct Trained<'a> {
    model: &'a EchoModel,
    curves: Vec<Vec<f32>>,
    scores: Vec<EchoScore>,
    train_seconds: f64,
    eval_seconds: f64,
}

impl Trained<'_> {
    /// One outcome per repeat, each with its own slice of the stacked model.
    fn outcomes(self, indices: &[usize], seeds: &[u64], eval_samples: usize) -> Vec<RepeatOutcome> {
        let Trained {
            model,
            curves,
            scores,
            train_seconds,
            eval_seconds,
        } = self;
        indices
            .iter()
            .zip(seeds)
            .zip(curves)
            .zip(scores)
            .enumerate()
            .map(
                |(r, (((&index, &seed), loss_curve), score))| RepeatOutcome {
                    index,
                    seed,
                    accuracy: 100.0 * score.correct as f64 / eval_samples as f64,
                    correct: score.correct,
                    position_correct: Some(score.positions),
                    total: eval_samples,
                    loss_curve,
                    epochs: Vec::new(),
                    stopped_at: None,
                    selected_epoch: None,
                    confusion: None,
                    // The stack trains its repeats together; each is charged an equal share.
                    train_seconds: train_seconds / seeds.len() as f64,
                    eval_seconds: eval_seconds / seeds.len() as f64,
                    model: TrainedModel::Echo(model.clone().map(&mut TakeRepeat(r))),
                },
            )
            .collect()
    }
}

/// The pairs the evaluation of the repeat seeded `seed` draws, in its order: [`evaluate`] takes
/// them from here, batch after batch, and `attnx attention` shows the first ones.
pub fn evaluation_pairs(task: &EchoTask, seed: u64) -> impl Iterator<Item = EchoPair> + use<> {
    let (task, mut rng) = (*task, rng::rng(seed, Stream::EvalData));
    std::iter::repeat_with(move || task.draw(&mut rng))
}

/// What one repeat's evaluation counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoScore {
    /// The pairs whose whole argmax sequence equals the target (exact match).
    pub correct: usize,
    /// Per output position, the pairs whose argmax there equals the target's value: where
    /// the sequence goes wrong, which exact match hides.
    pub positions: Vec<usize>,
}

impl EchoScore {
    /// Nothing counted yet, for sequences of `length`.
    fn new(length: usize) -> Self {
        Self {
            correct: 0,
            positions: vec![0; length],
        }
    }

    /// Counts one pair: its argmax sequence `decoded` against its `target`.
    fn count(&mut self, decoded: &[usize], target: &[usize]) {
        for (position, (got, want)) in decoded.iter().zip(target).enumerate() {
            self.positions[position] += usize::from(got == want);
        }
        self.correct += usize::from(decoded == target);
    }
}

/// Scores, per repeat, the argmax sequences of its evaluation pairs against their targets.
pub fn evaluate(
    model: &EchoModel,
    task: &EchoTask,
    seeds: &[u64],
    samples: usize,
    device: &Device,
) -> Vec<EchoScore> {
    let mut pairs: Vec<_> = seeds.iter().map(|&s| evaluation_pairs(task, s)).collect();
    let mut scores = vec![EchoScore::new(task.n_in); seeds.len()];
    let mut remaining = samples;
    while remaining > 0 {
        let batch = remaining.min(EVAL_BATCH);
        remaining -= batch;
        let drawn: Vec<Vec<EchoPair>> = pairs
            .iter_mut()
            .map(|p| p.by_ref().take(batch).collect())
            .collect();
        let (x, _, targets) = one_hot_batch(task, &drawn, device);
        let logits = model
            .forward(x)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 logits");
        let per_pair = task.n_in * task.cardinality;
        for (i, (logits, target)) in logits.chunks(per_pair).zip(&targets).enumerate() {
            scores[i / batch].count(&task.decode(logits), target);
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::EchoScore;

    /// Each position counts the pairs right there, whatever the other positions; exact match
    /// counts only the pairs right everywhere.
    #[test]
    fn a_score_counts_each_position_and_the_whole_sequence() {
        let mut score = EchoScore::new(3);
        let target = [4, 7, 0];
        score.count(&[4, 7, 0], &target); // right everywhere
        score.count(&[4, 2, 0], &target); // wrong at the second position
        score.count(&[1, 7, 0], &target); // wrong at the first
        assert_eq!(score.positions, vec![2, 2, 3]);
        assert_eq!(score.correct, 1);
        score.count(&[0, 0, 1], &target); // wrong everywhere
        assert_eq!(score.positions, vec![2, 2, 3]);
        assert_eq!(score.correct, 1);
    }
}
