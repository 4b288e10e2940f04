//! `lhs.matmul(rhs)` on flex, with burn-flex's own gemm calls, into an output nothing copies.
//!
//! burn-flex allocates every product's output as bytes (`FlexTensor::empty`, a zeroed
//! `Vec<u8>`), and cubecl's `Bytes` then copies that buffer into storage aligned for u128,
//! because it judges a `Vec<u8>`'s alignment by its element type. In an E1 baseline repeat that
//! zeroing and copy were 5.3% of perf's samples (3.0% in an attention repeat), under the
//! models' projections forward and backward. Here the output is a `Vec<f32>`, which a tensor
//! takes over as it is, and gemm gets exactly the arguments burn-flex gives it (sizes, strides
//! as the layouts have them, the same choice of threads): gemm picks its kernels by sizes and
//! strides, so only the same arguments promise the same bits. The tests compare the bits with
//! burn's matmul, forward and backward, for transposed, sliced and broadcast operands (where the
//! CPU has AVX-512, those of [`Products::Avx2`] only within rounding: burn's takes other kernels
//! there).
//!
//! On autodiff the backward pass is burn-autodiff's matmul's (each operand's gradient the
//! product of the output's gradient with the other operand transposed, summed over broadcast
//! batch dimensions), with its products through this one. On ndarray the op is burn's own
//! matmul, and on the GPU [`matmul`] calls burn's directly. gemm's call itself, with its
//! bounds checked, is [`matmul_on`]'s.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, broadcast_shape};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata};
use burn::prelude::*;
use burn::tensor::{DType, Shape};
use rayon::prelude::*;

use super::matmul::{Operand, Products, matmul_on};
use super::{CpuOps, on_cpu};

/// `lhs.matmul(rhs)` on gemm's `products` kernels: on flex through [`flex_matmul`] (with
/// [`Products::Widest`] burn's own bits), on ndarray and the GPU burn's own.
pub fn matmul<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>, products: Products) -> Tensor<D> {
    if !on_cpu(&lhs.device()) {
        return lhs.matmul(rhs);
    }
    let (l, r) = (lhs.dims(), rhs.dims());
    assert!(
        D >= 2 && l[D - 1] == r[D - 2],
        "matmul of {l:?} by {r:?}: the inner sizes differ"
    );
    // burn's `Tensor::matmul` turns a batch of single rows by one shared matrix into one
    // product of many rows: the same here, or the bits would differ.
    if D >= 3 && l[D - 2] == 1 && r[D - 3] == 1 {
        let (batch, rows) = (D - 3, D - 2);
        return product(lhs.swap_dims(batch, rows), rhs, products).swap_dims(batch, rows);
    }
    product(lhs, rhs, products)
}

fn product<const D: usize>(lhs: Tensor<D>, rhs: Tensor<D>, products: Products) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as CpuOps>::matmul(
        lhs.into_dispatch(),
        rhs.into_dispatch(),
        products,
    ))
}

/// burn-flex's f32 matmul (`burn_flex::ops::matmul::matmul_gemm`): the same gemm calls, on
/// `products`' kernels, into a `Vec<f32>` the output tensor takes without a copy. Other float
/// types go to burn-flex.
pub fn flex_matmul(lhs: FlexTensor, rhs: FlexTensor, products: Products) -> FlexTensor {
    if lhs.dtype() != DType::F32 || rhs.dtype() != DType::F32 {
        return burn_flex_matmul(lhs, rhs);
    }
    let (ls, rs) = (lhs.layout().shape().clone(), rhs.layout().shape().clone());
    let (lr, rr) = (ls.num_dims(), rs.num_dims());
    assert!(
        lr >= 2 && rr >= 2 && ls[lr - 1] == rs[rr - 2],
        "matmul of {ls:?} by {rs:?}: the inner sizes differ"
    );
    let (m, k, n) = (ls[lr - 2], ls[lr - 1], rs[rr - 1]);
    let (lhs_batch, rhs_batch) = (&ls[..lr - 2], &rs[..rr - 2]);
    let batch_shape = broadcast_batch(lhs_batch, rhs_batch);
    let offsets =
        |dims, tensor: &FlexTensor| batch_offsets(&batch_shape, dims, tensor.layout().strides());
    let (Some(lhs_offsets), Some(rhs_offsets)) =
        (offsets(lhs_batch, &lhs), offsets(rhs_batch, &rhs))
    else {
        return burn_flex_matmul(lhs, rhs);
    };
    let (Some((l, l_row, l_col)), Some((r, r_row, r_col))) = (matrices(&lhs), matrices(&rhs))
    else {
        return burn_flex_matmul(lhs, rhs);
    };
    let batch: usize = batch_shape.iter().product();
    let mut out = vec![0.0f32; batch * m * n];
    // `matmul_on` checks each matrix against its slice before gemm reads it.
    let one = |out: &mut [f32], b: usize, parallelism| {
        let lhs = Operand::strided(l.get(lhs_offsets[b]..).unwrap_or_default(), l_row, l_col);
        let rhs = Operand::strided(r.get(rhs_offsets[b]..).unwrap_or_default(), r_row, r_col);
        matmul_on(
            (out, n),
            (m, n, k),
            lhs,
            rhs,
            (1.0, false),
            (parallelism, products),
        )
    };
    let ops = m.saturating_mul(n).saturating_mul(k);
    if lr == 2 && rr == 2 {
        // burn-flex's `matmul_2d_strided`.
        one(&mut out, 0, threads(ops >= PARALLEL_THRESHOLD));
    } else if m * n > 0 {
        // burn-flex's `matmul_batched_gemm`: large products threaded inside gemm, many small
        // ones over the batch, few small ones in this thread.
        let total = batch.saturating_mul(ops);
        let by_batch = batch >= 4 && total >= BATCH_PARALLEL_THRESHOLD;
        if ops >= PARALLEL_THRESHOLD && !by_batch {
            for (b, out) in out.chunks_exact_mut(m * n).enumerate() {
                one(out, b, threads(true));
            }
        } else if total >= BATCH_PARALLEL_THRESHOLD && batch > 1 {
            out.par_chunks_exact_mut(m * n)
                .enumerate()
                .for_each(|(b, out)| one(out, b, threads(false)));
        } else {
            for (b, out) in out.chunks_exact_mut(m * n).enumerate() {
                one(out, b, threads(false));
            }
        }
    }
    let mut shape = batch_shape;
    shape.extend([m, n]);
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// burn-flex's thresholds (`burn_flex::ops::matmul`): a product of at least this many
/// multiply-adds runs on all cores inside gemm...
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
/// ...and a batch of at least this many in all, of at least four products, one product a task.
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

fn threads(all: bool) -> gemm::Parallelism {
    if all {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// The batch shape both operands' batch dimensions broadcast to (numpy's rule: aligned from
/// the right, a 1 stretches).
fn broadcast_batch(lhs: &[usize], rhs: &[usize]) -> Vec<usize> {
    let len = lhs.len().max(rhs.len());
    let at = |dims: &[usize], i: usize| (i + dims.len()).checked_sub(len).map_or(1, |i| dims[i]);
    (0..len)
        .map(|i| {
            let (l, r) = (at(lhs, i), at(rhs, i));
            assert!(
                l == r || l == 1 || r == 1,
                "matmul: batch dimensions {lhs:?} and {rhs:?} do not broadcast"
            );
            l.max(r)
        })
        .collect()
}

/// The element offset of each batch entry's matrix in an operand with batch dimensions `dims`
/// and these layout strides (a broadcast dimension of size 1 stays at offset 0); `None` where
/// a stride is negative.
fn batch_offsets(batch_shape: &[usize], dims: &[usize], strides: &[isize]) -> Option<Vec<usize>> {
    let skip = batch_shape.len() - dims.len();
    let mut offsets = vec![0usize];
    for (i, &size) in batch_shape.iter().enumerate() {
        let stride = match i.checked_sub(skip).filter(|&d| dims[d] > 1) {
            Some(d) => usize::try_from(strides[d]).ok()?,
            None => 0,
        };
        offsets = offsets
            .iter()
            .flat_map(|&o| (0..size).map(move |j| o + j * stride))
            .collect();
    }
    Some(offsets)
}

/// burn-flex's own matmul: for other float types and flipped (negative-stride) views, which
/// the models never multiply.
fn burn_flex_matmul(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
    <Flex as burn::backend::ops::FloatTensorOps<Flex>>::float_matmul(lhs, rhs)
}

/// The matrices of an operand: its storage from the layout's offset, with the strides of their
/// rows and columns; `None` where a stride is negative (a flipped view).
fn matrices(tensor: &FlexTensor) -> Option<(&[f32], usize, usize)> {
    let layout = tensor.layout();
    let strides = layout.strides();
    let [rows, cols] = [strides[strides.len() - 2], strides[strides.len() - 1]];
    let data = &tensor.storage::<f32>()[layout.start_offset()..];
    Some((
        data,
        usize::try_from(rows).ok()?,
        usize::try_from(cols).ok()?,
    ))
}

/// The autodiff op: burn-autodiff's matmul, its products (the gradients' too) through
/// `B::matmul` on `products`' kernels.
pub fn autodiff_matmul<B: CpuOps, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
    products: Products,
) -> FloatTensor<Autodiff<B, C>> {
    let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
    let shapes = (lhs.primitive().shape(), rhs.primitive().shape());
    match Matmul(products)
        .prepare::<C>([lhs.node(), rhs.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            // Each operand's gradient needs only the other operand.
            let lhs_id = rhs_tracked.then(|| prep.checkpoint(&lhs));
            let rhs_id = lhs_tracked.then(|| prep.checkpoint(&rhs));
            let output = B::matmul(lhs.into_primitive(), rhs.into_primitive(), products);
            prep.finish((lhs_id, rhs_id, shapes), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::matmul(
            lhs.into_primitive(),
            rhs.into_primitive(),
            products,
        )),
    }
}

#[derive(Debug)]
struct Matmul(Products);

impl<B: CpuOps> Backward<B, 2> for Matmul {
    /// The checkpointed operands each gradient needs, and both operands' shapes (a gradient
    /// is summed back over the batch dimensions its operand was broadcast along).
    type State = (Option<NodeId>, Option<NodeId>, (Shape, Shape));

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let (lhs_id, rhs_id, (lhs_shape, rhs_shape)) = ops.state;
        let lhs = lhs_id.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let rhs = rhs_id.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let grad = grads.consume::<B>(&ops.node);
        let [lhs_node, rhs_node] = ops.parents;
        // `broadcast_shape` sums a gradient over the dimensions where it is larger than its
        // operand (burn skips it when the operands' shapes are equal: then so are the
        // gradients', and it changes nothing).
        if let Some(node) = lhs_node {
            let rhs = B::float_transpose(rhs.expect("checkpointed for the lhs gradient"));
            let product = B::matmul(grad.clone(), rhs, self.0);
            grads.register::<B>(node.id, broadcast_shape::<B>(product, &lhs_shape));
        }
        if let Some(node) = rhs_node {
            let lhs = B::float_transpose(lhs.expect("checkpointed for the rhs gradient"));
            let product = B::matmul(lhs, grad, self.0);
            grads.register::<B>(node.id, broadcast_shape::<B>(product, &rhs_shape));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{
        assert_close, assert_same_bits, autodiff_devices, spread_tensor, values,
    };
    use crate::machine::{SimdLevel, simd_level};

    /// What a product on `products`' kernels must match burn's matmul (gemm's own choice of
    /// kernels) in: its bits, unless it runs the AVX2 kernels where gemm runs AVX-512 ones.
    fn assert_as_burns(ours: &[f32], burns: &[f32], products: Products, what: &str) {
        if products == Products::Avx2 && simd_level() == SimdLevel::Avx512 {
            assert_close(ours, burns, 1e-5, what);
        } else {
            assert_same_bits(ours, burns, what);
        }
    }

    type Inputs = Box<dyn Fn(&Device) -> [Tensor<3>; 2]>;

    /// The product and both gradients of `sum(product * w)` have burn's matmul's bits on either
    /// choice of kernels (AVX-512 machines: [`assert_as_burns`]), on every autodiff device, with
    /// both operands tracked and with each alone: for E1's projections
    /// (one row, the special case of a row by a shared matrix, five rows), transposed and
    /// sliced operands, a broadcast batch, and sizes that take gemm's threads and the batch's.
    #[test]
    fn the_product_and_its_gradients_have_burns_bits() {
        let plain = |name, l: [usize; 3], r: [usize; 3]| -> (&str, Inputs) {
            let inputs =
                move |d: &Device| [spread_tensor(l, 7, 0.02, d), spread_tensor(r, 11, 0.01, d)];
            (name, Box::new(inputs))
        };
        let cases = [
            plain("E1's encoder projection", [1, 5, 50], [1, 50, 600]),
            plain("one row by a shared matrix", [3, 1, 150], [1, 150, 600]),
            plain("one row each, stacked", [2, 1, 150], [2, 150, 600]),
            plain("a broadcast batch", [4, 3, 5], [1, 5, 6]),
            plain("E1's output layer", [1, 2, 150], [1, 150, 50]),
            plain(
                "one product on gemm's threads",
                [1, 200, 190],
                [1, 190, 200],
            ),
            plain("a batch over the cores", [4, 64, 128], [4, 128, 64]),
            (
                "a transposed operand",
                Box::new(|d: &Device| {
                    [
                        spread_tensor([2, 9, 7], 13, 0.02, d).swap_dims(1, 2),
                        spread_tensor([2, 11, 9], 17, 0.02, d).swap_dims(1, 2),
                    ]
                }),
            ),
            (
                "a sliced operand",
                Box::new(|d: &Device| {
                    [
                        spread_tensor([2, 6, 20], 19, 0.02, d).slice_dim(2, 5..12),
                        spread_tensor([2, 7, 30], 23, 0.02, d).slice_dim(1, 0..7),
                    ]
                }),
            ),
        ];
        for (name, inputs) in cases {
            for (device, products) in autodiff_devices()
                .into_iter()
                .flat_map(|d| [(d.clone(), Products::Widest), (d, Products::Avx2)])
            {
                for tracked in [[true, true], [true, false], [false, true]] {
                    let run = |op: &dyn Fn(Tensor<3>, Tensor<3>) -> Tensor<3>| {
                        let [a, b] = inputs(&device);
                        let track = |x: Tensor<3>, t| if t { x.require_grad() } else { x };
                        let (a, b) = (track(a, tracked[0]), track(b, tracked[1]));
                        let out = op(a.clone(), b.clone());
                        let w = spread_tensor(out.dims(), 61, 0.02, &device);
                        let grads = (out.clone() * w).sum().backward();
                        let grad = |x: &Tensor<3>| x.grad(&grads).map(values);
                        (values(out), grad(&a), grad(&b))
                    };
                    let ours = run(&|a, b| matmul(a, b, products));
                    let burns = run(&|a, b| a.matmul(b));
                    let on = format!("{name} on {device:?} ({products:?}), tracked {tracked:?}");
                    assert_as_burns(&ours.0, &burns.0, products, &format!("{on}: product"));
                    for (i, (g, r)) in [(&ours.1, &burns.1), (&ours.2, &burns.2)]
                        .into_iter()
                        .enumerate()
                    {
                        assert_eq!(g.is_some(), tracked[i], "{on}: operand {i}'s gradient");
                        if let (Some(g), Some(r)) = (g, r) {
                            let what = format!("{on}: operand {i}'s gradient");
                            assert_as_burns(g, r, products, &what);
                        }
                    }
                }
            }
        }
    }

    /// Plain 2-D products (burn-flex's own path for them) and products without autodiff.
    #[test]
    fn two_dimensional_and_untracked_products_have_burns_bits() {
        let device = Device::flex();
        for products in [Products::Widest, Products::Avx2] {
            let a = spread_tensor([7, 33], 3, 0.02, &device);
            let b = spread_tensor([33, 5], 5, 0.02, &device);
            assert_as_burns(
                &values(matmul(a.clone(), b.clone(), products)),
                &values(a.clone().matmul(b.clone())),
                products,
                "2-D",
            );
            let (a, b) = (a.unsqueeze_dim::<3>(0), b.unsqueeze_dim::<3>(0));
            assert_as_burns(
                &values(matmul(a.clone(), b.clone(), products)),
                &values(a.matmul(b)),
                products,
                "3-D, no autodiff",
            );
        }
    }
}
