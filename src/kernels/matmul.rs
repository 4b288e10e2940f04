//! Matrix products on slices: [`matmul`] through gemm (burn-flex's own kernels), for the
//! attention's per-head products, and [`small_matmul`] in plain loops, for products of a row or
//! a few (E1's one sequence per step), where gemm's packing and dispatch cost more than the
//! arithmetic.
//!
//! Both read their operands through [`Operand`]s, whose strides are checked against the slices
//! before any element is read: gemm takes raw pointers, and its call is the one `unsafe` here.

use super::simd::{dot, simd_fn};

/// One operand: a slice and the strides of the matrix's rows and columns in it.
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

    /// Panics unless every element of a `rows x cols` matrix lies inside the slice. The index
    /// of the last element is computed with checked arithmetic: in a release build a wrapped
    /// product would pass the comparison and let gemm read outside the slice.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = last_index(rows, self.row, cols, self.col);
        assert!(
            last.is_some_and(|last| last < self.data.len()),
            "{what} ({rows} x {cols}, strides {} and {}) overruns its slice of {}",
            self.row,
            self.col,
            self.data.len()
        );
    }
}

/// `(rows - 1) * row_stride + (cols - 1) * col_stride`, or `None` if it overflows.
fn last_index(rows: usize, row_stride: usize, cols: usize, col_stride: usize) -> Option<usize> {
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)
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
        dst_stride >= n,
        "the destination's rows ({n} wide) overlap: stride {dst_stride}"
    );
    assert!(
        last_index(m, dst_stride, n, 1).is_some_and(|last| last < dst_len),
        "the destination ({m} x {n}, stride {dst_stride}) overruns its slice of {dst_len}"
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
    // SAFETY: `fits` checked that every element the sizes and strides address lies inside its
    // slice (without overflow), that the destination's rows do not overlap, and `dst` is
    // borrowed mutably, so it aliases no operand.
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
    /// [`matmul`] in plain loops, for products of a few rows or a short inner size. The right
    /// operand must be row-major (rows along `k`) or the transpose of one; the loops run along
    /// its contiguous rows, and each sum in a fixed order (a dot product in
    /// [`LANES`](super::simd::LANES) lanes), so every SIMD width gives the same bits.
    pub fn small_matmul(
        dst: (&mut [f32], usize),
        sizes: (usize, usize, usize),
        lhs: Operand,
        rhs: Operand,
        accumulate: bool,
    ) = small_matmul_portable;
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{assert_close, assert_same_bits, spread};
    use crate::machine::SimdLevel;

    /// The plain loops compute gemm's products (both layouts of the right operand, with and
    /// without accumulation, rows of one and several), and every SIMD level this CPU runs gives
    /// the portable build's bits.
    #[test]
    fn small_matmul_equals_gemm_and_keeps_its_bits() {
        let (k, n) = (37, 45);
        for m in [1, 3] {
            let lhs = spread(m * k, 7919, 0.03);
            let rows = spread(k * n, 104_729, 0.03); // [k, n]
            let columns = spread(n * k, 31, 0.03); // [n, k]: its transpose is the operand
            let start = spread(m * n, 13, 0.03);
            for rhs in [Operand::rows(&rows, n), Operand::transposed(&columns, k)] {
                for accumulate in [false, true] {
                    let lhs = Operand::rows(&lhs, k);
                    let mut portable = start.clone();
                    small_matmul_portable((&mut portable, n), (m, n, k), lhs, rhs, accumulate);
                    for level in SimdLevel::supported() {
                        let mut out = start.clone();
                        run_at(level, || {
                            small_matmul_portable((&mut out, n), (m, n, k), lhs, rhs, accumulate)
                        });
                        assert_same_bits(&out, &portable, &format!("{level}"));
                    }
                    let mut reference = start.clone();
                    matmul((&mut reference, n), (m, n, k), lhs, rhs, 1.0, accumulate);
                    assert_close(&portable, &reference, 1e-6, "small_matmul against gemm");
                    assert!(accumulate || portable != start);
                }
            }
        }
    }

    /// Strides whose last index overflows are refused before gemm could read anything.
    #[test]
    fn strides_that_overflow_are_refused() {
        let data = [1.0f32; 8];
        let huge = usize::MAX / 2 + 1;
        let mut dst = [0.0f32; 4];
        let product = std::panic::catch_unwind(move || {
            let mut dst = dst;
            matmul(
                (&mut dst, 2),
                (2, 2, 2),
                Operand::rows(&data, huge),
                Operand::rows(&data, 2),
                1.0,
                false,
            )
        });
        assert!(product.is_err(), "an overflowing stride must panic");
        assert_eq!(last_index(3, huge, 1, 1), None);
        assert_eq!(last_index(3, 4, 2, 1), Some(9));
        let overlap = std::panic::catch_unwind(move || {
            matmul(
                (&mut dst, 1),
                (2, 2, 2),
                Operand::rows(&data, 2),
                Operand::rows(&data, 2),
                1.0,
                false,
            )
        });
        assert!(overlap.is_err(), "overlapping destination rows must panic");
    }
}
