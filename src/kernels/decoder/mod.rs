//! The echo task's attention decoder, every score function (additive, dot, general, cosine) and
//! soft or hard attention, with its own backward pass (backpropagation through time). The
//! equations are the model's ([`AttentionDecoder`](crate::models::echo::AttentionDecoder)); this
//! computes them step by step in plain loops and small matrix products
//! ([`small_matmul`](super::matmul::small_matmul)): the forward pass in `forward`, the backward
//! pass in `backward`.
//!
//! Composed from burn's ops, a decoder step is some forty tracked ops on vectors of a few
//! hundred floats, and training E1 cost their bookkeeping (autodiff nodes, fresh buffers, a
//! libm call per activation), not their arithmetic. Here the whole decoding is one op; the
//! forward pass keeps its trace for the backward one, which takes each kernel's gradient in one
//! product over all steps. Each repeat is computed alone in the same order, so a repeat gets the same
//! bits whatever stack it trains in. The GPU keeps burn's ops: the model's step-by-step
//! decoding is this op's reference (a test in `models::attention_decoder` compares the two for
//! every variant).

mod backward;
mod forward;

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Shape;

use super::op::CpuOp;
use super::{CpuOps, on_cpu};
use crate::config::Score;

/// The decoder's tensors, in the order the op takes them (see
/// [`AttentionDecoder`](crate::models::echo::AttentionDecoder) for the symbols).
pub struct DecoderInputs {
    /// The encoder states `h_j`, `[R, B, T, H]`.
    pub states: Tensor<4>,
    /// The additive score's keys `h_j U_a + b_a`, `[R, B, T, U]`; `None` for the others (their
    /// keys are the states).
    pub keys: Option<Tensor<4>>,
    /// `s_0`, `[R, B, U]`.
    pub first: Tensor<3>,
    /// The additive score's `v_a` `[R, U, 1]`, or the cosine score's scale `g` `[R, 1, 1]`;
    /// `None` for dot and general.
    pub score: Option<Tensor<3>>,
    /// `[U_r | U_z | W_a | U_o]`, `[R, U, 2U + Q + V]` (`Q`: the query projection's width,
    /// `U` additive, `H` general, none for dot and cosine).
    pub from_state: Tensor<3>,
    /// `[W_r | W_z | W_p | W_o]` over `[C_r | C_z | C_p | C_o]`, `[R, V + H, 3U + V]`.
    pub from_input: Tensor<3>,
    /// `[b_r | b_z | b_p | b_o]`, `[R, 1, 3U + V]`.
    pub bias: Tensor<3>,
    /// `U_p`, `[R, U, U]`.
    pub proposal: Tensor<3>,
    /// Hard attention's Gumbel noise in training, `[R, B, T, T]` (step x position).
    pub noise: Option<Tensor<4>>,
}

/// The op: how the decoder scores and attends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decoding {
    pub score: Score,
    /// Hard attention's temperature (one encoder state per step: the straight-through
    /// Gumbel-softmax sample in training, the argmax at evaluation); `None` for soft attention.
    pub hard: Option<f32>,
}

/// Inputs the op takes, counting the placeholders of the absent ones.
const INPUTS: usize = 9;

/// The logits `[R, B, T, V]` and attention weights `[R, B, T, T]` of the decoding, side by side
/// in one tensor `[R, B, T, V + T]`, with its own backward pass. CPU backends only: elsewhere
/// the model decodes step by step with burn's ops.
pub fn attention_decoding(inputs: DecoderInputs, op: Decoding) -> Tensor<4> {
    let DecoderInputs {
        states,
        keys,
        first,
        score,
        from_state,
        from_input,
        bias,
        proposal,
        noise,
    } = inputs;
    let device = states.device();
    assert!(
        on_cpu(&device),
        "the fused decoder runs on the CPU backends only"
    );
    // Absent inputs are single zeros, one per repeat: no gradient reaches them.
    let r = states.dims()[0];
    let keys = keys.unwrap_or_else(|| Tensor::zeros([r, 1, 1, 1], &device));
    let score = score.unwrap_or_else(|| Tensor::zeros([r, 1, 1], &device));
    let noise = noise.unwrap_or_else(|| Tensor::zeros([r, 1, 1, 1], &device));
    Tensor::from_dispatch(<Dispatch as CpuOps>::attention_decoding(
        states.into_dispatch(),
        keys.into_dispatch(),
        first.into_dispatch(),
        score.into_dispatch(),
        from_state.into_dispatch(),
        from_input.into_dispatch(),
        bias.into_dispatch(),
        proposal.into_dispatch(),
        noise.into_dispatch(),
        op,
    ))
}

impl CpuOp<INPUTS> for Decoding {
    /// Each repeat's trace: the backward pass reads it instead of decoding again.
    type Saved = Vec<Trace>;

    fn output_shape(&self, shapes: &[Shape; INPUTS]) -> Shape {
        let s = Sizes::of(shapes, self);
        Shape::new([s.repeats, s.batch, s.time, s.outputs + s.time])
    }

    fn forward(
        &self,
        inputs: [&[f32]; INPUTS],
        shapes: &[Shape; INPUTS],
        out: &mut [f32],
    ) -> Vec<Trace> {
        forward::forward(&inputs, Sizes::of(shapes, self), out)
    }

    fn backward(
        &self,
        inputs: [&[f32]; INPUTS],
        shapes: &[Shape; INPUTS],
        traces: &Vec<Trace>,
        grad: &[f32],
    ) -> [Vec<f32>; INPUTS] {
        backward::backward(&inputs, grad, Sizes::of(shapes, self), traces)
    }
}

/// The sizes of one call: `repeats` decoders of `units` units over `batch` sequences of `time`
/// encoder states of width `encoded`, with `outputs` output classes; and the variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    pub repeats: usize,
    pub batch: usize,
    pub time: usize,
    pub encoded: usize,
    pub units: usize,
    pub outputs: usize,
    /// Width of the query projection in `from_state`: `U` additive, `H` general, else 0.
    pub query: usize,
    pub score: Score,
    pub hard: Option<f32>,
    /// Whether Gumbel noise is given (hard attention in training).
    pub noise: bool,
}

impl Sizes {
    /// The sizes of the inputs' shapes for `op` (checked).
    fn of(shapes: &[Shape; INPUTS], op: &Decoding) -> Self {
        let dims = |i: usize| shapes[i].to_vec();
        let (states, proposal, from_state) = (dims(0), dims(7), dims(4));
        assert!(
            states.len() == 4 && proposal.len() == 3 && from_state.len() == 3,
            "the decoder's states are [R, B, T, H] and its kernels [R, a, b]: {shapes:?}"
        );
        let [r, b, t, h] = [states[0], states[1], states[2], states[3]];
        let u = proposal[1];
        let query = match op.score {
            Score::Additive => u,
            Score::General => h,
            Score::Dot | Score::Cosine => {
                assert_eq!(
                    u, h,
                    "the {:?} score compares states of one width",
                    op.score
                );
                0
            }
        };
        assert!(
            from_state[2] > 2 * u + query,
            "the decoder has outputs: {shapes:?}"
        );
        let noise = op.hard.is_some() && dims(8) != [r, 1, 1, 1];
        let sizes = Self {
            repeats: r,
            batch: b,
            time: t,
            encoded: h,
            units: u,
            outputs: from_state[2] - 2 * u - query,
            query,
            score: op.score,
            hard: op.hard,
            noise,
        };
        let (v, w, sw) = (sizes.outputs, sizes.width(), sizes.state_width());
        let keys = if op.score == Score::Additive {
            vec![r, b, t, u]
        } else {
            vec![r, 1, 1, 1]
        };
        let score = match op.score {
            Score::Additive => vec![r, u, 1],
            _ => vec![r, 1, 1],
        };
        let noise = if sizes.noise {
            vec![r, b, t, t]
        } else {
            vec![r, 1, 1, 1]
        };
        let want: [Vec<usize>; INPUTS] = [
            vec![r, b, t, h],
            keys,
            vec![r, b, u],
            score,
            vec![r, u, sw],
            vec![r, v + h, w],
            vec![r, 1, w],
            vec![r, u, u],
            noise,
        ];
        for (i, want) in want.iter().enumerate() {
            assert_eq!(
                &dims(i),
                want,
                "the decoder's input {i} has the wrong shape"
            );
        }
        sizes
    }

    /// `3U + V`: the columns of the input kernels.
    pub(super) fn width(&self) -> usize {
        3 * self.units + self.outputs
    }

    /// `2U + Q + V`: the columns of `from_state`.
    pub(super) fn state_width(&self) -> usize {
        2 * self.units + self.query + self.outputs
    }

    /// Floats of the output `[R, B, T, V + T]`.
    pub(super) fn outputs(&self) -> usize {
        self.repeats * self.batch * self.time * (self.outputs + self.time)
    }

    /// Floats per repeat of each input, in the op's order.
    pub(super) fn per_repeat(&self) -> [usize; INPUTS] {
        let (b, t, h, u, v, w) = (
            self.batch,
            self.time,
            self.encoded,
            self.units,
            self.outputs,
            self.width(),
        );
        let additive = self.score == Score::Additive;
        [
            b * t * h,
            if additive { b * t * u } else { 1 },
            b * u,
            if additive { u } else { 1 },
            u * self.state_width(),
            (v + h) * w,
            w,
            u * u,
            if self.noise { b * t * t } else { 1 },
        ]
    }
}

/// One repeat's inputs.
pub(super) struct Repeat<'a> {
    pub(super) states: &'a [f32],
    pub(super) keys: &'a [f32],
    pub(super) first: &'a [f32],
    pub(super) score: &'a [f32],
    pub(super) from_state: &'a [f32],
    pub(super) from_input: &'a [f32],
    pub(super) bias: &'a [f32],
    pub(super) proposal: &'a [f32],
    pub(super) noise: &'a [f32],
}

impl<'a> Repeat<'a> {
    /// Repeat `r`'s slices of the inputs.
    pub(super) fn of(inputs: &[&'a [f32]; INPUTS], sizes: Sizes, r: usize) -> Self {
        let per = sizes.per_repeat();
        let slice = |i: usize| &inputs[i][r * per[i]..(r + 1) * per[i]];
        Self {
            states: slice(0),
            keys: slice(1),
            first: slice(2),
            score: slice(3),
            from_state: slice(4),
            from_input: slice(5),
            bias: slice(6),
            proposal: slice(7),
            noise: slice(8),
        }
    }
}

/// One repeat's decoding, step by step (each field holds `T` steps of `B` rows).
pub struct Trace {
    /// `s_{t-1}`, `[B, U]` per step.
    pub(super) state: Vec<f32>,
    /// `s_{t-1} [U_r | U_z | W_a | U_o]`, `[B, 2U + Q + V]`.
    pub(super) from_state: Vec<f32>,
    /// Additive: `tanh(q_t + k_j)`, `[B, T, U]`.
    pub(super) activations: Vec<f32>,
    /// Cosine: the cosines `[B, T]`, and the norms `[B, 1 + T]` (the query's, then each
    /// state's).
    pub(super) cosines: Vec<f32>,
    pub(super) norms: Vec<f32>,
    /// Hard attention in training: the softmax the gradient flows through, `[B, T]`.
    pub(super) soft: Vec<f32>,
    /// `a_t`, `[B, T]`.
    pub(super) weights: Vec<f32>,
    /// `[y_{t-1}; c_t]`, `[B, V + H]`.
    pub(super) input: Vec<f32>,
    /// `[y_{t-1}; c_t] [W; C] + b`, `[B, 3U + V]`.
    pub(super) from_input: Vec<f32>,
    /// `[r_t | z_t]`, `[B, 2U]`.
    pub(super) gates: Vec<f32>,
    /// `r_t * s_{t-1}`, `[B, U]`.
    pub(super) reset_state: Vec<f32>,
    /// `p_t`, `[B, U]`.
    pub(super) proposal: Vec<f32>,
    /// `y_t`, `[B, V]`.
    pub(super) output: Vec<f32>,
}

/// Below this product of norms a cosine's denominator is held (as burn's `clamp_min`).
pub(super) const COSINE_FLOOR: f32 = 1e-12;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{assert_close, assert_same_bits, spread};
    use crate::machine::SimdLevel;

    /// Two repeats of two sequences of four steps, for every score and attention (hard
    /// attention with and without noise); dot and cosine compare states of one width.
    fn variants() -> Vec<Sizes> {
        let base = |score, hard, noise| {
            let encoded = if matches!(score, Score::Dot | Score::Cosine) {
                6
            } else {
                5
            };
            let query = match score {
                Score::Additive => 6,
                Score::General => encoded,
                Score::Dot | Score::Cosine => 0,
            };
            Sizes {
                repeats: 2,
                batch: 2,
                time: 4,
                encoded,
                units: 6,
                outputs: 7,
                query,
                score,
                hard,
                noise,
            }
        };
        let mut all: Vec<Sizes> = [Score::Additive, Score::Dot, Score::General, Score::Cosine]
            .into_iter()
            .map(|score| base(score, None, false))
            .collect();
        all.push(base(Score::Additive, Some(0.5), true));
        all.push(base(Score::Cosine, Some(1.0), true));
        all.push(base(Score::Dot, Some(1.0), false));
        all
    }

    /// Inputs of `sizes`, spread enough for peaked softmaxes.
    fn inputs(sizes: Sizes) -> [Vec<f32>; INPUTS] {
        let per = sizes.per_repeat();
        std::array::from_fn(|i| {
            spread(
                sizes.repeats * per[i],
                [7919, 104_729, 31, 13, 61, 17, 89, 41, 53][i],
                if i == 8 { 0.05 } else { 0.02 },
            )
        })
    }

    fn run(inputs: &[Vec<f32>; INPUTS], s: Sizes, level: SimdLevel) -> (Vec<f32>, Vec<Vec<f32>>) {
        let slices: [&[f32]; INPUTS] = std::array::from_fn(|i| inputs[i].as_slice());
        let mut out = vec![0.0; s.outputs()];
        let traces = run_at(level, || forward::forward_portable(&slices, s, &mut out));
        let grad = spread(out.len(), 7, 0.03);
        let grads = run_at(level, || {
            backward::backward_portable(&slices, &grad, s, &traces)
        });
        for (i, (g, x)) in grads.iter().zip(inputs).enumerate() {
            assert_eq!(
                g.len(),
                x.len(),
                "input {i}'s gradient has its input's size"
            );
        }
        // Decoding again gives the kept traces' gradients.
        let traces_again = run_at(level, || {
            forward::forward_portable(&slices, s, &mut out.clone())
        });
        let again = run_at(level, || {
            backward::backward_portable(&slices, &grad, s, &traces_again)
        });
        assert_eq!(grads, again);
        (out, grads.to_vec())
    }

    /// Every SIMD level this CPU runs gives the portable build's bits, forward and backward,
    /// for every variant.
    #[test]
    fn every_simd_level_gives_the_same_bits() {
        for s in variants() {
            let inputs = inputs(s);
            let (out, grads) = run(&inputs, s, SimdLevel::Portable);
            for level in SimdLevel::supported() {
                let (level_out, level_grads) = run(&inputs, s, level);
                let what = format!("{:?} {:?} at {level}", s.score, s.hard);
                assert_same_bits(&level_out, &out, &format!("{what}: output"));
                for (i, (g, p)) in level_grads.iter().zip(&grads).enumerate() {
                    assert_same_bits(g, p, &format!("{what}: input {i}'s gradient"));
                }
            }
        }
    }

    /// Hard attention's weights are one-hot: at the noisy scores' maximum in training, at the
    /// scores' maximum at evaluation.
    #[test]
    fn hard_attention_picks_one_state_per_step() {
        for s in variants().into_iter().filter(|s| s.hard.is_some()) {
            let inputs = inputs(s);
            let (out, _) = run(&inputs, s, SimdLevel::Portable);
            let width = s.outputs + s.time;
            for row in out.chunks_exact(width) {
                let weights = &row[s.outputs..];
                assert_eq!(
                    weights.iter().filter(|w| **w == 1.0).count(),
                    1,
                    "{weights:?}"
                );
                assert_eq!(weights.iter().filter(|w| **w == 0.0).count(), s.time - 1);
            }
        }
    }

    /// Every input's gradient against central finite differences of the loss
    /// `sum(out * grad)`, in f64 around the f32 computation: a wrong term in the handwritten
    /// backward pass shows as a gradient off by far more than the differences' error. (Soft
    /// attention only: hard attention's forward pass is piecewise constant in the scores, and
    /// its straight-through gradient is not its derivative; the model's tests compare it with
    /// burn's autodiff.)
    #[test]
    fn gradients_match_finite_differences() {
        for s in variants().into_iter().filter(|s| s.hard.is_none()) {
            let inputs = inputs(s);
            let (_, grads) = run(&inputs, s, SimdLevel::Portable);
            let grad_out = spread(s.outputs(), 7, 0.03);
            let loss = |inputs: &[Vec<f32>; INPUTS]| -> f64 {
                let slices: [&[f32]; INPUTS] = std::array::from_fn(|i| inputs[i].as_slice());
                let mut out = vec![0.0; s.outputs()];
                forward::forward_portable(&slices, s, &mut out);
                out.iter()
                    .zip(&grad_out)
                    .map(|(o, g)| f64::from(*o) * f64::from(*g))
                    .sum()
            };
            let h = 1e-2f32;
            for (i, input) in inputs.iter().enumerate() {
                // A few entries of each input, spread over it.
                let picks: Vec<usize> = (0..5).map(|k| (k * 7919 + i) % input.len()).collect();
                let (mut numeric, mut analytic) = (Vec::new(), Vec::new());
                for &j in &picks {
                    let (mut up, mut down) = (inputs.clone(), inputs.clone());
                    up[i][j] += h;
                    down[i][j] -= h;
                    numeric.push(((loss(&up) - loss(&down)) / (2.0 * f64::from(h))) as f32);
                    analytic.push(grads[i][j]);
                }
                if numeric.iter().all(|v| v.abs() < 1e-4) {
                    // An input whose picked entries do not matter (zero rows, placeholders):
                    // then the backward pass must not invent a gradient either.
                    assert!(
                        analytic.iter().all(|v| v.abs() < 1e-4),
                        "{:?} input {i}",
                        s.score
                    );
                    continue;
                }
                let what = format!("{:?}: input {i}'s gradient", s.score);
                assert_close(&analytic, &numeric, 2e-2, &what);
            }
        }
    }
}
