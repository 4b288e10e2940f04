//! The one piece of autodiff plumbing every kernel shares. A kernel is a small value (its
//! parameters) implementing [`CpuOp`]: its output's shape, and its forward and backward passes
//! on f32 slices. [`forward_on`] runs it on a CPU backend's tensors (the default body of each
//! [`CpuOps`](super::CpuOps) method); [`autodiff`] records it on burn's autodiff graph with
//! `Step` as its backward node, which reads the checkpointed inputs back, calls the kernel's
//! backward pass and registers a gradient for each tracked input. burn's own ops follow the
//! same pattern (`prepare`, `compute_bound`, `stateful`, checkpoint, `finish`), written out once
//! per op; here it is written once.

use std::fmt::{self, Debug};
use std::marker::PhantomData;
use std::sync::Arc;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata};
use burn::prelude::*;
use burn::tensor::Shape;

use super::buffers::Floats;

/// A CPU operation of `N` float tensors with its own backward pass.
pub trait CpuOp<const N: usize>: Copy + Send + Sync + Debug + 'static {
    /// What the forward pass keeps for the backward one (a recurrence's trace); `()` where the
    /// backward pass recomputes what it needs.
    type Saved: Send + Sync + 'static;

    /// The output's shape for inputs of these shapes; panics with a sentence when they do not
    /// fit the op (a caller's mistake would otherwise read past a slice).
    fn output_shape(&self, inputs: &[Shape; N]) -> Shape;

    /// Writes the output into `out` (zeroed, of [`output_shape`](Self::output_shape)'s size).
    fn forward(&self, inputs: [&[f32]; N], shapes: &[Shape; N], out: &mut [f32]) -> Self::Saved;

    /// The forward pass where nothing is differentiated (evaluation): [`forward`](Self::forward)
    /// with what it keeps dropped, unless the op overrides it to skip keeping it.
    fn forward_only(&self, inputs: [&[f32]; N], shapes: &[Shape; N], out: &mut [f32]) {
        self.forward(inputs, shapes, out);
    }

    /// Each input's gradient (its input's size), given the output's gradient `grad` and what
    /// the forward pass kept. The op allocates them itself (see [`zeroed`]), so that it can
    /// zero a large one just before it writes it, not before a pass that reads other data:
    /// zeroed early, an E1 decoder's kernel gradients evicted its kernels from the cache that
    /// its backward steps read.
    fn backward(
        &self,
        inputs: [&[f32]; N],
        shapes: &[Shape; N],
        saved: &Self::Saved,
        grad: &[f32],
    ) -> [Vec<f32>; N];
}

/// One zeroed buffer per shape: the gradients of an op that writes them all as it goes.
pub fn zeroed<const N: usize>(shapes: &[Shape; N]) -> [Vec<f32>; N] {
    shapes.each_ref().map(|s| vec![0.0f32; s.num_elements()])
}

/// Repeat `r`'s part of a gradient of `repeats` parts of `n` floats, the whole gradient zeroed
/// when a part is first asked for (`gradient` starts empty): how an op zeroes a large gradient
/// only when it is about to write it.
pub fn zeroed_part(gradient: &mut Vec<f32>, r: usize, n: usize, repeats: usize) -> &mut [f32] {
    if gradient.is_empty() {
        *gradient = vec![0.0f32; repeats * n];
    }
    &mut gradient[r * n..(r + 1) * n]
}

/// Runs `op` on a CPU backend's tensors, where nothing is differentiated.
pub fn forward_on<B: Backend, K: CpuOp<N>, const N: usize>(
    op: K,
    inputs: [FloatTensor<B>; N],
) -> FloatTensor<B> {
    run::<B, K, N, ()>(op, inputs, |inputs, shapes, out| {
        op.forward_only(inputs, shapes, out)
    })
    .0
}

/// [`forward_on`], with what the forward pass keeps for the backward one.
fn forward_kept<B: Backend, K: CpuOp<N>, const N: usize>(
    op: K,
    inputs: [FloatTensor<B>; N],
) -> (FloatTensor<B>, K::Saved) {
    run::<B, K, N, _>(op, inputs, |inputs, shapes, out| {
        op.forward(inputs, shapes, out)
    })
}

/// `op`'s output from `inputs`, written by `pass`, with what `pass` returns.
fn run<B: Backend, K: CpuOp<N>, const N: usize, R>(
    op: K,
    inputs: [FloatTensor<B>; N],
    pass: impl FnOnce([&[f32]; N], &[Shape; N], &mut [f32]) -> R,
) -> (FloatTensor<B>, R) {
    let shapes = inputs.each_ref().map(|t| t.shape());
    let shape = op.output_shape(&shapes);
    let device = inputs[0].device();
    let floats = inputs.map(Floats::<B>::new);
    // A zeroed `Vec` comes from the allocator's zeroed pages (`TensorData::zeros` pushed its
    // zeros one at a time: 3% of an E2 step in perf).
    let mut out = vec![0.0f32; shape.num_elements()];
    let kept = pass(floats.each_ref().map(Floats::as_slice), &shapes, &mut out);
    (
        B::float_from_data(TensorData::new(out, shape), &device),
        kept,
    )
}

/// What a forward pass kept, shared with its backward node (`Backward` states are cloned and
/// printed; the trace itself is neither).
pub struct Kept<S>(Arc<S>);

impl<S> Clone for Kept<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S> Debug for Kept<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kept(..)")
    }
}

/// Runs `op` on autodiff tensors: `inner` is the inner backend's call (`B::method(..)`) where
/// nothing is tracked; tracked, the forward pass runs here, so that what it keeps reaches the
/// op's own backward pass.
pub fn autodiff<B: Backend, C: CheckpointStrategy, K: CpuOp<N>, const N: usize>(
    op: K,
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    inner: impl FnOnce([FloatTensor<B>; N]) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let nodes = inputs.each_ref().map(|t| t.node());
    match Step::<K, N>(PhantomData)
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let ids = inputs.each_ref().map(|t| prep.checkpoint(t));
            let (output, saved) = forward_kept::<B, K, N>(op, inputs.map(|t| t.into_primitive()));
            prep.finish((ids, op, Kept(Arc::new(saved))), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(inner(inputs.map(|t| t.into_primitive()))),
    }
}

/// The backward node of a [`CpuOp`]. The op's value travels in the state, as burn asks of a
/// `Backward` (it holds no state itself).
#[derive(Debug)]
struct Step<K, const N: usize>(PhantomData<K>);

impl<B: Backend, K: CpuOp<N>, const N: usize> Backward<B, N> for Step<K, N> {
    type State = ([NodeId; N], K, Kept<K::Saved>);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = Floats::<B>::new(grads.consume::<B>(&ops.node));
        let (ids, op, saved) = ops.state;
        let inputs: [FloatTensor<B>; N] = ids.map(|id| checkpointer.retrieve_node_output(id));
        let shapes = inputs.each_ref().map(|t| t.shape());
        let device = inputs[0].device();
        let floats = inputs.map(Floats::<B>::new);
        let gradients = op.backward(
            floats.each_ref().map(Floats::as_slice),
            &shapes,
            &saved.0,
            grad.as_slice(),
        );
        for ((parent, gradient), shape) in ops.parents.into_iter().zip(gradients).zip(shapes) {
            assert_eq!(
                gradient.len(),
                shape.num_elements(),
                "{op:?}: a gradient of the wrong size"
            );
            if let Some(node) = parent {
                let gradient = B::float_from_data(TensorData::new(gradient, shape), &device);
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}
