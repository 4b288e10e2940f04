//! Keras' weight initialisers (glorot-uniform, orthogonal, uniform), drawn from a repeat's own
//! generator as plain `Vec<f32>`s before they become tensors (see [`crate::rng`]).

use rand::RngExt;
use rand::rngs::StdRng;

/// Uniform in `[-limit, limit)`.
pub fn uniform(rng: &mut StdRng, len: usize, limit: f32) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * limit)
        .collect()
}

/// Keras `glorot_uniform` for a `[fan_in, fan_out]` kernel, row-major.
pub fn glorot_uniform(rng: &mut StdRng, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
    uniform(rng, fan_in * fan_out, limit)
}

/// Standard normal draws (Box-Muller), in f64 for the orthogonalisation below.
fn normal(rng: &mut StdRng, len: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len + 1);
    while out.len() < len {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        out.push(r * theta.cos());
        out.push(r * theta.sin());
    }
    out.truncate(len);
    out
}

/// Keras `orthogonal` (gain 1) for a `[rows, cols]` kernel, row-major: the Q factor of a
/// Gaussian matrix, so rows (if `rows <= cols`) or columns are orthonormal. Keras takes Q from
/// a QR decomposition with the signs of R's diagonal folded in; Gram-Schmidt yields exactly
/// that Q (its R has a positive diagonal).
pub fn orthogonal(rng: &mut StdRng, rows: usize, cols: usize) -> Vec<f32> {
    // Orthonormalise the `m` vectors of length `n` (m <= n), then lay them out.
    let (n, m) = (rows.max(cols), rows.min(cols));
    let mut vectors: Vec<Vec<f64>> = normal(rng, n * m).chunks(n).map(<[f64]>::to_vec).collect();
    for i in 0..m {
        let (done, rest) = vectors.split_at_mut(i);
        let v = &mut rest[0];
        for u in done.iter() {
            let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    }
    let mut out = vec![0.0f32; rows * cols];
    for (i, v) in vectors.iter().enumerate() {
        for (k, &x) in v.iter().enumerate() {
            // rows <= cols: vector i is row i; otherwise it is column i.
            let at = if rows <= cols {
                i * cols + k
            } else {
                k * cols + i
            };
            out[at] = x as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, rng};

    #[test]
    fn orthogonal_rows_are_orthonormal() {
        for (rows, cols) in [(4, 4), (3, 12), (12, 3)] {
            let w = orthogonal(&mut rng(1, Stream::Init), rows, cols);
            // Gram matrix of the smaller side must be the identity.
            let (m, get): (usize, Box<dyn Fn(usize, usize) -> f32>) = if rows <= cols {
                (rows, Box::new(|i, k| w[i * cols + k]))
            } else {
                (cols, Box::new(|i, k| w[k * cols + i]))
            };
            let n = rows.max(cols);
            for i in 0..m {
                for j in 0..m {
                    let dot: f32 = (0..n).map(|k| get(i, k) * get(j, k)).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (dot - want).abs() < 1e-5,
                        "{rows}x{cols}: <{i},{j}> = {dot}"
                    );
                }
            }
        }
    }

    #[test]
    fn glorot_respects_its_limit() {
        let w = glorot_uniform(&mut rng(2, Stream::Init), 50, 600);
        let limit = (6.0f32 / 650.0).sqrt();
        assert!(w.iter().all(|x| x.abs() <= limit));
        assert!(w.iter().any(|x| x.abs() > 0.9 * limit));
    }
}
