//! The element-wise half of an LSTM step, on slices, for [`lstm_sequence`](super::lstm_sequence)
//! (the IMDB LSTMs and E1's): from the gate pre-activations
//! `z = [z_i | z_f | z_g | z_o]` and the previous cell `c`, the new hidden state and cell
//! `[h | c']` with `c' = σ(z_f) c + σ(z_i) tanh(z_g)` and `h = σ(z_o) tanh(c')` (Keras' gate
//! order; `σ` the sigmoid, or with `hard` Keras 2's hard sigmoid `clip(0.2 x + 0.5, 0, 1)`).
//!
//! Composed from burn's ops ([`lstm_cell_reference`], the GPU's path) this was a dozen tracked
//! ops per step (a sigmoid over the gates, four slices, two tanh, products and a sum), each a
//! pass into a new buffer, with one libm call per element for every sigmoid and tanh. Here it
//! is one pass forward and one backward (which recomputes the activations), with the
//! activations from [`math`](super::math).

use burn::prelude::*;
use burn::tensor::activation::{hard_sigmoid as burn_hard_sigmoid, sigmoid as burn_sigmoid};

use super::math::{hard_sigmoid, sigmoid, tanh};
use super::simd::{LANES, simd_fn};

/// The cell composed from burn's ops, `[h | c']` `[N, 2H]` from gate pre-activations `z`
/// `[N, 4H]` and cell `c` `[N, H]`: the reference the tests compare [`forward`] and
/// [`backward`] with, and the GPU's path (through
/// [`lstm_sequence_reference`](super::lstm_sequence::lstm_sequence_reference)).
pub fn lstm_cell_reference(z: Tensor<2>, c: Tensor<2>, hard: bool) -> Tensor<2> {
    let hidden = c.dims()[1];
    // One activation over all four gates (the cell candidate's quarter goes unused) costs
    // less than three separate ones: at batch size 1 the op count, not the arithmetic,
    // dominates.
    let gates = if hard {
        burn_hard_sigmoid(z.clone(), 0.2, 0.5)
    } else {
        burn_sigmoid(z.clone())
    };
    let gate = |k: usize| gates.clone().slice_dim(1, k * hidden..(k + 1) * hidden);
    let (i, f, o) = (gate(0), gate(1), gate(3));
    let g = z.slice_dim(1, 2 * hidden..3 * hidden).tanh();
    let c = f * c + i * g;
    Tensor::cat(vec![o * c.clone().tanh(), c], 1)
}

simd_fn! {
    /// The forward pass on slices: `out` `[N, 2H]` (`[h | c']`) from `z` `[N, 4H]` and `c`
    /// `[N, H]`; hard-sigmoid gates when `hard`.
    pub fn forward(z: &[f32], c: &[f32], hidden: usize, hard: bool, out: &mut [f32]) =
        forward_portable;
}

simd_fn! {
    /// The backward pass on slices: from `z`, `c` and the output's gradient `grad` `[N, 2H]`,
    /// the gradients `dz` `[N, 4H]` and `dc` `[N, H]`.
    pub fn backward(
        inputs: (&[f32], &[f32], &[f32]),
        hidden: usize,
        hard: bool,
        grads: (&mut [f32], &mut [f32]),
    ) = backward_portable;
}

/// A gate's activation: the sigmoid, or with `HARD` Keras 2's hard sigmoid.
#[inline(always)]
fn gate<const HARD: bool>(x: f32) -> f32 {
    if HARD { hard_sigmoid(x) } else { sigmoid(x) }
}

/// A gate's derivative, from its value `y`.
#[inline(always)]
fn gate_slope<const HARD: bool>(y: f32) -> f32 {
    if HARD {
        // Flat where the clip holds the value at 0 or 1.
        if y > 0.0 && y < 1.0 { 0.2 } else { 0.0 }
    } else {
        y * (1.0 - y)
    }
}

/// One row's gates `[z_i | z_f | z_g | z_o]`, split, each `hidden` long.
#[inline(always)]
fn gates(z: &[f32], hidden: usize) -> (&[f32], &[f32], &[f32], &[f32]) {
    let (i, rest) = z.split_at(hidden);
    let (f, rest) = rest.split_at(hidden);
    let (g, o) = rest.split_at(hidden);
    (i, f, g, &o[..hidden])
}

#[inline(always)]
fn forward_portable(z: &[f32], c: &[f32], hidden: usize, hard: bool, out: &mut [f32]) {
    // One loop per activation, so that each vectorises without a branch inside.
    if hard {
        forward_rows::<true>(z, c, hidden, out)
    } else {
        forward_rows::<false>(z, c, hidden, out)
    }
}

#[inline(always)]
fn forward_rows<const HARD: bool>(z: &[f32], c: &[f32], hidden: usize, out: &mut [f32]) {
    let rows = z.chunks_exact(4 * hidden).zip(c.chunks_exact(hidden));
    for ((z, c), out) in rows.zip(out.chunks_exact_mut(2 * hidden)) {
        let (zi, zf, zg, zo) = gates(z, hidden);
        let (h_out, c_out) = out.split_at_mut(hidden);
        // Every slice cut to `hidden` where the loop can see it: with their lengths known the
        // loop has no bounds checks and vectorises. (A zip of the seven slices did not: 35 ns
        // per unit, scalar, against 2 ns.)
        let (c, h_out, c_out) = (&c[..hidden], &mut h_out[..hidden], &mut c_out[..hidden]);
        for j in 0..hidden {
            let (i, f, g, o) = (
                gate::<HARD>(zi[j]),
                gate::<HARD>(zf[j]),
                tanh(zg[j]),
                gate::<HARD>(zo[j]),
            );
            let c_new = f.mul_add(c[j], i * g);
            c_out[j] = c_new;
            h_out[j] = o * tanh(c_new);
        }
    }
}

#[inline(always)]
fn backward_portable(
    inputs: (&[f32], &[f32], &[f32]),
    hidden: usize,
    hard: bool,
    grads: (&mut [f32], &mut [f32]),
) {
    if hard {
        backward_rows::<true>(inputs, hidden, grads)
    } else {
        backward_rows::<false>(inputs, hidden, grads)
    }
}

/// One unit's backward pass: from its gates' pre-activations `[z_i, z_f, z_g, z_o]`, cell `c`
/// and the gradients reaching `h` and `c'`, the gradients `[dz_i, dz_f, dz_g, dz_o]` and `dc`.
#[inline(always)]
fn unit_backward<const HARD: bool>(z: [f32; 4], c: f32, dh: f32, dc_next: f32) -> [f32; 5] {
    let (i, f, g, o) = (
        gate::<HARD>(z[0]),
        gate::<HARD>(z[1]),
        tanh(z[2]),
        gate::<HARD>(z[3]),
    );
    let c_new = f.mul_add(c, i * g);
    let t = tanh(c_new);
    // The cell's gradient: from the next step, and through h = o tanh(c').
    let dct = (dh * o).mul_add(1.0 - t * t, dc_next);
    [
        dct * g * gate_slope::<HARD>(i),
        dct * c * gate_slope::<HARD>(f),
        dct * i * (1.0 - g * g),
        dh * t * gate_slope::<HARD>(o),
        dct * f,
    ]
}

#[inline(always)]
fn backward_rows<const HARD: bool>(
    (z, c, grad): (&[f32], &[f32], &[f32]),
    hidden: usize,
    (dz, dc): (&mut [f32], &mut [f32]),
) {
    let inputs = z
        .chunks_exact(4 * hidden)
        .zip(c.chunks_exact(hidden))
        .zip(grad.chunks_exact(2 * hidden));
    let outputs = dz
        .chunks_exact_mut(4 * hidden)
        .zip(dc.chunks_exact_mut(hidden));
    for (((z, c), grad), (dz, dc)) in inputs.zip(outputs) {
        let (dh, dc_next) = grad.split_at(hidden);
        let (dzi, rest) = dz.split_at_mut(hidden);
        let (dzf, rest) = rest.split_at_mut(hidden);
        let (dzg, dzo) = rest.split_at_mut(hidden);
        row_backward::<HARD>(gates(z, hidden), (c, dh, dc_next), [dzi, dzf, dzg, dzo], dc);
    }
}

/// One row of [`backward_rows`], [`LANES`] units at a time: each block's inputs read into
/// arrays and its five outputs computed into arrays, then stored. (Written straight into the
/// five output slices, the loop stayed scalar, 40 ns per unit against 3 vectorised: the
/// compiler would not vectorise it with that many slices it could not prove apart.)
#[inline(always)]
fn row_backward<const HARD: bool>(
    (zi, zf, zg, zo): (&[f32], &[f32], &[f32], &[f32]),
    (c, dh, dc_next): (&[f32], &[f32], &[f32]),
    [dzi, dzf, dzg, dzo]: [&mut [f32]; 4],
    dc: &mut [f32],
) {
    let n = dc.len();
    let block = |x: &[f32], j: usize| -> [f32; LANES] { x[j..j + LANES].try_into().unwrap() };
    let full = n - n % LANES;
    for j in (0..full).step_by(LANES) {
        let (bi, bf, bg, bo) = (block(zi, j), block(zf, j), block(zg, j), block(zo, j));
        let (bc, bh, bn) = (block(c, j), block(dh, j), block(dc_next, j));
        let mut out = [[0.0f32; LANES]; 5];
        for l in 0..LANES {
            let d = unit_backward::<HARD>([bi[l], bf[l], bg[l], bo[l]], bc[l], bh[l], bn[l]);
            out[0][l] = d[0];
            out[1][l] = d[1];
            out[2][l] = d[2];
            out[3][l] = d[3];
            out[4][l] = d[4];
        }
        dzi[j..j + LANES].copy_from_slice(&out[0]);
        dzf[j..j + LANES].copy_from_slice(&out[1]);
        dzg[j..j + LANES].copy_from_slice(&out[2]);
        dzo[j..j + LANES].copy_from_slice(&out[3]);
        dc[j..j + LANES].copy_from_slice(&out[4]);
    }
    for j in full..n {
        let d = unit_backward::<HARD>([zi[j], zf[j], zg[j], zo[j]], c[j], dh[j], dc_next[j]);
        dzi[j] = d[0];
        dzf[j] = d[1];
        dzg[j] = d[2];
        dzo[j] = d[3];
        dc[j] = d[4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{
        assert_close, assert_same_bits, autodiff_devices, spread, values,
    };
    use crate::machine::SimdLevel;

    /// The cell and both inputs' gradients equal the reference's (its values, and autodiff's
    /// gradients of `sum(out * grad)`), with either gate activation; with hard gates some gates
    /// sit on the clip and pass no gradient.
    #[test]
    fn the_cell_equals_its_reference() {
        let (rows, hidden) = (5, 19);
        let z = spread(rows * 4 * hidden, 7919, 0.08);
        let c = spread(rows * hidden, 104_729, 0.08);
        let grad = spread(rows * 2 * hidden, 31, 0.05);
        for device in autodiff_devices() {
            for hard in [false, true] {
                let tensor = |v: &[f32], cols: usize| {
                    Tensor::<2>::from_data(TensorData::new(v.to_vec(), [rows, cols]), &device)
                        .require_grad()
                };
                let (zt, ct) = (tensor(&z, 4 * hidden), tensor(&c, hidden));
                let out = lstm_cell_reference(zt.clone(), ct.clone(), hard);
                let weights =
                    Tensor::from_data(TensorData::new(grad.clone(), [rows, 2 * hidden]), &device);
                let grads = (out.clone() * weights).sum().backward();
                let mut got = vec![0.0; rows * 2 * hidden];
                forward(&z, &c, hidden, hard, &mut got);
                assert_close(&got, &values(out), 1e-6, "output");
                let (mut dz, mut dc) = (vec![0.0; z.len()], vec![0.0; c.len()]);
                backward((&z, &c, &grad), hidden, hard, (&mut dz, &mut dc));
                assert_close(&dz, &values(zt.grad(&grads).unwrap()), 1e-6, "dz");
                assert_close(&dc, &values(ct.grad(&grads).unwrap()), 1e-6, "dc");
                if hard {
                    assert!(dz.iter().filter(|g| **g == 0.0).count() > rows, "{dz:?}");
                }
            }
        }
    }

    /// Every SIMD level this CPU runs gives the portable build's bits.
    #[test]
    fn every_simd_level_gives_the_same_bits() {
        let (rows, hidden) = (3, 37);
        let z = spread(rows * 4 * hidden, 7919, 0.08);
        let c = spread(rows * hidden, 104_729, 0.08);
        let grad = spread(rows * 2 * hidden, 11, 0.1);
        for hard in [false, true] {
            let mut out = vec![0.0; rows * 2 * hidden];
            forward_portable(&z, &c, hidden, hard, &mut out);
            let mut grads = (vec![0.0; z.len()], vec![0.0; c.len()]);
            backward_portable((&z, &c, &grad), hidden, hard, (&mut grads.0, &mut grads.1));
            for level in SimdLevel::supported() {
                let mut level_out = vec![0.0; out.len()];
                run_at(level, || {
                    forward_portable(&z, &c, hidden, hard, &mut level_out)
                });
                assert_same_bits(&level_out, &out, &format!("{level} forward"));
                let mut level_grads = (vec![0.0; z.len()], vec![0.0; c.len()]);
                run_at(level, || {
                    backward_portable(
                        (&z, &c, &grad),
                        hidden,
                        hard,
                        (&mut level_grads.0, &mut level_grads.1),
                    )
                });
                assert_same_bits(&level_grads.0, &grads.0, &format!("{level} dz"));
                assert_same_bits(&level_grads.1, &grads.1, &format!("{level} dc"));
            }
        }
    }
}
