//! A whole LSTM recurrence with its own backward pass (backpropagation through time): from the
//! projected inputs `[R, B, T, 4H]` (`x_t W + b` for every step) and the recurrent kernel
//! `[R, H, 4H]`, every hidden state `[R, B, T, H]`.
//!
//! E1 trains on one sequence of 5 steps per repeat: each step's tensors are a few hundred
//! floats, so composed from burn's ops ([`lstm_sequence_reference`], the GPU's path) a step
//! costs the ops' bookkeeping (autodiff nodes, fresh buffers, a libm call per activation), not
//! their arithmetic. Here the recurrence is a loop of small matrix products ([`small_matmul`])
//! and the cell's kernels ([`lstm_cell::forward`], [`lstm_cell::backward`]); the forward pass
//! keeps its trace (gates, cells, states of every step) for the backward one, which takes the
//! recurrent kernel's gradient in one product over all steps. Each repeat is computed alone in
//! the same order, so a repeat gets the same bits whatever stack it trains in.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Shape;

use super::lstm_cell::{self, lstm_cell_reference};
use super::matmul::{Operand, small_matmul};
use super::op::{CpuOp, zeroed_part};
use super::{CpuOps, on_cpu};

/// The op: LSTMs over whole sequences, with hard-sigmoid gates when `hard`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmSequence {
    pub hard: bool,
}

/// Every hidden state `[R, B, T, H]` of LSTMs over projected inputs `[R, B, T, 4H]` with
/// recurrent kernels `[R, H, 4H]` (Keras' gate order and activations, hard-sigmoid gates when
/// `hard`, zero initial state). On the CPU backends the op with its own backward pass;
/// elsewhere [`lstm_sequence_reference`].
pub fn lstm_sequence(projected: Tensor<4>, recurrent: Tensor<3>, hard: bool) -> Tensor<4> {
    if !on_cpu(&projected.device()) {
        return lstm_sequence_reference(projected, recurrent, hard);
    }
    Tensor::from_dispatch(<Dispatch as CpuOps>::lstm_sequence(
        projected.into_dispatch(),
        recurrent.into_dispatch(),
        LstmSequence { hard },
    ))
}

/// [`lstm_sequence`] composed from burn's ops, step by step: the reference the tests compare
/// with, and the GPU's path.
pub fn lstm_sequence_reference(
    projected: Tensor<4>,
    recurrent: Tensor<3>,
    hard: bool,
) -> Tensor<4> {
    let [r, b, t, _] = projected.dims();
    let hidden = recurrent.dims()[1];
    let zeros = Tensor::<3>::zeros([r, b, hidden], &projected.device());
    let (mut h, mut c) = (zeros.clone(), zeros);
    let mut states = Vec::with_capacity(t);
    for step in 0..t {
        let p = projected
            .clone()
            .slice_dim(2, step..step + 1)
            .squeeze_dim::<3>(2);
        let z = p + h.matmul(recurrent.clone());
        let hc = lstm_cell_reference(
            z.reshape([r * b, 4 * hidden]),
            c.reshape([r * b, hidden]),
            hard,
        );
        let half = |k: usize| {
            hc.clone()
                .slice_dim(1, k * hidden..(k + 1) * hidden)
                .reshape([r, b, hidden])
        };
        (h, c) = (half(0), half(1));
        states.push(h.clone());
    }
    Tensor::stack(states, 2)
}

impl CpuOp<2> for LstmSequence {
    /// Each repeat's trace: the backward pass reads it instead of running the recurrence again.
    type Saved = Vec<Trace>;

    fn output_shape(&self, [p, w]: &[Shape; 2]) -> Shape {
        let s = Sizes::of(p, w, self.hard);
        Shape::new([s.repeats, s.batch, s.time, s.hidden])
    }

    fn forward(
        &self,
        [p, w]: [&[f32]; 2],
        [p_shape, w_shape]: &[Shape; 2],
        out: &mut [f32],
    ) -> Vec<Trace> {
        forward(p, w, Sizes::of(p_shape, w_shape, self.hard), out)
    }

    fn backward(
        &self,
        [_, w]: [&[f32]; 2],
        [p_shape, w_shape]: &[Shape; 2],
        traces: &Vec<Trace>,
        grad: &[f32],
    ) -> [Vec<f32>; 2] {
        let sizes = Sizes::of(p_shape, w_shape, self.hard);
        let (dp, dw) = backward((w, grad), sizes, traces);
        [dp, dw]
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
    fn of(p: &Shape, w: &Shape, hard: bool) -> Self {
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

    #[cfg(test)]
    fn states(&self) -> usize {
        self.repeats * self.batch * self.time * self.hidden
    }
}

/// One repeat's recurrence, step by step: the gates `z_t` `[T, B, 4H]`, the cells `c_{t-1}`
/// and hidden states `h_{t-1}` `[T, B, H]` each step started from (zeros for the first).
pub struct Trace {
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
/// `[R, H, 4H]`; returns each repeat's trace.
pub fn forward(p: &[f32], w: &[f32], s: Sizes, states: &mut [f32]) -> Vec<Trace> {
    let (b, t, h) = (s.batch, s.time, s.hidden);
    let per_repeat = (b * t * 4 * h, h * 4 * h, b * t * h);
    assert_eq!(p.len(), s.repeats * per_repeat.0);
    assert_eq!(w.len(), s.repeats * per_repeat.1);
    assert_eq!(states.len(), s.repeats * per_repeat.2);
    let repeats = p
        .chunks_exact(per_repeat.0)
        .zip(w.chunks_exact(per_repeat.1))
        .zip(states.chunks_exact_mut(per_repeat.2));
    repeats
        .map(|((p, w), states)| {
            recur(p, w, s, |step, row, state| {
                states[(row * t + step) * h..][..h].copy_from_slice(state);
            })
        })
        .collect()
}

/// The backward pass on slices: from `w` and the states' gradient `grad` `[R, B, T, H]`, the
/// gradients `dp` `[R, B, T, 4H]` and `dw` `[R, H, 4H]`, from each repeat's forward trace
/// (`traces`, as [`forward`] returned them: the projected inputs live on in its gates).
pub fn backward((w, grad): (&[f32], &[f32]), s: Sizes, traces: &[Trace]) -> (Vec<f32>, Vec<f32>) {
    let (b, t, h) = (s.batch, s.time, s.hidden);
    let g = 4 * h;
    let per_repeat = (b * t * g, h * g, b * t * h);
    assert_eq!(grad.len(), s.repeats * per_repeat.2);
    assert_eq!(w.len(), s.repeats * per_repeat.1);
    assert_eq!(traces.len(), s.repeats);
    let mut dp = vec![0.0f32; s.repeats * per_repeat.0];
    // The kernel's gradient is zeroed only when its product is due (see `CpuOp::backward`).
    let mut dw = Vec::new();
    let inputs = w
        .chunks_exact(per_repeat.1)
        .zip(grad.chunks_exact(per_repeat.2));
    for (r, (((w, grad), dp), trace)) in inputs
        .zip(dp.chunks_exact_mut(per_repeat.0))
        .zip(traces)
        .enumerate()
    {
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
        // dW = sum_t h_{t-1}^T dz_t: one product over every step and row, added to the zeroed
        // `dw`.
        small_matmul(
            (zeroed_part(&mut dw, r, per_repeat.1, s.repeats), g),
            (h, g, t * b),
            Operand::transposed(&trace.hidden, h),
            Operand::rows(&dz, g),
            true,
        );
    }
    (dp, dw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{check_against_reference, spread, spread_tensor};

    /// The states and both inputs' gradients equal the reference's, for batches of one
    /// sequence (E1) and several, with either gate activation.
    #[test]
    fn the_recurrence_equals_its_reference() {
        for (r, b, t, h, hard) in [(2, 1, 5, 7, false), (1, 3, 4, 5, false), (2, 1, 5, 7, true)] {
            check_against_reference(
                &format!("lstm_sequence [{r}, {b}, {t}, {h}] (hard: {hard})"),
                |device| {
                    [
                        spread_tensor([r, b, t, 4 * h], 7919, 0.05, device),
                        spread_tensor([r, h, 4 * h], 104_729, 0.03, device).unsqueeze_dim(1),
                    ]
                },
                |[p, w]| lstm_sequence(p, w.squeeze_dim(1), hard),
                |[p, w]| lstm_sequence_reference(p, w.squeeze_dim(1), hard),
                2e-6,
            );
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
        let p = spread(3 * 2 * 4 * 24, 7919, 0.05);
        let w = spread(3 * 6 * 24, 104_729, 0.03);
        let grad = spread(3 * 2 * 4 * 6, 31, 0.02);
        let run = |s: Sizes, p: &[f32], w: &[f32], grad: &[f32]| {
            let mut states = vec![0.0; s.states()];
            let traces = forward(p, w, s, &mut states);
            let (dp, dw) = backward((w, grad), s, &traces);
            // Running the recurrence again gives the kept trace's gradients.
            let again = forward(p, w, s, &mut vec![0.0; s.states()]);
            let (dp2, dw2) = backward((w, grad), s, &again);
            assert_eq!((&dp, &dw), (&dp2, &dw2));
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
