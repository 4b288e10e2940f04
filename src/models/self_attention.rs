//! The self-attention text classifiers of E2 (8 heads of 16, optional sinusoidal positions,
//! sigmoid output) and E3 (one head of 128, scale 1/8, softmax output).
//!
//! ```text
//! ids [B, T] -> Embedding(num_words, D) [+ PE] -> Q = X Wq, K = X Wk, V = X Wv (no bias)
//!   -> per head softmax(Q K^T * scale) V -> heads concatenated [B, T, H*dh] (no projection,
//!   no padding mask) -> mean over T -> dropout -> Dense(out) -> sigmoid / softmax
//! ```

use burn::module::Param;
use burn::nn::{Embedding, Linear, generate_sinusoids};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use rand::rngs::StdRng;

use crate::config::{KernelInit, ModelConfig, Output, Position};
use crate::init::{glorot_uniform, uniform};

#[derive(Module, Debug)]
pub struct SelfAttentionClassifier {
    /// burn's embedding, Keras-initialised: uniform in [-0.05, 0.05].
    embedding: Embedding,
    /// `[Wq | Wk | Wv]`, `[D, 3 * H * dh]` (E3's single `(3, D, D)` kernel, laid side by side).
    qkv: Param<Tensor<2>>,
    /// burn's dense layer: glorot-uniform kernel, zero bias.
    output: Linear,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    head_dim: usize,
    #[module(skip)]
    scale: f64,
    #[module(skip)]
    sinusoidal: bool,
}

impl SelfAttentionClassifier {
    /// Builds the model of `config` (a `self_attention` model) for a vocabulary of `num_words`,
    /// drawing every weight from `rng`.
    pub fn new(config: &ModelConfig, num_words: usize, rng: &mut StdRng, device: &Device) -> Self {
        let ModelConfig::SelfAttention {
            embed,
            heads,
            head_dim,
            position,
            scale,
            output,
            kernel_init,
            ..
        } = *config
        else {
            panic!("SelfAttentionClassifier::new needs a self_attention model config");
        };
        let width = heads * head_dim;
        let embedding = Embedding {
            weight: Param::from_data(
                TensorData::new(uniform(rng, num_words * embed, 0.05), [num_words, embed]),
                device,
            ),
        };
        let mut qkv = Vec::with_capacity(3);
        for _ in 0..3 {
            qkv.push(match kernel_init {
                KernelInit::Glorot => glorot_uniform(rng, embed, width),
                KernelInit::Uniform { limit } => uniform(rng, embed * width, limit as f32),
            });
        }
        let qkv = crate::models::stacked::concat_columns(
            embed,
            &qkv.into_iter()
                .map(|block| (width, block))
                .collect::<Vec<_>>(),
        );
        let outputs = match output {
            Output::Sigmoid => 1,
            Output::Softmax => 2,
        };
        let output = Linear {
            weight: Param::from_data(
                TensorData::new(glorot_uniform(rng, width, outputs), [width, outputs]),
                device,
            ),
            bias: Some(Param::from_data(
                TensorData::new(vec![0.0f32; outputs], [outputs]),
                device,
            )),
        };
        Self {
            embedding,
            qkv: Param::from_data(TensorData::new(qkv, [embed, 3 * width]), device),
            output,
            heads,
            head_dim,
            scale: scale.unwrap_or(1.0 / (head_dim as f64).sqrt()),
            sinusoidal: position == Position::Sinusoidal,
        }
    }

    /// Logits `[B, 1]` (sigmoid output) or `[B, 2]` (softmax output) for ids `[B, T]`.
    /// `keep_mask` (`[B, H*dh]`, already scaled by 1/keep) is the dropout mask; `None` at
    /// evaluation.
    pub fn forward(&self, ids: Tensor<2, Int>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        let (attended, _) = self.attend(ids);
        let pooled = attended.mean_dim(1).squeeze_dim::<2>(1); // [B, H*dh]
        let pooled = match keep_mask {
            Some(mask) => pooled * mask,
            None => pooled,
        };
        self.output.forward(pooled)
    }

    /// The attention weights `[B, H, T, T]` (query position x key position).
    pub fn attention(&self, ids: Tensor<2, Int>) -> Tensor<4> {
        self.attend(ids).1
    }

    /// Heads concatenated `[B, T, H*dh]`, and the attention weights.
    fn attend(&self, ids: Tensor<2, Int>) -> (Tensor<3>, Tensor<4>) {
        let [b, t] = ids.dims();
        let mut x = self.embedding.forward(ids); // [B, T, D]
        let d = x.dims()[2];
        if self.sinusoidal {
            let pe = generate_sinusoids(t, d, 10_000, &x.device());
            x = x + pe.unsqueeze_dim::<3>(0);
        }
        let (h, dh) = (self.heads, self.head_dim);
        let qkv = x.reshape([b * t, d]).matmul(self.qkv.val()); // [B*T, 3*H*dh]
        let part = |k: usize| {
            qkv.clone()
                .slice_dim(1, k * h * dh..(k + 1) * h * dh)
                .reshape([b, t, h, dh])
                .swap_dims(1, 2) // [B, H, T, dh]
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q.matmul(k.swap_dims(2, 3)) * self.scale; // [B, H, T, T]
        let weights = softmax(scores, 3);
        let heads = weights.clone().matmul(v); // [B, H, T, dh]
        (heads.swap_dims(1, 2).reshape([b, t, h * dh]), weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Stream, rng};

    fn e3() -> ModelConfig {
        ModelConfig::SelfAttention {
            embed: 128,
            heads: 1,
            head_dim: 128,
            position: Position::None,
            scale: Some(0.125),
            output: Output::Softmax,
            dropout: 0.5,
            kernel_init: KernelInit::Uniform { limit: 0.05 },
        }
    }

    #[test]
    fn parameter_counts_match_the_articles() {
        let device = Device::flex();
        let model = SelfAttentionClassifier::new(&e3(), 20_000, &mut rng(0, Stream::Init), &device);
        assert_eq!(model.num_params(), 2_609_410, "E3, as the article counts");
        let e2 = ModelConfig::SelfAttention {
            embed: 128,
            heads: 8,
            head_dim: 16,
            position: Position::Sinusoidal,
            scale: None,
            output: Output::Sigmoid,
            dropout: 0.5,
            kernel_init: KernelInit::Glorot,
        };
        let model = SelfAttentionClassifier::new(&e2, 20_000, &mut rng(0, Stream::Init), &device);
        // 20,000 x 128 embedding + 3 x 128 x 128 kernels + 128 + 1 output.
        assert_eq!(model.num_params(), 2_609_281);
        assert_eq!(model.scale, 0.25);
    }

    #[test]
    fn attention_is_a_distribution_over_key_positions() {
        let device = Device::flex();
        let config = ModelConfig::SelfAttention {
            embed: 8,
            heads: 2,
            head_dim: 4,
            position: Position::Sinusoidal,
            scale: None,
            output: Output::Sigmoid,
            dropout: 0.5,
            kernel_init: KernelInit::Glorot,
        };
        let model = SelfAttentionClassifier::new(&config, 50, &mut rng(1, Stream::Init), &device);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![0i64, 0, 1, 7, 9, 1, 3, 4, 5, 6], [2, 5]),
            &device,
        );
        let weights = model.attention(ids.clone());
        assert_eq!(weights.dims(), [2, 2, 5, 5]);
        let sums = weights
            .sum_dim(3)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        assert_eq!(model.forward(ids, None).dims(), [2, 1]);
    }

    /// The article's `PE(p)_{2i} = sin(p / 10000^{2i/128})`, `PE(p)_{2i+1} = cos(...)`, which
    /// burn's `generate_sinusoids` must produce for the model to be E2's.
    #[test]
    fn sinusoidal_positions_follow_the_article() {
        let device = Device::flex();
        let pe = generate_sinusoids(81, 128, 10_000, &device)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let at = |p: usize, k: usize| pe[p * 128 + k];
        for (p, k) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 2),
            (5, 3),
            (40, 64),
            (80, 126),
            (80, 127),
        ] {
            let i = k / 2;
            let angle = p as f64 / 10_000f64.powf(2.0 * i as f64 / 128.0);
            let want = if k % 2 == 0 { angle.sin() } else { angle.cos() };
            assert!(
                (f64::from(at(p, k)) - want).abs() < 1e-4,
                "PE({p})_{k} = {} != {want}",
                at(p, k)
            );
        }
        assert_eq!((at(0, 0), at(0, 1)), (0.0, 1.0));
    }

    /// With Q = K = 0 every score is 0: each position attends uniformly, so every output row is
    /// the mean of V's rows, and mean pooling returns that mean again.
    #[test]
    fn zero_queries_attend_uniformly() {
        let device = Device::flex();
        let config = ModelConfig::SelfAttention {
            embed: 4,
            heads: 1,
            head_dim: 4,
            position: Position::None,
            scale: None,
            output: Output::Softmax,
            dropout: 0.0,
            kernel_init: KernelInit::Glorot,
        };
        let mut model =
            SelfAttentionClassifier::new(&config, 10, &mut rng(2, Stream::Init), &device);
        let mut kernel = model.qkv.val().into_data().try_into_vec::<f32>().unwrap();
        for row in kernel.chunks_mut(12) {
            row[..8].fill(0.0); // Wq and Wk
        }
        model.qkv = Param::from_data(TensorData::new(kernel, [4, 12]), &device);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
        let w = model
            .attention(ids)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(w.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-6), "{w:?}");
    }
}
