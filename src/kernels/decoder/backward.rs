//! The decoder's backward pass: backpropagation through every step, from the forward pass's
//! trace ([`decode`](super::forward::decode)'s), each kernel's gradient in one product over
//! all steps.

use super::super::matmul::{Operand, small_matmul};
use super::super::op::zeroed_part;
use super::super::simd::{dot, simd_fn};
use super::{COSINE_FLOOR, INPUTS, Repeat, Sizes, Trace};
use crate::config::Score;

simd_fn! {
    /// The backward pass on slices: from the inputs and the output's gradient `grad`
    /// `[R, B, T, V + T]`, each input's gradient, from each repeat's forward trace (`traces`).
    pub fn backward(
        inputs: &[&[f32]; INPUTS],
        grad: &[f32],
        s: Sizes,
        traces: &[Trace],
    ) -> [Vec<f32>; INPUTS] = backward_portable;
}

#[inline(always)]
pub(super) fn backward_portable(
    inputs: &[&[f32]; INPUTS],
    grad: &[f32],
    s: Sizes,
    traces: &[Trace],
) -> [Vec<f32>; INPUTS] {
    assert_eq!(grad.len(), s.outputs());
    let (b, t, h, u, v, w) = (s.batch, s.time, s.encoded, s.units, s.outputs, s.width());
    // from_state's columns, and where its query and output blocks start.
    let (sw, q, so) = (s.state_width(), s.query, 2 * u + s.query);
    let per = s.per_repeat();
    let out_width = v + t;
    assert_eq!(traces.len(), s.repeats);
    let mut gradients: [Vec<f32>; INPUTS] = Default::default();
    let [
        g_states,
        g_keys,
        g_first,
        g_score,
        g_from_state,
        g_from_input,
        g_bias,
        g_proposal,
        g_noise,
    ] = &mut gradients;
    // The noise is drawn, not learned: its gradient is zero.
    zeroed_part(g_noise, 0, per[8], s.repeats);
    for (r, trace) in traces.iter().enumerate() {
        let x = Repeat::of(inputs, s, r);
        let grad = &grad[r * b * t * out_width..(r + 1) * b * t * out_width];
        let d_states = zeroed_part(g_states, r, per[0], s.repeats);
        let d_keys = zeroed_part(g_keys, r, per[1], s.repeats);
        let d_first = zeroed_part(g_first, r, per[2], s.repeats);
        let d_score = zeroed_part(g_score, r, per[3], s.repeats);
        let d_bias = zeroed_part(g_bias, r, per[6], s.repeats);
        // Per step, in the trace's layout: the gradients at the two wide products' outputs and
        // at the proposal's argument.
        let mut d_fs = vec![0.0f32; t * b * sw];
        let mut d_fi = vec![0.0f32; t * b * w];
        let mut d_pp = vec![0.0f32; t * b * u];
        let mut d_state = vec![0.0f32; b * u]; // reaches s_t from step t + 1
        let mut d_output = vec![0.0f32; b * v]; // reaches y_t from step t + 1
        let mut d_prev = vec![0.0f32; b * u];
        let mut d_reset_state = vec![0.0f32; b * u];
        let mut d_input = vec![0.0f32; b * (v + h)];
        let mut d_weights = vec![0.0f32; t];
        for step in (0..t).rev() {
            let range = |n: usize| step * b * n..(step + 1) * b * n;
            let (d_fs_t, d_fi_t) = (&mut d_fs[range(sw)], &mut d_fi[range(w)]);
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
                    d_fs_t[row * sw + so + k] = d_out;
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
                    d_fs_t[row * sw + u + k] = dz;
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
                    d_fs_t[row * sw + k] = dr;
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
                for (j, d) in d_weights.iter_mut().enumerate() {
                    *d = dot(d_context, &x.states[(row * t + j) * h..][..h]) + g[v + j];
                }
                for (j, a) in weights.iter().enumerate() {
                    let ds = &mut d_states[(row * t + j) * h..][..h];
                    for (ds, dc) in ds.iter_mut().zip(d_context) {
                        *ds = a.mul_add(*dc, *ds);
                    }
                }
                // a = softmax(e), or one-hot with the gradient of the noisy scores' softmax
                // (straight-through), or one-hot without a gradient (hard, evaluating).
                let through = match (s.hard, s.noise) {
                    (None, _) => Some((weights, 1.0)),
                    (Some(temperature), true) => {
                        Some((&trace.soft[range(t)][row * t..(row + 1) * t], temperature))
                    }
                    (Some(_), false) => None,
                };
                match through {
                    Some((soft, temperature)) => {
                        let mean = dot(&d_weights, soft);
                        for (d, a) in d_weights.iter_mut().zip(soft) {
                            *d = a * (*d - mean) / temperature;
                        }
                    }
                    None => d_weights.fill(0.0),
                }
                let d_fs_row = &mut d_fs_t[row * sw..(row + 1) * sw];
                let state = &trace.state[range(u)][row * u..(row + 1) * u];
                let state_of = |j: usize| &x.states[(row * t + j) * h..][..h];
                match s.score {
                    // e_j = v . tanh(q + k_j)
                    Score::Additive => {
                        let activations =
                            &trace.activations[range(t * u)][row * t * u..(row + 1) * t * u];
                        let d_query = &mut d_fs_row[2 * u..2 * u + q];
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
                    // e_j = q . h_j: q's gradient reaches s (dot) or the query block (general).
                    Score::Dot | Score::General => {
                        let query = if q > 0 {
                            &trace.from_state[range(sw)][row * sw + 2 * u..row * sw + 2 * u + q]
                        } else {
                            state
                        };
                        let d_query = if q > 0 {
                            &mut d_fs_row[2 * u..2 * u + q]
                        } else {
                            &mut d_prev[row * u..(row + 1) * u]
                        };
                        if q > 0 {
                            d_query.fill(0.0);
                        }
                        for (j, de) in d_weights.iter().enumerate() {
                            let ds = &mut d_states[(row * t + j) * h..][..h];
                            for ((dq, dh), (qk, hk)) in d_query
                                .iter_mut()
                                .zip(ds)
                                .zip(query.iter().zip(state_of(j)))
                            {
                                *dq = de.mul_add(*hk, *dq);
                                *dh = de.mul_add(*qk, *dh);
                            }
                        }
                    }
                    // e_j = g c_j, c_j = (q . h_j) / max(|q| |h_j|, floor), q = s.
                    Score::Cosine => {
                        let cosines = &trace.cosines[range(t)][row * t..(row + 1) * t];
                        let norms = &trace.norms[range(1 + t)][row * (1 + t)..(row + 1) * (1 + t)];
                        let d_query = &mut d_prev[row * u..(row + 1) * u];
                        for (j, de) in d_weights.iter().enumerate() {
                            d_score[0] = de.mul_add(cosines[j], d_score[0]);
                            let dc = de * x.score[0];
                            let denominator = norms[0] * norms[1 + j];
                            let ds = &mut d_states[(row * t + j) * h..][..h];
                            let h_j = state_of(j);
                            if denominator > COSINE_FLOOR {
                                // dc/dq = h_j / D - c q / |q|^2, dc/dh_j = q / D - c h_j / |h_j|^2
                                let scale = dc / denominator;
                                let (cq, ch) = (
                                    dc * cosines[j] / (norms[0] * norms[0]),
                                    dc * cosines[j] / (norms[1 + j] * norms[1 + j]),
                                );
                                for k in 0..u {
                                    d_query[k] += scale * h_j[k] - cq * state[k];
                                    ds[k] += scale * state[k] - ch * h_j[k];
                                }
                            } else {
                                // The held denominator is a constant.
                                let scale = dc / COSINE_FLOOR;
                                for k in 0..u {
                                    d_query[k] += scale * h_j[k];
                                    ds[k] += scale * state[k];
                                }
                            }
                        }
                    }
                }
            }
            // fs = s [U_r | U_z | W_a | U_o]
            small_matmul(
                (&mut d_prev, u),
                (b, u, sw),
                Operand::rows(d_fs_t, sw),
                Operand::transposed(x.from_state, sw),
                true,
            );
            std::mem::swap(&mut d_state, &mut d_prev);
        }
        d_first.copy_from_slice(&d_state);
        // Each kernel's gradient: one product over every step and row, added to its zeroed
        // buffer. They are zeroed only now (see `CpuOp::backward`).
        let rows = t * b;
        small_matmul(
            (zeroed_part(g_from_state, r, per[4], s.repeats), sw),
            (u, sw, rows),
            Operand::transposed(&trace.state, u),
            Operand::rows(&d_fs, sw),
            true,
        );
        small_matmul(
            (zeroed_part(g_from_input, r, per[5], s.repeats), w),
            (v + h, w, rows),
            Operand::transposed(&trace.input, v + h),
            Operand::rows(&d_fi, w),
            true,
        );
        small_matmul(
            (zeroed_part(g_proposal, r, per[7], s.repeats), u),
            (u, u, rows),
            Operand::transposed(&trace.reset_state, u),
            Operand::rows(&d_pp, u),
            true,
        );
        for row in d_fi.chunks_exact(w) {
            for (db, d) in d_bias.iter_mut().zip(row) {
                *db += d;
            }
        }
    }
    gradients
}
