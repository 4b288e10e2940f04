//! Matrix products on slices: [`matmul`] through gemm (burn-flex's own kernels), for the
//! attention's per-head products, and [`small_matmul`] in plain loops, for products of a row or
//! a few (E1's one sequence per step), where gemm's packing and dispatch cost more than the
//! arithmetic.
//!
//! Both read their operands through [`Operand`]s, whose strides are checked against the slices
//! before any element is read: gemm takes raw pointers, and its calls are the `unsafe` here.
//!
//! gemm picks its kernels by the CPU when a process first multiplies: AVX-512 ones where the CPU
//! has AVX-512 (attnx builds gemm with `x86-v4`), AVX2 and FMA ones otherwise. Their sums run in
//! different orders, so the two kinds of machine get different bits. A product that promises
//! the same bits on both asks for [`Products::Avx2`]: gemm's AVX2 kernels by name, through gemm's
//! own generic driver ([`gemm_avx2`]), whatever the CPU has beyond them.

use super::simd::{dot, dots, simd_fn};

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

    /// A matrix whose rows start `row` apart and whose columns `col` apart.
    pub fn strided(data: &'a [f32], row: usize, col: usize) -> Self {
        Self { data, row, col }
    }

    /// The transpose of a row-major matrix whose rows start `stride` apart.
    pub fn transposed(data: &'a [f32], stride: usize) -> Self {
        Self {
            data,
            row: 1,
            col: stride,
        }
    }

    /// The element at row `i`, column `j`.
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row + j * self.col]
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

/// Which of gemm's kernels a product runs on an x86 CPU: bits that are the same on every
/// machine, or the CPU's full speed. A model chooses for all its products, forward and
/// backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Products {
    /// gemm's AVX2 and FMA kernels on every CPU that has AVX2 and FMA, AVX-512 or not: the same
    /// bits on both kinds of machine. The echo models' choice: E1's records promise those bits
    /// (docs/reproducibility.md). Without AVX2 and FMA, gemm's portable kernels.
    Avx2,
    /// The widest kernels the CPU runs: gemm's AVX-512 ones where the CPU has AVX-512, else as
    /// [`Products::Avx2`] (the same bits there). The text classifiers' choice: their products
    /// are large enough for wider vectors to pay, and their records differ between the two
    /// kinds of machine.
    Widest,
}

/// `dst = scale * lhs rhs`, or `dst += scale * lhs rhs` when `accumulate`: an `m x n`
/// destination whose rows start `dst_stride` apart, inner size `k`. One thread (gemm's own
/// kernels, as burn-flex's matmul uses them): the callers parallelise over larger pieces.
pub fn matmul(
    dst: (&mut [f32], usize),
    sizes: (usize, usize, usize),
    lhs: Operand,
    rhs: Operand,
    scale: f32,
    accumulate: bool,
    products: Products,
) {
    matmul_on(
        dst,
        sizes,
        lhs,
        rhs,
        (scale, accumulate),
        (gemm::Parallelism::None, products),
    );
}

/// [`matmul`] on as many of gemm's threads as `parallelism` says: gemm's call as burn-flex
/// makes it, for [`product`](super::product), whose large products burn-flex threads.
pub fn matmul_on(
    (dst, dst_stride): (&mut [f32], usize),
    (m, n, k): (usize, usize, usize),
    lhs: Operand,
    rhs: Operand,
    (scale, accumulate): (f32, bool),
    (parallelism, products): (gemm::Parallelism, Products),
) {
    if !fits(dst.len(), dst_stride, (m, n, k), &lhs, &rhs) {
        return;
    }
    // gemm takes signed strides. `fits` skips a size-1 dimension's stride and both operands
    // when k = 0, so a stride past `isize::MAX` can reach this point: refuse it here rather
    // than hand gemm a negative one.
    let [dst_row, lhs_col, lhs_row, rhs_col, rhs_row] =
        [dst_stride, lhs.col, lhs.row, rhs.col, rhs.row].map(signed_stride);
    let (read_dst, alpha) = (accumulate, if accumulate { 1.0 } else { 0.0 });
    if products == Products::Avx2 {
        // SAFETY: as for gemm's call below: the same pointers, sizes and strides.
        let done = unsafe {
            gemm_avx2(
                (m, n, k),
                (dst.as_mut_ptr(), dst_row, read_dst),
                (lhs.data.as_ptr(), lhs_col, lhs_row),
                (rhs.data.as_ptr(), rhs_col, rhs_row),
                (alpha, scale),
                parallelism,
            )
        };
        if done {
            return;
        }
    }
    // SAFETY: `fits` checked that every element the sizes and strides address lies inside its
    // slice (without overflow), that the destination's rows do not overlap, and `dst` is
    // borrowed mutably, so it aliases no operand; every stride converted to `isize` unchanged.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row,
            read_dst,
            lhs.data.as_ptr(),
            lhs_col,
            lhs_row,
            rhs.data.as_ptr(),
            rhs_col,
            rhs_row,
            alpha,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// gemm's call (`gemm::gemm`) with its AVX2 and FMA kernels whatever the CPU has beyond them:
/// what `gemm::gemm` does on an AVX2 machine, step for step. It turns a product whose
/// destination runs down its columns into the transposed product, as `gemm::gemm` does (the
/// strides here are never negative, so its flips never apply), then runs gemm's generic driver
/// (`gemm_basic_generic`, whose small-size paths are chosen inside it) with the AVX2 kernels
/// and the arguments gemm's own `fma` instance gives it. Returns false, computing nothing,
/// where the CPU lacks AVX2 or FMA: then gemm's own choice is already width-independent.
///
/// # Safety
/// The pointers, sizes and (non-negative) strides must address only memory inside live
/// allocations, the destination's elements distinct and aliasing neither operand. This copies
/// gemm 0.19.0's own call (Cargo.toml pins that version): another gemm's driver may want
/// other arguments.
#[cfg(target_arch = "x86_64")]
unsafe fn gemm_avx2(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs, read_dst): (*mut f32, isize, bool),
    (lhs, lhs_cs, lhs_rs): (*const f32, isize, isize),
    (rhs, rhs_cs, rhs_rs): (*const f32, isize, isize),
    (alpha, beta): (f32, f32),
    parallelism: gemm::Parallelism,
) -> bool {
    use gemm_common::simd::{MixedSimd, V3};
    use gemm_f32::microkernel::fma::f32 as avx2;
    let Some(simd) = <V3 as MixedSimd<f32, f32, f32, f32>>::try_new() else {
        return false;
    };
    let dst_cs: isize = 1;
    debug_assert!(lhs_cs >= 0 && lhs_rs >= 0 && rhs_cs >= 0 && rhs_rs >= 0 && dst_rs >= 0);
    // gemm::gemm: "we want to transpose if the destination is column-oriented".
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs < dst_rs {
        (
            n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs,
        )
    } else {
        (
            m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs,
        )
    };
    // gemm-f32's `fma` instance: `gemm_def!(f32, 2)` injects it with 4 * 2 lanes (its
    // microkernels' private `N`) and its microkernel tables. The driver packs the operands for
    // `MR = MR_DIV_N * LANES` rows: a wrong `LANES` would let the microkernels run past the
    // packed buffers, so it is checked against the vector width of gemm's own V3 for f32.
    const LANES: usize = 8;
    const { assert!(LANES == <V3 as MixedSimd<f32, f32, f32, f32>>::SIMD_WIDTH) };
    // SAFETY: the caller's contract; `simd` proves the CPU runs the kernels.
    unsafe {
        gemm_common::gemm::gemm_basic_generic::<
            _,
            f32,
            LANES,
            { avx2::MR_DIV_N * LANES },
            { avx2::NR },
            { avx2::MR_DIV_N },
            { avx2::H_M },
            { avx2::H_N },
        >(
            simd,
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            alpha,
            beta,
            false,
            false,
            false,
            |a, b, c| a * b + c,
            &avx2::UKR,
            &avx2::H_UKR,
            false,
            parallelism,
        );
    }
    true
}

/// Elsewhere gemm's kernels are the same whatever the vector width.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn gemm_avx2(
    _: (usize, usize, usize),
    _: (*mut f32, isize, bool),
    _: (*const f32, isize, isize),
    _: (*const f32, isize, isize),
    _: (f32, f32),
    _: gemm::Parallelism,
) -> bool {
    false
}

/// A stride as gemm takes it; panics past `isize::MAX`, where `as isize` would wrap.
fn signed_stride(stride: usize) -> isize {
    isize::try_from(stride)
        .unwrap_or_else(|_| panic!("a stride of {stride} elements does not fit gemm's isize"))
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

/// Rows of the left operand worked together: each read of the right operand serves them all.
const ROWS: usize = 4;
/// Columns of one register block of [`ROWS`] rows: one AVX-512 register or two AVX2 ones per
/// row.
const COLUMNS: usize = 16;

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
    if !accumulate {
        for i in 0..m {
            dst[i * dst_stride..][..n].fill(0.0);
        }
    }
    // Every output gets the same operations in the same order whichever loop computes it (a
    // chain of multiply-adds in k's order from its value before, or a `dot`), so the blocks of
    // several rows give the bits of one row at a time.
    let blocked = m - m % ROWS;
    for i in (0..blocked).step_by(ROWS) {
        if rows_of_rhs {
            rows_block((dst, dst_stride), i, (n, k), lhs, rhs);
        } else {
            dots_block((dst, dst_stride), i, (n, k), lhs, rhs);
        }
    }
    for i in blocked..m {
        let out = &mut dst[i * dst_stride..][..n];
        if rows_of_rhs {
            // out += sum_k a_ik rhs_k, four rows of rhs per pass over `out` (one load and store
            // of each output per four multiply-adds, in k's order): streams rhs in order, `out`
            // stays in the L1 cache. (Blocks of one row held in registers over all k, reading
            // rhs down its columns, measured 1.1-1.4x slower.)
            let row = |kk: usize| &rhs.data[kk * rhs.row..][..n];
            let eights = k - k % 8;
            for kk in (0..eights).step_by(8) {
                let a: [f32; 8] = std::array::from_fn(|d| lhs.at(i, kk + d));
                let (r0, r1, r2, r3) = (row(kk), row(kk + 1), row(kk + 2), row(kk + 3));
                let (r4, r5, r6, r7) = (row(kk + 4), row(kk + 5), row(kk + 6), row(kk + 7));
                for j in 0..n {
                    let o = a[0].mul_add(r0[j], out[j]);
                    let o = a[1].mul_add(r1[j], o);
                    let o = a[2].mul_add(r2[j], o);
                    let o = a[3].mul_add(r3[j], o);
                    let o = a[4].mul_add(r4[j], o);
                    let o = a[5].mul_add(r5[j], o);
                    let o = a[6].mul_add(r6[j], o);
                    out[j] = a[7].mul_add(r7[j], o);
                }
            }
            let quads = k - k % 4;
            for kk in (eights..quads).step_by(4) {
                let (a0, a1, a2, a3) = (
                    lhs.at(i, kk),
                    lhs.at(i, kk + 1),
                    lhs.at(i, kk + 2),
                    lhs.at(i, kk + 3),
                );
                let (r0, r1, r2, r3) = (row(kk), row(kk + 1), row(kk + 2), row(kk + 3));
                for j in 0..n {
                    let o = a0.mul_add(r0[j], out[j]);
                    let o = a1.mul_add(r1[j], o);
                    let o = a2.mul_add(r2[j], o);
                    out[j] = a3.mul_add(r3[j], o);
                }
            }
            for kk in quads..k {
                let (a, row) = (lhs.at(i, kk), row(kk));
                for (o, r) in out.iter_mut().zip(row) {
                    *o = a.mul_add(*r, *o);
                }
            }
        } else {
            // out_j += a_i . rhs column j (a row of the matrix rhs transposes), four columns at
            // a time: `dot` is symmetric to the bit (each product and sum is), so `dots` of
            // the four columns against the row gives each column's `dot`.
            let a = &lhs.data[i * lhs.row..][..k];
            let column = |j: usize| &rhs.data[j * rhs.col..][..k];
            let fours = n - n % 4;
            for j in (0..fours).step_by(4) {
                let d = dots([column(j), column(j + 1), column(j + 2), column(j + 3)], a);
                for (o, d) in out[j..j + 4].iter_mut().zip(d) {
                    *o += d;
                }
            }
            for (j, o) in out.iter_mut().enumerate().skip(fours) {
                *o += dot(a, column(j));
            }
        }
    }
}

/// Rows `i..i + ROWS` of a product whose right operand is row-major: [`COLUMNS`] outputs of
/// each row held in registers over every k, each read of rhs serving the four rows.
#[inline(always)]
fn rows_block(
    (dst, stride): (&mut [f32], usize),
    i: usize,
    (n, k): (usize, usize),
    lhs: Operand,
    rhs: Operand,
) {
    let blocked = n - n % COLUMNS;
    for j in (0..blocked).step_by(COLUMNS) {
        let load = |row: usize| -> [f32; COLUMNS] {
            dst[(i + row) * stride + j..][..COLUMNS].try_into().unwrap()
        };
        let (mut o0, mut o1, mut o2, mut o3) = (load(0), load(1), load(2), load(3));
        for kk in 0..k {
            let r: &[f32; COLUMNS] = rhs.data[kk * rhs.row + j..][..COLUMNS].try_into().unwrap();
            let (a0, a1, a2, a3) = (
                lhs.at(i, kk),
                lhs.at(i + 1, kk),
                lhs.at(i + 2, kk),
                lhs.at(i + 3, kk),
            );
            for c in 0..COLUMNS {
                o0[c] = a0.mul_add(r[c], o0[c]);
                o1[c] = a1.mul_add(r[c], o1[c]);
                o2[c] = a2.mul_add(r[c], o2[c]);
                o3[c] = a3.mul_add(r[c], o3[c]);
            }
        }
        for (row, o) in [o0, o1, o2, o3].iter().enumerate() {
            dst[(i + row) * stride + j..][..COLUMNS].copy_from_slice(o);
        }
    }
    // The columns left over, one row at a time.
    for row in i..i + ROWS {
        let out = &mut dst[row * stride + blocked..][..n - blocked];
        for kk in 0..k {
            let (a, r) = (
                lhs.at(row, kk),
                &rhs.data[kk * rhs.row + blocked..][..n - blocked],
            );
            for (o, r) in out.iter_mut().zip(r) {
                *o = a.mul_add(*r, *o);
            }
        }
    }
}

/// Rows `i..i + ROWS` of a product whose right operand is a transpose: each column's read
/// serving the four rows' dot products ([`dots`]).
#[inline(always)]
fn dots_block(
    (dst, stride): (&mut [f32], usize),
    i: usize,
    (n, k): (usize, usize),
    lhs: Operand,
    rhs: Operand,
) {
    let row = |r: usize| &lhs.data[(i + r) * lhs.row..][..k];
    let rows = [row(0), row(1), row(2), row(3)];
    for j in 0..n {
        let d = dots(rows, &rhs.data[j * rhs.col..][..k]);
        for (r, d) in d.into_iter().enumerate() {
            dst[(i + r) * stride + j] += d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::run_at;
    use crate::kernels::testing::{assert_close, assert_same_bits, spread};
    use crate::machine::SimdLevel;

    /// Each output as one chain of multiply-adds in k's order (rows of rhs), or one `dot` (rhs
    /// transposed), one at a time: what `small_matmul` computes, blocks of rows or not. The
    /// blocks must keep these bits (records are reproduced bit for bit across versions).
    fn one_output_at_a_time(
        dst: &mut [f32],
        (m, n, k): (usize, usize, usize),
        lhs: Operand,
        rhs: Operand,
        accumulate: bool,
    ) {
        for i in 0..m {
            for j in 0..n {
                let o = &mut dst[i * n + j];
                let start = if accumulate { *o } else { 0.0 };
                *o = if rhs.col == 1 {
                    (0..k).fold(start, |acc, kk| lhs.at(i, kk).mul_add(rhs.at(kk, j), acc))
                } else {
                    start + dot(&lhs.data[i * lhs.row..][..k], &rhs.data[j * rhs.col..][..k])
                };
            }
        }
    }

    /// The plain loops compute gemm's products (both layouts of the right operand, with and
    /// without accumulation, rows of one and several, with and without whole blocks of rows
    /// and columns), give the bits of one output at a time, and every SIMD level this CPU runs
    /// gives the portable build's bits.
    #[test]
    fn small_matmul_equals_gemm_and_keeps_its_bits() {
        for ((k, n), m) in [(37, 45), (5, 2 * COLUMNS + 3)]
            .into_iter()
            .flat_map(|sizes| [1, 3, ROWS, 2 * ROWS + 1].map(|m| (sizes, m)))
        {
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
                    let mut one_at_a_time = start.clone();
                    run_at(crate::machine::simd_level(), || {
                        one_output_at_a_time(&mut one_at_a_time, (m, n, k), lhs, rhs, accumulate)
                    });
                    let sizes = format!("{m} x {n} x {k}");
                    assert_same_bits(&portable, &one_at_a_time, &sizes);
                    let mut reference = start.clone();
                    matmul(
                        (&mut reference, n),
                        (m, n, k),
                        lhs,
                        rhs,
                        1.0,
                        accumulate,
                        // gemm's AVX2 kernels on every machine: the reference this tolerance
                        // was set against, AVX-512 or not.
                        Products::Avx2,
                    );
                    assert_close(&portable, &reference, 1e-6, "small_matmul against gemm");
                    assert!(accumulate || portable != start);
                }
            }
        }
    }

    /// [`Products::Avx2`] is gemm's own call with its AVX2 kernels: where gemm picks those
    /// itself (a CPU without AVX-512, like most CI machines), the same bits as
    /// [`Products::Widest`], on every path gemm's driver takes: an inner size of 1 or 2, one
    /// output row or column (gemv), E1's and E2's shapes, an inner size past one block of 512,
    /// gemm's threads, a destination of one column with and without a row stride, transposed
    /// operands, accumulation and scaling. On an AVX-512 CPU the two kinds of kernels sum in
    /// other orders: there both are checked against a sum in f64 only, and
    /// `tests/vector_width.rs` checks E1's bits.
    #[test]
    fn avx2_products_are_gemms_own_call_with_its_avx2_kernels() {
        let sizes = [
            (3, 5, 1),
            (7, 9, 2),
            (1, 600, 150),
            (5, 600, 50),
            (600, 1, 150),
            (80, 80, 16),
            (80, 16, 80),
            (33, 47, 700),
            (200, 190, 200),
        ];
        let same_kernels = crate::machine::simd_level() != SimdLevel::Avx512;
        let mut checked = 0;
        for (m, n, k) in sizes {
            let a = spread(m * k, 7, 0.02);
            let b = spread(k * n, 11, 0.01);
            let dst_strides = if n == 1 { vec![1, 3] } else { vec![n] };
            for (dst_stride, lhs_t, rhs_t, accumulate) in dst_strides.into_iter().flat_map(|d| {
                [false, true].into_iter().flat_map(move |l| {
                    [false, true]
                        .into_iter()
                        .flat_map(move |r| [false, true].map(|acc| (d, l, r, acc)))
                })
            }) {
                let lhs = if lhs_t {
                    Operand::transposed(&a, m)
                } else {
                    Operand::rows(&a, k)
                };
                let rhs = if rhs_t {
                    Operand::transposed(&b, k)
                } else {
                    Operand::rows(&b, n)
                };
                let start = spread(m * dst_stride, 5, 0.03);
                let threads = if m * n * k > 192 * 192 * 192 {
                    gemm::Parallelism::Rayon(0)
                } else {
                    gemm::Parallelism::None
                };
                let product = |products| {
                    let mut out = start.clone();
                    let call = (0.5, accumulate);
                    matmul_on(
                        (&mut out, dst_stride),
                        (m, n, k),
                        lhs,
                        rhs,
                        call,
                        (threads, products),
                    );
                    out
                };
                let (widest, avx2) = (product(Products::Widest), product(Products::Avx2));
                let what = format!(
                    "{m} x {n} x {k}, destination stride {dst_stride}, transposed {lhs_t}/{rhs_t}, \
                     accumulating {accumulate}"
                );
                let mut exact = start.clone();
                for i in 0..m {
                    for j in 0..n {
                        let sum: f64 = (0..k)
                            .map(|p| lhs.at(i, p) as f64 * rhs.at(p, j) as f64)
                            .sum();
                        let at = i * dst_stride + j;
                        let before = if accumulate { exact[at] as f64 } else { 0.0 };
                        exact[at] = (before + 0.5 * sum) as f32;
                    }
                }
                assert_close(&avx2, &exact, 1e-5, &format!("{what}: AVX2 kernels"));
                assert_close(&widest, &exact, 1e-5, &format!("{what}: widest kernels"));
                if same_kernels {
                    assert_same_bits(&avx2, &widest, &what);
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 80);
        // And the AVX2 choice ran gemm's driver itself, not gemm's own call as a fallback,
        // wherever the CPU runs those kernels.
        if crate::machine::simd_level() != SimdLevel::Portable {
            let (a, identity) = ([1.0f32, 2.0, 3.0, 4.0], [1.0f32, 0.0, 0.0, 1.0]);
            let mut out = [0.0f32; 4];
            // SAFETY: 2 x 2 row-major operands and destination, each inside its array.
            let ran = unsafe {
                gemm_avx2(
                    (2, 2, 2),
                    (out.as_mut_ptr(), 2, false),
                    (a.as_ptr(), 1, 2),
                    (identity.as_ptr(), 1, 2),
                    (0.0, 1.0),
                    gemm::Parallelism::None,
                )
            };
            assert!(
                ran,
                "gemm's AVX2 kernels did not run on a CPU with AVX2 and FMA"
            );
            assert_eq!(out, a);
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
                Products::Widest,
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
                Products::Widest,
            )
        });
        assert!(overlap.is_err(), "overlapping destination rows must panic");
    }

    /// A stride past `isize::MAX` that `fits` does not look at (a one-row operand's row
    /// stride, or every operand stride when k = 0) is refused, not wrapped to a negative one.
    #[test]
    fn a_stride_past_isize_max_is_refused() {
        let data = [1.0f32; 8];
        let huge = isize::MAX as usize + 1;
        let one_row = std::panic::catch_unwind(|| {
            let mut dst = [0.0f32; 2];
            matmul(
                (&mut dst, 2),
                (1, 2, 2),
                Operand::rows(&data, huge),
                Operand::rows(&data, 2),
                1.0,
                false,
                Products::Widest,
            )
        });
        let message = *one_row.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("does not fit gemm's isize"), "{message}");
        let empty_inner = std::panic::catch_unwind(|| {
            let mut dst = [0.0f32; 4];
            matmul(
                (&mut dst, 2),
                (2, 2, 0),
                Operand::rows(&data, 1),
                Operand::strided(&data, huge, 1),
                1.0,
                false,
                Products::Widest,
            )
        });
        let message = *empty_inner.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("does not fit gemm's isize"), "{message}");
        assert_eq!(signed_stride(isize::MAX as usize), isize::MAX);
    }
}
