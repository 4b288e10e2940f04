//! E1's two encoder-decoders for the echo task, stacked over repeats (see [`super::stacked`]).
//!
//! Shapes: `R` repeats, `B` sequences per repeat, `T = n_in` steps, `V = cardinality` one-hot
//! features, `H` hidden units. Every model maps one-hot inputs `[R, B, T, V]` to per-step
//! logits `[R, B, T, V]`; the softmax of the logits is the Keras model's output.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax, tanh};
use rand::rngs::StdRng;

use super::stacked::{StackedLinear, StackedLstm, concat_columns, stacked_const, stacked_param};
use crate::init::{glorot_uniform, orthogonal};

/// Baseline: LSTM encoder -> its last hidden state repeated `T` times -> LSTM decoder returning
/// every step -> per-step dense layer -> softmax (Keras `RepeatVector` + `TimeDistributed`).
#[derive(Module, Debug)]
pub struct EncoderDecoder {
    encoder: StackedLstm,
    decoder: StackedLstm,
    output: StackedLinear,
}

impl EncoderDecoder {
    pub fn new(rngs: &mut [StdRng], features: usize, hidden: usize, device: &Device) -> Self {
        Self {
            encoder: StackedLstm::new(rngs, features, hidden, device),
            decoder: StackedLstm::new(rngs, hidden, hidden, device),
            output: StackedLinear::new(rngs, hidden, features, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [r, b, t, v] = x.dims();
        let encoded = self.encoder.forward(x).slice_dim(2, t - 1..t); // [R, B, 1, H]
        // The decoder sees the same vector at every step, so its input projection is the same
        // at every step too: compute it once.
        let projected = self.decoder.project_inputs(encoded).squeeze_dim::<3>(2);
        let mut state = self.decoder.zero_state(b);
        let mut states = Vec::with_capacity(t);
        for _ in 0..t {
            state = self.decoder.step(projected.clone(), state);
            states.push(state.0.clone());
        }
        let h = self.decoder.hidden();
        let states = Tensor::stack::<4>(states, 2).reshape([r, b * t, h]);
        self.output.forward(states).reshape([r, b, t, v])
    }
}

/// LSTM encoder keeping every state, then the Bahdanau-style attention decoder of E1.
#[derive(Module, Debug)]
pub struct AttentionModel {
    encoder: StackedLstm,
    decoder: AttentionDecoder,
}

impl AttentionModel {
    pub fn new(rngs: &mut [StdRng], features: usize, hidden: usize, device: &Device) -> Self {
        Self {
            encoder: StackedLstm::new(rngs, features, hidden, device),
            decoder: AttentionDecoder::new(rngs, hidden, hidden, features, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_with_attention(x).0
    }

    /// Logits `[R, B, T, V]` and attention weights `[R, B, T_out, T_in]`.
    pub fn forward_with_attention(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let states = self.encoder.forward(x);
        self.decoder.forward(states)
    }
}

/// The attention decoder of E1 (after the Keras `AttentionDecoder` layer the article uses):
///
/// ```text
/// e_tj = v_a . tanh(s_{t-1} W_a + h_j U_a + b_a)    a_t = softmax_j(e_t)    c_t = sum_j a_tj h_j
/// r_t  = sigmoid(y_{t-1} W_r + s_{t-1} U_r + c_t C_r + b_r)
/// z_t  = sigmoid(y_{t-1} W_z + s_{t-1} U_z + c_t C_z + b_z)
/// p_t  = tanh   (y_{t-1} W_p + (r_t * s_{t-1}) U_p + c_t C_p + b_p)
/// s_t  = (1 - z_t) * s_{t-1} + z_t * p_t
/// y_t  = softmax(y_{t-1} W_o + s_{t-1} U_o + c_t C_o + b_o)
/// ```
///
/// with `y_0 = 0` and `s_0 = tanh(h_1 W_s)`; the decoder feeds back its own softmax output
/// (no teacher forcing). Kernels that multiply the same vector are fused so that a step costs
/// few ops (at batch size 1 the op count, not the arithmetic, sets the speed, and each weight
/// tensor costs Adam a dozen ops per step): `[y; c]` multiplies `[r | z | p | o]` blocks, `s`
/// multiplies `[r | z | a | o]`, and the encoder states multiply `[U_a | W_s]`.
///
/// Initialisation: every kernel glorot-uniform on its own shape, except the ones applied to
/// the recurrent state `s` (`U_r, U_z, U_p, U_o`), which are orthogonal; biases zero. The Keras
/// layer's exact choice per kernel varies between its published versions; this is the
/// glorot/orthogonal split Keras' own recurrent layers use.
#[derive(Module, Debug)]
pub struct AttentionDecoder {
    /// `[U_a | W_s]`, `[R, H, 2U]`.
    from_encoder: Param<Tensor<3>>,
    /// `b_a`, `[R, 1, U]`.
    key_bias: Param<Tensor<3>>,
    /// `v_a` as a column, `[R, U, 1]`.
    score: Param<Tensor<3>>,
    /// `[U_r | U_z | W_a | U_o]`, `[R, U, 3U + V]`.
    from_state: Param<Tensor<3>>,
    /// `[W_r | W_z | W_p | W_o]` over `[C_r | C_z | C_p | C_o]`, `[R, V + H, 3U + V]`: the
    /// kernels of the previous output `y` and of the context `c`.
    from_input: Param<Tensor<3>>,
    /// `[b_r | b_z | b_p | b_o]`, `[R, 1, 3U + V]`.
    bias: Param<Tensor<3>>,
    /// `U_p`, `[R, U, U]`.
    proposal: Param<Tensor<3>>,
}

impl AttentionDecoder {
    pub fn new(
        rngs: &mut [StdRng],
        encoded: usize,
        units: usize,
        outputs: usize,
        device: &Device,
    ) -> Self {
        let (h, u, v) = (encoded, units, outputs);
        let wide = 3 * u + v;
        let glorot = |a, b| move |rng: &mut StdRng| glorot_uniform(rng, a, b);
        Self {
            from_encoder: stacked_param(rngs, [h, 2 * u], device, |rng| {
                let ws = glorot(h, u)(rng);
                let ua = glorot(h, u)(rng);
                concat_columns(h, &[(u, ua), (u, ws)])
            }),
            key_bias: stacked_const(rngs.len(), &vec![0.0; u], [1, u], device),
            score: stacked_param(rngs, [u, 1], device, |rng| {
                // Keras' glorot on a vector of `u` units: fan_in = fan_out = u.
                crate::init::uniform(rng, u, (6.0 / (2 * u) as f64).sqrt() as f32)
            }),
            from_state: stacked_param(rngs, [u, wide], device, |rng| {
                let ur = orthogonal(rng, u, u);
                let uz = orthogonal(rng, u, u);
                let wa = glorot_uniform(rng, u, u);
                let uo = orthogonal(rng, u, v);
                concat_columns(u, &[(u, ur), (u, uz), (u, wa), (v, uo)])
            }),
            from_input: stacked_param(rngs, [v + h, wide], device, |rng| {
                // Rows: y's kernels, then c's (a vertical concatenation is an append).
                let mut kernel = Vec::with_capacity((v + h) * wide);
                for rows in [v, h] {
                    let blocks: Vec<_> = [u, u, u, v]
                        .into_iter()
                        .map(|cols| (cols, glorot_uniform(rng, rows, cols)))
                        .collect();
                    kernel.extend(concat_columns(rows, &blocks));
                }
                kernel
            }),
            bias: stacked_const(rngs.len(), &vec![0.0; wide], [1, wide], device),
            proposal: stacked_param(rngs, [u, u], device, |rng| orthogonal(rng, u, u)),
        }
    }

    /// Decodes `T` steps from encoder states `[R, B, T, H]`. Returns the logits `[R, B, T, V]`
    /// (their softmax is `y_t`) and the attention weights `[R, B, T, T]` (step x position).
    pub fn forward(&self, states: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [r, b, t, h] = states.dims();
        let u = self.proposal.dims()[1];
        let v = self.from_state.dims()[2] - 3 * u;
        let device = states.device();

        // h_j U_a (+ b_a) for every position, and h_1 W_s, from one matmul: [R, B, T, 2U].
        let projected = states
            .clone()
            .reshape([r, b * t, h])
            .matmul(self.from_encoder.val())
            .reshape([r, b, t, 2 * u]);
        let keys = projected.clone().slice_dim(3, 0..u) + self.key_bias.val().unsqueeze_dim::<4>(1);
        let first = projected
            .slice_dim(2, 0..1)
            .slice_dim(3, u..2 * u)
            .reshape([r, b, u]);
        let mut s = tanh(first);
        let mut y = Tensor::<3>::zeros([r, b, v], &device);

        let mut logits = Vec::with_capacity(t);
        let mut weights = Vec::with_capacity(t);
        for _ in 0..t {
            let from_s = s.clone().matmul(self.from_state.val()); // [R, B, 3U + V]
            let block = |x: &Tensor<3>, k: usize| x.clone().slice_dim(2, k * u..(k + 1) * u);

            // Attention over the encoder positions.
            let query = block(&from_s, 2).unsqueeze_dim::<4>(2); // [R, B, 1, U]
            let energy = tanh(keys.clone() + query)
                .reshape([r, b * t, u])
                .matmul(self.score.val())
                .reshape([r, b, t]);
            let a = softmax(energy, 2); // [R, B, T]
            let context = a
                .clone()
                .unsqueeze_dim::<4>(2)
                .matmul(states.clone())
                .reshape([r, b, h]); // [R, B, H]

            // Gates, candidate state and output.
            let from_yc =
                Tensor::cat(vec![y, context], 2).matmul(self.from_input.val()) + self.bias.val(); // [R, B, 3U + V]
            let rz = sigmoid(
                from_yc.clone().slice_dim(2, 0..2 * u) + from_s.clone().slice_dim(2, 0..2 * u),
            );
            let reset = rz.clone().slice_dim(2, 0..u);
            let update = rz.slice_dim(2, u..2 * u);
            let proposal =
                tanh(block(&from_yc, 2) + (reset * s.clone()).matmul(self.proposal.val()));
            let out =
                from_yc.slice_dim(2, 3 * u..3 * u + v) + from_s.slice_dim(2, 3 * u..3 * u + v);

            y = softmax(out.clone(), 2);
            s = s.clone() + update * (proposal - s);
            logits.push(out);
            weights.push(a);
        }
        (Tensor::stack(logits, 2), Tensor::stack(weights, 2))
    }
}

/// Either E1 model, built from a config.
#[allow(clippy::large_enum_variant)] // a handful exist at a time; boxing would buy nothing
#[derive(Module, Debug)]
pub enum EchoModel {
    Baseline(EncoderDecoder),
    Attention(AttentionModel),
}

impl EchoModel {
    /// Logits `[R, B, T, V]` for one-hot inputs `[R, B, T, V]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            EchoModel::Baseline(m) => m.forward(x),
            EchoModel::Attention(m) => m.forward(x),
        }
    }

    /// Attention weights `[R, B, T_out, T_in]`, for the models that have them.
    pub fn attention(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        match self {
            EchoModel::Baseline(_) => None,
            EchoModel::Attention(m) => Some(m.forward_with_attention(x).1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{Stream, rng};

    fn rngs(n: usize) -> Vec<StdRng> {
        (0..n).map(|i| rng(i as u64, Stream::Init)).collect()
    }

    fn input(r: usize, b: usize, t: usize, v: usize, device: &Device) -> Tensor<4> {
        let data: Vec<f32> = (0..r * b * t * v)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0)
            .collect();
        Tensor::from_data(TensorData::new(data, [r, b, t, v]), device)
    }

    #[test]
    fn attention_weights_are_distributions_over_encoder_positions() {
        let device = Device::flex();
        let model = AttentionModel::new(&mut rngs(2), 7, 6, &device);
        let (logits, weights) = model.forward_with_attention(input(2, 3, 5, 7, &device));
        assert_eq!(logits.dims(), [2, 3, 5, 7]);
        assert_eq!(weights.dims(), [2, 3, 5, 5]);
        let values = weights.clone().into_data().try_into_vec::<f32>().unwrap();
        assert!(values.iter().all(|&w| (0.0..=1.0).contains(&w)));
        let sums = weights
            .sum_dim(3)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
    }

    #[test]
    fn baseline_maps_inputs_to_per_step_logits() {
        let device = Device::flex();
        let model = EncoderDecoder::new(&mut rngs(3), 7, 6, &device);
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
        let stacked = AttentionModel::new(&mut all, 7, 6, &device);
        let mut alone_rngs = vec![rng(1, Stream::Init)];
        let alone = AttentionModel::new(&mut alone_rngs, 7, 6, &device);

        let x = input(3, 2, 5, 7, &device);
        let x1 = x.clone().slice_dim(0, 1..2);
        let from_stack = stacked.forward(x).slice_dim(0, 1..2).into_data();
        let from_alone = alone.forward(x1).into_data();
        assert_eq!(from_stack, from_alone);
    }

    /// A hand-computed case: with all-zero weights every score is equal, so attention is
    /// uniform, and the first output is the softmax of a zero vector.
    #[test]
    fn zero_weights_give_uniform_attention() {
        let device = Device::flex();
        let model = AttentionModel::new(&mut rngs(1), 4, 3, &device);
        let zero = |p: Param<Tensor<3>>| Param::from_tensor(p.val().zeros_like());
        let decoder = AttentionDecoder {
            score: zero(model.decoder.score.clone()),
            ..model.decoder
        };
        let states = input(1, 1, 4, 3, &device);
        let (logits, weights) = decoder.forward(states);
        let w = weights.into_data().try_into_vec::<f32>().unwrap();
        assert!(w.iter().all(|x| (x - 0.25).abs() < 1e-6), "{w:?}");
        assert_eq!(logits.dims(), [1, 1, 4, 4]);
    }
}
