//! The echo task's loss: from logits `[R, M, V]` and targets `[R, M, V]` (one-hot rows, or any
//! distributions), each repeat's categorical cross-entropy `-sum_j t_j log softmax(x)_j`,
//! averaged over its `M` rows: `[R]`.
//!
//! Why an op of its own: burn-flex sums a row (the log-sum-exp of `log_softmax`, and its
//! backward pass) in as many lanes as the CPU's vectors hold, 8 with AVX2 and 16 with
//! AVX-512, so E1's loss gradients differed in their last bits between two such machines, and
//! the baseline's training amplified that into other accuracies (`tests/vector_width.rs` shows
//! which of burn's ops do it). Here every sum runs in [`LANES`] fixed lanes and the exponential
//! and the logarithm are straight-line arithmetic, so every x86-64 machine (AVX-512, AVX2 or
//! neither) computes the same bits.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Shape;
use burn::tensor::activation::log_softmax;

use super::math::{exp, ln};
use super::op::{CpuOp, zeroed};
use super::simd::{LANES, lanes_reduce, simd_fn, tree_sum};
use super::{CpuOps, on_cpu};

/// The op: each repeat's mean categorical cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropy;

/// Each repeat's mean cross-entropy `[R]` of logits `[R, M, V]` against targets `[R, M, V]`.
/// On the CPU backends the op with its own backward pass (the targets get no gradient: they
/// are data); elsewhere [`cross_entropy_reference`].
pub fn cross_entropy(logits: Tensor<3>, targets: Tensor<3>) -> Tensor<1> {
    if !on_cpu(&logits.device()) {
        return cross_entropy_reference(logits, targets);
    }
    Tensor::from_dispatch(<Dispatch as CpuOps>::cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
        CrossEntropy,
    ))
}

/// [`cross_entropy`] composed from burn's ops: the reference the tests compare with, and the
/// GPU's path.
pub fn cross_entropy_reference(logits: Tensor<3>, targets: Tensor<3>) -> Tensor<1> {
    let [r, m, _] = logits.dims();
    let nll = (log_softmax(logits, 2) * targets).sum_dim(2).neg(); // [R, M, 1]
    nll.reshape([r, m]).mean_dim(1).reshape([r])
}

impl CpuOp<2> for CrossEntropy {
    type Saved = ();

    fn output_shape(&self, [x, t]: &[Shape; 2]) -> Shape {
        Shape::new([Sizes::of(x, t).repeats])
    }

    fn forward(&self, [x, t]: [&[f32]; 2], [x_shape, t_shape]: &[Shape; 2], out: &mut [f32]) {
        forward(x, t, Sizes::of(x_shape, t_shape), out);
    }

    fn backward(
        &self,
        [x, t]: [&[f32]; 2],
        [x_shape, t_shape]: &[Shape; 2],
        _: &(),
        grad: &[f32],
    ) -> [Vec<f32>; 2] {
        // The targets' gradient stays zero: they are data.
        let [mut dx, targets] = zeroed(&[x_shape.clone(), t_shape.clone()]);
        backward((x, t, grad), Sizes::of(x_shape, t_shape), &mut dx);
        [dx, targets]
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
    fn of(x: &Shape, t: &Shape) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{
        assert_same_bits, check_against_reference, spread, spread_tensor,
    };
    use crate::machine::SimdLevel;

    /// One-hot rows, as the echo task's targets.
    fn one_hot([r, m, v]: [usize; 3], device: &Device) -> Tensor<3> {
        let mut data = vec![0.0f32; r * m * v];
        for row in 0..r * m {
            data[row * v + (row * 7) % v] = 1.0;
        }
        Tensor::from_data(TensorData::new(data, [r, m, v]), device)
    }

    /// Loss and logits' gradient equal the reference's, for one-hot targets (E1, rows not a
    /// multiple of the lanes) and soft ones. (The harness tracks the targets too: the op gives
    /// them no gradient, so its reference's is compared as the targets' detached one.)
    #[test]
    fn the_loss_equals_its_reference() {
        for (shape, soft) in [([2, 5, 50], false), ([1, 3, 19], true)] {
            let targets = |device: &Device| {
                if soft {
                    burn::tensor::activation::softmax(spread_tensor(shape, 31, 0.07, device), 2)
                } else {
                    one_hot(shape, device)
                }
            };
            check_against_reference(
                &format!("cross_entropy {shape:?}"),
                |device| [spread_tensor(shape, 7919, 0.07, device)],
                |[x]| {
                    let t = targets(&x.device());
                    cross_entropy(x, t)
                        .unsqueeze_dim::<2>(1)
                        .unsqueeze_dim::<3>(2)
                },
                |[x]| {
                    let t = targets(&x.device());
                    cross_entropy_reference(x, t)
                        .unsqueeze_dim::<2>(1)
                        .unsqueeze_dim::<3>(2)
                },
                1e-6,
            );
        }
    }

    /// Every SIMD level this CPU runs gives the portable build's bits.
    #[test]
    fn every_simd_level_gives_the_same_bits() {
        let s = Sizes {
            repeats: 2,
            rows: 5,
            classes: 50,
        };
        let x = spread(2 * 5 * 50, 7919, 0.07);
        let t: Vec<f32> = (0..x.len())
            .map(|i| f32::from(i % 50 == (i / 50) % 50))
            .collect();
        let grad = [0.7f32, -1.3];
        let mut loss = vec![0.0; 2];
        forward_portable(&x, &t, s, &mut loss);
        let mut dx = vec![0.0; x.len()];
        backward_portable((&x, &t, &grad), s, &mut dx);
        for level in SimdLevel::supported() {
            let mut level_loss = vec![0.0; 2];
            run_at(level, || forward_portable(&x, &t, s, &mut level_loss));
            assert_same_bits(&level_loss, &loss, &format!("{level} loss"));
            let mut level_dx = vec![0.0; x.len()];
            run_at(level, || {
                backward_portable((&x, &t, &grad), s, &mut level_dx)
            });
            assert_same_bits(&level_dx, &dx, &format!("{level} gradient"));
        }
    }
}
