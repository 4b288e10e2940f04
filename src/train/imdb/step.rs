//! The IMDB classifiers as burn-train models: one training step (forward with attnx's dropout
//! mask, loss, backward) and one evaluation step.

use burn::prelude::*;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use super::batch::ImdbBatch;
use super::per_review_loss;
use crate::config::Output;
use crate::models::classifier::TextClassifier;

/// The classification output burn's metrics read, from a batch's logits: the per-review losses
/// (LossMetric weights each batch by its size, so the epoch figure is the mean over reviews),
/// logits with one column per class, and the labels.
fn classify(logits: Tensor<2>, labels: &[u8], targets: Tensor<1, Int>) -> ClassificationOutput {
    let device = logits.device();
    let [rows, units] = logits.dims();
    let output = if units == 1 {
        Output::Sigmoid
    } else {
        Output::Softmax
    };
    // The metrics only read the logits: keep them off the autodiff graph.
    let scores = logits.clone().detach();
    let loss = per_review_loss(output, logits, labels, &device);
    // A sigmoid unit z is the two-class softmax over [0, z]: its argmax is the prediction
    // (z > 0), which is what the accuracy metric takes.
    let classes = match output {
        Output::Sigmoid => Tensor::cat(vec![Tensor::zeros([rows, 1], &device), scores], 1),
        Output::Softmax => scores,
    };
    ClassificationOutput::new(loss, classes, targets)
}

impl TrainStep for TextClassifier {
    type Input = ImdbBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImdbBatch) -> TrainOutput<ClassificationOutput> {
        let logits = self.forward(batch.ids, batch.keep_mask);
        let output = classify(logits, &batch.labels, batch.targets);
        let grads = output.loss.clone().mean().backward();
        TrainOutput::new(self, grads, output)
    }
}

impl InferenceStep for TextClassifier {
    type Input = ImdbBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImdbBatch) -> ClassificationOutput {
        // Evaluation batches carry no dropout mask; their halves run on two threads.
        let logits = match batch.keep_mask {
            None => self.evaluate(batch.ids),
            keep_mask => self.forward(batch.ids, keep_mask),
        };
        classify(logits, &batch.labels, batch.targets)
    }
}
