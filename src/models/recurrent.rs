//! E4's recurrent classifiers: an LSTM over the review, its states pooled into one
//! vector by the last state, their mean, or the article's many-to-one attention.
//!
//! ```text
//! ids [B, T] -> Embedding(num_words, D) -> LSTM(hidden d, every state kept) H [B, T, d]
//!   -> last: h_T | mean: mean_t H | attention: tanh([c; h_T] W_c) with
//!      a = softmax(h_T . (H W)), c = sum_j a_j H_j   (W: d x d, W_c: 2d x units, no biases)
//!   -> dropout -> Dense(out) -> sigmoid / softmax
//! ```
//!
//! The LSTM runs over the padding in front of short reviews, as Keras' does without a mask;
//! with pre-padding its last state is still the one after the review's last word.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::{softmax, tanh};
use rand::rngs::StdRng;

use super::layers::{keras_embedding, output_head, output_layer};
use super::stacked::StackedLstm;
use crate::config::{GateActivation, LstmModel, Pooling};
use crate::kernels::product::matmul;
use crate::models::TEXT_PRODUCTS;
use crate::models::init::glorot_uniform;

#[derive(Module, Debug)]
pub struct RecurrentClassifier {
    /// burn's embedding, Keras-initialised: uniform in [-0.05, 0.05].
    embedding: Embedding,
    /// A Keras LSTM (a stack of one: attnx's LSTM layer carries a repeat dimension).
    lstm: StackedLstm,
    /// The attention pooling's weights (`pooling: attention`).
    attention: Option<AttentionPooling>,
    /// burn's dense layer: glorot-uniform kernel, zero bias.
    output: Linear,
    #[module(skip)]
    pooling: Pooling,
}

/// Seed 002's many-to-one attention over the LSTM states.
#[derive(Module, Debug)]
pub struct AttentionPooling {
    /// `W`, `[d, d]`: `score_j = h_T . (h_j W)` (Luong's multiplicative score).
    score: Param<Tensor<2>>,
    /// `W_c`, `[2d, units]`: the output `tanh([c; h_T] W_c)`.
    combine: Param<Tensor<2>>,
}

impl AttentionPooling {
    /// The pooled vector `[B, units]` and the attention weights `[B, T]` over states `[B, T, d]`.
    pub fn forward(&self, states: Tensor<3>) -> (Tensor<2>, Tensor<2>) {
        let [b, t, d] = states.dims();
        let last = states.clone().slice_dim(1, t - 1..t); // [B, 1, d]
        let projected = matmul(
            states.clone().reshape([b * t, d]),
            self.score.val(),
            TEXT_PRODUCTS,
        )
        .reshape([b, t, d]);
        let scores = projected
            .matmul(last.clone().swap_dims(1, 2))
            .reshape([b, t]);
        let weights = softmax(scores, 1);
        let context = weights
            .clone()
            .reshape([b, 1, t])
            .matmul(states)
            .reshape([b, d]);
        let last = last.reshape([b, d]);
        let pooled = tanh(Tensor::cat(vec![context, last], 1).matmul(self.combine.val()));
        (pooled, weights)
    }
}

impl RecurrentClassifier {
    /// Builds the model of `config` (an `lstm` model) for a vocabulary of `num_words`, drawing
    /// every weight from `rng`.
    pub fn new(
        config: &LstmModel,
        num_words: usize,
        classes: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let LstmModel {
            embed,
            hidden,
            pooling,
            output,
            ..
        } = *config;
        let embedding = keras_embedding(rng, num_words, embed, device);
        let lstm = StackedLstm::new(
            std::slice::from_mut(rng),
            embed,
            hidden,
            GateActivation::Sigmoid,
            TEXT_PRODUCTS,
            device,
        );
        let units = config.units();
        let attention = (pooling == Pooling::Attention).then(|| {
            let kernel = |rng: &mut StdRng, a: usize, b: usize| {
                Param::from_data(TensorData::new(glorot_uniform(rng, a, b), [a, b]), device)
            };
            AttentionPooling {
                score: kernel(rng, hidden, hidden),
                combine: kernel(rng, 2 * hidden, units),
            }
        });
        let pooled = if attention.is_some() { units } else { hidden };
        Self {
            embedding,
            lstm,
            attention,
            output: output_layer(rng, pooled, output, classes, device),
            pooling,
        }
    }

    /// Width of the pooled vector the dropout mask applies to.
    pub fn pooled_width(&self) -> usize {
        self.output.weight.dims()[0]
    }

    /// Logits `[B, 1]` or `[B, 2]` for ids `[B, T]`; `keep_mask` as for the self-attention
    /// classifier.
    pub fn forward(&self, ids: Tensor<2, Int>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        let tokens = self.embedding.forward(ids);
        self.head(self.pooled(tokens), keep_mask)
    }

    /// The embedding layer, `[num_words, D]`.
    pub fn embedding(&self) -> &Embedding {
        &self.embedding
    }

    /// The output layer on pooled vectors.
    pub fn head(&self, pooled: Tensor<2>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        output_head(&self.output, pooled, keep_mask)
    }

    /// The pooled vectors of embedded tokens `[B, T, D]`: each review's row depends on that
    /// review alone.
    pub fn pooled(&self, tokens: Tensor<3>) -> Tensor<2> {
        self.pool(tokens).0
    }

    /// The attention pooling's weights `[B, T]` over positions (`pooling: attention` only).
    pub fn attention(&self, ids: Tensor<2, Int>) -> Option<Tensor<2>> {
        self.pool(self.embedding.forward(ids)).1
    }

    fn pool(&self, tokens: Tensor<3>) -> (Tensor<2>, Option<Tensor<2>>) {
        let [b, t, _] = tokens.dims();
        let x = tokens.unsqueeze_dim::<4>(0); // [1, B, T, D]
        let states = self.lstm.forward(x).squeeze_dim::<3>(0); // [B, T, d]
        let d = states.dims()[2];
        match (&self.attention, self.pooling) {
            (Some(attention), _) => {
                let (pooled, weights) = attention.forward(states);
                (pooled, Some(weights))
            }
            (None, Pooling::Mean) => (states.mean_dim(1).reshape([b, d]), None),
            (None, _) => (states.slice_dim(1, t - 1..t).reshape([b, d]), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Output;
    use crate::rng::{Stream, rng};

    fn config(pooling: Pooling) -> LstmModel {
        LstmModel {
            embed: 8,
            hidden: 6,
            pooling,
            units: None,
            output: Output::Sigmoid,
            dropout: 0.5,
        }
    }

    fn ids(device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(vec![0i64, 0, 1, 7, 9, 1, 3, 4, 5, 6], [2, 5]),
            device,
        )
    }

    #[test]
    fn every_pooling_gives_one_logit_per_review() {
        let device = Device::flex();
        for (pooling, width) in [
            (Pooling::Last, 6),
            (Pooling::Mean, 6),
            (Pooling::Attention, crate::config::lstm::UNITS),
        ] {
            let model = RecurrentClassifier::new(
                &config(pooling),
                20,
                2,
                &mut rng(0, Stream::Init),
                &device,
            );
            assert_eq!(model.pooled_width(), width);
            assert_eq!(model.forward(ids(&device), None).dims(), [2, 1]);
            assert_eq!(
                model.attention(ids(&device)).is_some(),
                pooling == Pooling::Attention
            );
        }
    }

    /// Seed 002's counts: LSTM 4 (D d + d^2 + d), W d^2, W_c 2d units, dense units + 1.
    #[test]
    fn parameter_count_follows_the_article() {
        let device = Device::flex();
        let model = RecurrentClassifier::new(
            &config(Pooling::Attention),
            20,
            2,
            &mut rng(0, Stream::Init),
            &device,
        );
        let (d, e, u) = (6, 8, crate::config::lstm::UNITS);
        assert_eq!(
            model.num_params(),
            20 * e + 4 * (e * d + d * d + d) + d * d + 2 * d * u + u + 1
        );
    }

    /// A hand-computed case: with W = I the score of state j is h_T . h_j, and the weights are
    /// its softmax; they sum to one over the positions.
    #[test]
    fn attention_pooling_follows_the_formula() {
        let device = Device::flex();
        let states = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], [1, 3, 2]),
            &device,
        );
        let pooling = AttentionPooling {
            score: Param::from_tensor(Tensor::eye(2, &device)),
            combine: Param::from_tensor(Tensor::ones([4, 1], &device)),
        };
        let (pooled, weights) = pooling.forward(states);
        let w = weights.into_data().try_into_vec::<f32>().unwrap();
        // h_T = [1, 1]: scores [1, 1, 2].
        let z = 2.0 * 1f32.exp() + 2f32.exp();
        let want = [1f32.exp() / z, 1f32.exp() / z, 2f32.exp() / z];
        for (g, w) in w.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        // c = [w0 + w2, w1 + w2]; output tanh(sum(c) + 2).
        let c_sum = want[0] + want[1] + 2.0 * want[2];
        let p = pooled.into_data().try_into_vec::<f32>().unwrap();
        assert!((p[0] - (c_sum + 2.0).tanh()).abs() < 1e-6);
    }
}
