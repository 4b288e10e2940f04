//! E1's attention decoder (additive score, soft attention) as one operation with its own
//! backward pass (backpropagation through time), for the CPU backends. The equations are
//! [`AttentionDecoder`](super::echo::AttentionDecoder)'s; this computes them step by step in
//! plain loops and small matrix products ([`small_matmul`]).
//!
//! Composed from burn's ops, a decoder step is some forty tracked ops on vectors of a few
//! hundred floats, and training E1 cost their bookkeeping (autodiff nodes, fresh buffers, a
//! libm call per activation), not their arithmetic. Here the whole decoding is one op; the
//! backward pass recomputes the forward one and takes each kernel's gradient in one product
//! over all steps. Each repeat is computed alone in the same order, so a repeat gets the same
//! bits whatever stack it trains in. The other score functions and hard attention (E4), and
//! the GPU, keep burn's ops.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::prelude::*;

use super::cpu_kernel::{Floats, Operand, dot, exp, simd_fn, small_matmul};
use super::lstm_cell::{sigmoid, tanh};

/// The decoder's tensors, in the order the op takes them (see
/// [`AttentionDecoder`](super::echo::AttentionDecoder) for the symbols).
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

/// The logits `[R, B, T, V]` and attention weights `[R, B, T, T]` of the decoding, side by side
/// in one tensor `[R, B, T, V + T]`; tracked by autodiff with its own backward pass. Only for
/// the CPU backends ([`crate::backend::is_cpu`]).
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
    Tensor::from_dispatch(<Dispatch as DecoderBackend>::attention_decoding(
        states.into_dispatch(),
        keys.into_dispatch(),
        first.into_dispatch(),
        score.into_dispatch(),
        from_state.into_dispatch(),
        from_input.into_dispatch(),
        bias.into_dispatch(),
        proposal.into_dispatch(),
    ))
}

#[backend_extension(Flex, NdArray, Autodiff)]
pub trait DecoderBackend: Backend {
    /// See [`attention_decoding`].
    #[allow(clippy::too_many_arguments)] // the op's eight input tensors, named
    fn attention_decoding(
        states: FloatTensor<Self>,
        keys: FloatTensor<Self>,
        first: FloatTensor<Self>,
        score: FloatTensor<Self>,
        from_state: FloatTensor<Self>,
        from_input: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        proposal: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let device = states.device();
        let inputs = [
            states, keys, first, score, from_state, from_input, bias, proposal,
        ];
        let sizes = Sizes::of(&inputs.each_ref().map(|t| t.shape()));
        let data = inputs.map(Floats::<Self>::new);
        let mut out = vec![0.0f32; sizes.outputs()];
        forward(&data.each_ref().map(Floats::as_slice), sizes, &mut out);
        let shape = [
            sizes.repeats,
            sizes.batch,
            sizes.time,
            sizes.outputs + sizes.time,
        ];
        Self::float_from_data(TensorData::new(out, shape), &device)
    }
}

impl DecoderBackend for Flex {}
impl DecoderBackend for NdArray {}

impl<B: DecoderBackend, C: CheckpointStrategy> DecoderBackend for Autodiff<B, C> {
    fn attention_decoding(
        states: FloatTensor<Self>,
        keys: FloatTensor<Self>,
        first: FloatTensor<Self>,
        score: FloatTensor<Self>,
        from_state: FloatTensor<Self>,
        from_input: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        proposal: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Decoding;

        impl<B: Backend> Backward<B, 8> for Decoding {
            type State = [NodeId; 8];

            fn backward(
                self,
                ops: Ops<Self::State, 8>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let grad = Floats::<B>::new(grads.consume::<B>(&ops.node));
                let inputs: [FloatTensor<B>; 8] =
                    ops.state.map(|id| checkpointer.retrieve_node_output(id));
                let device = inputs[0].device();
                let shapes = inputs.each_ref().map(|t| t.shape());
                let sizes = Sizes::of(&shapes);
                let data = inputs.map(Floats::<B>::new);
                let values = data.each_ref().map(Floats::as_slice);
                let mut gradients = values.map(|v| vec![0.0f32; v.len()]);
                backward(&values, grad.as_slice(), sizes, &mut gradients);
                for ((parent, gradient), shape) in
                    ops.parents.into_iter().zip(gradients).zip(shapes)
                {
                    if let Some(node) = parent {
                        let gradient = TensorData::new(gradient, shape);
                        grads.register::<B>(node.id, B::float_from_data(gradient, &device));
                    }
                }
            }
        }

        let inputs = [
            states, keys, first, score, from_state, from_input, bias, proposal,
        ];
        match Decoding
            .prepare::<C>(inputs.each_ref().map(|t| t.node()))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = inputs.each_ref().map(|t| prep.checkpoint(t));
                let [s, k, f, v, ws, wi, b, up] = inputs.map(|t| t.into_primitive());
                let output = B::attention_decoding(s, k, f, v, ws, wi, b, up);
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => {
                let [s, k, f, v, ws, wi, b, up] = inputs.map(|t| t.into_primitive());
                prep.finish(B::attention_decoding(s, k, f, v, ws, wi, b, up))
            }
        }
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
    fn of(shapes: &[burn::tensor::Shape; 8]) -> Self {
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
    fn width(&self) -> usize {
        3 * self.units + self.outputs
    }

    /// Floats of the output `[R, B, T, V + T]`.
    fn outputs(&self) -> usize {
        self.repeats * self.batch * self.time * (self.outputs + self.time)
    }

    /// Floats per repeat of each input, in the op's order.
    fn per_repeat(&self) -> [usize; 8] {
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
struct Repeat<'a> {
    states: &'a [f32],
    keys: &'a [f32],
    first: &'a [f32],
    score: &'a [f32],
    from_state: &'a [f32],
    from_input: &'a [f32],
    bias: &'a [f32],
    proposal: &'a [f32],
}

impl<'a> Repeat<'a> {
    /// Repeat `r`'s slices of the eight inputs.
    fn of(inputs: &[&'a [f32]; 8], sizes: Sizes, r: usize) -> Self {
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
struct Trace {
    /// `s_{t-1}`, `[B, U]` per step.
    state: Vec<f32>,
    /// `s_{t-1} [U_r | U_z | W_a | U_o]`, `[B, 3U + V]`.
    from_state: Vec<f32>,
    /// `tanh(q_t + k_j)`, `[B, T, U]`.
    activations: Vec<f32>,
    /// `a_t`, `[B, T]`.
    weights: Vec<f32>,
    /// `[y_{t-1}; c_t]`, `[B, V + H]`.
    input: Vec<f32>,
    /// `[y_{t-1}; c_t] [W; C] + b`, `[B, 3U + V]`.
    from_input: Vec<f32>,
    /// `[r_t | z_t]`, `[B, 2U]`.
    gates: Vec<f32>,
    /// `r_t * s_{t-1}`, `[B, U]`.
    reset_state: Vec<f32>,
    /// `p_t`, `[B, U]`.
    proposal: Vec<f32>,
    /// `y_t`, `[B, V]`.
    output: Vec<f32>,
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
fn decode(x: &Repeat, s: Sizes, mut store: impl FnMut(usize, usize, &[f32], &[f32])) -> Trace {
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
    /// The forward pass on slices: `out` `[R, B, T, V + T]` from the eight inputs.
    pub fn forward(inputs: &[&[f32]; 8], s: Sizes, out: &mut [f32]) = forward_portable;
}

simd_fn! {
    /// The backward pass on slices: from the eight inputs and the output's gradient `grad`
    /// `[R, B, T, V + T]`, each input's gradient (zeroed by the caller).
    pub fn backward(
        inputs: &[&[f32]; 8],
        grad: &[f32],
        s: Sizes,
        gradients: &mut [Vec<f32>; 8],
    ) = backward_portable;
}

#[inline(always)]
fn forward_portable(inputs: &[&[f32]; 8], s: Sizes, out: &mut [f32]) {
    assert_eq!(out.len(), s.outputs());
    let (t, width) = (s.time, s.outputs + s.time);
    for (r, out) in out.chunks_exact_mut(s.batch * t * width).enumerate() {
        decode(
            &Repeat::of(inputs, s, r),
            s,
            |step, row, logits, weights| {
                let out = &mut out[(row * t + step) * width..][..width];
                out[..s.outputs].copy_from_slice(logits);
                out[s.outputs..].copy_from_slice(weights);
            },
        );
    }
}

#[inline(always)]
fn backward_portable(inputs: &[&[f32]; 8], grad: &[f32], s: Sizes, gradients: &mut [Vec<f32>; 8]) {
    assert_eq!(grad.len(), s.outputs());
    let (b, t, h, u, v, w) = (s.batch, s.time, s.encoded, s.units, s.outputs, s.width());
    let per = s.per_repeat();
    let out_width = v + t;
    for r in 0..s.repeats {
        let x = Repeat::of(inputs, s, r);
        let trace = decode(&x, s, |_, _, _, _| {});
        let grad = &grad[r * b * t * out_width..(r + 1) * b * t * out_width];
        let [
            d_states,
            d_keys,
            d_first,
            d_score,
            d_from_state,
            d_from_input,
            d_bias,
            d_proposal,
        ]: [&mut [f32]; 8] = gradients
            .iter_mut()
            .zip(per)
            .map(|(g, n)| &mut g[r * n..(r + 1) * n])
            .collect::<Vec<_>>()
            .try_into()
            .expect("eight inputs");
        // Per step, in the trace's layout: the gradients at the two wide products' outputs and
        // at the proposal's argument.
        let mut d_fs = vec![0.0f32; t * b * w];
        let mut d_fi = vec![0.0f32; t * b * w];
        let mut d_pp = vec![0.0f32; t * b * u];
        let mut d_state = vec![0.0f32; b * u]; // reaches s_t from step t + 1
        let mut d_output = vec![0.0f32; b * v]; // reaches y_t from step t + 1
        let mut d_prev = vec![0.0f32; b * u];
        let mut d_reset_state = vec![0.0f32; b * u];
        let mut d_input = vec![0.0f32; b * (v + h)];
        for step in (0..t).rev() {
            let range = |n: usize| step * b * n..(step + 1) * b * n;
            let (d_fs_t, d_fi_t) = (&mut d_fs[range(w)], &mut d_fi[range(w)]);
            let d_pp_t = &mut d_pp[range(u)];
            for row in 0..b {
                let g = &grad[(row * t + step) * out_width..][..out_width];
                // y_t = softmax(o_t), o_t = [fi | fs]'s output blocks.
                let y = &trace.output[range(v)][row * v..(row + 1) * v];
                let dy = &d_output[row * v..(row + 1) * v];
                let mean = dot(dy, y);
                for k in 0..v {
                    let d_out = y[k].mul_add(dy[k] - mean, g[k]);
                    d_fi_t[row * w + 3 * u + k] = d_out;
                    d_fs_t[row * w + 3 * u + k] = d_out;
                }
                // s_t = s + z (p - s), p = tanh(pp).
                let gates = &trace.gates[range(2 * u)][row * 2 * u..(row + 1) * 2 * u];
                let prev = &trace.state[range(u)][row * u..(row + 1) * u];
                let p = &trace.proposal[range(u)][row * u..(row + 1) * u];
                for k in 0..u {
                    let (z, ds) = (gates[u + k], d_state[row * u + k]);
                    let d_update = ds * (p[k] - prev[k]);
                    d_prev[row * u + k] = ds * (1.0 - z);
                    let pp = ds * z * (1.0 - p[k] * p[k]);
                    d_pp_t[row * u + k] = pp;
                    d_fi_t[row * w + 2 * u + k] = pp;
                    let dz = d_update * z * (1.0 - z);
                    d_fi_t[row * w + u + k] = dz;
                    d_fs_t[row * w + u + k] = dz;
                }
            }
            // pp = fi_p + (r s) U_p
            small_matmul(
                (&mut d_reset_state, u),
                (b, u, u),
                Operand::rows(d_pp_t, u),
                Operand::transposed(x.proposal, u),
                false,
            );
            for row in 0..b {
                let gates = &trace.gates[range(2 * u)][row * 2 * u..(row + 1) * 2 * u];
                let prev = &trace.state[range(u)][row * u..(row + 1) * u];
                for k in 0..u {
                    let (reset, drs) = (gates[k], d_reset_state[row * u + k]);
                    d_prev[row * u + k] = drs.mul_add(reset, d_prev[row * u + k]);
                    let dr = drs * prev[k] * reset * (1.0 - reset);
                    d_fi_t[row * w + k] = dr;
                    d_fs_t[row * w + k] = dr;
                }
            }
            // fi = [y; c] [W; C] + b
            small_matmul(
                (&mut d_input, v + h),
                (b, v + h, w),
                Operand::rows(d_fi_t, w),
                Operand::transposed(x.from_input, w),
                false,
            );
            for row in 0..b {
                let g = &grad[(row * t + step) * out_width..][..out_width];
                let d_in = &d_input[row * (v + h)..(row + 1) * (v + h)];
                d_output[row * v..(row + 1) * v].copy_from_slice(&d_in[..v]);
                let d_context = &d_in[v..];
                // c = sum_j a_j h_j
                let weights = &trace.weights[range(t)][row * t..(row + 1) * t];
                let mut d_weights: Vec<f32> = (0..t)
                    .map(|j| dot(d_context, &x.states[(row * t + j) * h..][..h]) + g[v + j])
                    .collect();
                for (j, a) in weights.iter().enumerate() {
                    let ds = &mut d_states[(row * t + j) * h..][..h];
                    for (ds, dc) in ds.iter_mut().zip(d_context) {
                        *ds = a.mul_add(*dc, *ds);
                    }
                }
                // a = softmax(e)
                let mean = dot(&d_weights, weights);
                for (d, a) in d_weights.iter_mut().zip(weights) {
                    *d = a * (*d - mean);
                }
                // e_j = v . tanh(q + k_j)
                let activations = &trace.activations[range(t * u)][row * t * u..(row + 1) * t * u];
                let d_query = &mut d_fs_t[row * w + 2 * u..row * w + 3 * u];
                d_query.fill(0.0);
                for (j, de) in d_weights.iter().enumerate() {
                    let act = &activations[j * u..(j + 1) * u];
                    let d_key = &mut d_keys[(row * t + j) * u..][..u];
                    for k in 0..u {
                        d_score[k] = de.mul_add(act[k], d_score[k]);
                        let d_pre = de * x.score[k] * (1.0 - act[k] * act[k]);
                        d_key[k] += d_pre;
                        d_query[k] += d_pre;
                    }
                }
            }
            // fs = s [U_r | U_z | W_a | U_o]
            small_matmul(
                (&mut d_prev, u),
                (b, u, w),
                Operand::rows(d_fs_t, w),
                Operand::transposed(x.from_state, w),
                true,
            );
            std::mem::swap(&mut d_state, &mut d_prev);
        }
        d_first.copy_from_slice(&d_state);
        // Each kernel's gradient: one product over every step and row.
        let rows = t * b;
        small_matmul(
            (d_from_state, w),
            (u, w, rows),
            Operand::transposed(&trace.state, u),
            Operand::rows(&d_fs, w),
            false,
        );
        small_matmul(
            (d_from_input, w),
            (v + h, w, rows),
            Operand::transposed(&trace.input, v + h),
            Operand::rows(&d_fi, w),
            false,
        );
        small_matmul(
            (d_proposal, u),
            (u, u, rows),
            Operand::transposed(&trace.reset_state, u),
            Operand::rows(&d_pp, u),
            false,
        );
        for row in d_fi.chunks_exact(w) {
            for (db, d) in d_bias.iter_mut().zip(row) {
                *db += d;
            }
        }
    }
}
