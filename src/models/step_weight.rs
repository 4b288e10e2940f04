//! Weights a recurrence multiplies at every step, with their gradient taken in one matmul.
//!
//! Differentiating `x_t W` at every step `t` makes autodiff compute one weight gradient
//! `x_t^T d_t` per step, each a fresh `[R, in, out]` buffer (3.6 MB for E1's stacked LSTM
//! kernel) that is zero-filled, copied into an aligned buffer and added to the running sum:
//! memory traffic, not arithmetic, and most of an E1 training step in perf. The sum is one
//! matmul, `X^T D` over the stacked steps, if the inputs `X` are known before the steps run.
//! So a recurrence runs twice: first without autodiff, only to learn its per-step inputs;
//! then tracked, multiplying by the weight as a constant (gradients still reach `x_t`) and
//! adding, at each step, the `t`-th row of `Z - detach(Z)` with `Z = X W`: exactly zero in
//! value, so the forward values are the untracked pass's to the bit, and with gradient `d_t`
//! flowing into `Z`, whose backward is the one matmul `X^T D` (the same sum in another order,
//! so the last digits of trained weights differ from per-step accumulation).
//!
//! Since attnx 0.7.0 E1's LSTMs and its additive soft attention decoder run as fused ops on the
//! CPU ([`lstm_sequence`](crate::kernels::lstm_sequence), [`decoder`](crate::kernels::decoder)),
//! which take each kernel's gradient in one product themselves; this serves E4's other
//! decoders (dot, general and cosine scores, hard attention) on the CPU.

use burn::prelude::*;

/// A weight `[R, in, out]` as one recurrence uses it: see the module docs.
#[derive(Clone, Debug)]
pub struct StepWeight {
    /// The weight, as a constant when `gradient` carries its gradient.
    weight: Tensor<3>,
    /// `Z - detach(Z)`, `[R, B, T, out]`: zeros whose gradient is the weight's.
    gradient: Option<Tensor<4>>,
}

impl StepWeight {
    /// The weight multiplied as it is (untracked, or no per-step inputs known).
    pub fn plain(weight: Tensor<3>) -> Self {
        Self {
            weight,
            gradient: None,
        }
    }

    /// The weight for the tracked pass, given the inputs `[R, B, T, in]` that the steps will
    /// multiply by it (values from an untracked pass). Without a tracked weight it stays plain.
    pub fn deferred(weight: Tensor<3>, inputs: Tensor<4>) -> Self {
        if !needs_gradient(&weight) {
            return Self::plain(weight);
        }
        let [r, b, t, d] = inputs.dims();
        let out = weight.dims()[2];
        let z = inputs
            .autodiff()
            .reshape([r, b * t, d])
            .matmul(weight.clone())
            .reshape([r, b, t, out]);
        Self {
            // Not `detach`: a detached leaf keeps requiring a gradient.
            weight: weight.inner().autodiff(),
            gradient: Some(z.clone() - z.detach()),
        }
    }

    /// The same weight without autodiff, for the untracked pass.
    pub fn untracked(&self) -> Self {
        Self::plain(self.weight.clone().inner())
    }

    /// `x W` at step `step`, `[R, B, in] -> [R, B, out]`.
    pub fn apply(&self, x: Tensor<3>, step: usize) -> Tensor<3> {
        let product = x.matmul(self.weight.clone());
        match self.gradient_at(step) {
            Some(zero) => product + zero,
            None => product,
        }
    }

    /// The zeros that carry the weight's gradient at `step`, `[R, B, out]`, if deferred.
    fn gradient_at(&self, step: usize) -> Option<Tensor<3>> {
        self.gradient
            .as_ref()
            .map(|g| g.clone().slice_dim(2, step..step + 1).squeeze_dim::<3>(2))
    }

    /// The whole `Z - detach(Z)`, `[R, B, T, out]`, if deferred: a caller that adds something
    /// to every step's product anyway can fold it in once.
    pub fn gradient(&self) -> Option<Tensor<4>> {
        self.gradient.clone()
    }

    /// The weight as the per-step products use it.
    pub fn weight(&self) -> Tensor<3> {
        self.weight.clone()
    }
}

/// Whether to defer on `device`: on the CPU backends. Measured with `attnx bench` on flex
/// (attnx 0.4.0), E1's kernels (150 or 200 inputs, one pair per step) trained 1.2-1.5x faster
/// deferred at stacks of 5-10, while the IMDB LSTM (64 inputs, 16 reviews per half batch),
/// whose per-step gradient is a small fraction of its step, trained 1.2x slower. On a GPU the untracked pass's kernel launches are the cost that counts
/// and a gradient buffer is cheap: unmeasured, so not there.
pub fn defers_on(device: &Device) -> bool {
    crate::kernels::on_cpu(device)
}

/// Whether a weight takes part in training here (tracked by autodiff).
pub fn needs_gradient<const D: usize>(weight: &Tensor<D>) -> bool {
    weight.is_autodiff() && weight.is_tracked()
}

/// Per-step inputs `[R, B, in]` (one per step) stacked as `[R, B, T, in]`, without autodiff.
pub fn stack_inputs(inputs: Vec<Tensor<3>>) -> Tensor<4> {
    Tensor::stack(inputs, 2).inner()
}
