//! The decoder's forward pass: each repeat decoded step by step, its trace kept for the
//! backward pass.

use super::super::math::{exp, sigmoid, tanh};
use super::super::matmul::{Operand, small_matmul};
use super::super::simd::{dot, simd_fn};
use super::{COSINE_FLOOR, INPUTS, Repeat, Sizes, Trace};
use crate::config::Score;

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

/// The position of the first largest value.
#[inline(always)]
fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best
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
    let (sw, q, so) = (s.state_width(), s.query, 2 * u + s.query);
    let steps = |n: usize| vec![0.0f32; t * b * n];
    let (additive, cosine) = (s.score == Score::Additive, s.score == Score::Cosine);
    let mut trace = Trace {
        state: steps(u),
        from_state: steps(sw),
        activations: if additive { steps(t * u) } else { Vec::new() },
        cosines: if cosine { steps(t) } else { Vec::new() },
        norms: if cosine { steps(1 + t) } else { Vec::new() },
        soft: if s.noise { steps(t) } else { Vec::new() },
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
        let fs = &mut trace.from_state[range(sw)];
        small_matmul(
            (fs, sw),
            (b, sw, u),
            Operand::rows(&state, u),
            Operand::rows(x.from_state, sw),
            false,
        );
        let fs = &trace.from_state[range(sw)];
        for row in 0..b {
            // The scores e_j of the step's query against every encoder state.
            let query = if q > 0 {
                &fs[row * sw + 2 * u..row * sw + 2 * u + q]
            } else {
                &state[row * u..(row + 1) * u]
            };
            let weights = &mut trace.weights[range(t)][row * t..(row + 1) * t];
            let state_of = |j: usize| &x.states[(row * t + j) * h..][..h];
            match s.score {
                // e_j = v . tanh(q + k_j)
                Score::Additive => {
                    let activations =
                        &mut trace.activations[range(t * u)][row * t * u..(row + 1) * t * u];
                    for j in 0..t {
                        let key = &x.keys[(row * t + j) * u..][..u];
                        let act = &mut activations[j * u..(j + 1) * u];
                        for ((a, q), k) in act.iter_mut().zip(query).zip(key) {
                            *a = tanh(q + k);
                        }
                        weights[j] = dot(act, x.score);
                    }
                }
                // e_j = q . h_j (q = s, or s W)
                Score::Dot | Score::General => {
                    for (j, e) in weights.iter_mut().enumerate() {
                        *e = dot(query, state_of(j));
                    }
                }
                // e_j = g (q . h_j) / (|q| |h_j|)
                Score::Cosine => {
                    let norms = &mut trace.norms[range(1 + t)][row * (1 + t)..(row + 1) * (1 + t)];
                    let cosines = &mut trace.cosines[range(t)][row * t..(row + 1) * t];
                    norms[0] = dot(query, query).sqrt();
                    for j in 0..t {
                        let h_j = state_of(j);
                        norms[1 + j] = dot(h_j, h_j).sqrt();
                        cosines[j] = dot(query, h_j) / (norms[0] * norms[1 + j]).max(COSINE_FLOOR);
                        weights[j] = x.score[0] * cosines[j];
                    }
                }
            }
            // The weights a_t: the softmax of the scores, or one state.
            match s.hard {
                None => softmax(weights),
                Some(temperature) => {
                    let picked = if s.noise {
                        let soft = &mut trace.soft[range(t)][row * t..(row + 1) * t];
                        let noise = &x.noise[(row * t + step) * t..][..t];
                        for ((p, e), g) in soft.iter_mut().zip(weights.iter()).zip(noise) {
                            *p = (e + g) / temperature;
                        }
                        softmax(soft);
                        argmax(soft)
                    } else {
                        argmax(weights)
                    };
                    weights.fill(0.0);
                    weights[picked] = 1.0;
                }
            }
            // c = sum_j a_j h_j
            let input = &mut trace.input[range(v + h)][row * (v + h)..(row + 1) * (v + h)];
            if step > 0 {
                let previous = &trace.output[(step - 1) * b * v..step * b * v];
                input[..v].copy_from_slice(&previous[row * v..(row + 1) * v]);
            }
            let context = &mut input[v..];
            context.fill(0.0);
            for (j, a) in weights.iter().enumerate() {
                for (c, s) in context.iter_mut().zip(state_of(j)) {
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
            let (fs, fi) = (&fs[row * sw..(row + 1) * sw], &fi[row * w..(row + 1) * w]);
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
            let (fs, fi) = (&fs[row * sw..(row + 1) * sw], &fi[row * w..(row + 1) * w]);
            let gates = &trace.gates[range(2 * u)][row * 2 * u..(row + 1) * 2 * u];
            let p = &mut trace.proposal[range(u)][row * u..(row + 1) * u];
            for k in 0..u {
                p[k] = tanh(proposal[row * u + k]);
                let s = &mut state[row * u + k];
                *s += gates[u + k] * (p[k] - *s);
            }
            for k in 0..v {
                logits[k] = fi[3 * u + k] + fs[so + k];
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
    /// The forward pass on slices: `out` `[R, B, T, V + T]` from the inputs; returns each
    /// repeat's trace.
    pub fn forward(inputs: &[&[f32]; INPUTS], s: Sizes, out: &mut [f32]) -> Vec<Trace> =
        forward_portable;
}

#[inline(always)]
pub(super) fn forward_portable(inputs: &[&[f32]; INPUTS], s: Sizes, out: &mut [f32]) -> Vec<Trace> {
    assert_eq!(out.len(), s.outputs());
    let (t, width) = (s.time, s.outputs + s.time);
    // A plain loop, not an iterator's `map`: a closure handed to `Iterator::fold` is compiled
    // outside this `#[target_feature]` function when LLVM declines to inline the fold, and the
    // decoding then ran without the CPU's vectors, each `mul_add` a call to libm's `fmaf`.
    let mut traces = Vec::with_capacity(s.repeats);
    for (r, out) in out.chunks_exact_mut(s.batch * t * width).enumerate() {
        let x = Repeat::of(inputs, s, r);
        traces.push(decode(&x, s, |step, row, logits, weights| {
            let out = &mut out[(row * t + step) * width..][..width];
            out[..s.outputs].copy_from_slice(logits);
            out[s.outputs..].copy_from_slice(weights);
        }));
    }
    traces
}
