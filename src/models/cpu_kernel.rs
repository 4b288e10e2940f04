//! What attnx's fused CPU operations share ([`fused_attention`](super::fused_attention),
//! [`lstm_cell`](super::lstm_cell)): reading a backend's tensor as f32s and making one, the
//! dispatch to a function's AVX-512 / AVX2 build, and a vectorisable exponential.

use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;
use burn::prelude::*;
use burn::tensor::try_read_sync;

/// Defines `fn $name(args)` that runs `$portable(args)` compiled for AVX-512 or AVX2 (+ FMA)
/// where the CPU has them, and as built elsewhere: the same operations, element by element and
/// in fixed-order lanes, so the same bits whatever the width (only `mul_add` is slow without
/// FMA hardware). `$portable` should be `#[inline(always)]`, so that each build vectorises it.
macro_rules! simd_fn {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) = $portable:ident;) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("fma") {
                    // SAFETY: the CPU has AVX-512F and FMA (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}

pub(crate) use simd_fn;

/// A tensor's values (flex hands its buffer over without a copy when nothing else holds it).
pub fn read<B: Backend>(tensor: FloatTensor<B>) -> TensorData {
    let data = try_read_sync(B::float_into_data(tensor))
        .expect("the CPU backends read synchronously")
        .expect("a CPU tensor reads back");
    data.convert::<f32>()
}

/// A zeroed f32 buffer of `shape`. (`TensorData::zeros` pushes its zeros one at a time, 3% of
/// an E2 step in perf; a zeroed `Vec` comes from the allocator's already-zero pages.)
pub fn zeros(shape: [usize; 2]) -> TensorData {
    TensorData::new(vec![0.0f32; shape[0] * shape[1]], shape)
}

pub fn floats(data: &TensorData) -> &[f32] {
    data.as_slice::<f32>().expect("f32 data")
}

pub fn floats_mut(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>().expect("f32 data")
}

/// `e^x` for `x <= 0` (softmax arguments), within 2 ulp of the true value, 0 below -87.
///
/// libm's `expf` is a function call per element; this is straight-line code the compiler
/// vectorises (Cephes' polynomial on `[-ln2/2, ln2/2]` and the exponent set through the bits).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LOWEST: f32 = -87.0;
    let clamped = x.clamp(LOWEST, 0.0);
    let shifted = clamped.mul_add(LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = n.mul_add(-LN2_HI, clamped);
    let r = n.mul_add(-LN2_LO, r);
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_6e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r) + 1.0;
    let exponent = (shifted.to_bits() as i32)
        .wrapping_sub(ROUND.to_bits() as i32)
        .wrapping_add(127)
        << 23;
    let value = y * f32::from_bits(exponent as u32);
    if x < LOWEST { 0.0 } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e9), 0.0, "a masked score gets no weight");
    }
}
