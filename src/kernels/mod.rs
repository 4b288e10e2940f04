//! attnx's own CPU kernels: operations with handwritten forward and backward passes on f32
//! slices, for burn's CPU backends (flex and ndarray), where composing burn's ops cost more in
//! per-op bookkeeping than in arithmetic.
//!
//! Each op follows burn's custom-kernel layout: a small value with its parameters (its
//! [`CpuOp`](op::CpuOp) impl: output shape, forward and backward passes on slices), a
//! Tensor-level function that runs it on the CPU backends and its reference elsewhere, and the
//! reference itself, composed from burn's ops (the GPU's path, and what the tests compare the
//! op with). [`CpuOps`] is the one backend extension that carries them all; the autodiff
//! plumbing is written once ([`op`]). Beneath the ops: [`simd`] (the dispatch to the CPU's
//! vector width, and the fixed-lane sums that keep every width's bits the same), [`matmul`],
//! [`math`] (exp, ln, sigmoid, tanh as straight-line arithmetic) and the buffers the ops read
//! in place. The models import this layer; it imports nothing of theirs.

// The extension and the in-place reads name burn-ndarray, deprecated upstream; attnx still runs
// on it, for comparison.
#![allow(deprecated)]

pub mod attention;
mod buffers;
pub mod cross_entropy;
pub mod decoder;
pub mod lstm_cell;
pub mod lstm_sequence;
pub mod math;
#[allow(unsafe_code)] // gemm's raw-pointer call, behind checked bounds
pub mod matmul;
pub mod op;
pub mod product;
#[allow(unsafe_code)] // calls into #[target_feature] functions, behind the CPU's detection
pub mod simd;
pub mod softmax;
#[cfg(test)]
pub mod testing;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, NdArray, backend_extension};
use burn::prelude::*;

use attention::AttentionHeads;
pub use buffers::Floats;
use cross_entropy::CrossEntropy;
use decoder::Decoding;
use lstm_sequence::LstmSequence;
use matmul::Products;
use op::{autodiff, forward_on};

/// Whether `device` (with or without autodiff) computes on the CPU: flex or ndarray, the
/// backends these kernels run on.
pub fn on_cpu(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        burn_dispatch::DispatchDevice::Flex(_) | burn_dispatch::DispatchDevice::NdArray(_)
    )
}

/// The kernels as a burn backend extension: one method per op, whose body runs the op on the
/// backend's tensors ([`forward_on`]); on autodiff, the op is recorded with its own backward
/// pass ([`autodiff`]).
#[backend_extension(Flex, NdArray, Autodiff)]
pub trait CpuOps: Backend {
    /// `lhs.matmul(rhs)`: burn's own, but on flex on `products`' kernels and without
    /// burn-flex's copy of the output ([`product`]).
    fn matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        _products: Products,
    ) -> FloatTensor<Self> {
        Self::float_matmul(lhs, rhs)
    }

    fn attention_heads(qkv: FloatTensor<Self>, op: AttentionHeads) -> FloatTensor<Self> {
        forward_on::<Self, _, 1>(op, [qkv])
    }

    fn lstm_sequence(
        projected: FloatTensor<Self>,
        recurrent: FloatTensor<Self>,
        op: LstmSequence,
    ) -> FloatTensor<Self> {
        forward_on::<Self, _, 2>(op, [projected, recurrent])
    }

    fn cross_entropy(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        op: CrossEntropy,
    ) -> FloatTensor<Self> {
        forward_on::<Self, _, 2>(op, [logits, targets])
    }

    #[allow(clippy::too_many_arguments)] // the decoder's nine input tensors, named
    fn attention_decoding(
        states: FloatTensor<Self>,
        keys: FloatTensor<Self>,
        first: FloatTensor<Self>,
        score: FloatTensor<Self>,
        from_state: FloatTensor<Self>,
        from_input: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        proposal: FloatTensor<Self>,
        noise: FloatTensor<Self>,
        op: Decoding,
    ) -> FloatTensor<Self> {
        let inputs = [
            states, keys, first, score, from_state, from_input, bias, proposal, noise,
        ];
        forward_on::<Self, _, 9>(op, inputs)
    }
}

impl CpuOps for NdArray {}
impl CpuOps for Flex {
    fn matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        products: Products,
    ) -> FloatTensor<Self> {
        product::flex_matmul(lhs, rhs, products)
    }
}

impl<B: CpuOps, C: CheckpointStrategy> CpuOps for Autodiff<B, C> {
    fn matmul(
        lhs: FloatTensor<Self>,
        rhs: FloatTensor<Self>,
        products: Products,
    ) -> FloatTensor<Self> {
        product::autodiff_matmul::<B, C>(lhs, rhs, products)
    }

    fn attention_heads(qkv: FloatTensor<Self>, op: AttentionHeads) -> FloatTensor<Self> {
        autodiff::<B, C, _, 1>(op, [qkv], |[qkv]| B::attention_heads(qkv, op))
    }

    fn lstm_sequence(
        projected: FloatTensor<Self>,
        recurrent: FloatTensor<Self>,
        op: LstmSequence,
    ) -> FloatTensor<Self> {
        autodiff::<B, C, _, 2>(op, [projected, recurrent], |[p, w]| {
            B::lstm_sequence(p, w, op)
        })
    }

    fn cross_entropy(
        logits: FloatTensor<Self>,
        targets: FloatTensor<Self>,
        op: CrossEntropy,
    ) -> FloatTensor<Self> {
        autodiff::<B, C, _, 2>(op, [logits, targets], |[x, t]| B::cross_entropy(x, t, op))
    }

    fn attention_decoding(
        states: FloatTensor<Self>,
        keys: FloatTensor<Self>,
        first: FloatTensor<Self>,
        score: FloatTensor<Self>,
        from_state: FloatTensor<Self>,
        from_input: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        proposal: FloatTensor<Self>,
        noise: FloatTensor<Self>,
        op: Decoding,
    ) -> FloatTensor<Self> {
        let inputs = [
            states, keys, first, score, from_state, from_input, bias, proposal, noise,
        ];
        autodiff::<B, C, _, 9>(op, inputs, |[s, k, f, v, ws, wi, b, up, g]| {
            B::attention_decoding(s, k, f, v, ws, wi, b, up, g, op)
        })
    }
}
