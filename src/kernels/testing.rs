//! What the kernels' tests share (and the models' tests, which may use the kernels layer):
//! deterministic inputs, one closeness rule, bit equality, and the harness that checks an op
//! against its reference under autodiff.

use burn::module::Param;
use burn::prelude::*;

/// A tensor's values as f32s.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// `n` deterministic values in `[-48 scale, 48 scale]`, spread by the multiplier `k` (distinct
/// primes give unrelated sequences): inputs that exercise every lane and sign.
pub fn spread(n: usize, k: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * k) % 97) as f32 - 48.0) * scale)
        .collect()
}

/// A tensor of [`spread`] values.
pub fn spread_tensor<const D: usize>(
    shape: [usize; D],
    k: usize,
    scale: f32,
    device: &Device,
) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(spread(n, k, scale), shape), device)
}

/// The one closeness rule: every `|got - want| <= tolerance * max(1, max |want|)`, relative to
/// the largest expected value (sums in another order differ by a few ulps of the largest
/// term, not of each element); and `want` must say something (some value above 1e-3), so that
/// a comparison of zeros cannot pass for a test.
pub fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let largest = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        largest > 1e-3,
        "{what}: nothing to compare (all below 1e-3)"
    );
    let bound = tolerance * largest.max(1.0);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= bound,
            "{what}[{i}]: {a} vs {b} (bound {bound:e})"
        );
    }
}

/// Bit equality, naming the first difference.
pub fn assert_same_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{what}[{i}]: {} vs {} (other bits)", got[i], want[i]);
    }
}

/// The devices a kernel's gradients are checked on: flex and ndarray with autodiff, and flex
/// with gradient checkpointing (burn recomputes the checkpointed parents).
pub fn autodiff_devices() -> [Device; 3] {
    [
        Device::flex().autodiff(),
        Device::ndarray().autodiff(),
        Device::flex().autodiff().gradient_checkpointing(),
    ]
}

/// Checks a kernel against its reference: on every [`autodiff_devices`] device, with every
/// input tracked and with only the first one tracked, the outputs and the gradients of
/// `sum(output * w)` (fixed weights) agree within `tolerance` ([`assert_close`]). `inputs`
/// makes the inputs on a device (each call the same values).
pub fn check_against_reference<const N: usize, const D: usize>(
    name: &str,
    inputs: impl Fn(&Device) -> [Tensor<D>; N],
    kernel: impl Fn([Tensor<D>; N]) -> Tensor<D>,
    reference: impl Fn([Tensor<D>; N]) -> Tensor<D>,
    tolerance: f32,
) {
    for device in autodiff_devices() {
        for tracked in [N, 1] {
            let run = |op: &dyn Fn([Tensor<D>; N]) -> Tensor<D>| {
                let xs = inputs(&device);
                let xs: [Tensor<D>; N] = std::array::from_fn(|i| {
                    let x = xs[i].clone();
                    if i < tracked { x.require_grad() } else { x }
                });
                let out = op(xs.clone());
                let w = spread_tensor(out.dims(), 61, 0.02, &device);
                let grads = (out.clone() * w).sum().backward();
                let gradients: Vec<Vec<f32>> = xs[..tracked]
                    .iter()
                    .map(|x| values(x.grad(&grads).expect("a tracked input's gradient")))
                    .collect();
                (values(out), gradients)
            };
            let (out, grads) = run(&kernel);
            let (out_ref, grads_ref) = run(&reference);
            let on = format!("{name} on {device:?}, {tracked} of {N} inputs tracked");
            assert_close(&out, &out_ref, tolerance, &format!("{on}: output"));
            for (i, (g, r)) in grads.iter().zip(&grads_ref).enumerate() {
                assert_close(g, r, tolerance, &format!("{on}: input {i}'s gradient"));
            }
        }
    }
}

/// A parameter's gradient, for the models' tests.
pub fn gradient<const D: usize>(
    param: &Param<Tensor<D>>,
    grads: &burn::tensor::Gradients,
) -> Vec<f32> {
    values(param.val().grad(grads).expect("a parameter's gradient"))
}
