//! Runs a kernel's portable body compiled for the widest vector instructions the CPU has, and
//! the fixed-lane reductions that make every width compute the same bits.
//!
//! A kernel is written once, as plain scalar Rust over slices, `#[inline(always)]`, with every
//! sum in [`LANES`] interleaved lanes combined in a fixed tree ([`lanes_reduce`]) and every
//! multiply-add spelled `mul_add` (exact, fused, on every CPU). `simd_fn!` defines the
//! function that runs that body inside a `#[target_feature]` function of the machine's
//! [`SimdLevel`], where the compiler vectorises it: 16 lanes make one AVX-512 register or two
//! AVX2 ones, and the operations on each lane are the same, so AVX-512, AVX2 and the portable
//! build give the same bits (each kernel's tests compare every level this CPU supports).
//! The one `unsafe` is the call into a `#[target_feature]` function, in [`run_at`].

use crate::machine::{SimdLevel, simd_level};

/// Lanes of the fixed-order sums: one AVX-512 register of f32.
pub const LANES: usize = 16;

/// Defines `fn $name(args)` that runs `$portable(args)` at the machine's [`SimdLevel`]
/// (through [`run`]). `$portable` should be `#[inline(always)]`, so that it is compiled into
/// each level's function and vectorised there.
macro_rules! simd_fn {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $portable:ident;) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::kernels::simd::run(
                #[inline(always)]
                move || $portable($($arg),*),
            )
        }
    };
}

pub(crate) use simd_fn;

/// Runs `body` compiled for this machine's widest [`SimdLevel`].
#[inline(always)]
pub fn run<R>(body: impl FnOnce() -> R) -> R {
    run_at(simd_level(), body)
}

/// Runs `body` compiled for `level`. Panics if this CPU cannot run `level` (tests use it to
/// compare every level the CPU supports with the portable build).
#[inline(always)]
pub fn run_at<R>(level: SimdLevel, body: impl FnOnce() -> R) -> R {
    if let Err(refused) = runnable(level, simd_level()) {
        panic!("{refused}");
    }
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX-512F, AVX2 and FMA: `simd_level` said so, and it is at
        // least `level` (asserted above).
        SimdLevel::Avx512 => unsafe { avx512(body) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and FMA (as above).
        SimdLevel::Avx2 => unsafe { avx2(body) },
        _ => body(),
    }
}

/// Whether a CPU of level `cpu` can run code compiled for `level`: the check that makes
/// [`run_at`]'s `unsafe` sound, apart from the CPU so that every machine tests all of it.
fn runnable(level: SimdLevel, cpu: SimdLevel) -> Result<(), String> {
    if level <= cpu {
        Ok(())
    } else {
        Err(format!("this CPU cannot run {level} code (it has {cpu})"))
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn avx512<R>(body: impl FnOnce() -> R) -> R {
    body()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// `fold` over `x` in [`LANES`] interleaved accumulators, combined by `combine` in a fixed tree.
#[inline(always)]
pub fn lanes_reduce(
    x: &[f32],
    init: f32,
    fold: impl Fn(f32, f32) -> f32,
    combine: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = fold(*a, *v);
        }
    }
    for (a, v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = fold(*a, *v);
    }
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] = combine(acc[i], acc[i + width]);
        }
        width /= 2;
    }
    acc[0]
}

/// The lanes of a fixed-order sum added pairwise, always in the same order.
#[inline(always)]
pub fn tree_sum(lanes: [f32; LANES]) -> f32 {
    lanes_reduce(&lanes, 0.0, |a, v| a + v, |a, b| a + b)
}

/// `a . b` summed in [`LANES`] lanes, then the lanes in order, then the tail.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The dot products of four rows `a` with one `b`, each computed exactly as [`dot`] computes
/// it (the same operations in the same order, so the same bits), sharing each read of `b`.
/// (Four named accumulators: an array of them indexed in a loop was kept in memory.)
#[inline(always)]
pub fn dots([a0, a1, a2, a3]: [&[f32]; 4], b: &[f32]) -> [f32; 4] {
    let len = b.len();
    assert!(
        [a0, a1, a2, a3].iter().all(|a| a.len() == len),
        "dots: operands of different lengths"
    );
    let mut lanes = ([0.0f32; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let chunks = b
        .chunks_exact(LANES)
        .zip(a0.chunks_exact(LANES))
        .zip(a1.chunks_exact(LANES))
        .zip(a2.chunks_exact(LANES))
        .zip(a3.chunks_exact(LANES));
    for ((((y, x0), x1), x2), x3) in chunks {
        for l in 0..LANES {
            lanes.0[l] = x0[l].mul_add(y[l], lanes.0[l]);
            lanes.1[l] = x1[l].mul_add(y[l], lanes.1[l]);
            lanes.2[l] = x2[l].mul_add(y[l], lanes.2[l]);
            lanes.3[l] = x3[l].mul_add(y[l], lanes.3[l]);
        }
    }
    let full = len - len % LANES;
    let finish = |lanes: [f32; LANES], a: &[f32]| {
        let tail: f32 = a[full..].iter().zip(&b[full..]).map(|(x, y)| x * y).sum();
        lanes.iter().sum::<f32>() + tail
    };
    [
        finish(lanes.0, a0),
        finish(lanes.1, a1),
        finish(lanes.2, a2),
        finish(lanes.3, a3),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each level runs on a CPU of that level or wider, and no narrower one: all nine pairs,
    /// on every machine (whatever this CPU's own level).
    #[test]
    fn a_level_runs_only_on_a_cpu_that_has_it() {
        use SimdLevel::{Avx2, Avx512, Portable};
        let levels = [Portable, Avx2, Avx512];
        for (i, level) in levels.into_iter().enumerate() {
            for (j, cpu) in levels.into_iter().enumerate() {
                assert_eq!(runnable(level, cpu).is_ok(), i <= j, "{level} on {cpu}");
            }
        }
        assert_eq!(
            runnable(Avx512, Avx2).unwrap_err(),
            "this CPU cannot run avx512 code (it has avx2)"
        );
    }

    /// Every level this CPU runs computes the body's result, and the fixed-lane sum (the
    /// body here) gives the portable build's bits at each; a level above the CPU's is refused
    /// before anything runs.
    #[test]
    fn every_supported_level_runs_the_body_with_the_same_bits() {
        let x: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.37).sin()).collect();
        let portable = lanes_reduce(&x, 0.0, |a, v| a + v, |a, b| a + b);
        assert_ne!(portable, 0.0);
        for level in SimdLevel::supported() {
            let sum = run_at(level, || lanes_reduce(&x, 0.0, |a, v| a + v, |a, b| a + b));
            assert_eq!(sum.to_bits(), portable.to_bits(), "{level}");
        }
        if simd_level() < SimdLevel::Avx512 {
            let refused = std::panic::catch_unwind(|| run_at(SimdLevel::Avx512, || ()));
            assert!(refused.is_err());
        }
    }

    #[test]
    fn fixed_lane_sums_add_every_value() {
        let x: Vec<f32> = (0..37).map(|i| i as f32).collect();
        assert_eq!(lanes_reduce(&x, 0.0, |a, v| a + v, |a, b| a + b), 666.0);
        assert_eq!(
            lanes_reduce(&x, f32::NEG_INFINITY, f32::max, f32::max),
            36.0
        );
        assert_eq!(dot(&x, &x), (0..37).map(|i| (i * i) as f32).sum::<f32>());
        let mut lanes = [0.0; LANES];
        lanes[3] = 1.5;
        lanes[15] = 2.0;
        assert_eq!(tree_sum(lanes), 3.5);
    }

    /// Four rows' dot products with one vector give each [`dot`]'s bits, whatever the length's
    /// remainder, at every SIMD level this CPU runs.
    #[test]
    fn four_dots_keep_each_dots_bits() {
        let spread = |n: usize, seed: u32| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        for len in [0, 5, 16, 37, 150, 500] {
            let b = spread(len, 1);
            let a: Vec<Vec<f32>> = (0..4).map(|k| spread(len, 7 + k)).collect();
            for level in crate::machine::SimdLevel::supported() {
                let four = run_at(level, || dots([&a[0], &a[1], &a[2], &a[3]], &b));
                for (k, d) in four.iter().enumerate() {
                    let one = run_at(level, || dot(&a[k], &b));
                    assert_eq!(d.to_bits(), one.to_bits(), "length {len}, {level}, row {k}");
                }
            }
        }
    }
}
