//! What attnx's fused CPU operations share ([`fused_attention`](super::fused_attention),
//! [`lstm_cell`](super::lstm_cell)): reading a backend's tensor as f32s and making one, the
//! dispatch to a function's AVX-512 / AVX2 build, small matrix products, and a vectorisable
//! exponential.

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
                match $crate::machine::simd_level() {
                    // SAFETY: `simd_level` says Avx512 only where the CPU has AVX-512F, AVX2
                    // and FMA.
                    $crate::machine::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `simd_level` says Avx2 only where the CPU has AVX2 and FMA.
                    $crate::machine::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::machine::SimdLevel::Portable => {}
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

/// A tensor's f32 values as a slice: the backend's own buffer where it holds them contiguously
/// (no copy: the ops' inputs are parameters and checkpointed tensors that autodiff also holds,
/// so [`read`] would copy every one, and burn-ndarray copies a shared array element by element),
/// else a copy ([`read`]).
pub enum Floats<B: Backend> {
    Borrowed(FloatTensor<B>),
    Copied(TensorData),
}

impl<B: Backend> Floats<B> {
    pub fn new(tensor: FloatTensor<B>) -> Self {
        if cpu_slice::<B>(&tensor).is_some() {
            Self::Borrowed(tensor)
        } else {
            Self::Copied(read::<B>(tensor))
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        match self {
            Self::Borrowed(tensor) => cpu_slice::<B>(tensor).expect("checked in new"),
            Self::Copied(data) => floats(data),
        }
    }
}

/// The f32 slice of a contiguous flex or ndarray tensor; `None` for other backends and layouts.
#[allow(deprecated)] // burn-ndarray, deprecated upstream
fn cpu_slice<B: Backend>(tensor: &FloatTensor<B>) -> Option<&[f32]> {
    use burn::backend::{flex::FlexTensor, ndarray::NdArrayTensor};
    let any: &dyn std::any::Any = tensor;
    if let Some(tensor) = any.downcast_ref::<FlexTensor>() {
        return tensor.as_slice::<f32>();
    }
    match any.downcast_ref::<NdArrayTensor>()? {
        NdArrayTensor::F32(storage) => storage.view().to_slice(),
        _ => None,
    }
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

/// One operand of [`matmul`]: a slice and the strides of the matrix's rows and columns in it.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a> {
    data: &'a [f32],
    row: usize,
    col: usize,
}

impl<'a> Operand<'a> {
    /// A row-major matrix whose rows start `stride` apart.
    pub fn rows(data: &'a [f32], stride: usize) -> Self {
        Self {
            data,
            row: stride,
            col: 1,
        }
    }

    /// The transpose of a row-major matrix whose rows start `stride` apart.
    pub fn transposed(data: &'a [f32], stride: usize) -> Self {
        Self {
            data,
            row: 1,
            col: stride,
        }
    }

    /// Panics unless a `rows x cols` matrix fits in the slice.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row + (cols - 1) * self.col;
            assert!(
                last < self.data.len(),
                "{what} ({rows} x {cols}) overruns its slice"
            );
        }
    }
}

/// Whether a product has anything to compute; panics unless the destination and both operands
/// fit in their slices.
fn fits(
    dst_len: usize,
    dst_stride: usize,
    (m, n, k): (usize, usize, usize),
    lhs: &Operand,
    rhs: &Operand,
) -> bool {
    if m == 0 || n == 0 {
        return false;
    }
    assert!(
        (m - 1) * dst_stride + n <= dst_len,
        "the destination ({m} x {n}) overruns its slice"
    );
    lhs.check(m, k, "the left operand");
    rhs.check(k, n, "the right operand");
    true
}

/// `dst = scale * lhs rhs`, or `dst += scale * lhs rhs` when `accumulate`: an `m x n`
/// destination whose rows start `dst_stride` apart, inner size `k`. One thread (gemm's own
/// kernels, as burn-flex's matmul uses them): the callers parallelise over larger pieces.
pub fn matmul(
    (dst, dst_stride): (&mut [f32], usize),
    (m, n, k): (usize, usize, usize),
    lhs: Operand,
    rhs: Operand,
    scale: f32,
    accumulate: bool,
) {
    if !fits(dst.len(), dst_stride, (m, n, k), &lhs, &rhs) {
        return;
    }
    // SAFETY: every element the strides address lies inside its slice (checked above), and
    // `dst` is borrowed mutably, so it overlaps no operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col as isize,
            lhs.row as isize,
            rhs.data.as_ptr(),
            rhs.col as isize,
            rhs.row as isize,
            if accumulate { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

simd_fn! {
    /// [`matmul`] in plain loops, for products of a few rows or a short inner size (E1's one
    /// sequence per step), where gemm's packing and dispatch cost more than the arithmetic.
    /// The right operand must be row-major (rows along `k`) or the transpose of one; the loops
    /// run along its contiguous rows, and each sum in a fixed order (a dot product in
    /// [`LANES`] lanes), so every SIMD width gives the same bits.
    pub fn small_matmul(
        dst: (&mut [f32], usize),
        sizes: (usize, usize, usize),
        lhs: Operand,
        rhs: Operand,
        accumulate: bool,
    ) = small_matmul_portable;
}

/// Lanes of [`small_matmul`]'s fixed-order dot products: one AVX-512 register.
pub const LANES: usize = 16;

#[inline(always)]
fn small_matmul_portable(
    (dst, dst_stride): (&mut [f32], usize),
    (m, n, k): (usize, usize, usize),
    lhs: Operand,
    rhs: Operand,
    accumulate: bool,
) {
    if !fits(dst.len(), dst_stride, (m, n, k), &lhs, &rhs) {
        return;
    }
    let rows_of_rhs = rhs.col == 1;
    assert!(
        rows_of_rhs || (rhs.row == 1 && lhs.col == 1),
        "small_matmul: unsupported layout"
    );
    let a = |i: usize, kk: usize| lhs.data[i * lhs.row + kk * lhs.col];
    for i in 0..m {
        let out = &mut dst[i * dst_stride..][..n];
        if !accumulate {
            out.fill(0.0);
        }
        if rows_of_rhs {
            // out += sum_k a_ik rhs_k, row by row of rhs: streams rhs in order, `out` stays in
            // the L1 cache. (Blocks of `out` held in registers over all k, reading rhs down its
            // columns, measured 1.1-1.4x slower.)
            for kk in 0..k {
                let (a, row) = (a(i, kk), &rhs.data[kk * rhs.row..][..n]);
                for (o, r) in out.iter_mut().zip(row) {
                    *o = a.mul_add(*r, *o);
                }
            }
        } else {
            // out_j += a_i . rhs column j (a row of the matrix rhs transposes).
            let a = &lhs.data[i * lhs.row..][..k];
            for (j, o) in out.iter_mut().enumerate() {
                *o += dot(a, &rhs.data[j * rhs.col..][..k]);
            }
        }
    }
}

/// `a . b` summed in [`LANES`] lanes, then the lanes in order.
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

    fn spread(n: usize, k: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * k) % 97) as f32 - 48.0) * 0.03)
            .collect()
    }

    /// The plain loops compute gemm's products (both layouts of the right operand, with and
    /// without accumulation, rows of one and several), and every SIMD build gives the portable
    /// build's bits.
    #[test]
    fn small_matmul_equals_gemm_and_keeps_its_bits() {
        let (k, n) = (37, 45);
        for m in [1, 3] {
            let lhs = spread(m * k, 7919);
            let rows = spread(k * n, 104_729); // [k, n]
            let columns = spread(n * k, 31); // [n, k]: its transpose is the operand
            let start = spread(m * n, 13);
            for (rhs, stride) in [
                (Operand::rows(&rows, n), n),
                (Operand::transposed(&columns, k), k),
            ] {
                for accumulate in [false, true] {
                    let (mut small, mut portable, mut reference) =
                        (start.clone(), start.clone(), start.clone());
                    let lhs = Operand::rows(&lhs, k);
                    small_matmul((&mut small, n), (m, n, k), lhs, rhs, accumulate);
                    small_matmul_portable((&mut portable, n), (m, n, k), lhs, rhs, accumulate);
                    matmul((&mut reference, n), (m, n, k), lhs, rhs, 1.0, accumulate);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&small), bits(&portable), "stride {stride}");
                    for (a, b) in small.iter().zip(&reference) {
                        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
                    }
                    assert!(accumulate || small != start);
                }
            }
        }
    }

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
