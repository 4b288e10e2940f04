//! The decoder step by step in burn's ops: the GPU's path, and the reference the fused CPU op
//! is tested against.

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};

use super::{Decoded, Decoding};
use crate::config::Score;
use crate::kernels::softmax::softmax_fused;

impl Decoding {
    /// The decoder's loop (kept in one piece: it is the article's decoder step, equation by
    /// equation, and reads best next to them).
    pub(super) fn run(&self) -> Decoded {
        let [r, b, t, h] = self.states.dims();
        let [u, q, v] = self.widths;
        let mut s = self.first.clone();
        let mut y = Tensor::<3>::zeros([r, b, v], &self.states.device());
        let mut decoded = Decoded {
            logits: Vec::with_capacity(t),
            weights: Vec::with_capacity(t),
        };
        for step in 0..t {
            let from_s = s.clone().matmul(self.from_state.clone()); // [R, B, 2U + Q + V]
            let block = |x: &Tensor<3>, k: usize| x.clone().slice_dim(2, k * u..(k + 1) * u);

            // Attention over the encoder positions.
            let query = if q > 0 {
                from_s.clone().slice_dim(2, 2 * u..2 * u + q)
            } else {
                s.clone()
            };
            let e = energy(
                self.variant.score,
                query,
                self.keys.clone(),
                self.score.clone(),
                self.scale.clone(),
            );
            let noise = self
                .gumbel
                .as_ref()
                .map(|g| g.clone().slice_dim(2, step..step + 1).reshape([r, b, t]));
            let a = match self.variant.hard {
                None => softmax_fused(e, 2),
                Some(temperature) => hard_attention(e, noise, temperature),
            }; // [R, B, T]
            let context = a
                .clone()
                .unsqueeze_dim::<4>(2)
                .matmul(self.states.clone())
                .reshape([r, b, h]); // [R, B, H]

            // Gates, candidate state and output.
            let yc = Tensor::cat(vec![y, context], 2);
            let from_yc = yc.matmul(self.from_input.clone()) + self.bias.clone(); // [R, B, 3U + V]
            let rz = sigmoid(
                from_yc.clone().slice_dim(2, 0..2 * u) + from_s.clone().slice_dim(2, 0..2 * u),
            );
            let reset = rz.clone().slice_dim(2, 0..u);
            let update = rz.slice_dim(2, u..2 * u);
            let reset_state = reset * s.clone();
            let proposal = tanh(block(&from_yc, 2) + reset_state.matmul(self.proposal.clone()));
            let out = from_yc.slice_dim(2, 3 * u..3 * u + v)
                + from_s.slice_dim(2, 2 * u + q..2 * u + q + v);

            y = softmax_fused(out.clone(), 2);
            s = s.clone() + update * (proposal - s);
            decoded.logits.push(out);
            decoded.weights.push(a);
        }
        decoded
    }
}

/// The scores `e_j` `[R, B, T]` of one decoder step, from its query `[R, B, Q]` and the keys
/// `[R, B, T, K]`:
///
/// - additive: `v . tanh(q + k_j)`, with `q = s W_a` and `k_j = h_j U_a + b_a` (`v`: `[R, U, 1]`);
/// - dot: `q . k_j` with `q = s`, `k_j = h_j`;
/// - general: `q . k_j` with `q = s W` (so `s W h_j`), `k_j = h_j`;
/// - cosine: `g (q . k_j) / (|q| |k_j|)` with `q = s`, `k_j = h_j` (`g`: `[R, 1, 1]`).
pub fn energy(
    score: Score,
    query: Tensor<3>,
    keys: Tensor<4>,
    v: Option<Tensor<3>>,
    scale: Option<Tensor<3>>,
) -> Tensor<3> {
    let [r, b, t, k] = keys.dims();
    let dot = |query: Tensor<3>, keys: Tensor<4>| {
        keys.matmul(query.unsqueeze_dim::<4>(3)).reshape([r, b, t])
    };
    match score {
        Score::Additive => tanh(keys + query.unsqueeze_dim::<4>(2))
            .reshape([r, b * t, k])
            .matmul(v.expect("the additive score has v_a"))
            .reshape([r, b, t]),
        Score::Dot | Score::General => dot(query, keys),
        Score::Cosine => {
            let key_norm = keys.clone().square().sum_dim(3).sqrt().reshape([r, b, t]);
            let query_norm = query.clone().square().sum_dim(2).sqrt(); // [R, B, 1]
            let cosine = dot(query, keys) / (key_norm * query_norm).clamp_min(1e-12);
            cosine * scale.expect("the cosine score has a scale")
        }
    }
}

/// One-hot weights `[R, B, T]` at the highest score: of `e` at evaluation (`noise` `None`), of
/// `(e + noise) / temperature` in training, where the gradient flows as if the weights were that
/// softmax (straight-through Gumbel-softmax).
pub fn hard_attention(e: Tensor<3>, noise: Option<Tensor<3>>, temperature: f64) -> Tensor<3> {
    let t = e.dims()[2];
    let one_hot = |x: Tensor<3>| x.argmax(2).squeeze_dim::<2>(2).one_hot::<3>(t).float();
    match noise {
        None => one_hot(e),
        Some(g) => {
            let soft = softmax_fused((e + g) / temperature, 2);
            let hard = one_hot(soft.clone());
            // Forward: `hard`; backward: the gradient of `soft`.
            hard - soft.clone().detach() + soft
        }
    }
}
