//! The IMDB classifiers as burn-train models: one training step (forward with attnx's dropout
//! mask, loss, backward) and one evaluation step.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use super::batch::ImdbBatch;
use super::per_review_loss;
use crate::config::Output;
use crate::models::classifier::TextClassifier;

/// What burn's metrics read of a batch's logits: the per-review losses (LossMetric weights
/// each batch by its size, so the epoch figure is the mean over reviews) and scores with one
/// column per class.
fn scored(logits: Tensor<2>, labels: &[u8]) -> (Tensor<1>, Tensor<2>) {
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
    (loss, classes)
}

impl TrainStep for TextClassifier {
    type Input = ImdbBatch;
    type Output = ClassificationOutput;

    /// On a CPU backend, a batch is trained in two halves on two threads (flex runs element-wise
    /// ops on one thread); a GPU takes it whole. The halves must not share an autodiff graph
    /// (one graph's backward pass holds its lock), so:
    /// - the embedding is looked up for the whole batch outside the graph, and each half starts
    ///   from its rows of it as a leaf of its own;
    /// - the second half runs through a copy of the other parameters' leaves (same parameter
    ///   ids, same values);
    /// - each half's loss is its reviews' summed loss over the whole batch's size, so the two
    ///   parameter gradients add up to the batch mean's (up to float summation order);
    /// - the embedding table's gradient is the leaves' gradients scattered into its rows,
    ///   review by review as burn's embedding backward does, once for the whole batch.
    ///
    /// The split does not depend on the thread count: on one thread the halves run one after
    /// the other, so a repeat's numbers do not depend on `--jobs`.
    fn step(&self, batch: ImdbBatch) -> TrainOutput<ClassificationOutput> {
        let rows = batch.labels.len();
        let device = batch.ids.device();
        if rows < 2 || !crate::kernels::on_cpu(&device) {
            let logits = self.forward(batch.ids, batch.keep_mask);
            let (loss, classes) = scored(logits, &batch.labels);
            let grads = loss.clone().mean().backward();
            let item = ClassificationOutput::new(loss.detach(), classes, batch.targets);
            return TrainOutput::new(self, grads, item);
        }
        let half = rows / 2;
        let ids = batch.ids;
        let table = self.embedding_table();
        let tokens = burn::tensor::module::embedding(table.val().inner(), ids.clone().inner());
        let (tokens_a, tokens_b) = (tokens.clone().slice(0..half), tokens.slice(half..rows));
        let (ids_a, ids_b) = (ids.clone().slice(0..half), ids.clone().slice(half..rows));
        let (mask_a, mask_b) = match batch.keep_mask {
            Some(mask) => (
                Some(mask.clone().slice(0..half)),
                Some(mask.slice(half..rows)),
            ),
            None => (None, None),
        };
        let (labels_a, labels_b) = batch.labels.split_at(half);
        let twin = self.clone().fork(&device);
        let (a, b) = rayon::join(
            || half_step(self, ids_a, tokens_a, mask_a, labels_a, rows),
            || half_step(&twin, ids_b, tokens_b, mask_b, labels_b, rows),
        );

        let [words, width] = table.dims();
        let token_grads =
            Tensor::cat(vec![a.tokens, b.tokens], 0).reshape([rows * ids.dims()[1], width]);
        let flat_ids = ids.inner().reshape([-1]);
        let zeros = Tensor::<2>::from_data(
            TensorData::new(zeroed(words * width), [words, width]),
            &token_grads.device(),
        );
        let table_grad = zeros.select_assign(0, flat_ids, token_grads, IndexingUpdateOp::Add);

        let mut sum = GradientsAccumulator::new();
        sum.accumulate(self, a.params);
        sum.accumulate(self, b.params);
        let mut grads = sum.grads();
        grads.register(table.id, table_grad);
        let item = ClassificationOutput::new(
            Tensor::cat(vec![a.loss, b.loss], 0),
            Tensor::cat(vec![a.classes, b.classes], 0),
            batch.targets,
        );
        TrainOutput { grads, item }
    }
}

/// `len` zeros, written by every core: the embedding table's gradient is a fresh 10 MB buffer
/// each step (`imdb_pe`), which one core cleared while the other waited for the next batch.
fn zeroed(len: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let mut zeros = Vec::with_capacity(len);
    zeros.par_extend(rayon::iter::repeat_n(0.0f32, len));
    zeros
}

/// What one half of a training batch gives.
struct HalfStep {
    /// The gradients of the parameters after the embedding.
    params: GradientsParams,
    /// The gradient of the half's embedded tokens `[b, T, D]`.
    tokens: Tensor<3>,
    /// Per-review losses and class scores, off the graph, for the metrics.
    loss: Tensor<1>,
    classes: Tensor<2>,
}

/// Forward and backward for `labels.len()` reviews of a batch of `batch_rows`, from their
/// embedded `tokens` (outside any graph): the gradients of their summed loss over `batch_rows`.
fn half_step(
    model: &TextClassifier,
    ids: Tensor<2, Int>,
    tokens: Tensor<3>,
    keep_mask: Option<Tensor<2>>,
    labels: &[u8],
    batch_rows: usize,
) -> HalfStep {
    let tokens = Tensor::from_inner(tokens).require_grad();
    let logits = model.forward_embedded(ids, tokens.clone(), keep_mask);
    let (loss, classes) = scored(logits, labels);
    let mut grads = (loss.clone().sum() / batch_rows as f32).backward();
    let token_grads = tokens
        .grad_remove(&mut grads)
        .expect("the loss depends on every embedded token");
    HalfStep {
        params: GradientsParams::from_grads(grads, model),
        tokens: token_grads,
        loss: loss.detach(),
        classes,
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
        let (loss, classes) = scored(logits, &batch.labels);
        ClassificationOutput::new(loss, classes, batch.targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::{GradientsAccumulator, GradientsParams};

    use crate::config::{LstmModel, Pooling, TextModel};
    use crate::rng::{Stream, rng};

    /// Every parameter's gradient in `grads`, in the module's order, flattened.
    fn gradients(model: &TextClassifier, grads: &GradientsParams) -> Vec<Vec<f32>> {
        struct Collect<'a>(&'a GradientsParams, Vec<Vec<f32>>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let grad = self
                    .0
                    .get::<D>(param.id)
                    .expect("every parameter has a gradient");
                self.1.push(grad.into_data().try_into_vec::<f32>().unwrap());
            }
        }
        let mut collect = Collect(grads, Vec::new());
        model.visit(&mut collect);
        collect.1
    }

    fn models(device: &Device, words: usize, t: usize) -> Vec<TextClassifier> {
        let e2 = TextModel::SelfAttention(crate::models::self_attention::tests::e2());
        let lstm = TextModel::Lstm(LstmModel {
            embed: 16,
            hidden: 16,
            pooling: Pooling::Attention,
            units: None,
            output: Output::Softmax,
            dropout: 0.5,
        });
        [e2, lstm]
            .iter()
            .map(|config| {
                TextClassifier::new(config, words, t, 2, &mut rng(0, Stream::Init), device)
            })
            .collect()
    }

    /// A batch of `rows` reviews whose ids repeat across reviews (so that the embedding's
    /// scatter adds several tokens into one row), with a dropout mask.
    fn batch(
        model: &TextClassifier,
        rows: usize,
        t: usize,
        words: usize,
        device: &Device,
    ) -> ImdbBatch {
        let ids: Vec<i64> = (0..rows * t).map(|i| ((i * 31) % words) as i64).collect();
        let labels: Vec<u8> = (0..rows).map(|i| (i % 3 == 0) as u8).collect();
        let width = model.pooled_width();
        let mask: Vec<f32> = (0..rows * width)
            .map(|i| if i % 5 == 0 { 0.0 } else { 2.0 })
            .collect();
        ImdbBatch {
            ids: Tensor::from_data(TensorData::new(ids, [rows, t]), device),
            targets: Tensor::from_data(
                TensorData::new(labels.iter().map(|&l| i64::from(l)).collect(), [rows]),
                device,
            ),
            labels,
            keep_mask: Some(Tensor::from_data(
                TensorData::new(mask, [rows, width]),
                device,
            )),
        }
    }

    /// The gradient of the batch's mean loss computed whole, burn's way.
    fn whole_batch(model: &TextClassifier, batch: ImdbBatch) -> GradientsParams {
        let (loss, _) = scored(model.forward(batch.ids, batch.keep_mask), &batch.labels);
        GradientsParams::from_grads(loss.mean().backward(), model)
    }

    /// The two halves' summed gradients are the whole batch's, every parameter's (the
    /// embedding table's included), up to float summation order; the metrics see every review.
    #[test]
    fn halves_give_the_whole_batch_gradient() {
        let device = Device::flex().autodiff();
        let (rows, t, words) = (12, 10, 50);
        for model in models(&device, words, t) {
            let b = batch(&model, rows, t, words, &device);
            let expected = gradients(&model, &whole_batch(&model, b.clone()));
            let output = TrainStep::step(&model, b);
            let actual = gradients(&model, &output.grads);
            assert_eq!(output.item.loss.dims(), [rows]);
            assert_eq!(output.item.output.dims()[0], rows);
            assert_eq!(expected.len(), actual.len());
            for (e, a) in expected.iter().zip(&actual) {
                let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "a parameter got no gradient");
                for (x, y) in e.iter().zip(a) {
                    assert!((x - y).abs() <= 1e-5 * scale, "{x} vs {y}");
                }
            }
        }
    }

    /// The halves are fixed by the batch, not by the threads: one thread gives the same
    /// gradients, bit for bit, as two.
    #[test]
    fn halves_do_not_depend_on_the_thread_count() {
        let device = Device::flex().autodiff();
        let (rows, t, words) = (9, 10, 50);
        for model in models(&device, words, t) {
            let b = batch(&model, rows, t, words, &device);
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let grads = pool.install(|| TrainStep::step(&model, b.clone()).grads);
                let mut sum = GradientsAccumulator::new();
                sum.accumulate(&model, grads);
                gradients(&model, &sum.grads())
                    .concat()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(1), run(2));
        }
    }
}
