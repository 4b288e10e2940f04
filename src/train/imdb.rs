//! E2/E3: mini-batch training of an IMDB classifier, evaluated on the test set every epoch.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{ImdbStudy, LossWindows, RepeatOutcome, TrainedModel};
use crate::config::{ImdbTask, OptimizerConfig, Output};
use crate::data::prepare::Batchable;
use crate::models::classifier::TextClassifier;
use crate::progress::Progress;
use crate::record::EpochMetrics;
use crate::rng::{self, Stream};

/// Reviews per forward pass at evaluation (no gradients are kept, so bigger is cheaper).
pub const EVAL_BATCH: usize = 500;

/// Ids `[B, T]` of the reviews `rows` of `split`.
fn batch_ids(split: &Batchable, rows: &[usize], device: &Device) -> Tensor<2, Int> {
    let t = split.maxlen;
    let mut ids = Vec::with_capacity(rows.len() * t);
    for &row in rows {
        ids.extend(
            split.ids[row * t..(row + 1) * t]
                .iter()
                .map(|&id| i64::from(id)),
        );
    }
    Tensor::from_data(TensorData::new(ids, [rows.len(), t]), device)
}

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
        // Categorical cross-entropy over the two classes.
        Output::Softmax => {
            let mut y = vec![0.0f32; 2 * b];
            for (i, &l) in labels.iter().enumerate() {
                y[2 * i + usize::from(l)] = 1.0;
            }
            let y = Tensor::<2>::from_data(TensorData::new(y, [b, 2]), device);
            (log_softmax(logits, 1) * y).sum_dim(1).neg().reshape([b])
        }
    }
}

/// Predicted labels from logits read back to the host.
fn predictions(output: Output, logits: &[f32]) -> Vec<u8> {
    match output {
        Output::Sigmoid => logits.iter().map(|&z| u8::from(z > 0.0)).collect(),
        Output::Softmax => logits.chunks(2).map(|p| u8::from(p[1] > p[0])).collect(),
    }
}

fn correct(predicted: &[u8], labels: &[u8]) -> usize {
    predicted.iter().zip(labels).filter(|(p, l)| p == l).count()
}

/// A dropout keep-mask `[B, width]`, scaled by 1/keep, drawn from attnx's own generator (burn's
/// dropout draws from its process-wide one, which parallel repeats would share).
fn keep_mask(
    rng: &mut StdRng,
    batch: usize,
    width: usize,
    rate: f64,
    device: &Device,
) -> Tensor<2> {
    let keep = 1.0 - rate;
    let scale = (1.0 / keep) as f32;
    let mask: Vec<f32> = (0..batch * width)
        .map(|_| {
            if rng.random::<f64>() < keep {
                scale
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(mask, [batch, width]), device)
}

/// Trains one repeat of an IMDB config and evaluates it on the test set after every epoch.
pub fn train_imdb(
    study: &ImdbStudy,
    optimizer_config: &OptimizerConfig,
    index: usize,
    seed: u64,
    device: &Device,
    progress: &Progress,
    label: &str,
) -> RepeatOutcome {
    let ImdbTask {
        num_words,
        maxlen,
        epochs,
        batch_size,
        ..
    } = study.task;
    let data = &*study.data;
    let (output, dropout) = study.model.head();
    let lr = optimizer_config.lr();

    let train_device = device.clone().autodiff();
    let mut model = TextClassifier::new(
        &study.model,
        num_words,
        maxlen,
        &mut rng::rng(seed, Stream::Init),
        &train_device,
    );
    let width = model.pooled_width();
    let mut optimizer = super::keras_adam();
    let mut shuffle_rng = rng::rng(seed, Stream::TrainData);
    let mut dropout_rng = rng::rng(seed, Stream::Dropout);

    let n = data.train.len();
    let batches = n.div_ceil(batch_size);
    let mut order: Vec<usize> = (0..n).collect();
    let mut metrics = Vec::with_capacity(epochs);
    let mut windows = LossWindows::new(1);
    let (mut train_seconds, mut eval_seconds) = (0.0, 0.0);
    let mut last_eval = (0.0, 0usize);

    for epoch in 1..=epochs {
        let started = Instant::now();
        order.shuffle(&mut shuffle_rng);
        let bar = progress.stack(format!("{label} epoch {epoch}/{epochs}"), batches, 1);
        let (mut loss_sum, mut hits) = (0.0f64, 0usize);
        for (step, rows) in order.chunks(batch_size).enumerate() {
            let labels: Vec<u8> = rows.iter().map(|&r| data.train.labels[r]).collect();
            let ids = batch_ids(&data.train, rows, &train_device);
            let mask = (dropout > 0.0)
                .then(|| keep_mask(&mut dropout_rng, rows.len(), width, dropout, &train_device));
            let logits = model.forward(ids, mask);
            let scores = logits
                .clone()
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 logits");
            let loss = per_review_loss(output, logits, &labels, &train_device).mean();
            let loss_value = f64::from(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);

            loss_sum += loss_value * rows.len() as f64;
            hits += correct(&predictions(output, &scores), &labels);
            windows.push(&[loss_value as f32]);
            bar.step(
                step + 1,
                (loss_sum / (order.len().min((step + 1) * batch_size)) as f64) as f32,
            );
        }
        bar.finish();
        let trained = started.elapsed().as_secs_f64();
        train_seconds += trained;

        let evaluated = Instant::now();
        let (test_loss, test_hits) = evaluate(&model.valid(), output, &data.test, device);
        eval_seconds += evaluated.elapsed().as_secs_f64();
        last_eval = (test_loss, test_hits);
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / n as f64,
            train_accuracy: 100.0 * hits as f64 / n as f64,
            test_loss,
            test_accuracy: 100.0 * test_hits as f64 / data.test.len() as f64,
            seconds: started.elapsed().as_secs_f64(),
        };
        progress.println(&format!(
            "{label} epoch {epoch}/{epochs}: loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  ({:.1} s)",
            m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy, m.seconds
        ));
        metrics.push(m);
    }
    RepeatOutcome {
        index,
        seed,
        accuracy: 100.0 * last_eval.1 as f64 / data.test.len() as f64,
        correct: last_eval.1,
        total: data.test.len(),
        loss_curve: windows.finish().remove(0),
        epochs: metrics,
        train_seconds,
        eval_seconds,
        model: TrainedModel::Imdb(model.valid()),
    }
}

/// Mean loss and number of correct predictions over a whole split, without dropout.
pub fn evaluate(
    model: &TextClassifier,
    output: Output,
    split: &Batchable,
    device: &Device,
) -> (f64, usize) {
    let rows: Vec<usize> = (0..split.len()).collect();
    let (mut loss_sum, mut hits) = (0.0f64, 0usize);
    for chunk in rows.chunks(EVAL_BATCH) {
        let labels = &split.labels[chunk[0]..chunk[0] + chunk.len()];
        let logits = model.forward(batch_ids(split, chunk, device), None);
        let scores = logits
            .clone()
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 logits");
        let loss = per_review_loss(output, logits, labels, device).sum();
        loss_sum += f64::from(loss.into_scalar::<f32>());
        hits += correct(&predictions(output, &scores), labels);
    }
    (loss_sum / split.len() as f64, hits)
}
