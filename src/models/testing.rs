//! What the models' tests share, on top of the kernels' ([`crate::kernels::testing`]).

use burn::prelude::*;

use crate::kernels::testing::{assert_close, values};

/// Each gradient equals its reference within 1e-5 ([`assert_close`]'s rule: relative to the
/// reference's largest entry, which must say something).
pub fn assert_gradients_close(what: &str, gradients: &[Vec<f32>], references: &[Vec<f32>]) {
    assert_eq!(gradients.len(), references.len());
    for (i, (got, want)) in gradients.iter().zip(references).enumerate() {
        assert_close(got, want, 1e-5, &format!("{what}: gradient {i}"));
    }
}

/// The gradients of `params`, then of `input`, as vectors.
pub fn gradients_of(
    params: &[&burn::module::Param<Tensor<3>>],
    input: &Tensor<4>,
    grads: &burn::tensor::Gradients,
) -> Vec<Vec<f32>> {
    let mut out: Vec<Vec<f32>> = params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let grad = p.val().grad(grads);
            values(grad.unwrap_or_else(|| panic!("parameter {i} has no gradient")))
        })
        .collect();
    out.push(values(input.grad(grads).unwrap()));
    out
}
