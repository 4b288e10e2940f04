//! E1's two encoder-decoders for the echo task, stacked over repeats (see [`super::stacked`]).
//!
//! Shapes: `R` repeats, `B` sequences per repeat, `T = n_in` steps, `V = cardinality` one-hot
//! features, `H` hidden units. Every model maps one-hot inputs `[R, B, T, V]` to per-step
//! logits `[R, B, T, V]`; the softmax of the logits is the Keras model's output.

use burn::prelude::*;
use rand::rngs::StdRng;

use super::ECHO_PRODUCTS;
pub use super::attention_decoder::{AttentionDecoder, DecoderVariant};
use super::stacked::{StackedLinear, StackedLstm};
use crate::config::GateActivation;

/// Baseline: LSTM encoder -> its last hidden state repeated `T` times -> LSTM decoder returning
/// every step -> per-step dense layer -> softmax (Keras `RepeatVector` + `TimeDistributed`).
#[derive(Module, Debug)]
pub struct BaselineEncoderDecoder {
    encoder: StackedLstm,
    decoder: StackedLstm,
    output: StackedLinear,
}

impl BaselineEncoderDecoder {
    pub fn new(
        rngs: &mut [StdRng],
        features: usize,
        hidden: usize,
        gates: GateActivation,
        device: &Device,
    ) -> Self {
        let lstm = |rngs: &mut [StdRng], d_in| {
            StackedLstm::new(rngs, d_in, hidden, gates, ECHO_PRODUCTS, device)
        };
        Self {
            encoder: lstm(rngs, features),
            decoder: lstm(rngs, hidden),
            output: StackedLinear::new(rngs, (hidden, features), ECHO_PRODUCTS, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [r, b, t, v] = x.dims();
        let encoded = self.encoder.forward(x).slice_dim(2, t - 1..t); // [R, B, 1, H]
        // The decoder sees the same vector at every step, so its input projection is the same
        // at every step too: compute it once.
        let projected = self.decoder.project_inputs(encoded).repeat_dim(2, t);
        let h = self.decoder.hidden();
        let states = self.decoder.run(projected).reshape([r, b * t, h]);
        self.output.forward(states).reshape([r, b, t, v])
    }
}

/// LSTM encoder keeping every state, then the Bahdanau-style attention decoder of E1.
#[derive(Module, Debug)]
pub struct AttentionModel {
    encoder: StackedLstm,
    pub(super) decoder: AttentionDecoder,
}

impl AttentionModel {
    pub fn new(
        rngs: &mut [StdRng],
        features: usize,
        hidden: usize,
        variant: DecoderVariant,
        gates: GateActivation,
        device: &Device,
    ) -> Self {
        Self {
            encoder: StackedLstm::new(rngs, features, hidden, gates, ECHO_PRODUCTS, device),
            decoder: AttentionDecoder::new(rngs, hidden, hidden, features, variant, device),
        }
    }

    /// Logits `[R, B, T, V]` and attention weights `[R, B, T_out, T_in]`. `gumbel` is hard
    /// attention's training noise (see [`AttentionDecoder::forward`]).
    pub fn forward_with_attention(
        &self,
        x: Tensor<4>,
        gumbel: Option<Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let states = self.encoder.forward(x);
        self.decoder.forward(states, gumbel)
    }

    pub fn variant(&self) -> DecoderVariant {
        self.decoder.variant
    }
}

/// Either E1 model, built from a config.
#[allow(clippy::large_enum_variant)] // a handful exist at a time; boxing would buy nothing
#[derive(Module, Debug)]
pub enum EchoModel {
    Baseline(BaselineEncoderDecoder),
    Attention(AttentionModel),
}

impl EchoModel {
    /// Logits `[R, B, T, V]` for one-hot inputs `[R, B, T, V]` (hard attention: evaluation
    /// mode, the argmax position).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_train(x, None)
    }

    /// As [`forward`](Self::forward), with hard attention's Gumbel noise `[R, B, T, T]` in
    /// training (see [`AttentionDecoder::forward`]).
    pub fn forward_train(&self, x: Tensor<4>, gumbel: Option<Tensor<4>>) -> Tensor<4> {
        match self {
            EchoModel::Baseline(m) => m.forward(x),
            EchoModel::Attention(m) => m.forward_with_attention(x, gumbel).0,
        }
    }

    /// Whether training must draw Gumbel noise for it.
    pub fn is_hard(&self) -> bool {
        matches!(self, EchoModel::Attention(m) if m.variant().hard.is_some())
    }

    /// Attention weights `[R, B, T_out, T_in]`, for the models that have them.
    pub fn attention(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        match self {
            EchoModel::Baseline(_) => None,
            EchoModel::Attention(m) => Some(m.forward_with_attention(x, None).1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DecoderInit, Score};
    use crate::models::testing::{input, rngs};
    use crate::rng::{Stream, rng};

    #[test]
    fn attention_weights_are_distributions_over_encoder_positions() {
        let device = Device::flex();
        for score in [Score::Additive, Score::Dot, Score::General, Score::Cosine] {
            for hard in [None, Some(0.5)] {
                let variant = DecoderVariant {
                    score,
                    hard,
                    init: DecoderInit::Attnx,
                };
                let model = AttentionModel::new(
                    &mut rngs(2),
                    7,
                    6,
                    variant,
                    GateActivation::Sigmoid,
                    &device,
                );
                let (logits, weights) =
                    model.forward_with_attention(input(2, 3, 5, 7, &device), None);
                assert_eq!(logits.dims(), [2, 3, 5, 7]);
                assert_eq!(weights.dims(), [2, 3, 5, 5]);
                let values = weights.clone().into_data().try_into_vec::<f32>().unwrap();
                assert!(values.iter().all(|&w| (0.0..=1.0).contains(&w)));
                let sums = weights
                    .sum_dim(3)
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap();
                assert!(
                    sums.iter().all(|s| (s - 1.0).abs() < 1e-5),
                    "{variant:?}: {sums:?}"
                );
                if hard.is_some() {
                    // One position per step: every weight is 0 or 1.
                    assert!(values.iter().all(|&w| w == 0.0 || w == 1.0), "{values:?}");
                }
            }
        }
    }

    #[test]
    fn baseline_maps_inputs_to_per_step_logits() {
        let device = Device::flex();
        let model =
            BaselineEncoderDecoder::new(&mut rngs(3), 7, 6, GateActivation::Sigmoid, &device);
        assert_eq!(
            model.forward(input(3, 2, 4, 7, &device)).dims(),
            [3, 2, 4, 7]
        );
    }

    /// The point of stacking: a repeat's outputs must not depend on which other repeats share
    /// its stack.
    #[test]
    fn a_repeat_computes_the_same_alone_or_stacked() {
        let device = Device::flex();
        let mut all = rngs(3);
        let variant = DecoderVariant::default();
        let stacked =
            AttentionModel::new(&mut all, 7, 6, variant, GateActivation::Sigmoid, &device);
        let mut alone_rngs = vec![rng(1, Stream::Init)];
        let alone = AttentionModel::new(
            &mut alone_rngs,
            7,
            6,
            variant,
            GateActivation::Sigmoid,
            &device,
        );

        let x = input(3, 2, 5, 7, &device);
        let x1 = x.clone().slice_dim(0, 1..2);
        let from_stack = stacked
            .forward_with_attention(x, None)
            .0
            .slice_dim(0, 1..2)
            .into_data();
        let from_alone = alone.forward_with_attention(x1, None).0.into_data();
        assert_eq!(from_stack, from_alone);
    }
}
