//! Multi-head scaled dot-product attention as one operation with its own backward pass, for the
//! CPU backends: `softmax(Q K^T * scale) V` for every head, read straight from the packed
//! projections `[Q | K | V]` and written as the heads concatenated.
//!
//! Composed from burn's tensor ops, an E2 step (8 heads of 16 over 80 tokens) materialised
//! `[B, 8, 80, 80]` scores, weights and half a dozen gradients of that size, each a pass
//! through memory into a fresh buffer, and the softmax ran one scalar `expf` per element.
//! Here each (review, head) is worked in a 25 KB scratch that stays in the L1 cache: two small
//! matrix products forward, and backward the weights recomputed (cheaper than keeping them)
//! and five products. The exponential is a vectorisable polynomial ([`exp`]), and every sum
//! runs in a fixed order, so the results do not depend on the thread or the SIMD width.
//!
//! The operation is a burn backend extension (flex and ndarray, and autodiff over them, with
//! the handwritten backward). The GPU keeps burn's composed ops ([`composed_attention`], also
//! the CPU's path where scores are masked); the unit tests here and the ndarray/wgpu agreement
//! test compare the two.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, Flex, NdArray, TensorMetadata, backend_extension,
};
use burn::prelude::*;
use rayon::prelude::*;

use crate::models::cpu_kernel::{
    Floats, LANES, Operand, exp, floats_mut, lanes_reduce, matmul, simd_fn, tree_sum, zeros,
};
use crate::models::layers::softmax_fused;

/// The sizes of one call: `batch` reviews of `time` tokens, `heads` heads of `head_dim`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    pub batch: usize,
    pub time: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Multiplies `Q K^T` before the softmax.
    pub scale: f32,
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
}

/// `softmax(Q K^T * scale) V` per head, for packed projections `qkv` `[B*T, 3*H*dh]` (each row
/// `[Q heads | K heads | V heads]`): the heads concatenated, `[B*T, H*dh]`. Tracked by
/// autodiff with its own backward pass. Only for the CPU backends ([`crate::backend::is_cpu`]).
pub fn attention_heads(qkv: Tensor<2>, geometry: Geometry) -> Tensor<2> {
    let Geometry {
        batch,
        heads,
        head_dim,
        scale,
        ..
    } = geometry;
    Tensor::from_dispatch(<Dispatch as AttentionHeadsBackend>::attention_heads(
        qkv.into_dispatch(),
        batch,
        heads,
        head_dim,
        scale,
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

#[backend_extension(Flex, NdArray, Autodiff)]
pub trait AttentionHeadsBackend: Backend {
    /// See [`attention_heads`].
    fn attention_heads(
        qkv: FloatTensor<Self>,
        batch: usize,
        heads: usize,
        head_dim: usize,
        scale: f32,
    ) -> FloatTensor<Self> {
        let geometry = geometry_of::<Self>(&qkv, batch, heads, head_dim, scale);
        let device = qkv.device();
        let qkv = Floats::<Self>::new(qkv);
        let mut out = zeros([batch * geometry.time, geometry.width()]);
        forward(qkv.as_slice(), geometry, floats_mut(&mut out));
        Self::float_from_data(out, &device)
    }
}

impl AttentionHeadsBackend for Flex {}
impl AttentionHeadsBackend for NdArray {}

/// The gradient with respect to the packed projections, `[B*T, 3*H*dh]`, of a loss whose
/// gradient with respect to the output is `grad` `[B*T, H*dh]`.
fn attention_heads_backward<B: Backend>(
    qkv: FloatTensor<B>,
    grad: FloatTensor<B>,
    geometry: Geometry,
) -> FloatTensor<B> {
    let device = qkv.device();
    let qkv = Floats::<B>::new(qkv);
    let grad = Floats::<B>::new(grad);
    let mut out = zeros([geometry.batch * geometry.time, geometry.packed()]);
    backward(
        qkv.as_slice(),
        grad.as_slice(),
        geometry,
        floats_mut(&mut out),
    );
    B::float_from_data(out, &device)
}

impl<B: AttentionHeadsBackend, C: CheckpointStrategy> AttentionHeadsBackend for Autodiff<B, C> {
    fn attention_heads(
        qkv: FloatTensor<Self>,
        batch: usize,
        heads: usize,
        head_dim: usize,
        scale: f32,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AttentionHeads;

        impl<B: Backend> Backward<B, 1> for AttentionHeads {
            type State = (NodeId, Geometry);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let (qkv, geometry) = ops.state;
                let qkv = checkpointer.retrieve_node_output(qkv);
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    attention_heads_backward::<B>(qkv, grad, geometry)
                });
            }
        }

        let geometry = geometry_of::<B>(qkv.primitive(), batch, heads, head_dim, scale);
        match AttentionHeads
            .prepare::<C>([qkv.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&qkv);
                let output =
                    B::attention_heads(qkv.into_primitive(), batch, heads, head_dim, scale);
                prep.finish((state, geometry), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::attention_heads(
                qkv.into_primitive(),
                batch,
                heads,
                head_dim,
                scale,
            )),
        }
    }
}

/// The geometry of packed projections `[B*T, 3*H*dh]` (checked: a caller's mistake here would
/// read past the rows).
fn geometry_of<B: Backend>(
    qkv: &FloatTensor<B>,
    batch: usize,
    heads: usize,
    head_dim: usize,
    scale: f32,
) -> Geometry {
    let shape = qkv.shape();
    assert_eq!(shape.num_dims(), 2, "packed projections are [B*T, 3*H*dh]");
    let (rows, cols) = (shape[0], shape[1]);
    assert!(
        batch > 0 && rows % batch == 0 && cols == 3 * heads * head_dim,
        "packed projections [{rows}, {cols}] do not fit {batch} x {heads} heads of {head_dim}"
    );
    Geometry {
        batch,
        time: rows / batch,
        heads,
        head_dim,
        scale,
    }
}

/// The forward pass on slices: `out` `[B*T, H*dh]` from `qkv` `[B*T, 3*H*dh]`.
pub fn forward(qkv: &[f32], g: Geometry, out: &mut [f32]) {
    let (t, dh, w, r) = (g.time, g.head_dim, g.width(), g.packed());
    assert_eq!(qkv.len(), g.batch * t * r);
    assert_eq!(out.len(), g.batch * t * w);
    out.par_chunks_mut(t * w)
        .zip(qkv.par_chunks(t * r))
        .for_each_init(
            || vec![0.0f32; t * t],
            |weights, (out, qkv)| {
                for h in 0..g.heads {
                    let (_, _, v) = head(g, h);
                    attention_weights(qkv, g, h, weights);
                    // out_h = P V
                    matmul(
                        (&mut out[h * dh..], w),
                        (t, dh, t),
                        Operand::rows(weights, t),
                        Operand::rows(&qkv[v..], r),
                        1.0,
                        false,
                    );
                }
            },
        );
}

/// The backward pass on slices: `dqkv` `[B*T, 3*H*dh]` from `qkv` and the output's gradient
/// `grad` `[B*T, H*dh]`.
pub fn backward(qkv: &[f32], grad: &[f32], g: Geometry, dqkv: &mut [f32]) {
    let (t, dh, w, r) = (g.time, g.head_dim, g.width(), g.packed());
    assert_eq!(qkv.len(), g.batch * t * r);
    assert_eq!(grad.len(), g.batch * t * w);
    assert_eq!(dqkv.len(), qkv.len());
    dqkv.par_chunks_mut(t * r)
        .zip(qkv.par_chunks(t * r))
        .zip(grad.par_chunks(t * w))
        .for_each_init(
            || (vec![0.0f32; t * t], vec![0.0f32; t * t]),
            |(weights, scores_grad), ((dqkv, qkv), grad)| {
                for h in 0..g.heads {
                    let (q, k, v) = head(g, h);
                    let d_out = &grad[h * dh..];
                    attention_weights(qkv, g, h, weights);
                    // dV = P^T dO
                    matmul(
                        (&mut dqkv[v..], r),
                        (t, dh, t),
                        Operand::transposed(weights, t),
                        Operand::rows(d_out, w),
                        1.0,
                        false,
                    );
                    // dP = dO V^T
                    matmul(
                        (scores_grad, t),
                        (t, t, dh),
                        Operand::rows(d_out, w),
                        Operand::transposed(&qkv[v..], r),
                        1.0,
                        false,
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
                    );
                    // dK = dS^T Q
                    matmul(
                        (&mut dqkv[k..], r),
                        (t, dh, t),
                        Operand::transposed(scores_grad, t),
                        Operand::rows(&qkv[q..], r),
                        1.0,
                        false,
                    );
                }
            },
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
    use crate::models::step_weight::values;

    /// The vector builds (AVX-512 or AVX2 here) give the portable build's bits: every sum runs
    /// in the same fixed lanes and `mul_add` is exact everywhere.
    #[test]
    fn the_simd_width_does_not_change_the_bits() {
        let (rows, row) = (7, 83); // a row that is not a multiple of the lanes
        let x: Vec<f32> = (0..rows * row)
            .map(|i| (((i * 7919) % 211) as f32 - 105.0) * 0.05)
            .collect();
        let (mut fast, mut portable) = (x.clone(), x.clone());
        softmax_rows(&mut fast, row);
        softmax_rows_portable(&mut portable, row);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&portable));
        let (mut fast_grad, mut portable_grad) = (x.clone(), x);
        softmax_backward(&fast, &mut fast_grad, row, 0.25);
        softmax_backward_portable(&portable, &mut portable_grad, row, 0.25);
        assert_eq!(bits(&fast_grad), bits(&portable_grad));
    }

    /// Packed projections with values spread enough for peaked softmaxes.
    fn packed(g: Geometry, device: &Device) -> Tensor<2> {
        let (rows, cols) = (g.batch * g.time, g.packed());
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 7919) % 101) as f32 - 50.0) * 0.03)
            .collect();
        Tensor::from_data(TensorData::new(values, [rows, cols]), device)
    }

    fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tolerance * scale,
                "{what}[{i}]: {a} vs {b} (largest {scale})"
            );
        }
    }

    const E2_LIKE: Geometry = Geometry {
        batch: 3,
        time: 21,
        heads: 4,
        head_dim: 8,
        scale: 0.353_553_4,
    };
    const E3_LIKE: Geometry = Geometry {
        batch: 2,
        time: 17,
        heads: 1,
        head_dim: 32,
        scale: 0.125,
    };

    #[test]
    fn forward_equals_burns_composed_ops() {
        for device in [Device::flex(), Device::ndarray()] {
            for g in [E2_LIKE, E3_LIKE] {
                let qkv = packed(g, &device);
                let fused = values(attention_heads(qkv.clone(), g));
                let reference = values(composed_attention(qkv, g, None).0);
                assert_close(&fused, &reference, 1e-6, "output");
            }
        }
    }

    /// The handwritten backward pass gives autodiff's gradient of the composed ops, for a loss
    /// that weighs every output differently.
    #[test]
    fn gradient_equals_burns_composed_ops() {
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            for g in [E2_LIKE, E3_LIKE] {
                let weights = packed(
                    Geometry {
                        heads: g.heads,
                        head_dim: g.head_dim,
                        ..g
                    },
                    &device,
                )
                .slice_dim(1, 0..g.width());
                let gradient = |fused: bool| {
                    let qkv = packed(g, &device).require_grad();
                    let out = if fused {
                        attention_heads(qkv.clone(), g)
                    } else {
                        composed_attention(qkv.clone(), g, None).0
                    };
                    let grads = (out * weights.clone()).sum().backward();
                    values(qkv.grad(&grads).unwrap())
                };
                let (fused, reference) = (gradient(true), gradient(false));
                assert_close(&fused, &reference, 1e-5, "gradient");
                assert!(
                    fused.iter().any(|v| v.abs() > 1e-3),
                    "a gradient that says something"
                );
            }
        }
    }

    /// Each review is computed alone, in a fixed order: one thread or two, the same bits.
    #[test]
    fn results_do_not_depend_on_the_threads() {
        let g = E2_LIKE;
        let qkv = values(packed(g, &Device::flex()));
        let grad: Vec<f32> = (0..g.batch * g.time * g.width())
            .map(|i| ((i % 13) as f32 - 6.0) * 0.1)
            .collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut out = vec![0.0; g.batch * g.time * g.width()];
                let mut dqkv = vec![0.0; qkv.len()];
                forward(&qkv, g, &mut out);
                backward(&qkv, &grad, g, &mut dqkv);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(&out), bits(&dqkv))
            })
        };
        assert_eq!(run(1), run(2));
    }
}
