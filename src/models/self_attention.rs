//! The self-attention text classifiers of E2 (8 heads of 16, optional sinusoidal positions,
//! sigmoid output) and E3 (one head of 128, scale 1/8, softmax output), with E4's switches.
//!
//! ```text
//! ids [B, T] -> Embedding(num_words, D) [+ PE] -> Q = X Wq, K = X Wk, V = X Wv (no bias)
//!   -> per head softmax(Q K^T * scale [+ mask]) V -> heads concatenated [B, T, H*dh]
//!   [-> the next layer, if any] -> mean over T -> dropout -> Dense(out) -> sigmoid / softmax
//! ```
//!
//! E2/E3 have no projection after the heads and no padding mask. E4's switches: `mask_padding`
//! (padded keys get no weight, padded queries are left out of the mean), `window` (local
//! attention), `position: learned`, and `layers` (plain stacking, nothing in between).

use burn::module::Param;
use burn::nn::{Embedding, Linear, generate_sinusoids};
use burn::prelude::*;
use rand::rngs::StdRng;

use crate::config::{KernelInit, Position, SelfAttentionModel};
use crate::data::imdb::PAD;
use crate::kernels::attention::{Geometry, attention_heads, composed_attention};
use crate::kernels::product::matmul;
use crate::models::TEXT_PRODUCTS;
use crate::models::init::{glorot_uniform, uniform};
use crate::models::layers::{keras_embedding, output_head, output_layer};

/// Added to the score of a position that may not be attended to: its weight underflows to
/// exactly 0 after the softmax (a true -inf would give NaN for a row with no allowed position).
const MASKED: f32 = -1e9;

#[derive(Module, Debug)]
pub struct SelfAttentionClassifier {
    /// burn's embedding, Keras-initialised: uniform in [-0.05, 0.05].
    embedding: Embedding,
    /// The first layer's `[Wq | Wk | Wv]`, `[D, 3 * H * dh]` (E3's single `(3, D, D)` kernel,
    /// laid side by side).
    qkv: Param<Tensor<2>>,
    /// Further layers' `[Wq | Wk | Wv]`, `[H * dh, 3 * H * dh]` each (`layers` > 1).
    deeper: Vec<Param<Tensor<2>>>,
    /// A trained position embedding `[maxlen, D]` (`position: learned`).
    positions: Option<Param<Tensor<2>>>,
    /// burn's dense layer: glorot-uniform kernel, zero bias.
    output: Linear,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    head_dim: usize,
    #[module(skip)]
    scale: f64,
    #[module(skip)]
    sinusoidal: bool,
    #[module(skip)]
    mask_padding: bool,
    #[module(skip)]
    window: Option<usize>,
}

impl SelfAttentionClassifier {
    /// Builds the model of `config` (a `self_attention` model) for a vocabulary of `num_words`
    /// and reviews of `maxlen` tokens, drawing every weight from `rng`. The weights E2/E3 have
    /// are drawn first, in their order, so that E4's switches leave those models unchanged.
    pub fn new(
        config: &SelfAttentionModel,
        num_words: usize,
        maxlen: usize,
        classes: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        let SelfAttentionModel {
            embed,
            heads,
            head_dim,
            position,
            output,
            kernel_init,
            mask_padding,
            window,
            layers,
            ..
        } = *config;
        let width = heads * head_dim;
        let embedding = keras_embedding(rng, num_words, embed, device);
        let qkv_kernel = |rng: &mut StdRng, d_in: usize| {
            let blocks: Vec<_> = (0..3)
                .map(|_| {
                    let block = match kernel_init {
                        KernelInit::Glorot => glorot_uniform(rng, d_in, width),
                        KernelInit::Uniform { limit } => uniform(rng, d_in * width, limit as f32),
                    };
                    (width, block)
                })
                .collect();
            let kernel = crate::models::stacked::concat_columns(d_in, &blocks);
            Param::from_data(TensorData::new(kernel, [d_in, 3 * width]), device)
        };
        let qkv = qkv_kernel(rng, embed);
        let output = output_layer(rng, width, output, classes, device);
        let deeper = (1..layers).map(|_| qkv_kernel(rng, width)).collect();
        let positions = (position == Position::Learned).then(|| {
            Param::from_data(
                TensorData::new(uniform(rng, maxlen * embed, 0.05), [maxlen, embed]),
                device,
            )
        });
        Self {
            embedding,
            qkv,
            deeper,
            positions,
            output,
            heads,
            head_dim,
            scale: config.scale_or_default(),
            sinusoidal: position == Position::Sinusoidal,
            mask_padding,
            window,
        }
    }

    /// Width of the pooled vector the dropout mask applies to.
    pub fn pooled_width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Logits `[B, 1]` (sigmoid output) or `[B, 2]` (softmax output) for ids `[B, T]`.
    /// `keep_mask` (`[B, H*dh]`, already scaled by 1/keep) is the dropout mask; `None` at
    /// evaluation.
    pub fn forward(&self, ids: Tensor<2, Int>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        let tokens = self.embedding.forward(ids.clone());
        self.head(self.pooled(ids, tokens), keep_mask)
    }

    /// The embedding layer, `[num_words, D]`.
    pub fn embedding(&self) -> &Embedding {
        &self.embedding
    }

    /// The output layer on pooled vectors `[B, H*dh]`.
    pub fn head(&self, pooled: Tensor<2>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        output_head(&self.output, pooled, keep_mask)
    }

    /// The pooled vectors `[B, H*dh]` of ids `[B, T]` embedded as `tokens` `[B, T, D]`: each
    /// review's row depends on that review alone.
    pub fn pooled(&self, ids: Tensor<2, Int>, tokens: Tensor<3>) -> Tensor<2> {
        let (attended, _, keep) = self.attend(ids, tokens, false);
        match keep {
            // The mean over the review's own tokens (padding left out).
            Some(keep) => {
                let [b, t] = keep.dims();
                let counts = keep.clone().sum_dim(1); // [B, 1]
                (attended * keep.reshape([b, t, 1]))
                    .sum_dim(1)
                    .squeeze_dim::<2>(1)
                    / counts
            }
            None => attended.mean_dim(1).squeeze_dim::<2>(1), // [B, H*dh]
        }
    }

    /// The first layer's attention weights `[B, H, T, T]` (query position x key position):
    /// the layer that attends over the words themselves.
    pub fn attention(&self, ids: Tensor<2, Int>) -> Tensor<4> {
        let tokens = self.embedding.forward(ids.clone());
        self.attend(ids, tokens, true)
            .1
            .expect("the weights were asked for")
    }

    /// The last layer's heads concatenated `[B, T, H*dh]`, the first layer's attention weights
    /// (if asked for), and (with `mask_padding`) which positions hold tokens,
    /// `[B, T]` of 0/1.
    fn attend(
        &self,
        ids: Tensor<2, Int>,
        tokens: Tensor<3>,
        want_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>, Option<Tensor<2>>) {
        let [b, t] = ids.dims();
        let keep = self
            .mask_padding
            .then(|| ids.clone().equal_elem(PAD as i64).bool_not().float()); // [B, T]
        let mut x = tokens; // [B, T, D]
        let d = x.dims()[2];
        let device = x.device();
        if self.sinusoidal {
            let pe = generate_sinusoids(t, d, 10_000, &device);
            x = x + pe.unsqueeze_dim::<3>(0);
        }
        if let Some(positions) = &self.positions {
            x = x + positions.val().slice_dim(0, 0..t).unsqueeze_dim::<3>(0);
        }

        // What may not be attended to, as a score offset: keys outside the window, padded keys.
        let window = self
            .window
            .map(|r| window_offset(t, r, &device).reshape([1, 1, t, t]));
        let padding = keep
            .clone()
            .map(|keep| ((keep - 1.0) * -MASKED).reshape([b, 1, 1, t]));
        let offset = match (window, padding) {
            (Some(w), Some(p)) => Some(w + p),
            (w, p) => w.or(p),
        };

        let mut first_weights = None;
        for (layer, kernel) in std::iter::once(&self.qkv).chain(&self.deeper).enumerate() {
            let (out, layer_weights) =
                self.layer(x, kernel.val(), offset.clone(), want_weights && layer == 0);
            first_weights = first_weights.or(layer_weights.map(|w| match &keep {
                // A padded query's row is left out of everything downstream: make it zero, so
                // that every weight read out is on a token.
                Some(keep) => w * keep.clone().reshape([b, 1, t, 1]),
                None => w,
            }));
            x = out;
        }
        (x, first_weights, keep)
    }

    /// One attention layer: heads concatenated `[B, T, H*dh]`, and the weights `[B, H, T, T]`
    /// if asked for.
    fn layer(
        &self,
        x: Tensor<3>,
        kernel: Tensor<2>,
        offset: Option<Tensor<4>>,
        want_weights: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [b, t, d] = x.dims();
        let (h, dh) = (self.heads, self.head_dim);
        let qkv = matmul(x.reshape([b * t, d]), kernel, TEXT_PRODUCTS); // [B*T, 3*H*dh]
        let geometry = Geometry {
            batch: b,
            time: t,
            heads: h,
            head_dim: dh,
            scale: self.scale as f32,
            products: TEXT_PRODUCTS,
        };
        if offset.is_none() && !want_weights {
            // On the CPU the whole attention is one kernel with its own backward pass.
            return (attention_heads(qkv, geometry).reshape([b, t, h * dh]), None);
        }
        let (heads, weights) = composed_attention(qkv, geometry, offset);
        (heads.reshape([b, t, h * dh]), Some(weights))
    }
}

/// `[T, T]`: 0 where `|i - j| <= r`, [`MASKED`] elsewhere.
fn window_offset(t: usize, r: usize, device: &Device) -> Tensor<2> {
    let offsets: Vec<f32> = (0..t * t)
        .map(|n| {
            let (i, j) = (n / t, n % t);
            if i.abs_diff(j) <= r { 0.0 } else { MASKED }
        })
        .collect();
    Tensor::from_data(TensorData::new(offsets, [t, t]), device)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Output;
    use crate::rng::{Stream, rng};

    fn e3() -> SelfAttentionModel {
        SelfAttentionModel {
            embed: 128,
            heads: 1,
            head_dim: 128,
            position: Position::None,
            scale: Some(0.125),
            output: Output::Softmax,
            dropout: 0.5,
            kernel_init: KernelInit::Uniform { limit: 0.05 },
            mask_padding: false,
            window: None,
            layers: 1,
        }
    }

    /// E2's 8-head model with sinusoidal positions.
    pub(crate) fn e2() -> SelfAttentionModel {
        SelfAttentionModel {
            embed: 128,
            heads: 8,
            head_dim: 16,
            position: Position::Sinusoidal,
            scale: None,
            output: Output::Sigmoid,
            dropout: 0.5,
            kernel_init: KernelInit::Glorot,
            mask_padding: false,
            window: None,
            layers: 1,
        }
    }

    #[test]
    fn parameter_counts_match_the_articles() {
        let device = Device::flex();
        let model =
            SelfAttentionClassifier::new(&e3(), 20_000, 80, 2, &mut rng(0, Stream::Init), &device);
        assert_eq!(model.num_params(), 2_609_410, "E3, as the article counts");
        let model =
            SelfAttentionClassifier::new(&e2(), 20_000, 80, 2, &mut rng(0, Stream::Init), &device);
        // 20,000 x 128 embedding + 3 x 128 x 128 kernels + 128 + 1 output.
        assert_eq!(model.num_params(), 2_609_281);
        assert_eq!(model.scale, 0.25);
    }

    #[test]
    fn attention_is_a_distribution_over_key_positions() {
        let device = Device::flex();
        let config = SelfAttentionModel {
            embed: 8,
            heads: 2,
            head_dim: 4,
            position: Position::Sinusoidal,
            scale: None,
            output: Output::Sigmoid,
            dropout: 0.5,
            kernel_init: KernelInit::Glorot,
            mask_padding: false,
            window: None,
            layers: 1,
        };
        let model =
            SelfAttentionClassifier::new(&config, 50, 5, 2, &mut rng(1, Stream::Init), &device);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![0i64, 0, 1, 7, 9, 1, 3, 4, 5, 6], [2, 5]),
            &device,
        );
        let weights = model.attention(ids.clone());
        assert_eq!(weights.dims(), [2, 2, 5, 5]);
        let sums = weights
            .sum_dim(3)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        assert_eq!(model.forward(ids, None).dims(), [2, 1]);
    }

    /// The article's `PE(p)_{2i} = sin(p / 10000^{2i/128})`, `PE(p)_{2i+1} = cos(...)`, which
    /// burn's `generate_sinusoids` must produce for the model to be E2's.
    #[test]
    fn sinusoidal_positions_follow_the_article() {
        let device = Device::flex();
        let pe = generate_sinusoids(81, 128, 10_000, &device)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let at = |p: usize, k: usize| pe[p * 128 + k];
        for (p, k) in [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 2),
            (5, 3),
            (40, 64),
            (80, 126),
            (80, 127),
        ] {
            let i = k / 2;
            let angle = p as f64 / 10_000f64.powf(2.0 * i as f64 / 128.0);
            let want = if k % 2 == 0 { angle.sin() } else { angle.cos() };
            assert!(
                (f64::from(at(p, k)) - want).abs() < 1e-4,
                "PE({p})_{k} = {} != {want}",
                at(p, k)
            );
        }
        assert_eq!((at(0, 0), at(0, 1)), (0.0, 1.0));
    }

    /// With Q = K = 0 every score is 0: each position attends uniformly, so every output row is
    /// the mean of V's rows, and mean pooling returns that mean again.
    #[test]
    fn zero_queries_attend_uniformly() {
        let device = Device::flex();
        let config = SelfAttentionModel {
            embed: 4,
            heads: 1,
            head_dim: 4,
            position: Position::None,
            scale: None,
            output: Output::Softmax,
            dropout: 0.0,
            kernel_init: KernelInit::Glorot,
            mask_padding: false,
            window: None,
            layers: 1,
        };
        let mut model =
            SelfAttentionClassifier::new(&config, 10, 3, 2, &mut rng(2, Stream::Init), &device);
        let mut kernel = model.qkv.val().into_data().try_into_vec::<f32>().unwrap();
        for row in kernel.chunks_mut(12) {
            row[..8].fill(0.0); // Wq and Wk
        }
        model.qkv = Param::from_data(TensorData::new(kernel, [4, 12]), &device);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
        let w = model
            .attention(ids)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(w.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-6), "{w:?}");
    }

    fn switched(mask_padding: bool, window: Option<usize>, layers: usize) -> SelfAttentionModel {
        positioned(Position::Learned, mask_padding, window, layers)
    }

    fn positioned(
        position: Position,
        mask_padding: bool,
        window: Option<usize>,
        layers: usize,
    ) -> SelfAttentionModel {
        SelfAttentionModel {
            embed: 8,
            heads: 2,
            head_dim: 4,
            position,
            scale: None,
            output: Output::Sigmoid,
            dropout: 0.5,
            kernel_init: KernelInit::Glorot,
            mask_padding,
            window,
            layers,
        }
    }

    /// Reviews pre-padded with zeros: 3 and 0 padded positions out of 6.
    fn padded(device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(vec![0i64, 0, 0, 1, 7, 9, 1, 3, 4, 5, 6, 2], [2, 6]),
            device,
        )
    }

    /// Every weight read out is on an allowed key: none on padding, none outside the window,
    /// and each token's row is a distribution over the allowed keys.
    #[test]
    fn masks_and_windows_give_zero_weight_where_they_must() {
        let device = Device::flex();
        let ids = padded(&device);
        let pad = |b: usize, j: usize| b == 0 && j < 3;
        for (mask_padding, window) in [(true, None), (false, Some(1)), (true, Some(2))] {
            let model = SelfAttentionClassifier::new(
                &switched(mask_padding, window, 2),
                20,
                6,
                2,
                &mut rng(3, Stream::Init),
                &device,
            );
            let w = model
                .attention(ids.clone())
                .into_data()
                .try_into_vec::<f32>()
                .unwrap();
            for b in 0..2 {
                for h in 0..2 {
                    for i in 0..6 {
                        let row = &w[((b * 2 + h) * 6 + i) * 6..][..6];
                        if mask_padding && pad(b, i) {
                            assert!(row.iter().all(|&x| x == 0.0), "padded query row {row:?}");
                            continue;
                        }
                        for (j, &x) in row.iter().enumerate() {
                            let allowed = !(mask_padding && pad(b, j))
                                && window.is_none_or(|r| i.abs_diff(j) <= r);
                            if !allowed {
                                assert_eq!(x, 0.0, "{mask_padding} {window:?}: ({b},{i},{j})");
                            }
                        }
                        let sum: f32 = row.iter().sum();
                        assert!((sum - 1.0).abs() < 1e-5, "{row:?}");
                    }
                }
            }
            assert_eq!(model.forward(ids.clone(), None).dims(), [2, 1]);
        }
    }

    /// With the padding mask, a review's output does not depend on how much padding it has.
    #[test]
    fn masked_padding_changes_nothing_for_the_review() {
        let device = Device::flex();
        let config = positioned(Position::None, true, None, 2);
        let model =
            SelfAttentionClassifier::new(&config, 20, 6, 2, &mut rng(4, Stream::Init), &device);
        let short = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 7, 9], [1, 3]), &device);
        let long = Tensor::<2, Int>::from_data(
            TensorData::new(vec![0i64, 0, 0, 1, 7, 9], [1, 6]),
            &device,
        );
        let a = model
            .forward(short, None)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let b = model
            .forward(long, None)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!((a[0] - b[0]).abs() < 1e-5, "{a:?} vs {b:?}");
    }

    #[test]
    fn learned_positions_and_layers_add_their_parameters() {
        let device = Device::flex();
        let one = SelfAttentionClassifier::new(
            &positioned(Position::None, false, None, 1),
            20,
            6,
            2,
            &mut rng(0, Stream::Init),
            &device,
        );
        let more = SelfAttentionClassifier::new(
            &switched(false, None, 3),
            20,
            6,
            2,
            &mut rng(0, Stream::Init),
            &device,
        );
        // 6 x 8 positions, and two more layers of 8 x 24.
        assert_eq!(more.num_params() - one.num_params(), 6 * 8 + 2 * 8 * 24);
    }
}
