//! The echo task's loss as one operation with its own backward pass, for the CPU backends: from
//! logits `[R, M, V]` and targets `[R, M, V]` (one-hot rows, or any distributions), each
//! repeat's categorical cross-entropy `-sum_j t_j log softmax(x)_j`, averaged over its `M`
//! rows: `[R]`.
//!
//! Why an op of its own: burn-flex sums a row (the log-sum-exp of `log_softmax`, and its
//! backward pass) in as many lanes as the CPU's vectors hold, 8 with AVX2 and 16 with
//! AVX-512, so E1's loss gradients differed in their last bits between two such machines, and
//! the baseline's training amplified that into other accuracies (`tests/vector_width.rs` shows
//! which of burn's ops do it). Here every sum runs in [`LANES`] fixed lanes and the exponential
//! and the logarithm are straight-line arithmetic, so every x86-64 machine (AVX-512, AVX2 or
//! neither) computes the same bits.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::prelude::*;

use super::cpu_kernel::{Floats, LANES, exp, lanes_reduce, simd_fn, tree_sum};

/// Each repeat's mean cross-entropy `[R]` of logits `[R, M, V]` against targets `[R, M, V]`,
/// tracked by autodiff with its own backward pass (the targets get no gradient: they are
/// data). Only for the CPU backends ([`crate::backend::is_cpu`]).
pub fn cross_entropy(logits: Tensor<3>, targets: Tensor<3>) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as CrossEntropyBackend>::cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
    ))
}

#[backend_extension(Flex, NdArray, Autodiff)]
pub trait CrossEntropyBackend: Backend {
    /// See [`cross_entropy`].
    fn cross_entropy(logits: FloatTensor<Self>, targets: FloatTensor<Self>) -> FloatTensor<Self> {
        let sizes = Sizes::of(&logits.shape(), &targets.shape());
        let device = logits.device();
        let (x, t) = (Floats::<Self>::new(logits), Floats::<Self>::new(targets));
        let mut loss = vec![0.0f32; sizes.repeats];
        forward(x.as_slice(), t.as_slice(), sizes, &mut loss);
        Self::float_from_data(TensorData::new(loss, [sizes.repeats]), &device)
    }
}

impl CrossEntropyBackend for Flex {}
impl CrossEntropyBackend for NdArray {}

impl<B: CrossEntropyBackend, C: CheckpointStrategy> CrossEntropyBackend for Autodiff<B, C> {
    fn cross_entropy(logits: FloatTensor<Self>, targets: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct CrossEntropy;

        impl<B: Backend> Backward<B, 2> for CrossEntropy {
            type State = (NodeId, NodeId);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let grad = grads.consume::<B>(&ops.node);
                let [logits_parent, _targets_are_data] = ops.parents;
                let Some(node) = logits_parent else { return };
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state.0);
                let t: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state.1);
                let sizes = Sizes::of(&x.shape(), &t.shape());
                let (device, shape) = (x.device(), x.shape());
                let (x, t, grad) = (
                    Floats::<B>::new(x),
                    Floats::<B>::new(t),
                    Floats::<B>::new(grad),
                );
                let mut dx = vec![0.0f32; shape.num_elements()];
                backward(
                    (x.as_slice(), t.as_slice(), grad.as_slice()),
                    sizes,
                    &mut dx,
                );
                let dx = B::float_from_data(TensorData::new(dx, shape), &device);
                grads.register::<B>(node.id, dx);
            }
        }

        match CrossEntropy
            .prepare::<C>([logits.node(), targets.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&logits), prep.checkpoint(&targets));
                let output = B::cross_entropy(logits.into_primitive(), targets.into_primitive());
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::cross_entropy(
                logits.into_primitive(),
                targets.into_primitive(),
            )),
        }
    }
}

/// `repeats` sets of `rows` rows of `classes` logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    pub repeats: usize,
    pub rows: usize,
    pub classes: usize,
}

impl Sizes {
    /// The sizes of logits and targets, both `[R, M, V]` (checked).
    fn of(x: &burn::tensor::Shape, t: &burn::tensor::Shape) -> Self {
        assert!(
            x.num_dims() == 3 && x == t && x[2] > 0,
            "a cross-entropy takes logits and targets of one shape [R, M, V], not {x:?} and {t:?}"
        );
        Self {
            repeats: x[0],
            rows: x[1],
            classes: x[2],
        }
    }
}

simd_fn! {
    /// The forward pass on slices: each repeat's mean loss `loss` `[R]` from logits `x` and
    /// targets `t`, `[R, M, V]`.
    pub fn forward(x: &[f32], t: &[f32], s: Sizes, loss: &mut [f32]) = forward_portable;
}

simd_fn! {
    /// The backward pass on slices: from `x`, `t` and the loss's gradient `grad` `[R]`, the
    /// logits' gradient `dx` `[R, M, V]`: `grad / M * (softmax(x) sum(t) - t)` per row.
    pub fn backward(inputs: (&[f32], &[f32], &[f32]), s: Sizes, dx: &mut [f32]) =
        backward_portable;
}

/// A row's maximum and the sum of `e^(x - max)`, both in fixed lanes.
#[inline(always)]
fn max_and_sum(x: &[f32]) -> (f32, f32) {
    let max = lanes_reduce(x, f32::NEG_INFINITY, f32::max, f32::max);
    let mut sums = [0.0f32; LANES];
    for (i, v) in x.iter().enumerate() {
        sums[i % LANES] += exp(v - max);
    }
    (max, tree_sum(sums))
}

#[inline(always)]
fn forward_portable(x: &[f32], t: &[f32], s: Sizes, loss: &mut [f32]) {
    let per_repeat = s.rows * s.classes;
    assert!(x.len() == s.repeats * per_repeat && t.len() == x.len() && loss.len() == s.repeats);
    let repeats = x.chunks_exact(per_repeat).zip(t.chunks_exact(per_repeat));
    for ((x, t), loss) in repeats.zip(loss.iter_mut()) {
        let mut total = 0.0f32;
        for (x, t) in x.chunks_exact(s.classes).zip(t.chunks_exact(s.classes)) {
            let (max, sum) = max_and_sum(x);
            let log_sum = ln(sum);
            // -sum_j t_j log softmax_j, with log softmax_j = (x_j - max) - ln(sum): a one-hot
            // row adds exact zeros and its one term.
            let mut terms = [0.0f32; LANES];
            for (i, (x, t)) in x.iter().zip(t).enumerate() {
                terms[i % LANES] -= t * ((x - max) - log_sum);
            }
            total += tree_sum(terms);
        }
        *loss = total / s.rows as f32;
    }
}

#[inline(always)]
fn backward_portable((x, t, grad): (&[f32], &[f32], &[f32]), s: Sizes, dx: &mut [f32]) {
    let per_repeat = s.rows * s.classes;
    assert!(x.len() == s.repeats * per_repeat && t.len() == x.len() && dx.len() == x.len());
    assert_eq!(grad.len(), s.repeats);
    let repeats = x
        .chunks_exact(per_repeat)
        .zip(t.chunks_exact(per_repeat))
        .zip(dx.chunks_exact_mut(per_repeat));
    for (((x, t), dx), g) in repeats.zip(grad) {
        let scale = g / s.rows as f32;
        let rows = x
            .chunks_exact(s.classes)
            .zip(t.chunks_exact(s.classes))
            .zip(dx.chunks_exact_mut(s.classes));
        for ((x, t), dx) in rows {
            let (max, sum) = max_and_sum(x);
            let inv = 1.0 / sum;
            let mass = lanes_reduce(t, 0.0, |a, v| a + v, |a, b| a + b);
            for ((d, x), t) in dx.iter_mut().zip(x).zip(t) {
                let p = exp(x - max) * inv;
                *d = scale * p.mul_add(mass, -t);
            }
        }
    }
}

/// `ln(x)` for a positive normal `x`, within 1 ulp of the true value: Cephes' polynomial on the
/// mantissa, the exponent added in two parts. Straight-line arithmetic (libm's `logf` picks
/// its code by the CPU's features), so every machine computes the same bits.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    debug_assert!(x.is_normal() && x > 0.0, "ln of {x}");
    let bits = x.to_bits();
    // x = m 2^e with m in [0.5, 1).
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    if m < SQRT_HALF {
        e -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        y = y.mul_add(m, c);
    }
    // ln 2 in two parts (0.693359375 is exact in few bits), as Cephes adds it.
    let e = e as f32;
    let y = y * m * z + e * -2.121_944_4e-4 + -0.5 * z;
    (m + y) + e * 0.693_359_4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::step_weight::values;
    use burn::tensor::activation::log_softmax;

    #[test]
    fn ln_is_within_one_ulp_of_libm() {
        let mut worst = 0.0f64;
        for i in 0..2_000_000 {
            let x = 1.0 + i as f32 * 5e-4; // [1, 1001): sums of softmax terms
            let (got, want) = (ln(x) as f64, (x as f64).ln());
            worst = worst.max((got - want).abs() / want.max(f64::MIN_POSITIVE));
        }
        assert!(worst < 1.2e-7, "worst relative error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(0.5) as f64 - 0.5f64.ln()).abs() < 1e-7);
    }

    fn spread<const D: usize>(shape: [usize; D], k: usize, device: &Device) -> Tensor<D> {
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| (((i * k) % 97) as f32 - 48.0) * 0.07)
            .collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    /// One-hot rows, as the echo task's targets.
    fn one_hot([r, m, v]: [usize; 3], device: &Device) -> Tensor<3> {
        let mut data = vec![0.0f32; r * m * v];
        for row in 0..r * m {
            data[row * v + (row * 7) % v] = 1.0;
        }
        Tensor::from_data(TensorData::new(data, [r, m, v]), device)
    }

    /// burn's ops as the echo loss composed them (the GPU's path): the reference.
    fn composed(x: Tensor<3>, t: Tensor<3>) -> Tensor<1> {
        let [r, m, _] = x.dims();
        let nll = (log_softmax(x, 2) * t).sum_dim(2).neg(); // [R, M, 1]
        nll.reshape([r, m]).mean_dim(1).reshape([r])
    }

    /// Loss and logits' gradient equal burn's composed ops on both CPU backends, for one-hot
    /// targets (E1, rows not a multiple of the lanes) and soft ones.
    #[test]
    fn loss_and_gradient_equal_burns_composed_ops() {
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            for (shape, soft) in [([2, 5, 50], false), ([1, 3, 19], true)] {
                let targets = if soft {
                    burn::tensor::activation::softmax(spread(shape, 31, &device), 2)
                } else {
                    one_hot(shape, &device)
                };
                let weights = spread([shape[0]], 13, &device);
                let run = |fused: bool| {
                    let x = spread(shape, 7919, &device).require_grad();
                    let loss = if fused {
                        cross_entropy(x.clone(), targets.clone())
                    } else {
                        composed(x.clone(), targets.clone())
                    };
                    let grads = (loss.clone() * weights.clone()).sum().backward();
                    (values(loss), values(x.grad(&grads).unwrap()))
                };
                let ((loss, dx), (loss_ref, dx_ref)) = (run(true), run(false));
                for (a, b) in loss.iter().zip(&loss_ref) {
                    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "loss {a} vs {b}");
                }
                let scale = dx_ref.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(scale > 1e-3, "a gradient that says something");
                for (i, (a, b)) in dx.iter().zip(&dx_ref).enumerate() {
                    assert!((a - b).abs() <= 1e-6 * scale, "dx[{i}]: {a} vs {b}");
                }
            }
        }
    }

    /// Every SIMD build gives the portable build's bits.
    #[test]
    fn the_simd_width_does_not_change_the_bits() {
        let s = Sizes {
            repeats: 2,
            rows: 5,
            classes: 50,
        };
        let device = Device::flex();
        let x = values(spread([2, 5, 50], 7919, &device));
        let t = values(one_hot([2, 5, 50], &device));
        let grad = [0.7f32, -1.3];
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (mut fast, mut portable) = (vec![0.0; 2], vec![0.0; 2]);
        forward(&x, &t, s, &mut fast);
        forward_portable(&x, &t, s, &mut portable);
        assert_eq!(bits(&fast), bits(&portable));
        let (mut fast, mut portable) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        backward((&x, &t, &grad), s, &mut fast);
        backward_portable((&x, &t, &grad), s, &mut portable);
        assert_eq!(bits(&fast), bits(&portable));
    }
}
