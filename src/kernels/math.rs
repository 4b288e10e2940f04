//! The elementary functions the kernels need, as straight-line f32 arithmetic that the
//! compiler vectorises and that gives the same bits on every CPU: libm's `expf`, `logf` and
//! `tanhf` are a call per element, and glibc picks their code by the CPU's features.

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

/// `1 / (1 + e^-x)`, within 2e-7 of the true value, from [`exp`] of a non-positive argument.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// Keras 2's `hard_sigmoid`: `clip(0.2 x + 0.5, 0, 1)`, a product and a sum rounded each (as
/// its TensorFlow backend computes it).
#[inline(always)]
pub fn hard_sigmoid(x: f32) -> f32 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

/// `tanh(x)`, within 2e-7 of the true value: Cephes' odd polynomial near 0 (where
/// `(1 - e) / (1 + e)` would cancel), that quotient with `e = e^(-2|x|)` elsewhere.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = p.mul_add(z, 2.063_909e-2);
    p = p.mul_add(z, -5.373_971_6e-2);
    p = p.mul_add(z, 1.333_144_2e-1);
    p = p.mul_add(z, -3.333_328e-1);
    let small = (p * z).mul_add(x, x);
    let e = exp(-2.0 * a);
    let large = ((1.0 - e) / (1.0 + e)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// `ln(x)` for a positive normal `x`, within 1 ulp of the true value: Cephes' polynomial on the
/// mantissa, the exponent added in two parts. Straight-line arithmetic (libm's `logf` picks
/// its code by the CPU's features), so every machine computes the same bits.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    debug_assert!(x.is_normal() && x > 0.0, "ln of {x}");
    let bits = x.to_bits();
    // x = m 2^e with m in [0.5, 1).
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    if m < SQRT_HALF {
        e -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        y = y.mul_add(m, c);
    }
    // ln 2 in two parts (0.693359375 is exact in few bits), as Cephes adds it.
    let e = e as f32;
    let y = y * m * z + e * -2.121_944_4e-4 + -0.5 * z;
    (m + y) + e * 0.693_359_4
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

    #[test]
    fn activations_are_within_2e7_of_the_true_values() {
        let (mut worst_sigmoid, mut worst_tanh) = (0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let xf = x as f64;
            worst_sigmoid =
                worst_sigmoid.max((sigmoid(x) as f64 - 1.0 / (1.0 + (-xf).exp())).abs());
            worst_tanh = worst_tanh.max((tanh(x) as f64 - xf.tanh()).abs());
        }
        assert!(worst_sigmoid < 2e-7, "sigmoid: {worst_sigmoid:e}");
        assert!(worst_tanh < 2e-7, "tanh: {worst_tanh:e}");
        assert_eq!((tanh(0.0), tanh(50.0), tanh(-50.0)), (0.0, 1.0, -1.0));
        assert_eq!((sigmoid(100.0), sigmoid(-100.0)), (1.0, 0.0));
    }

    #[test]
    fn the_hard_sigmoid_is_keras_2s() {
        assert_eq!(hard_sigmoid(0.0), 0.5);
        assert_eq!(hard_sigmoid(1.0), 0.7);
        assert_eq!(hard_sigmoid(-2.5), 0.0);
        assert_eq!(hard_sigmoid(3.0), 1.0);
        assert_eq!(hard_sigmoid(-7.0), 0.0);
    }

    #[test]
    fn ln_is_within_one_ulp_of_libm() {
        let mut worst = 0.0f64;
        for i in 0..2_000_000 {
            let x = 1.0 + i as f32 * 5e-4; // [1, 1001): sums of softmax terms
            let (got, want) = (ln(x) as f64, (x as f64).ln());
            worst = worst.max((got - want).abs() / want.max(f64::MIN_POSITIVE));
        }
        assert!(worst < 1.2e-7, "worst relative error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
        assert!((ln(0.5) as f64 - 0.5f64.ln()).abs() < 1e-7);
    }
}
