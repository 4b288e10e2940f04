//! Multi-head scaled dot-product attention with its own backward pass: `softmax(Q K^T * scale)
//! V` for every head, read straight from the packed projections `[Q | K | V]` and written as
//! the heads concatenated.
//!
//! Composed from burn's tensor ops, an E2 step (8 heads of 16 over 80 tokens) materialised
//! `[B, 8, 80, 80]` scores, weights and half a dozen gradients of that size, each a pass
//! through memory into a fresh buffer, and the softmax ran one scalar `expf` per element.
//! Here each (review, head) is worked in 25 KB (its weights and their gradient) that stay in
//! the L1 cache: two small matrix products forward, and four backward from the weights the
//! forward pass kept, each review's in a buffer of its own (reading them back beats
//! recomputing them, a product and a softmax per head; [`KEEP_BYTES`] says how much a call
//! may keep), or five where it recomputes them. The exponential is a vectorisable polynomial
//! ([`exp`]), and every sum runs in a fixed order, so the results do not depend on the thread
//! or the SIMD width.
//!
//! The GPU keeps burn's composed ops ([`composed_attention`], the reference, and also the CPU's
//! path where scores are masked); the unit tests here and the ndarray/wgpu agreement test
//! compare the two.

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::Shape;
use rayon::prelude::*;

use super::math::exp;
use super::matmul::{Operand, Products, matmul};
use super::op::CpuOp;
use super::simd::{LANES, lanes_reduce, simd_fn, tree_sum};
use super::softmax::softmax_fused;
use super::{CpuOps, on_cpu};

/// The most memory one call's attention weights may take to be kept for the backward pass;
/// beyond it they are recomputed. A training step calls the kernel once per layer and half
/// batch (`train::imdb::step`): E2's calls keep 3.3 MB each.
pub const KEEP_BYTES: usize = 64 << 20;

/// The sizes of one call: `batch` reviews of `time` tokens, `heads` heads of `head_dim`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub batch: usize,
    pub time: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Multiplies `Q K^T` before the softmax.
    pub scale: f32,
    /// The kernels of the per-head products.
    pub products: Products,
}

impl Geometry {
    /// Width of the concatenated heads, `H * dh`.
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Row stride of the packed projections, `3 * H * dh`.
    fn packed(&self) -> usize {
        3 * self.width()
    }

    /// How many attention weights a call has, `B * H * T * T`.
    fn weights(&self) -> usize {
        self.batch * self.heads * self.time * self.time
    }

    /// Whether the forward pass keeps the weights for the backward one: reading them back is
    /// cheaper than recomputing them (a product and a softmax per head; `attnx bench
    /// --attention` compares the two), up to a size where the memory matters more.
    pub fn keeps_weights(&self) -> bool {
        self.weights() * size_of::<f32>() <= KEEP_BYTES
    }
}

/// The op: attention over packed projections of this geometry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionHeads {
    pub geometry: Geometry,
}

/// `softmax(Q K^T * scale) V` per head, for packed projections `qkv` `[B*T, 3*H*dh]` (each row
/// `[Q heads | K heads | V heads]`): the heads concatenated, `[B*T, H*dh]`. On the CPU
/// backends the op with its own backward pass; elsewhere [`composed_attention`].
pub fn attention_heads(qkv: Tensor<2>, geometry: Geometry) -> Tensor<2> {
    if !on_cpu(&qkv.device()) {
        return composed_attention(qkv, geometry, None).0;
    }
    Tensor::from_dispatch(<Dispatch as CpuOps>::attention_heads(
        qkv.into_dispatch(),
        AttentionHeads { geometry },
    ))
}

/// The same attention composed from burn's tensor ops, for every backend (the GPU's path, and
/// the CPU's where scores are masked): the heads concatenated `[B*T, H*dh]` and the weights
/// `[B, H, T, T]`. `offset` (`[B or 1, 1, T, T]`) is added to the scores before the softmax.
pub fn composed_attention(
    qkv: Tensor<2>,
    geometry: Geometry,
    offset: Option<Tensor<4>>,
) -> (Tensor<2>, Tensor<4>) {
    let Geometry {
        batch: b,
        time: t,
        heads: h,
        head_dim: dh,
        scale,
        ..
    } = geometry;
    let part = |k: usize| {
        qkv.clone()
            .slice_dim(1, k * h * dh..(k + 1) * h * dh)
            .reshape([b, t, h, dh])
            .swap_dims(1, 2) // [B, H, T, dh]
    };
    let (q, k, v) = (part(0), part(1), part(2));
    let mut scores = q.matmul(k.swap_dims(2, 3)) * scale as f64; // [B, H, T, T]
    if let Some(offset) = offset {
        scores = scores + offset;
    }
    let weights = softmax_fused(scores, 3);
    let heads = weights.clone().matmul(v); // [B, H, T, dh]
    (heads.swap_dims(1, 2).reshape([b * t, h * dh]), weights)
}

impl CpuOp<1> for AttentionHeads {
    /// Each review's attention weights `[H, T, T]`, kept where a batch's take at most
    /// [`KEEP_BYTES`].
    type Saved = Option<Vec<Vec<f32>>>;

    fn output_shape(&self, [qkv]: &[Shape; 1]) -> Shape {
        let g = self.checked(qkv);
        Shape::new([g.batch * g.time, g.width()])
    }

    fn forward(&self, [qkv]: [&[f32]; 1], [shape]: &[Shape; 1], out: &mut [f32]) -> Self::Saved {
        let g = self.checked(shape);
        forward(qkv, g, out, g.keeps_weights())
    }

    fn forward_only(&self, [qkv]: [&[f32]; 1], [shape]: &[Shape; 1], out: &mut [f32]) {
        forward(qkv, self.checked(shape), out, false);
    }

    fn backward(
        &self,
        [qkv]: [&[f32]; 1],
        [shape]: &[Shape; 1],
        weights: &Self::Saved,
        grad: &[f32],
    ) -> [Vec<f32>; 1] {
        let mut dqkv = vec![0.0f32; shape.num_elements()];
        backward(
            qkv,
            grad,
            self.checked(shape),
            weights.as_deref(),
            &mut dqkv,
        );
        [dqkv]
    }
}

impl AttentionHeads {
    /// The geometry, checked against packed projections of `shape` `[B*T, 3*H*dh]` (a caller's
    /// mistake here would read past the rows).
    fn checked(&self, shape: &Shape) -> Geometry {
        let g = self.geometry;
        assert_eq!(shape.num_dims(), 2, "packed projections are [B*T, 3*H*dh]");
        assert!(
            shape[0] == g.batch * g.time && shape[1] == g.packed(),
            "packed projections {shape:?} do not fit {} x {} tokens, {} heads of {}",
            g.batch,
            g.time,
            g.heads,
            g.head_dim
        );
        g
    }
}

/// The forward pass on slices: `out` `[B*T, H*dh]` from `qkv` `[B*T, 3*H*dh]`, and, where
/// `keep`, each review's attention weights `[H, T, T]`. (A review's own buffer, zeroed by the
/// thread that fills it just before it does: one buffer for the batch would be zeroed by the
/// calling thread alone, 6.5 MB for E2, while the other cores wait.)
pub fn forward(qkv: &[f32], g: Geometry, out: &mut [f32], keep: bool) -> Option<Vec<Vec<f32>>> {
    let (t, w, r) = (g.time, g.width(), g.packed());
    assert_eq!(qkv.len(), g.batch * t * r);
    assert_eq!(out.len(), g.batch * t * w);
    let reviews = out.par_chunks_mut(t * w).zip(qkv.par_chunks(t * r));
    if keep {
        let kept = reviews
            .map(|(out, qkv)| {
                let mut kept = vec![0.0f32; g.heads * t * t];
                for (h, weights) in kept.chunks_exact_mut(t * t).enumerate() {
                    head_forward(qkv, g, h, weights, out);
                }
                kept
            })
            .collect();
        return Some(kept);
    }
    reviews.for_each_init(
        || vec![0.0f32; t * t],
        |weights, (out, qkv)| {
            for h in 0..g.heads {
                head_forward(qkv, g, h, weights, out);
            }
        },
    );
    None
}

/// Head `h` of one review: its weights into `weights` `[T, T]` and `out_h = P V` into its
/// columns of `out`.
fn head_forward(qkv: &[f32], g: Geometry, h: usize, weights: &mut [f32], out: &mut [f32]) {
    let (t, dh, w, r) = (g.time, g.head_dim, g.width(), g.packed());
    let (_, _, v) = head(g, h);
    attention_weights(qkv, g, h, weights);
    matmul(
        (&mut out[h * dh..], w),
        (t, dh, t),
        Operand::rows(weights, t),
        Operand::rows(&qkv[v..], r),
        1.0,
        false,
        g.products,
    );
}

/// The backward pass on slices: `dqkv` `[B*T, 3*H*dh]` from `qkv` and the output's gradient
/// `grad` `[B*T, H*dh]`, with the forward pass's weights where it kept them (recomputed
/// otherwise: the same bits).
pub fn backward(
    qkv: &[f32],
    grad: &[f32],
    g: Geometry,
    kept: Option<&[Vec<f32>]>,
    dqkv: &mut [f32],
) {
    let (t, w, r) = (g.time, g.width(), g.packed());
    assert_eq!(qkv.len(), g.batch * t * r);
    assert_eq!(grad.len(), g.batch * t * w);
    assert_eq!(dqkv.len(), qkv.len());
    let reviews = dqkv
        .par_chunks_mut(t * r)
        .zip(qkv.par_chunks(t * r))
        .zip(grad.par_chunks(t * w));
    match kept {
        Some(kept) => {
            assert!(
                kept.len() == g.batch && kept.iter().all(|k| k.len() == g.heads * t * t),
                "kept weights of another geometry than {g:?}"
            );
            reviews.zip(kept.par_iter()).for_each_init(
                || vec![0.0f32; t * t],
                |scores_grad, (((dqkv, qkv), grad), kept)| {
                    for (h, weights) in kept.chunks_exact(t * t).enumerate() {
                        head_backward(qkv, grad, g, h, weights, scores_grad, dqkv);
                    }
                },
            )
        }
        None => reviews.for_each_init(
            || (vec![0.0f32; t * t], vec![0.0f32; t * t]),
            |(weights, scores_grad), ((dqkv, qkv), grad)| {
                for h in 0..g.heads {
                    attention_weights(qkv, g, h, weights);
                    head_backward(qkv, grad, g, h, weights, scores_grad, dqkv);
                }
            },
        ),
    }
}

/// Head `h`'s part of one review's `dqkv`, from its weights `[T, T]` and the output's gradient
/// `grad`; `scores_grad` is `[T, T]` scratch.
fn head_backward(
    qkv: &[f32],
    grad: &[f32],
    g: Geometry,
    h: usize,
    weights: &[f32],
    scores_grad: &mut [f32],
    dqkv: &mut [f32],
) {
    let (t, dh, w, r) = (g.time, g.head_dim, g.width(), g.packed());
    let (q, k, v) = head(g, h);
    let d_out = &grad[h * dh..];
    // dV = P^T dO
    matmul(
        (&mut dqkv[v..], r),
        (t, dh, t),
        Operand::transposed(weights, t),
        Operand::rows(d_out, w),
        1.0,
        false,
        g.products,
    );
    // dP = dO V^T
    matmul(
        (scores_grad, t),
        (t, t, dh),
        Operand::rows(d_out, w),
        Operand::transposed(&qkv[v..], r),
        1.0,
        false,
        g.products,
    );
    softmax_backward(weights, scores_grad, t, g.scale);
    // dQ = dS K
    matmul(
        (&mut dqkv[q..], r),
        (t, dh, t),
        Operand::rows(scores_grad, t),
        Operand::rows(&qkv[k..], r),
        1.0,
        false,
        g.products,
    );
    // dK = dS^T Q
    matmul(
        (&mut dqkv[k..], r),
        (t, dh, t),
        Operand::transposed(scores_grad, t),
        Operand::rows(&qkv[q..], r),
        1.0,
        false,
        g.products,
    );
}

/// Column offsets of head `h`'s Q, K and V in a packed row.
fn head(g: Geometry, h: usize) -> (usize, usize, usize) {
    let (w, dh) = (g.width(), g.head_dim);
    (h * dh, w + h * dh, 2 * w + h * dh)
}

/// Head `h`'s attention weights `softmax(Q K^T * scale)` of one review, `[T, T]` row-major.
fn attention_weights(qkv: &[f32], g: Geometry, h: usize, weights: &mut [f32]) {
    let (t, dh, r) = (g.time, g.head_dim, g.packed());
    let (q, k, _) = head(g, h);
    // S = (Q K^T) * scale
    matmul(
        (weights, t),
        (t, t, dh),
        Operand::rows(&qkv[q..], r),
        Operand::transposed(&qkv[k..], r),
        g.scale,
        false,
        g.products,
    );
    softmax_rows(weights, t);
}

simd_fn! {
    /// Each row of `x` (`row` long) replaced by its softmax.
    fn softmax_rows(x: &mut [f32], row: usize) = softmax_rows_portable;
}

simd_fn! {
    /// The softmax's backward pass on each row, with the scale of the scores folded in: `dp`
    /// becomes `scale * p * (dp - sum(p * dp))`.
    fn softmax_backward(p: &[f32], dp: &mut [f32], row: usize, scale: f32) =
        softmax_backward_portable;
}

#[inline(always)]
fn softmax_rows_portable(x: &mut [f32], row: usize) {
    debug_assert_eq!(x.len() % row, 0, "whole rows");
    // Each row shifted by its maximum, then the exponentials of the whole block in one loop
    // (independent of each other: one row's would leave the vector units waiting on the
    // polynomial's chain at each row's end), then each row's sum in the lanes' fixed order.
    for x in x.chunks_exact_mut(row) {
        let max = lanes_reduce(x, f32::NEG_INFINITY, |m, v| m.max(v), f32::max);
        for v in x.iter_mut() {
            *v -= max;
        }
    }
    for v in x.iter_mut() {
        *v = exp(*v);
    }
    for x in x.chunks_exact_mut(row) {
        let inv = 1.0 / lanes_reduce(x, 0.0, |sum, v| sum + v, |a, b| a + b);
        for v in x.iter_mut() {
            *v *= inv;
        }
    }
}

#[inline(always)]
fn softmax_backward_portable(p: &[f32], dp: &mut [f32], row: usize, scale: f32) {
    for (p, dp) in p.chunks_exact(row).zip(dp.chunks_exact_mut(row)) {
        let mut sums = [0.0f32; LANES];
        let (mut pc, mut dc) = (p.chunks_exact(LANES), dp.chunks_exact(LANES));
        for (pc, dc) in (&mut pc).zip(&mut dc) {
            for ((sum, p), d) in sums.iter_mut().zip(pc).zip(dc) {
                *sum = p.mul_add(*d, *sum);
            }
        }
        for ((sum, p), d) in sums.iter_mut().zip(pc.remainder()).zip(dc.remainder()) {
            *sum = p.mul_add(*d, *sum);
        }
        let dot = tree_sum(sums);
        for (p, d) in p.iter().zip(dp.iter_mut()) {
            *d = scale * (*p * (*d - dot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{
        assert_close, assert_same_bits, check_against_reference, spread, spread_tensor, values,
    };
    use crate::machine::SimdLevel;

    /// A score far below the others: the models' mask value (`self_attention::MASKED`).
    const MASKED_SCORE: f32 = -1e9;

    const E2_LIKE: Geometry = Geometry {
        batch: 3,
        time: 21,
        heads: 4,
        head_dim: 8,
        scale: 0.353_553_4,
        products: Products::Widest,
    };
    const E3_LIKE: Geometry = Geometry {
        batch: 2,
        time: 17,
        heads: 1,
        head_dim: 32,
        scale: 0.125,
        products: Products::Widest,
    };

    /// The heads and the projections' gradient equal the composed attention's, for E2's and
    /// E3's shapes (values spread enough for peaked softmaxes).
    #[test]
    fn the_attention_equals_its_reference() {
        for g in [E2_LIKE, E3_LIKE] {
            check_against_reference(
                &format!("attention_heads {g:?}"),
                |device| {
                    [spread_tensor(
                        [g.batch * g.time, g.packed()],
                        7919,
                        0.03,
                        device,
                    )]
                },
                |[qkv]| attention_heads(qkv, g),
                |[qkv]| composed_attention(qkv, g, None).0,
                1e-5,
            );
        }
    }

    /// Every SIMD level this CPU runs gives the portable build's bits.
    #[test]
    fn every_simd_level_gives_the_same_bits() {
        let (rows, row) = (7, 83); // a row that is not a multiple of the lanes
        let x = spread(rows * row, 7919, 0.05);
        let mut p = x.clone();
        softmax_rows_portable(&mut p, row);
        let mut dp = x.clone();
        softmax_backward_portable(&p, &mut dp, row, 0.25);
        for level in SimdLevel::supported() {
            let mut level_p = x.clone();
            run_at(level, || softmax_rows_portable(&mut level_p, row));
            assert_same_bits(&level_p, &p, &format!("{level} softmax"));
            let mut level_dp = x.clone();
            run_at(level, || {
                softmax_backward_portable(&p, &mut level_dp, row, 0.25)
            });
            assert_same_bits(&level_dp, &dp, &format!("{level} softmax backward"));
        }
    }

    /// Each review is computed alone, in a fixed order: one thread or two, the same bits.
    #[test]
    fn results_do_not_depend_on_the_threads() {
        let g = E2_LIKE;
        let qkv = spread(g.batch * g.time * g.packed(), 7919, 0.03);
        let grad = spread(g.batch * g.time * g.width(), 13, 0.1);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut out = vec![0.0; g.batch * g.time * g.width()];
                let mut dqkv = vec![0.0; qkv.len()];
                forward(&qkv, g, &mut out, false);
                backward(&qkv, &grad, g, None, &mut dqkv);
                (out, dqkv)
            })
        };
        let ((out1, d1), (out2, d2)) = (run(1), run(2));
        assert_same_bits(&out2, &out1, "heads");
        assert_same_bits(&d2, &d1, "gradient");
    }

    /// Weights kept by the forward pass are the ones the backward pass would recompute: the
    /// same heads and the same gradient, bit for bit, kept or not; and the kept weights are
    /// the composed attention's.
    #[test]
    fn kept_weights_give_the_recomputed_bits() {
        for g in [E2_LIKE, E3_LIKE] {
            assert!(g.keeps_weights());
            let qkv = spread(g.batch * g.time * g.packed(), 7919, 0.03);
            let grad = spread(g.batch * g.time * g.width(), 13, 0.1);
            let heads = g.batch * g.time * g.width();
            let (mut out, mut out_kept) = (vec![0.0; heads], vec![0.0; heads]);
            assert!(forward(&qkv, g, &mut out, false).is_none());
            let kept = forward(&qkv, g, &mut out_kept, true).expect("kept");
            assert_same_bits(&out_kept, &out, "heads");
            let (mut dqkv, mut dqkv_kept) = (vec![0.0; qkv.len()], vec![0.0; qkv.len()]);
            backward(&qkv, &grad, g, None, &mut dqkv);
            backward(&qkv, &grad, g, Some(&kept), &mut dqkv_kept);
            assert_same_bits(&dqkv_kept, &dqkv, "gradient");
            let weights = kept.concat();

            // The same `spread` values as `qkv`.
            let tensor = spread_tensor(
                [g.batch * g.time, g.packed()],
                7919,
                0.03,
                &Device::default(),
            );
            let composed = values(composed_attention(tensor, g, None).1);
            assert_close(
                &weights,
                &composed,
                1e-6,
                "kept weights against the composed ones",
            );
        }
    }

    /// The op keeps a call's weights up to [`KEEP_BYTES`] and not one review past it.
    #[test]
    fn weights_are_kept_up_to_the_limit() {
        // 1024 reviews of 64 tokens, 4 heads: exactly 64 MiB of weights.
        let at_limit = Geometry {
            batch: 1024,
            time: 64,
            heads: 4,
            head_dim: 1,
            ..E2_LIKE
        };
        assert_eq!(at_limit.weights() * size_of::<f32>(), KEEP_BYTES);
        for (g, kept) in [
            (at_limit, true),
            (
                Geometry {
                    batch: 1025,
                    ..at_limit
                },
                false,
            ),
        ] {
            let shape = Shape::new([g.batch * g.time, g.packed()]);
            let qkv = spread(shape.num_elements(), 7919, 0.03);
            let mut out = vec![0.0; g.batch * g.time * g.width()];
            let op = AttentionHeads { geometry: g };
            let saved = op.forward([&qkv], &[shape], &mut out);
            assert_eq!(saved.is_some(), kept, "{} reviews", g.batch);
        }
    }

    /// 0.12.0's softmax, a row at a time: what [`softmax_rows_portable`] must give bit for bit
    /// (records are reproduced across versions).
    fn softmax_a_row_at_a_time(x: &mut [f32], row: usize) {
        for x in x.chunks_exact_mut(row) {
            let max = lanes_reduce(x, f32::NEG_INFINITY, |m, v| m.max(v), f32::max);
            let mut sums = [0.0f32; LANES];
            let mut chunks = x.chunks_exact_mut(LANES);
            for chunk in &mut chunks {
                for (sum, v) in sums.iter_mut().zip(chunk.iter_mut()) {
                    *v = exp(*v - max);
                    *sum += *v;
                }
            }
            for (sum, v) in sums.iter_mut().zip(chunks.into_remainder()) {
                *v = exp(*v - max);
                *sum += *v;
            }
            let inv = 1.0 / tree_sum(sums);
            for v in x.iter_mut() {
                *v *= inv;
            }
        }
    }

    /// The block softmax gives the row-at-a-time one's bits: rows shorter and longer than the
    /// lanes, of whole lanes and not, peaked and masked scores.
    #[test]
    fn the_softmax_keeps_0_12_0s_bits() {
        for (row, scale) in [1, 5, 17, 64, 80, 83]
            .into_iter()
            .flat_map(|r| [(r, 0.03), (r, 3.0)])
        {
            let mut x = spread(7 * row, 7919, scale);
            x[row / 2] = MASKED_SCORE;
            let mut reference = x.clone();
            softmax_a_row_at_a_time(&mut reference, row);
            softmax_rows_portable(&mut x, row);
            assert_same_bits(&x, &reference, &format!("rows of {row}, scale {scale}"));
        }
    }
}
