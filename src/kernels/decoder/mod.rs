//! E1's attention decoder (additive score, soft attention) with its own backward pass
//! (backpropagation through time). The equations are the model's
//! ([`AttentionDecoder`](crate::models::echo::AttentionDecoder)); this computes them step by
//! step in plain loops and small matrix products ([`small_matmul`]), the backward pass in
//! `backward`.
//!
//! Composed from burn's ops, a decoder step is some forty tracked ops on vectors of a few
//! hundred floats, and training E1 cost their bookkeeping (autodiff nodes, fresh buffers, a
//! libm call per activation), not their arithmetic. Here the whole decoding is one op; the
//! backward pass recomputes the forward one and takes each kernel's gradient in one product
//! over all steps. Each repeat is computed alone in the same order, so a repeat gets the same
//! bits whatever stack it trains in. The other score functions and hard attention (E4), and
//! the GPU, keep burn's ops: the model's general decoding is this op's reference (a test in
//! `models::echo` compares the two).

mod backward;

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Shape;

use super::math::{exp, sigmoid, tanh};
use super::matmul::{Operand, small_matmul};
use super::op::CpuOp;
use super::simd::{dot, simd_fn};
use super::{CpuOps, on_cpu};

/// The decoder's tensors, in the order the op takes them (see
/// [`AttentionDecoder`](crate::models::echo::AttentionDecoder) for the symbols).
pub struct DecoderInputs {
    /// The encoder states `h_j`, `[R, B, T, H]`.
    pub states: Tensor<4>,
    /// `h_j U_a + b_a`, `[R, B, T, U]`.
    pub keys: Tensor<4>,
    /// `s_0`, `[R, B, U]`.
    pub first: Tensor<3>,
    /// `v_a`, `[R, U, 1]`.
    pub score: Tensor<3>,
    /// `[U_r | U_z | W_a | U_o]`, `[R, U, 3U + V]`.
    pub from_state: Tensor<3>,
    /// `[W_r | W_z | W_p | W_o]` over `[C_r | C_z | C_p | C_o]`, `[R, V + H, 3U + V]`.
    pub from_input: Tensor<3>,
    /// `[b_r | b_z | b_p | b_o]`, `[R, 1, 3U + V]`.
    pub bias: Tensor<3>,
    /// `U_p`, `[R, U, U]`.
    pub proposal: Tensor<3>,
}

/// The op: E1's decoding of every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decoding;

/// The logits `[R, B, T, V]` and attention weights `[R, B, T, T]` of the decoding, side by side
/// in one tensor `[R, B, T, V + T]`, with its own backward pass. CPU backends only: elsewhere
/// the model decodes step by step with burn's ops.
pub fn attention_decoding(inputs: DecoderInputs) -> Tensor<4> {
    let DecoderInputs {
        states,
        keys,
        first,
        score,
        from_state,
        from_input,
        bias,
        proposal,
    } = inputs;
    assert!(
        on_cpu(&states.device()),
        "the fused decoder runs on the CPU backends only"
    );
    Tensor::from_dispatch(<Dispatch as CpuOps>::attention_decoding(
        states.into_dispatch(),
        keys.into_dispatch(),
        first.into_dispatch(),
        score.into_dispatch(),
        from_state.into_dispatch(),
        from_input.into_dispatch(),
        bias.into_dispatch(),
        proposal.into_dispatch(),
        Decoding,
    ))
}

impl CpuOp<8> for Decoding {
    /// Each repeat's trace: the backward pass reads it instead of decoding again.
    type Saved = Vec<Trace>;

    fn output_shape(&self, shapes: &[Shape; 8]) -> Shape {
        let s = Sizes::of(shapes);
        Shape::new([s.repeats, s.batch, s.time, s.outputs + s.time])
    }

    fn forward(&self, inputs: [&[f32]; 8], shapes: &[Shape; 8], out: &mut [f32]) -> Vec<Trace> {
        forward(&inputs, Sizes::of(shapes), out)
    }

    fn backward(
        &self,
        inputs: [&[f32]; 8],
        shapes: &[Shape; 8],
        traces: &Vec<Trace>,
        grad: &[f32],
        mut grads: [&mut [f32]; 8],
    ) {
        backward::backward(&inputs, grad, Sizes::of(shapes), Some(traces), &mut grads);
    }
}

/// The sizes of one call: `repeats` decoders of `units` units over `batch` sequences of `time`
/// encoder states of width `encoded`, with `outputs` output classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    pub repeats: usize,
    pub batch: usize,
    pub time: usize,
    pub encoded: usize,
    pub units: usize,
    pub outputs: usize,
}

impl Sizes {
    /// The sizes of the eight inputs' shapes (checked).
    fn of(shapes: &[Shape; 8]) -> Self {
        let dims = |i: usize| shapes[i].to_vec();
        let (states, proposal, from_state) = (dims(0), dims(7), dims(4));
        assert!(
            states.len() == 4 && proposal.len() == 3 && from_state.len() == 3,
            "the decoder's states are [R, B, T, H] and its kernels [R, a, b]: {shapes:?}"
        );
        let [r, b, t, h] = [states[0], states[1], states[2], states[3]];
        let u = proposal[1];
        let width = from_state[2];
        assert!(width > 3 * u, "the decoder has outputs: {shapes:?}");
        let sizes = Self {
            repeats: r,
            batch: b,
            time: t,
            encoded: h,
            units: u,
            outputs: width - 3 * u,
        };
        let v = sizes.outputs;
        let want: [&[usize]; 8] = [
            &[r, b, t, h],
            &[r, b, t, u],
            &[r, b, u],
            &[r, u, 1],
            &[r, u, width],
            &[r, v + h, width],
            &[r, 1, width],
            &[r, u, u],
        ];
        for (i, want) in want.iter().enumerate() {
            assert_eq!(
                dims(i),
                *want,
                "the decoder's input {i} has the wrong shape"
            );
        }
        sizes
    }

    /// `3U + V`: the columns of every kernel but `U_p`.
    pub(super) fn width(&self) -> usize {
        3 * self.units + self.outputs
    }

    /// Floats of the output `[R, B, T, V + T]`.
    pub(super) fn outputs(&self) -> usize {
        self.repeats * self.batch * self.time * (self.outputs + self.time)
    }

    /// Floats per repeat of each input, in the op's order.
    pub(super) fn per_repeat(&self) -> [usize; 8] {
        let (b, t, h, u, v, w) = (
            self.batch,
            self.time,
            self.encoded,
            self.units,
            self.outputs,
            self.width(),
        );
        [b * t * h, b * t * u, b * u, u, u * w, (v + h) * w, w, u * u]
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
}

impl<'a> Repeat<'a> {
    /// Repeat `r`'s slices of the eight inputs.
    pub(super) fn of(inputs: &[&'a [f32]; 8], sizes: Sizes, r: usize) -> Self {
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
        }
    }
}

/// One repeat's decoding, step by step (each field holds `T` steps of `B` rows).
pub struct Trace {
    /// `s_{t-1}`, `[B, U]` per step.
    pub(super) state: Vec<f32>,
    /// `s_{t-1} [U_r | U_z | W_a | U_o]`, `[B, 3U + V]`.
    pub(super) from_state: Vec<f32>,
    /// `tanh(q_t + k_j)`, `[B, T, U]`.
    pub(super) activations: Vec<f32>,
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

/// `x` replaced by its softmax.
#[inline(always)]
fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in x.iter_mut() {
        *x = exp(*x - max);
        sum += *x;
    }
    for x in x.iter_mut() {
        *x /= sum;
    }
}

/// Runs one repeat's decoding, writing each step's logits and weights through
/// `store(t, b, logits, weights)`; returns the trace.
#[inline(always)]
pub(super) fn decode(
    x: &Repeat,
    s: Sizes,
    mut store: impl FnMut(usize, usize, &[f32], &[f32]),
) -> Trace {
    let (b, t, h, u, v, w) = (s.batch, s.time, s.encoded, s.units, s.outputs, s.width());
    let steps = |n: usize| vec![0.0f32; t * b * n];
    let mut trace = Trace {
        state: steps(u),
        from_state: steps(w),
        activations: steps(t * u),
        weights: steps(t),
        input: steps(v + h),
        from_input: steps(w),
        gates: steps(2 * u),
        reset_state: steps(u),
        proposal: steps(u),
        output: steps(v),
    };
    let mut state = x.first.to_vec();
    let mut logits = vec![0.0f32; v];
    for step in 0..t {
        let range = |n: usize| step * b * n..(step + 1) * b * n;
        trace.state[range(u)].copy_from_slice(&state);
        let fs = &mut trace.from_state[range(w)];
        small_matmul(
            (fs, w),
            (b, w, u),
            Operand::rows(&state, u),
            Operand::rows(x.from_state, w),
            false,
        );
        let fs = &trace.from_state[range(w)];
        for row in 0..b {
            // Attention: e_j = v . tanh(q + k_j), a = softmax(e), c = sum_j a_j h_j.
            let query = &fs[row * w + 2 * u..row * w + 3 * u];
            let activations = &mut trace.activations[range(t * u)][row * t * u..(row + 1) * t * u];
            let weights = &mut trace.weights[range(t)][row * t..(row + 1) * t];
            for j in 0..t {
                let key = &x.keys[(row * t + j) * u..][..u];
                let act = &mut activations[j * u..(j + 1) * u];
                for ((a, q), k) in act.iter_mut().zip(query).zip(key) {
                    *a = tanh(q + k);
                }
                weights[j] = dot(act, x.score);
            }
            softmax(weights);
            let input = &mut trace.input[range(v + h)][row * (v + h)..(row + 1) * (v + h)];
            if step > 0 {
                let previous = &trace.output[(step - 1) * b * v..step * b * v];
                input[..v].copy_from_slice(&previous[row * v..(row + 1) * v]);
            }
            let context = &mut input[v..];
            context.fill(0.0);
            for (j, a) in weights.iter().enumerate() {
                let state_j = &x.states[(row * t + j) * h..][..h];
                for (c, s) in context.iter_mut().zip(state_j) {
                    *c = a.mul_add(*s, *c);
                }
            }
        }
        // [y; c] [W; C] + b
        let fi = &mut trace.from_input[range(w)];
        for row in fi.chunks_exact_mut(w) {
            row.copy_from_slice(x.bias);
        }
        small_matmul(
            (fi, w),
            (b, w, v + h),
            Operand::rows(&trace.input[range(v + h)], v + h),
            Operand::rows(x.from_input, w),
            true,
        );
        let fi = &trace.from_input[range(w)];
        // r, z = sigmoid(...); the proposal's argument starts as its input part.
        let mut proposal = vec![0.0f32; b * u];
        for row in 0..b {
            let (fs, fi) = (&fs[row * w..(row + 1) * w], &fi[row * w..(row + 1) * w]);
            let gates = &mut trace.gates[range(2 * u)][row * 2 * u..(row + 1) * 2 * u];
            for k in 0..2 * u {
                gates[k] = sigmoid(fi[k] + fs[k]);
            }
            let reset_state = &mut trace.reset_state[range(u)][row * u..(row + 1) * u];
            for k in 0..u {
                reset_state[k] = gates[k] * state[row * u + k];
            }
            proposal[row * u..(row + 1) * u].copy_from_slice(&fi[2 * u..3 * u]);
        }
        small_matmul(
            (&mut proposal, u),
            (b, u, u),
            Operand::rows(&trace.reset_state[range(u)], u),
            Operand::rows(x.proposal, u),
            true,
        );
        for row in 0..b {
            let (fs, fi) = (&fs[row * w..(row + 1) * w], &fi[row * w..(row + 1) * w]);
            let gates = &trace.gates[range(2 * u)][row * 2 * u..(row + 1) * 2 * u];
            let p = &mut trace.proposal[range(u)][row * u..(row + 1) * u];
            for k in 0..u {
                p[k] = tanh(proposal[row * u + k]);
                let s = &mut state[row * u + k];
                *s += gates[u + k] * (p[k] - *s);
            }
            for k in 0..v {
                logits[k] = fi[3 * u + k] + fs[3 * u + k];
            }
            let y = &mut trace.output[range(v)][row * v..(row + 1) * v];
            y.copy_from_slice(&logits);
            softmax(y);
            store(
                step,
                row,
                &logits,
                &trace.weights[range(t)][row * t..(row + 1) * t],
            );
        }
    }
    trace
}

simd_fn! {
    /// The forward pass on slices: `out` `[R, B, T, V + T]` from the eight inputs; returns each
    /// repeat's trace.
    pub fn forward(inputs: &[&[f32]; 8], s: Sizes, out: &mut [f32]) -> Vec<Trace> =
        forward_portable;
}

#[inline(always)]
fn forward_portable(inputs: &[&[f32]; 8], s: Sizes, out: &mut [f32]) -> Vec<Trace> {
    assert_eq!(out.len(), s.outputs());
    let (t, width) = (s.time, s.outputs + s.time);
    out.chunks_exact_mut(s.batch * t * width)
        .enumerate()
        .map(|(r, out)| {
            decode(
                &Repeat::of(inputs, s, r),
                s,
                |step, row, logits, weights| {
                    let out = &mut out[(row * t + step) * width..][..width];
                    out[..s.outputs].copy_from_slice(logits);
                    out[s.outputs..].copy_from_slice(weights);
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{assert_close, assert_same_bits, spread};
    use crate::machine::SimdLevel;

    const SIZES: Sizes = Sizes {
        repeats: 2,
        batch: 2,
        time: 4,
        encoded: 5,
        units: 6,
        outputs: 7,
    };

    /// Inputs of [`SIZES`], spread enough for peaked softmaxes.
    fn inputs() -> [Vec<f32>; 8] {
        let per = SIZES.per_repeat();
        std::array::from_fn(|i| {
            spread(
                SIZES.repeats * per[i],
                [7919, 104_729, 31, 13, 61, 17, 89, 41][i],
                0.02,
            )
        })
    }

    fn run(inputs: &[Vec<f32>; 8], level: SimdLevel) -> (Vec<f32>, Vec<Vec<f32>>) {
        let slices: [&[f32]; 8] = std::array::from_fn(|i| inputs[i].as_slice());
        let mut out = vec![0.0; SIZES.outputs()];
        let traces = run_at(level, || forward_portable(&slices, SIZES, &mut out));
        let grad = spread(out.len(), 7, 0.03);
        let mut grads: [Vec<f32>; 8] = std::array::from_fn(|i| vec![0.0; inputs[i].len()]);
        let mut slices_mut: [&mut [f32]; 8] = grads.each_mut().map(Vec::as_mut_slice);
        run_at(level, || {
            backward::backward_portable(&slices, &grad, SIZES, Some(&traces), &mut slices_mut)
        });
        // Decoding again gives the kept traces' gradients.
        let mut again: [Vec<f32>; 8] = std::array::from_fn(|i| vec![0.0; inputs[i].len()]);
        let mut again_mut: [&mut [f32]; 8] = again.each_mut().map(Vec::as_mut_slice);
        run_at(level, || {
            backward::backward_portable(&slices, &grad, SIZES, None, &mut again_mut)
        });
        assert_eq!(grads, again);
        (out, grads.to_vec())
    }

    /// Every SIMD level this CPU runs gives the portable build's bits, forward and backward.
    #[test]
    fn every_simd_level_gives_the_same_bits() {
        let inputs = inputs();
        let (out, grads) = run(&inputs, SimdLevel::Portable);
        for level in SimdLevel::supported() {
            let (level_out, level_grads) = run(&inputs, level);
            assert_same_bits(&level_out, &out, &format!("{level} output"));
            for (i, (g, p)) in level_grads.iter().zip(&grads).enumerate() {
                assert_same_bits(g, p, &format!("{level} input {i}'s gradient"));
            }
        }
    }

    /// Every input's gradient against central finite differences of the loss
    /// `sum(out * grad)`, in f64 around the f32 computation: a wrong term in the handwritten
    /// backward pass shows as a gradient off by far more than the differences' error.
    #[test]
    fn gradients_match_finite_differences() {
        let inputs = inputs();
        let (_, grads) = run(&inputs, SimdLevel::Portable);
        let grad_out = spread(SIZES.outputs(), 7, 0.03);
        let loss = |inputs: &[Vec<f32>; 8]| -> f64 {
            let slices: [&[f32]; 8] = std::array::from_fn(|i| inputs[i].as_slice());
            let mut out = vec![0.0; SIZES.outputs()];
            forward_portable(&slices, SIZES, &mut out);
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
                continue; // an input whose picked entries do not matter (zero rows)
            }
            assert_close(&analytic, &numeric, 2e-2, &format!("input {i}'s gradient"));
        }
    }
}
