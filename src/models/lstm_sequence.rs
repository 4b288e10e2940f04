//! A whole LSTM recurrence as one operation with its own backward pass (backpropagation
//! through time), for the CPU backends: from the projected inputs `[R, B, T, 4H]` (`x_t W + b`
//! for every step, see [`StackedLstm::project_inputs`](super::stacked::StackedLstm)) and the
//! recurrent kernel `[R, H, 4H]`, every hidden state `[R, B, T, H]`.
//!
//! E1 trains on one sequence of 5 steps per repeat: each step's tensors are a few hundred
//! floats, so composed from burn's ops a step costs the ops' bookkeeping (autodiff nodes,
//! fresh buffers, a libm call per activation), not their arithmetic. Here the recurrence is a
//! loop of small matrix products ([`small_matmul`]) and the fused cell's kernels
//! ([`lstm_cell::forward`], [`lstm_cell::backward`]); the backward pass recomputes the forward
//! one (cheaper than keeping its steps as tensors) and takes the recurrent kernel's gradient in
//! one product over all steps. Each repeat is computed alone in the same order, so a repeat
//! gets the same bits whatever stack it trains in.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::prelude::*;

use super::cpu_kernel::{Floats, Operand, small_matmul};
use super::lstm_cell;

/// Every hidden state `[R, B, T, H]` of LSTMs over projected inputs `[R, B, T, 4H]` with
/// recurrent kernels `[R, H, 4H]` (Keras' gate order and activations, hard-sigmoid gates when
/// `hard`, zero initial state), tracked by autodiff with its own backward pass. Only for the
/// CPU backends ([`crate::backend::is_cpu`]).
pub fn lstm_sequence(projected: Tensor<4>, recurrent: Tensor<3>, hard: bool) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as LstmSequenceBackend>::lstm_sequence(
        projected.into_dispatch(),
        recurrent.into_dispatch(),
        hard,
    ))
}

#[backend_extension(Flex, NdArray, Autodiff)]
pub trait LstmSequenceBackend: Backend {
    /// See [`lstm_sequence`].
    fn lstm_sequence(
        projected: FloatTensor<Self>,
        recurrent: FloatTensor<Self>,
        hard: bool,
    ) -> FloatTensor<Self> {
        let sizes = Sizes::of(&projected.shape(), &recurrent.shape(), hard);
        let device = projected.device();
        let (p, w) = (
            Floats::<Self>::new(projected),
            Floats::<Self>::new(recurrent),
        );
        let mut states = vec![0.0f32; sizes.states()];
        forward(p.as_slice(), w.as_slice(), sizes, &mut states);
        let shape = [sizes.repeats, sizes.batch, sizes.time, sizes.hidden];
        Self::float_from_data(TensorData::new(states, shape), &device)
    }
}

impl LstmSequenceBackend for Flex {}
impl LstmSequenceBackend for NdArray {}

impl<B: LstmSequenceBackend, C: CheckpointStrategy> LstmSequenceBackend for Autodiff<B, C> {
    fn lstm_sequence(
        projected: FloatTensor<Self>,
        recurrent: FloatTensor<Self>,
        hard: bool,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LstmSequence;

        impl<B: Backend> Backward<B, 2> for LstmSequence {
            type State = (NodeId, NodeId, bool);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let grad = grads.consume::<B>(&ops.node);
                let p: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state.0);
                let w: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state.1);
                let sizes = Sizes::of(&p.shape(), &w.shape(), ops.state.2);
                let device = p.device();
                let (p_shape, w_shape) = (p.shape(), w.shape());
                let (p, w) = (Floats::<B>::new(p), Floats::<B>::new(w));
                let grad = Floats::<B>::new(grad);
                let mut dp = vec![0.0f32; p_shape.num_elements()];
                let mut dw = vec![0.0f32; w_shape.num_elements()];
                backward(
                    (p.as_slice(), w.as_slice(), grad.as_slice()),
                    sizes,
                    (&mut dp, &mut dw),
                );
                let [p_parent, w_parent] = ops.parents;
                if let Some(node) = p_parent {
                    let data = TensorData::new(dp, p_shape);
                    grads.register::<B>(node.id, B::float_from_data(data, &device));
                }
                if let Some(node) = w_parent {
                    let data = TensorData::new(dw, w_shape);
                    grads.register::<B>(node.id, B::float_from_data(data, &device));
                }
            }
        }

        match LstmSequence
            .prepare::<C>([projected.node(), recurrent.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&projected),
                    prep.checkpoint(&recurrent),
                    hard,
                );
                let output =
                    B::lstm_sequence(projected.into_primitive(), recurrent.into_primitive(), hard);
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::lstm_sequence(
                projected.into_primitive(),
                recurrent.into_primitive(),
                hard,
            )),
        }
    }
}

/// The sizes of one call: `repeats` LSTMs of `hidden` units, each over `batch` sequences of
/// `time` steps; and their gates' activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    pub repeats: usize,
    pub batch: usize,
    pub time: usize,
    pub hidden: usize,
    /// Hard-sigmoid gates (Keras 2's), else sigmoid.
    pub hard: bool,
}

impl Sizes {
    /// The sizes of projected inputs `[R, B, T, 4H]` and recurrent kernels `[R, H, 4H]`
    /// (checked).
    fn of(p: &burn::tensor::Shape, w: &burn::tensor::Shape, hard: bool) -> Self {
        assert!(
            p.num_dims() == 4
                && w.num_dims() == 3
                && p[0] == w[0]
                && w[2] == 4 * w[1]
                && p[3] == w[2],
            "an LSTM sequence takes projected inputs [R, B, T, 4H] and a recurrent kernel \
             [R, H, 4H], not {p:?} and {w:?}"
        );
        Self {
            repeats: p[0],
            batch: p[1],
            time: p[2],
            hidden: w[1],
            hard,
        }
    }

    fn states(&self) -> usize {
        self.repeats * self.batch * self.time * self.hidden
    }
}

/// One repeat's recurrence, step by step: the gates `z_t` `[T, B, 4H]`, the cells `c_{t-1}`
/// and hidden states `h_{t-1}` `[T, B, H]` each step started from (zeros for the first).
struct Trace {
    gates: Vec<f32>,
    cells: Vec<f32>,
    hidden: Vec<f32>,
}

/// Runs repeat `r`'s recurrence over its slice of `p`, with its kernel `w` `[H, 4H]`, writing
/// each step's hidden state through `store(t, b, h)`; returns the trace.
fn recur(p: &[f32], w: &[f32], s: Sizes, mut store: impl FnMut(usize, usize, &[f32])) -> Trace {
    let (b, t, h) = (s.batch, s.time, s.hidden);
    let g = 4 * h;
    let mut trace = Trace {
        gates: vec![0.0; t * b * g],
        cells: vec![0.0; t * b * h],
        hidden: vec![0.0; t * b * h],
    };
    let mut hc = vec![0.0f32; b * 2 * h]; // [h_t | c_t] per row
    for step in 0..t {
        let z = &mut trace.gates[step * b * g..(step + 1) * b * g];
        for (row, z) in z.chunks_exact_mut(g).enumerate() {
            z.copy_from_slice(&p[(row * t + step) * g..][..g]);
        }
        let (h_prev, c_prev) = (
            &mut trace.hidden[step * b * h..(step + 1) * b * h],
            &mut trace.cells[step * b * h..(step + 1) * b * h],
        );
        for (row, state) in hc.chunks_exact(2 * h).enumerate() {
            h_prev[row * h..(row + 1) * h].copy_from_slice(&state[..h]);
            c_prev[row * h..(row + 1) * h].copy_from_slice(&state[h..]);
        }
        if step > 0 {
            // z_t += h_{t-1} W
            small_matmul(
                (z, g),
                (b, g, h),
                Operand::rows(h_prev, h),
                Operand::rows(w, g),
                true,
            );
        }
        lstm_cell::forward(z, c_prev, h, s.hard, &mut hc);
        for (row, state) in hc.chunks_exact(2 * h).enumerate() {
            store(step, row, &state[..h]);
        }
    }
    trace
}

/// The forward pass on slices: `states` `[R, B, T, H]` from `p` `[R, B, T, 4H]` and `w`
/// `[R, H, 4H]`.
pub fn forward(p: &[f32], w: &[f32], s: Sizes, states: &mut [f32]) {
    let (b, t, h) = (s.batch, s.time, s.hidden);
    let per_repeat = (b * t * 4 * h, h * 4 * h, b * t * h);
    assert_eq!(p.len(), s.repeats * per_repeat.0);
    assert_eq!(w.len(), s.repeats * per_repeat.1);
    assert_eq!(states.len(), s.repeats * per_repeat.2);
    let repeats = p
        .chunks_exact(per_repeat.0)
        .zip(w.chunks_exact(per_repeat.1))
        .zip(states.chunks_exact_mut(per_repeat.2));
    for ((p, w), states) in repeats {
        recur(p, w, s, |step, row, state| {
            states[(row * t + step) * h..][..h].copy_from_slice(state);
        });
    }
}

/// The backward pass on slices: from `p`, `w` and the states' gradient `grad` `[R, B, T, H]`,
/// the gradients `dp` `[R, B, T, 4H]` and `dw` `[R, H, 4H]`.
pub fn backward(
    (p, w, grad): (&[f32], &[f32], &[f32]),
    s: Sizes,
    (dp, dw): (&mut [f32], &mut [f32]),
) {
    let (b, t, h) = (s.batch, s.time, s.hidden);
    let g = 4 * h;
    let per_repeat = (b * t * g, h * g, b * t * h);
    assert_eq!(grad.len(), s.repeats * per_repeat.2);
    assert_eq!(dp.len(), p.len());
    assert_eq!(dw.len(), w.len());
    let inputs = p
        .chunks_exact(per_repeat.0)
        .zip(w.chunks_exact(per_repeat.1))
        .zip(grad.chunks_exact(per_repeat.2));
    let outputs = dp
        .chunks_exact_mut(per_repeat.0)
        .zip(dw.chunks_exact_mut(per_repeat.1));
    for (((p, w), grad), (dp, dw)) in inputs.zip(outputs) {
        let trace = recur(p, w, s, |_, _, _| {});
        // Per step, in the trace's layout: the gates' gradients [T, B, 4H].
        let mut dz = vec![0.0f32; t * b * g];
        let mut dh_next = vec![0.0f32; b * h]; // reaches h_t from step t + 1
        let mut dhc = vec![0.0f32; b * 2 * h]; // [dh_t | dc_t] per row
        let mut dc = vec![0.0f32; b * h];
        for step in (0..t).rev() {
            for (row, dhc) in dhc.chunks_exact_mut(2 * h).enumerate() {
                let (dh_row, _) = dhc.split_at_mut(h);
                let from_output = &grad[(row * t + step) * h..][..h];
                for ((d, o), n) in dh_row.iter_mut().zip(from_output).zip(&dh_next[row * h..]) {
                    *d = o + n;
                }
            }
            let dz_step = &mut dz[step * b * g..(step + 1) * b * g];
            let z = &trace.gates[step * b * g..(step + 1) * b * g];
            let c_prev = &trace.cells[step * b * h..(step + 1) * b * h];
            lstm_cell::backward((z, c_prev, &dhc), h, s.hard, (dz_step, &mut dc));
            // The cell's gradient goes on to step t - 1 as its c_t's.
            for (dhc, dc) in dhc.chunks_exact_mut(2 * h).zip(dc.chunks_exact(h)) {
                dhc[h..].copy_from_slice(dc);
            }
            if step > 0 {
                // dh_{t-1} = dz_t W^T
                small_matmul(
                    (&mut dh_next, h),
                    (b, h, g),
                    Operand::rows(dz_step, g),
                    Operand::transposed(w, g),
                    false,
                );
            }
            for (row, dz) in dz_step.chunks_exact(g).enumerate() {
                dp[(row * t + step) * g..][..g].copy_from_slice(dz);
            }
        }
        // dW = sum_t h_{t-1}^T dz_t: one product over every step and row.
        small_matmul(
            (dw, g),
            (h, g, t * b),
            Operand::transposed(&trace.hidden, h),
            Operand::rows(&dz, g),
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::step_weight::values;
    use burn::tensor::activation::{hard_sigmoid, sigmoid, tanh};

    /// burn's ops as the LSTM composes them on the GPU: the reference.
    fn composed(p: Tensor<4>, w: Tensor<3>, hard: bool) -> Tensor<4> {
        let [r, b, t, _] = p.dims();
        let hidden = w.dims()[1];
        let zeros = Tensor::<3>::zeros([r, b, hidden], &p.device());
        let (mut h, mut c) = (zeros.clone(), zeros);
        let mut states = Vec::new();
        for step in 0..t {
            let z =
                p.clone().slice_dim(2, step..step + 1).squeeze_dim::<3>(2) + h.matmul(w.clone());
            let gate = |k: usize| {
                let x = z.clone().slice_dim(2, k * hidden..(k + 1) * hidden);
                if hard {
                    hard_sigmoid(x, 0.2, 0.5)
                } else {
                    sigmoid(x)
                }
            };
            let (i, f, o) = (gate(0), gate(1), gate(3));
            let g = tanh(z.clone().slice_dim(2, 2 * hidden..3 * hidden));
            c = f * c + i * g;
            h = o * tanh(c.clone());
            states.push(h.clone());
        }
        Tensor::stack(states, 2)
    }

    fn spread<const D: usize>(
        shape: [usize; D],
        k: usize,
        scale: f32,
        device: &Device,
    ) -> Tensor<D> {
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| (((i * k) % 97) as f32 - 48.0) * scale)
            .collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        assert!(scale > 1e-3, "{what}: a value that says something");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 2e-6 * scale.max(1.0),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    /// The states and both gradients of the fused recurrence equal burn's composed ops, on both
    /// CPU backends, for batches of one sequence (E1) and several, with either gate activation.
    #[test]
    fn recurrence_and_gradients_equal_burns_composed_ops() {
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            let cases = [(2, 1, 5, 7, false), (1, 3, 4, 5, false), (2, 1, 5, 7, true)];
            for (r, b, t, h, hard) in cases {
                let weights = spread([r, b, t, h], 31, 0.02, &device);
                let run = |fused: bool| {
                    let p = spread([r, b, t, 4 * h], 7919, 0.05, &device).require_grad();
                    let w = spread([r, h, 4 * h], 104_729, 0.03, &device).require_grad();
                    let states = if fused {
                        lstm_sequence(p.clone(), w.clone(), hard)
                    } else {
                        composed(p.clone(), w.clone(), hard)
                    };
                    let grads = (states.clone() * weights.clone()).sum().backward();
                    (
                        values(states),
                        values(p.grad(&grads).unwrap()),
                        values(w.grad(&grads).unwrap()),
                    )
                };
                let (states, dp, dw) = run(true);
                let (states_ref, dp_ref, dw_ref) = run(false);
                assert_close(&states, &states_ref, "states");
                assert_close(&dp, &dp_ref, "projected inputs' gradient");
                assert_close(&dw, &dw_ref, "recurrent kernel's gradient");
            }
        }
    }

    /// A repeat's states and gradients do not depend on the repeats beside it.
    #[test]
    fn a_repeat_gets_the_same_bits_alone_or_stacked() {
        let s = Sizes {
            repeats: 3,
            batch: 2,
            time: 4,
            hidden: 6,
            hard: false,
        };
        let device = Device::flex();
        let p = values(spread([3, 2, 4, 24], 7919, 0.05, &device));
        let w = values(spread([3, 6, 24], 104_729, 0.03, &device));
        let grad = values(spread([3, 2, 4, 6], 31, 0.02, &device));
        let run = |s: Sizes, p: &[f32], w: &[f32], grad: &[f32]| {
            let mut states = vec![0.0; s.states()];
            forward(p, w, s, &mut states);
            let (mut dp, mut dw) = (vec![0.0; p.len()], vec![0.0; w.len()]);
            backward((p, w, grad), s, (&mut dp, &mut dw));
            (states, dp, dw)
        };
        let (states, dp, dw) = run(s, &p, &w, &grad);
        let one = Sizes { repeats: 1, ..s };
        let (n_p, n_w, n_s) = (2 * 4 * 24, 6 * 24, 2 * 4 * 6);
        let (states1, dp1, dw1) = run(one, &p[n_p..2 * n_p], &w[n_w..2 * n_w], &grad[n_s..2 * n_s]);
        assert_eq!(states[n_s..2 * n_s], states1[..]);
        assert_eq!(dp[n_p..2 * n_p], dp1[..]);
        assert_eq!(dw[n_w..2 * n_w], dw1[..]);
    }
}
