//! The softmax through the backend's own kernel, with its gradient attached without a second
//! pass of exponentials.

use burn::prelude::*;

/// `softmax(x, dim)` through the backend's own softmax kernel, with the softmax's gradient.
///
/// Under autodiff, burn 0.22 computes a softmax as max, subtract, exp, sum and divide, five
/// tracked ops whose exp (forward, and again in its backward) runs one scalar `expf` per
/// element on flex: a fifth of an E2 training step. Here the forward runs on the inner backend
/// (flex: one fused, vectorised pass) and the gradient is attached without any exp: with `y`
/// the softmax as a constant, `z = y * (x - sum(y * x))` has the softmax's Jacobian
/// `diag(y) - y y^T` at this point, and `y + (z - z.detach())` has `y`'s value (exactly: the
/// bracket is 0) and `z`'s gradient.
pub fn softmax_fused<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    if !x.is_autodiff() {
        return burn::tensor::activation::softmax(x, dim);
    }
    // Back on autodiff with the input's own checkpointing strategy (tensors of one operation
    // must share it).
    let strategy = x
        .gradient_checkpointing_strategy()
        .expect("an autodiff tensor has a strategy");
    let y = burn::tensor::activation::softmax(x.clone().inner(), dim)
        .autodiff()
        .with_gradient_checkpointing_strategy(strategy);
    if !x.is_tracked() {
        return y;
    }
    let z = y.clone() * (x.clone() - (y.clone() * x).sum_dim(dim));
    y + (z.clone() - z.detach())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::softmax;

    /// The same values and the same gradient as burn's softmax, on a tracked input.
    #[test]
    fn fused_softmax_has_the_softmax_value_and_gradient() {
        let device = Device::flex().autodiff();
        let data: Vec<f32> = (0..2 * 3 * 5)
            .map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.5)
            .collect();
        let weights: Vec<f32> = (0..2 * 3 * 5).map(|i| ((i * 5) % 7) as f32 - 3.0).collect();
        let weights = Tensor::<3>::from_data(TensorData::new(weights, [2, 3, 5]), &device);
        let run = |fused: bool| {
            let x = Tensor::<3>::from_data(TensorData::new(data.clone(), [2, 3, 5]), &device)
                .require_grad();
            let y = if fused {
                softmax_fused(x.clone(), 2)
            } else {
                softmax(x.clone(), 2)
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let grad = x
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            (y.into_data().try_to_vec::<f32>().unwrap(), grad)
        };
        let (y, grad) = run(true);
        let (y_ref, grad_ref) = run(false);
        for (a, b) in y.iter().zip(&y_ref).chain(grad.iter().zip(&grad_ref)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert!(
            grad.iter().any(|g| g.abs() > 0.1),
            "a gradient that says something"
        );
        let rows: Vec<f32> = y.chunks(5).map(|r| r.iter().sum()).collect();
        assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-6), "{rows:?}");
    }
}
