//! E1's attention decoder and its E4 variants (score functions, hard attention), stacked over
//! repeats like the rest of E1's models (see [`super::stacked`]).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::tanh;
use rand::rngs::StdRng;

mod steps;

pub use steps::{energy, hard_attention};

use super::stacked::{concat_columns, stacked_const, stacked_param};
use crate::config::{DecoderInit, Score};
use crate::kernels::decoder::{DecoderInputs, attention_decoding};
use crate::kernels::product::matmul;
use crate::models::ECHO_PRODUCTS;
use crate::models::init::{glorot_uniform, orthogonal};

/// The decoder's switches: its score function and soft or hard attention (E4), and how its
/// kernels are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecoderVariant {
    pub score: Score,
    /// `Some(temperature)` for hard attention.
    pub hard: Option<f64>,
    pub init: DecoderInit,
}

impl Default for DecoderVariant {
    /// E1's decoder: additive, soft.
    fn default() -> Self {
        Self {
            score: Score::Additive,
            hard: None,
            init: DecoderInit::Attnx,
        }
    }
}

/// The attention decoder of E1 (after the Keras `AttentionDecoder` layer the article uses):
///
/// ```text
/// e_tj = v_a . tanh(s_{t-1} W_a + h_j U_a + b_a)    a_t = softmax_j(e_t)    c_t = sum_j a_tj h_j
/// r_t  = sigmoid(y_{t-1} W_r + s_{t-1} U_r + c_t C_r + b_r)
/// z_t  = sigmoid(y_{t-1} W_z + s_{t-1} U_z + c_t C_z + b_z)
/// p_t  = tanh   (y_{t-1} W_p + (r_t * s_{t-1}) U_p + c_t C_p + b_p)
/// s_t  = (1 - z_t) * s_{t-1} + z_t * p_t
/// y_t  = softmax(y_{t-1} W_o + s_{t-1} U_o + c_t C_o + b_o)
/// ```
///
/// with `y_0 = 0` and `s_0 = tanh(h_1 W_s)`; the decoder feeds back its own softmax output
/// (no teacher forcing). Kernels that multiply the same vector are fused so that a step costs
/// few ops (at batch size 1 the op count, not the arithmetic, sets the speed, and each weight
/// tensor costs Adam a dozen ops per step): `[y; c]` multiplies `[r | z | p | o]` blocks, `s`
/// multiplies `[r | z | a | o]`, and the encoder states multiply `[U_a | W_s]`.
///
/// E4's variants change only the score `e_tj` (see [`energy`]) and how `a_t` is drawn from it;
/// the parameters a variant does not use are not created (`dot` and `cosine` have no `W_a`,
/// `U_a`, `b_a`, `v_a`; `general`'s `W_a` is its bilinear `W`), and the ones it shares with E1
/// are drawn in E1's order, so that the additive decoder is exactly E1's.
///
/// Initialisation ([`DecoderInit`]), biases zero either way. attnx's: every kernel
/// glorot-uniform on its own shape, except the ones applied to the recurrent state `s` (`U_r,
/// U_z, U_p, U_o`), which are orthogonal (the split Keras' own recurrent layers use). The
/// article's layer: glorot-uniform `V_a`, `W_a`, `U_a`, orthogonal everything else (`W_s` and
/// the `C_*` and `W_*` kernels too), and `V_a`'s limit from Keras 2's fan of a vector.
#[derive(Module, Debug)]
pub struct AttentionDecoder {
    /// `[U_a | W_s]` (additive) or `W_s`, `[R, H, 2U]` or `[R, H, U]`.
    from_encoder: Param<Tensor<3>>,
    /// `b_a`, `[R, 1, U]` (additive only).
    key_bias: Option<Param<Tensor<3>>>,
    /// `v_a` as a column, `[R, U, 1]` (additive only).
    score: Option<Param<Tensor<3>>>,
    /// `[U_r | U_z | W_a | U_o]`, `[R, U, 3U + V]`; `W_a` is `[U, H]` for `general` and absent
    /// for `dot` and `cosine`.
    from_state: Param<Tensor<3>>,
    /// `[W_r | W_z | W_p | W_o]` over `[C_r | C_z | C_p | C_o]`, `[R, V + H, 3U + V]`: the
    /// kernels of the previous output `y` and of the context `c`.
    from_input: Param<Tensor<3>>,
    /// `[b_r | b_z | b_p | b_o]`, `[R, 1, 3U + V]`.
    bias: Param<Tensor<3>>,
    /// `U_p`, `[R, U, U]`.
    proposal: Param<Tensor<3>>,
    /// The cosine score's learned scale `g`, `[R, 1, 1]`.
    cosine_scale: Option<Param<Tensor<3>>>,
    #[module(skip)]
    pub(super) variant: DecoderVariant,
}

/// The cosine score's initial scale: cosines lie in [-1, 1], so unscaled they would leave the
/// softmax nearly uniform (at most e^2 between two positions); 10 lets one position dominate
/// from the start, and training adjusts it.
const COSINE_SCALE_INIT: f32 = 10.0;

impl AttentionDecoder {
    pub fn new(
        rngs: &mut [StdRng],
        encoded: usize,
        units: usize,
        outputs: usize,
        variant: DecoderVariant,
        device: &Device,
    ) -> Self {
        let (h, u, v) = (encoded, units, outputs);
        let additive = variant.score == Score::Additive;
        let query = query_width(variant.score, h, u);
        let wide = 3 * u + v;
        let glorot = |a, b| move |rng: &mut StdRng| glorot_uniform(rng, a, b);
        // The article's layer draws every kernel but the score's orthogonal.
        let article = variant.init == DecoderInit::Article;
        let other = move |rng: &mut StdRng, a, b| {
            if article {
                orthogonal(rng, a, b)
            } else {
                glorot_uniform(rng, a, b)
            }
        };
        let repeats = rngs.len();
        Self {
            from_encoder: stacked_param(
                rngs,
                [h, if additive { 2 * u } else { u }],
                device,
                |rng| {
                    let ws = other(rng, h, u);
                    if !additive {
                        return ws;
                    }
                    let ua = glorot(h, u)(rng);
                    concat_columns(h, &[(u, ua), (u, ws)])
                },
            ),
            key_bias: additive.then(|| stacked_const(repeats, &vec![0.0; u], [1, u], device)),
            score: additive.then(|| {
                stacked_param(rngs, [u, 1], device, |rng| {
                    // Keras' glorot on a vector of `u` units: fan_in = fan_out = u in Keras 3,
                    // sqrt(u) in Keras 2 (`_compute_fans` of a shape that is not 2- to 5-D).
                    let fan = if article { (u as f64).sqrt() } else { u as f64 };
                    crate::models::init::uniform(rng, u, (6.0 / (2.0 * fan)).sqrt() as f32)
                })
            }),
            from_state: stacked_param(rngs, [u, 2 * u + query + v], device, |rng| {
                let ur = orthogonal(rng, u, u);
                let uz = orthogonal(rng, u, u);
                let wa = (query > 0).then(|| glorot_uniform(rng, u, query));
                let uo = orthogonal(rng, u, v);
                let mut blocks = vec![(u, ur), (u, uz)];
                blocks.extend(wa.map(|wa| (query, wa)));
                blocks.push((v, uo));
                concat_columns(u, &blocks)
            }),
            from_input: stacked_param(rngs, [v + h, wide], device, |rng| {
                // Rows: y's kernels, then c's (a vertical concatenation is an append).
                let mut kernel = Vec::with_capacity((v + h) * wide);
                for rows in [v, h] {
                    let blocks: Vec<_> = [u, u, u, v]
                        .into_iter()
                        .map(|cols| (cols, other(rng, rows, cols)))
                        .collect();
                    kernel.extend(concat_columns(rows, &blocks));
                }
                kernel
            }),
            bias: stacked_const(repeats, &vec![0.0; wide], [1, wide], device),
            proposal: stacked_param(rngs, [u, u], device, |rng| orthogonal(rng, u, u)),
            cosine_scale: (variant.score == Score::Cosine)
                .then(|| stacked_const(repeats, &[COSINE_SCALE_INIT], [1, 1], device)),
            variant,
        }
    }

    /// Decodes `T` steps from encoder states `[R, B, T, H]`. Returns the logits `[R, B, T, V]`
    /// (their softmax is `y_t`) and the attention weights `[R, B, T, T]` (step x position).
    ///
    /// Hard attention takes one position per step: with `gumbel` (standard Gumbel noise
    /// `[R, B, T, T]`, given in training) the straight-through Gumbel-softmax sample (forward:
    /// the one-hot argmax of `(e + g) / temperature`; backward: the gradient of its softmax);
    /// without it, the one-hot argmax of `e`. Soft attention ignores `gumbel`.
    ///
    /// On the CPU backends the whole decoding is one fused op ([`attention_decoding`]); the
    /// GPU runs burn's ops step by step ([`Decoding::run`], the op's reference).
    pub fn forward(&self, states: Tensor<4>, gumbel: Option<Tensor<4>>) -> (Tensor<4>, Tensor<4>) {
        if crate::kernels::on_cpu(&states.device()) {
            return self.forward_fused(states, gumbel);
        }
        let decoded = self.decoding(states, gumbel).run();
        (
            Tensor::stack(decoded.logits, 2),
            Tensor::stack(decoded.weights, 2),
        )
    }

    /// [`forward`](Self::forward) as one op (CPU backends).
    fn forward_fused(
        &self,
        states: Tensor<4>,
        gumbel: Option<Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let t = states.dims()[2];
        let DecoderVariant { score, hard, .. } = self.variant;
        let decoding = self.decoding(states, gumbel);
        let v = decoding.widths[2];
        let out = attention_decoding(
            DecoderInputs {
                keys: (score == Score::Additive).then_some(decoding.keys),
                first: decoding.first,
                score: decoding.score.or(decoding.scale),
                from_state: decoding.from_state,
                from_input: decoding.from_input,
                bias: decoding.bias,
                proposal: decoding.proposal,
                noise: hard.and(decoding.gumbel),
                states: decoding.states,
            },
            crate::kernels::decoder::Decoding {
                score,
                hard: hard.map(|t| t as f32),
            },
        );
        (out.clone().slice_dim(3, 0..v), out.slice_dim(3, v..v + t))
    }

    /// The decoding of encoder states `[R, B, T, H]`, its kernels applied as they are.
    fn decoding(&self, states: Tensor<4>, gumbel: Option<Tensor<4>>) -> Decoding {
        let [r, b, t, h] = states.dims();
        let u = self.proposal.dims()[1];
        let q = query_width(self.variant.score, h, u);
        let v = self.from_state.dims()[2] - 2 * u - q;

        // h_j U_a (+ b_a) for every position, and h_1 W_s, from one matmul.
        let width = self.from_encoder.dims()[2];
        let projected = matmul(
            states.clone().reshape([r, b * t, h]),
            self.from_encoder.val(),
            ECHO_PRODUCTS,
        )
        .reshape([r, b, t, width]);
        let keys = match &self.key_bias {
            Some(bias) => projected.clone().slice_dim(3, 0..u) + bias.val().unsqueeze_dim::<4>(1),
            None => states.clone(),
        };
        let first = projected
            .slice_dim(2, 0..1)
            .slice_dim(3, width - u..width)
            .reshape([r, b, u]);
        Decoding {
            states,
            keys,
            first: tanh(first),
            score: self.score.as_ref().map(|p| p.val()),
            scale: self.cosine_scale.as_ref().map(|p| p.val()),
            bias: self.bias.val(),
            gumbel,
            from_state: self.from_state.val(),
            from_input: self.from_input.val(),
            proposal: self.proposal.val(),
            variant: self.variant,
            widths: [u, q, v],
        }
    }
}

/// What the decoder's loop reads: the encoder's states and keys, the first state, the
/// weights, and the noise (the fused op's inputs too).
struct Decoding {
    states: Tensor<4>,
    keys: Tensor<4>,
    /// `s_0`.
    first: Tensor<3>,
    score: Option<Tensor<3>>,
    scale: Option<Tensor<3>>,
    bias: Tensor<3>,
    gumbel: Option<Tensor<4>>,
    /// Multiplies `s_{t-1}`.
    from_state: Tensor<3>,
    /// Multiplies `[y_{t-1}; c_t]`.
    from_input: Tensor<3>,
    /// Multiplies `r_t * s_{t-1}`.
    proposal: Tensor<3>,
    variant: DecoderVariant,
    /// `U`, `Q`, `V`.
    widths: [usize; 3],
}

/// The decoder's outputs per step.
struct Decoded {
    logits: Vec<Tensor<3>>,
    weights: Vec<Tensor<3>>,
}

/// Columns of the query projection `W_a` inside `from_state`.
fn query_width(score: Score, encoded: usize, units: usize) -> usize {
    match score {
        Score::Additive => units,
        Score::General => encoded,
        Score::Dot | Score::Cosine => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GateActivation;
    use crate::kernels::testing::assert_close;
    use crate::kernels::testing::values;
    use crate::models::echo::AttentionModel;
    use crate::models::testing::{assert_gradients_close, gradients_of, input, rngs};

    /// A hand-computed case: with all-zero weights every score is equal, so attention is
    /// uniform, and the first output is the softmax of a zero vector.
    #[test]
    fn zero_weights_give_uniform_attention() {
        let device = Device::flex();
        let model = AttentionModel::new(
            &mut rngs(1),
            4,
            3,
            DecoderVariant::default(),
            GateActivation::Sigmoid,
            &device,
        );
        let zero = |p: Param<Tensor<3>>| Param::from_tensor(p.val().zeros_like());
        let decoder = AttentionDecoder {
            score: model.decoder.score.clone().map(zero),
            ..model.decoder
        };
        let states = input(1, 1, 4, 3, &device);
        let (logits, weights) = decoder.forward(states, None);
        let w = weights.into_data().try_into_vec::<f32>().unwrap();
        assert!(w.iter().all(|x| (x - 0.25).abs() < 1e-6), "{w:?}");
        assert_eq!(logits.dims(), [1, 1, 4, 4]);
    }

    /// Every parameter of a decoder (the variant's own ones included).
    fn kernels(decoder: &AttentionDecoder) -> Vec<&Param<Tensor<3>>> {
        let mut kernels = vec![
            &decoder.from_state,
            &decoder.from_input,
            &decoder.proposal,
            &decoder.from_encoder,
            &decoder.bias,
        ];
        kernels.extend(
            [&decoder.score, &decoder.key_bias, &decoder.cosine_scale]
                .into_iter()
                .flatten(),
        );
        kernels
    }

    /// Every decoder variant as one fused op gives burn's composed ops' logits, attention
    /// weights and gradients (of every kernel and of the encoder states), on both CPU backends,
    /// for one sequence per repeat (training, with Gumbel noise for hard attention) and several
    /// (evaluation).
    #[test]
    #[allow(deprecated)] // burn-ndarray, deprecated upstream
    fn fused_decoder_equals_burns_composed_ops() {
        let variants = [
            (Score::Additive, None),
            (Score::Dot, None),
            (Score::General, None),
            (Score::Cosine, None),
            (Score::Additive, Some(0.5)),
            (Score::General, Some(2.0)),
        ];
        for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
            for (score, hard) in variants {
                for (r, b) in [(2, 1), (1, 3)] {
                    let variant = DecoderVariant {
                        score,
                        hard,
                        init: DecoderInit::Attnx,
                    };
                    let what = format!("fused {variant:?} on {r}x{b}");
                    let model = AttentionModel::new(
                        &mut rngs(r),
                        7,
                        8,
                        variant,
                        GateActivation::Sigmoid,
                        &device,
                    );
                    let decoder = model.decoder;
                    let states = (input(r, b, 5, 8, &device) - 0.5).require_grad();
                    // Training draws noise for one sequence per repeat; evaluation none.
                    let gumbel =
                        (hard.is_some() && b == 1).then(|| input(r, b, 5, 5, &device) * 4.0 - 2.0);
                    let on_logits = input(r, b, 5, 7, &device) - 0.4;
                    let on_weights = input(r, b, 5, 5, &device) * 3.0;
                    let run = |fused: bool| {
                        let (logits, weights) = if fused {
                            decoder.forward(states.clone(), gumbel.clone())
                        } else {
                            let decoded = decoder.decoding(states.clone(), gumbel.clone()).run();
                            (
                                Tensor::stack(decoded.logits, 2),
                                Tensor::stack(decoded.weights, 2),
                            )
                        };
                        let loss = (logits.clone() * on_logits.clone()).sum()
                            + (weights.clone() * on_weights.clone()).sum();
                        let grads = loss.backward();
                        let mut kernels = kernels(&decoder);
                        if hard.is_some() && gumbel.is_none() {
                            // The argmax passes no gradient to the score's own parameters.
                            kernels.truncate(5);
                        }
                        let mut outputs = values(logits);
                        outputs.extend(values(weights));
                        (outputs, gradients_of(&kernels, &states, &grads))
                    };
                    let (outputs, gradients) = run(true);
                    let (outputs_ref, gradients_ref) = run(false);
                    assert_close(&outputs, &outputs_ref, 2e-6, &format!("{what}: outputs"));
                    assert_gradients_close(&what, &gradients, &gradients_ref);
                }
            }
        }
    }

    fn tensor<const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::flex())
    }

    /// Each score function on a hand-computed example: one query, three keys of width 2.
    #[test]
    fn score_functions_match_hand_computed_values() {
        let keys = || tensor(&[1.0, 0.0, 0.0, 2.0, 3.0, 4.0], [1, 1, 3, 2]);
        let query = || tensor(&[1.0, 2.0], [1, 1, 2]);
        // dot: [1, 4, 11].
        let e = energy(Score::Dot, query(), keys(), None, None);
        assert_close(&values(e), &[1.0, 4.0, 11.0], 1e-5, "score");
        // general: the query arrives as s W; with W = [[0, 1], [1, 0]], s W = [2, 1]: [2, 2, 10].
        let w = tensor(&[0.0, 1.0, 1.0, 0.0], [1, 2, 2]);
        let projected = query().matmul(w);
        let e = energy(Score::General, projected, keys(), None, None);
        assert_close(&values(e), &[2.0, 2.0, 10.0], 1e-5, "score");
        // cosine with scale 2: 2 * [1/sqrt5, 4/(2 sqrt5), 11/(5 sqrt5)].
        let scale = tensor(&[2.0], [1, 1, 1]);
        let e = energy(Score::Cosine, query(), keys(), None, Some(scale));
        let r5 = 5f32.sqrt();
        assert_close(
            &values(e),
            &[2.0 / r5, 4.0 / r5, 22.0 / (5.0 * r5)],
            1e-5,
            "score",
        );
        // additive with v = [1, -1]: tanh(q + k_j) . v.
        let v = tensor(&[1.0, -1.0], [1, 2, 1]);
        let e = energy(Score::Additive, query(), keys(), Some(v), None);
        let want: Vec<f32> = [(2.0f32, 2.0f32), (1.0, 4.0), (4.0, 6.0)]
            .iter()
            .map(|(a, b)| a.tanh() - b.tanh())
            .collect();
        assert_close(&values(e), &want, 1e-5, "score");
    }

    /// Hard attention picks the argmax at evaluation; in training it picks the argmax of the
    /// noisy scores, yet passes the softmax's gradient back to the scores.
    #[test]
    fn hard_attention_is_one_hot_with_the_softmax_gradient() {
        let e = tensor(&[0.5, 2.0, 1.0], [1, 1, 3]);
        assert_eq!(
            values(hard_attention(e.clone(), None, 1.0)),
            [0.0, 1.0, 0.0]
        );
        // Noise that moves the maximum to position 0.
        let noise = tensor(&[3.0, 0.0, 0.0], [1, 1, 3]);
        assert_eq!(
            values(hard_attention(e.clone(), Some(noise.clone()), 1.0)),
            [1.0, 0.0, 0.0]
        );

        let device = Device::flex().autodiff();
        let e = Tensor::<3>::from_data(TensorData::new(vec![0.5f32, 2.0, 1.0], [1, 1, 3]), &device)
            .require_grad();
        let noise = noise.to_device(&device);
        let weights = hard_attention(e.clone(), Some(noise.clone()), 0.5);
        let picked = tensor(&[1.0, 10.0, 100.0], [1, 1, 3]).to_device(&device);
        let grads = (weights * picked.clone()).sum().backward();
        let grad = values(e.grad(&grads).unwrap());
        // d/de of sum(softmax((e + g) / T) * p) = softmax * (p - softmax . p) / T.
        let soft = values(burn::tensor::activation::softmax(
            (e.clone().detach() + noise) / 0.5,
            2,
        ));
        let p = [1.0f32, 10.0, 100.0];
        let mean: f32 = soft.iter().zip(&p).map(|(s, p)| s * p).sum();
        let want: Vec<f32> = soft
            .iter()
            .zip(&p)
            .map(|(s, p)| s * (p - mean) / 0.5)
            .collect();
        assert_close(&grad, &want, 1e-5, "hard attention's gradient");
    }
}
