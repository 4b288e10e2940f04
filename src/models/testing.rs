//! What the models' tests share, on top of the kernels' ([`crate::kernels::testing`]).

use burn::prelude::*;
use rand::rngs::StdRng;

use crate::kernels::testing::{assert_close, values};
use crate::rng::{Stream, rng};

/// One weight-initialisation generator per repeat, as training draws them.
pub fn rngs(n: usize) -> Vec<StdRng> {
    (0..n).map(|i| rng(i as u64, Stream::Init)).collect()
}

/// A fixed echo input `[repeats, batch, time, values]` in [0, 1).
pub fn input(r: usize, b: usize, t: usize, v: usize, device: &Device) -> Tensor<4> {
    let data: Vec<f32> = (0..r * b * t * v)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0)
        .collect();
    Tensor::from_data(TensorData::new(data, [r, b, t, v]), device)
}

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
