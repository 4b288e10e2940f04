//! The decoder's backward pass: backpropagation through every step, from the recomputed
//! forward pass ([`decode`]'s trace), each kernel's gradient in one product over all steps.

use super::super::matmul::{Operand, small_matmul};
use super::super::simd::{dot, simd_fn};
use super::{Repeat, Sizes, Trace, decode};

simd_fn! {
    /// The backward pass on slices: from the eight inputs and the output's gradient `grad`
    /// `[R, B, T, V + T]`, each input's gradient (zeroed by the caller); from each repeat's
    /// forward trace where the forward pass kept them (`traces`), else decoding again.
    pub fn backward(
        inputs: &[&[f32]; 8],
        grad: &[f32],
        s: Sizes,
        traces: Option<&[Trace]>,
        gradients: &mut [&mut [f32]; 8],
    ) = backward_portable;
}

#[inline(always)]
pub(super) fn backward_portable(
    inputs: &[&[f32]; 8],
    grad: &[f32],
    s: Sizes,
    traces: Option<&[Trace]>,
    gradients: &mut [&mut [f32]; 8],
) {
    assert_eq!(grad.len(), s.outputs());
    let (b, t, h, u, v, w) = (s.batch, s.time, s.encoded, s.units, s.outputs, s.width());
    let per = s.per_repeat();
    let out_width = v + t;
    for r in 0..s.repeats {
        let x = Repeat::of(inputs, s, r);
        let recomputed;
        let trace = match traces {
            Some(traces) => &traces[r],
            None => {
                recomputed = decode(&x, s, |_, _, _, _| {});
                &recomputed
            }
        };
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
