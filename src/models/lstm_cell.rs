//! The element-wise half of an LSTM step as one operation with its own backward pass, for the
//! CPU backends: from the gate pre-activations `z = [z_i | z_f | z_g | z_o]` and the previous
//! cell `c`, the new hidden state and cell `[h | c']` with
//! `c' = σ(z_f) c + σ(z_i) tanh(z_g)` and `h = σ(z_o) tanh(c')` (Keras' gate order and
//! activations; the gates' `σ` is the sigmoid, or with `hard` Keras 2's hard sigmoid
//! `clip(0.2 x + 0.5, 0, 1)`).
//!
//! Composed from burn's ops, this was a dozen tracked ops per step (a sigmoid over the gates,
//! four slices, two tanh, products and a sum), each a pass into a new buffer, with one libm
//! call per element for every sigmoid and tanh: a quarter of an IMDB LSTM step in perf. Here
//! it is one pass forward and one backward (which recomputes the activations), with the
//! activations in vectorisable code built on [`exp`].

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::prelude::*;

use crate::models::cpu_kernel::{Floats, exp, floats_mut, simd_fn, zeros};

/// `[h | c']` `[N, 2H]` from gate pre-activations `z` `[N, 4H]` and cell `c` `[N, H]`, with
/// hard-sigmoid gates when `hard`, tracked by autodiff with its own backward pass. Only for the
/// CPU backends ([`crate::backend::is_cpu`]).
pub fn lstm_cell(z: Tensor<2>, c: Tensor<2>, hard: bool) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as LstmCellBackend>::lstm_cell(
        z.into_dispatch(),
        c.into_dispatch(),
        hard,
    ))
}

#[backend_extension(Flex, NdArray, Autodiff)]
pub trait LstmCellBackend: Backend {
    /// See [`lstm_cell`].
    fn lstm_cell(z: FloatTensor<Self>, c: FloatTensor<Self>, hard: bool) -> FloatTensor<Self> {
        let (rows, hidden) = sizes(&z.shape(), &c.shape());
        let device = z.device();
        let (z, c) = (Floats::<Self>::new(z), Floats::<Self>::new(c));
        let mut out = zeros([rows, 2 * hidden]);
        forward(
            z.as_slice(),
            c.as_slice(),
            hidden,
            hard,
            floats_mut(&mut out),
        );
        Self::float_from_data(out, &device)
    }
}

impl LstmCellBackend for Flex {}
impl LstmCellBackend for NdArray {}

impl<B: LstmCellBackend, C: CheckpointStrategy> LstmCellBackend for Autodiff<B, C> {
    fn lstm_cell(z: FloatTensor<Self>, c: FloatTensor<Self>, hard: bool) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LstmCell;

        impl<B: Backend> Backward<B, 2> for LstmCell {
            type State = (NodeId, NodeId, bool);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let grad = grads.consume::<B>(&ops.node);
                let z: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state.0);
                let c: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state.1);
                let (rows, hidden) = sizes(&z.shape(), &c.shape());
                let device = z.device();
                let (z, c, grad) = (
                    Floats::<B>::new(z),
                    Floats::<B>::new(c),
                    Floats::<B>::new(grad),
                );
                let mut dz = zeros([rows, 4 * hidden]);
                let mut dc = zeros([rows, hidden]);
                backward(
                    (z.as_slice(), c.as_slice(), grad.as_slice()),
                    hidden,
                    ops.state.2,
                    (floats_mut(&mut dz), floats_mut(&mut dc)),
                );
                let [z_parent, c_parent] = ops.parents;
                if let Some(node) = z_parent {
                    grads.register::<B>(node.id, B::float_from_data(dz, &device));
                }
                if let Some(node) = c_parent {
                    grads.register::<B>(node.id, B::float_from_data(dc, &device));
                }
            }
        }

        match LstmCell
            .prepare::<C>([z.node(), c.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&z), prep.checkpoint(&c), hard);
                let output = B::lstm_cell(z.into_primitive(), c.into_primitive(), hard);
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::lstm_cell(z.into_primitive(), c.into_primitive(), hard))
            }
        }
    }
}

/// Rows and hidden width of gates `[N, 4H]` and cell `[N, H]` (checked).
fn sizes(z: &burn::tensor::Shape, c: &burn::tensor::Shape) -> (usize, usize) {
    assert!(
        z.num_dims() == 2 && c.num_dims() == 2 && z[1] == 4 * c[1] && z[0] == c[0],
        "an LSTM cell takes gates [N, 4H] and a cell [N, H], not {z:?} and {c:?}"
    );
    (c[0], c[1])
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

/// One row's gates `[z_i | z_f | z_g | z_o]`, split.
#[inline(always)]
fn gates(z: &[f32], hidden: usize) -> (&[f32], &[f32], &[f32], &[f32]) {
    let (i, rest) = z.split_at(hidden);
    let (f, rest) = rest.split_at(hidden);
    let (g, o) = rest.split_at(hidden);
    (i, f, g, o)
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
        let units = zi.iter().zip(zf).zip(zg).zip(zo).zip(c);
        for (((((zi, zf), zg), zo), c), (h_out, c_out)) in units.zip(h_out.iter_mut().zip(c_out)) {
            let (i, f, g, o) = (
                gate::<HARD>(*zi),
                gate::<HARD>(*zf),
                tanh(*zg),
                gate::<HARD>(*zo),
            );
            let c_new = f.mul_add(*c, i * g);
            *c_out = c_new;
            *h_out = o * tanh(c_new);
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
        let (zi, zf, zg, zo) = gates(z, hidden);
        let (dh, dc_next) = grad.split_at(hidden);
        let (dzi, rest) = dz.split_at_mut(hidden);
        let (dzf, rest) = rest.split_at_mut(hidden);
        let (dzg, dzo) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            let (i, f, g, o) = (
                gate::<HARD>(zi[j]),
                gate::<HARD>(zf[j]),
                tanh(zg[j]),
                gate::<HARD>(zo[j]),
            );
            let c_new = f.mul_add(c[j], i * g);
            let t = tanh(c_new);
            // The cell's gradient: from the next step, and through h = o tanh(c').
            let dct = (dh[j] * o).mul_add(1.0 - t * t, dc_next[j]);
            dzo[j] = dh[j] * t * gate_slope::<HARD>(o);
            dzi[j] = dct * g * gate_slope::<HARD>(i);
            dzf[j] = dct * c[j] * gate_slope::<HARD>(f);
            dzg[j] = dct * i * (1.0 - g * g);
            dc[j] = dct * f;
        }
    }
}

/// `1 / (1 + e^-x)`, within 2e-7 of the true value, from [`exp`] of a non-positive argument.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// Keras 2's `hard_sigmoid`: `clip(0.2 x + 0.5, 0, 1)`, a product and a sum rounded each (as
/// its TensorFlow backend computes it).
#[inline(always)]
pub fn hard_sigmoid(x: f32) -> f32 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

/// `tanh(x)`, within 2e-7 of the true value: Cephes' odd polynomial near 0 (where
/// `(1 - e) / (1 + e)` would cancel), that quotient with `e = e^(-2|x|)` elsewhere.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p.mul_add(z, 2.063_909e-2);
    p = p.mul_add(z, -5.373_971_6e-2);
    p = p.mul_add(z, 1.333_144_2e-1);
    p = p.mul_add(z, -3.333_328e-1);
    let small = (p * z).mul_add(x, x);
    let e = exp(-2.0 * a);
    let large = ((1.0 - e) / (1.0 + e)).copysign(x);
    if a < 0.625 { small } else { large }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::step_weight::values;

    #[test]
    fn activations_are_within_2e7_of_the_true_values() {
        let (mut worst_sigmoid, mut worst_tanh) = (0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let xf = x as f64;
            worst_sigmoid =
                worst_sigmoid.max((sigmoid(x) as f64 - 1.0 / (1.0 + (-xf).exp())).abs());
            worst_tanh = worst_tanh.max((tanh(x) as f64 - xf.tanh()).abs());
        }
        assert!(worst_sigmoid < 2e-7, "sigmoid: {worst_sigmoid:e}");
        assert!(worst_tanh < 2e-7, "tanh: {worst_tanh:e}");
        assert_eq!((tanh(0.0), tanh(50.0), tanh(-50.0)), (0.0, 1.0, -1.0));
        assert_eq!((sigmoid(100.0), sigmoid(-100.0)), (1.0, 0.0));
    }

    /// burn's ops as the LSTM composed them before this kernel (the GPU's path).
    fn composed(z: Tensor<2>, c: Tensor<2>, hard: bool) -> Tensor<2> {
        use burn::tensor::activation::{hard_sigmoid, sigmoid, tanh};
        let hidden = c.dims()[1];
        let gate = |k: usize| {
            let x = z.clone().slice_dim(1, k * hidden..(k + 1) * hidden);
            if hard {
                hard_sigmoid(x, 0.2, 0.5)
            } else {
                sigmoid(x)
            }
        };
        let (i, f, o) = (gate(0), gate(1), gate(3));
        let g = tanh(z.clone().slice_dim(1, 2 * hidden..3 * hidden));
        let c = f * c + i * g;
        Tensor::cat(vec![o * tanh(c.clone()), c], 1)
    }

    fn inputs(rows: usize, hidden: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let spread = |n: usize, k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * k) % 97) as f32 - 48.0) * 0.08)
                .collect()
        };
        let z = TensorData::new(spread(rows * 4 * hidden, 7919), [rows, 4 * hidden]);
        let c = TensorData::new(spread(rows * hidden, 104_729), [rows, hidden]);
        (Tensor::from_data(z, device), Tensor::from_data(c, device))
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn cell_and_gradients_equal_burns_composed_ops() {
        let devices = [Device::flex().autodiff(), Device::ndarray().autodiff()];
        for (device, hard) in devices.iter().flat_map(|d| [(d, false), (d, true)]) {
            let (rows, hidden) = (5, 19);
            let weights = inputs(rows, hidden, device).0.slice_dim(1, 0..2 * hidden);
            let run = |fused: bool| {
                let (z, c) = inputs(rows, hidden, device);
                let (z, c) = (z.require_grad(), c.require_grad());
                let out = if fused {
                    lstm_cell(z.clone(), c.clone(), hard)
                } else {
                    composed(z.clone(), c.clone(), hard)
                };
                let grads = (out.clone() * weights.clone()).sum().backward();
                let grad = |t: &Tensor<2>| values(t.grad(&grads).unwrap());
                (values(out), grad(&z), grad(&c))
            };
            let (out, dz, dc) = run(true);
            let (out_ref, dz_ref, dc_ref) = run(false);
            assert_close(&out, &out_ref, "output");
            assert_close(&dz, &dz_ref, "gates' gradient");
            assert_close(&dc, &dc_ref, "cell's gradient");
            assert!(
                dz.iter().any(|g| g.abs() > 1e-2),
                "a gradient that says something"
            );
            if hard {
                // Some gates sit on the clip (|z| >= 2.5 in the inputs) and pass no gradient.
                assert!(dz.iter().filter(|g| **g == 0.0).count() > rows);
            }
        }
    }

    #[test]
    fn the_hard_sigmoid_is_keras_2s() {
        assert_eq!(hard_sigmoid(0.0), 0.5);
        assert_eq!(hard_sigmoid(1.0), 0.7);
        assert_eq!(hard_sigmoid(-2.5), 0.0);
        assert_eq!(hard_sigmoid(3.0), 1.0);
        assert_eq!(hard_sigmoid(-7.0), 0.0);
    }

    /// The vector builds give the portable build's bits.
    #[test]
    fn the_simd_width_does_not_change_the_bits() {
        let (rows, hidden) = (3, 37);
        let (z, c) = inputs(rows, hidden, &Device::flex());
        let (z, c) = (values(z), values(c));
        let grad: Vec<f32> = (0..rows * 2 * hidden)
            .map(|i| (i % 11) as f32 * 0.1 - 0.5)
            .collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (mut fast, mut portable) = (vec![0.0; rows * 2 * hidden], vec![0.0; rows * 2 * hidden]);
        for hard in [false, true] {
            forward(&z, &c, hidden, hard, &mut fast);
            forward_portable(&z, &c, hidden, hard, &mut portable);
            assert_eq!(bits(&fast), bits(&portable));
            let mut fast = (vec![0.0; z.len()], vec![0.0; c.len()]);
            let mut portable = fast.clone();
            backward((&z, &c, &grad), hidden, hard, (&mut fast.0, &mut fast.1));
            backward_portable(
                (&z, &c, &grad),
                hidden,
                hard,
                (&mut portable.0, &mut portable.1),
            );
            assert_eq!(
                (bits(&fast.0), bits(&fast.1)),
                (bits(&portable.0), bits(&portable.1))
            );
        }
    }
}
