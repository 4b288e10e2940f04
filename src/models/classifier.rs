//! Any IMDB classifier, built from a config: what the IMDB training loop, the agreement test
//! and `attnx attention` work with.

use burn::module::Param;
use burn::nn::Embedding;
use burn::prelude::*;
use burn::store::RecordError;
use rand::rngs::StdRng;
use rayon::prelude::*;

use super::recurrent::RecurrentClassifier;
use super::self_attention::SelfAttentionClassifier;
use crate::config::TextModel;

/// Reviews per piece of an evaluation batch (see [`TextClassifier::evaluate`]).
const EVAL_PIECE: usize = 32;

#[allow(clippy::large_enum_variant)] // one per repeat
#[derive(Module, Debug)]
pub enum TextClassifier {
    SelfAttention(SelfAttentionClassifier),
    Recurrent(RecurrentClassifier),
}

impl TextClassifier {
    /// The model of `config` for a vocabulary of `num_words`, texts of `maxlen` tokens and
    /// `classes` classes (IMDB: 2).
    pub fn new(
        config: &TextModel,
        num_words: usize,
        maxlen: usize,
        classes: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        match config {
            TextModel::SelfAttention(model) => Self::SelfAttention(SelfAttentionClassifier::new(
                model, num_words, maxlen, classes, rng, device,
            )),
            TextModel::Lstm(model) => Self::Recurrent(RecurrentClassifier::new(
                model, num_words, classes, rng, device,
            )),
        }
    }

    /// Logits `[B, outputs]` for ids `[B, T]`, with an optional dropout keep-mask
    /// `[B, pooled_width]`.
    pub fn forward(&self, ids: Tensor<2, Int>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        let tokens = self.embed(ids.clone());
        self.forward_embedded(ids, tokens, keep_mask)
    }

    /// Logits for ids `[B, T]` already embedded as `tokens` `[B, T, D]` (see [`Self::embed`]).
    pub fn forward_embedded(
        &self,
        ids: Tensor<2, Int>,
        tokens: Tensor<3>,
        keep_mask: Option<Tensor<2>>,
    ) -> Tensor<2> {
        self.head(self.pooled(ids, tokens), keep_mask)
    }

    /// The embedded tokens `[B, T, D]` of ids `[B, T]`: the embedding table's rows.
    pub fn embed(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        self.embedding().forward(ids)
    }

    /// The embedding table `[num_words, D]`.
    pub fn embedding_table(&self) -> &Param<Tensor<2>> {
        &self.embedding().weight
    }

    fn embedding(&self) -> &Embedding {
        match self {
            Self::SelfAttention(m) => m.embedding(),
            Self::Recurrent(m) => m.embedding(),
        }
    }

    /// Evaluation logits `[B, outputs]` (no dropout): the batch pooled in pieces of
    /// [`EVAL_PIECE`] reviews on all threads, the output layer applied to the whole batch.
    ///
    /// flex runs element-wise ops on one thread, so an evaluation batch kept a core idle; and a
    /// whole batch's intermediate tensors (tens of MB) do not stay in the caches. A review's
    /// pooled vector depends on its own row alone and comes out bit for bit the same from any
    /// piece; the output layer is not split because a one-column matmul (a sigmoid output)
    /// rounds differently with the number of rows (gemm's matrix-vector path: 247 of 500 logits
    /// differed). (Training splits its batches too, with summed gradients: see the IMDB
    /// `TrainStep`.)
    pub fn evaluate(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let [rows, _] = ids.dims();
        // An autodiff model would record the pieces on one graph: keep it on one thread.
        if rows <= EVAL_PIECE || ids.device().is_autodiff() {
            return self.forward(ids, None);
        }
        let pieces: Vec<_> = (0..rows)
            .step_by(EVAL_PIECE)
            .map(|start| ids.clone().slice(start..rows.min(start + EVAL_PIECE)))
            .collect();
        let pooled: Vec<_> = pieces
            .into_par_iter()
            .map(|piece| self.pooled(piece.clone(), self.embed(piece)))
            .collect();
        self.head(Tensor::cat(pooled, 0), None)
    }

    fn pooled(&self, ids: Tensor<2, Int>, tokens: Tensor<3>) -> Tensor<2> {
        match self {
            Self::SelfAttention(m) => m.pooled(ids, tokens),
            Self::Recurrent(m) => m.pooled(tokens),
        }
    }

    fn head(&self, pooled: Tensor<2>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Self::SelfAttention(m) => m.head(pooled, keep_mask),
            Self::Recurrent(m) => m.head(pooled, keep_mask),
        }
    }

    /// Width of the pooled vector the dropout mask applies to.
    pub fn pooled_width(&self) -> usize {
        match self {
            Self::SelfAttention(m) => m.pooled_width(),
            Self::Recurrent(m) => m.pooled_width(),
        }
    }

    /// Attention weights `[B, heads, queries, T]`: self-attention's first layer, or the
    /// recurrent attention pooling's single query (`[B, 1, 1, T]`); `None` for a model without
    /// attention.
    pub fn attention(&self, ids: Tensor<2, Int>) -> Option<Tensor<4>> {
        match self {
            Self::SelfAttention(m) => Some(m.attention(ids)),
            Self::Recurrent(m) => m.attention(ids).map(|w| {
                let [b, t] = w.dims();
                w.reshape([b, 1, 1, t])
            }),
        }
    }

    /// Saves the weights as the model itself (not wrapped in the enum), so that files saved
    /// before the enum existed still load.
    pub fn save_weights(self, path: &std::path::Path) -> Result<(), RecordError> {
        match self {
            Self::SelfAttention(m) => m.save_file(path),
            Self::Recurrent(m) => m.save_file(path),
        }
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) into this model's shape.
    pub fn load_weights(self, path: &std::path::Path) -> Result<Self, RecordError> {
        Ok(match self {
            Self::SelfAttention(m) => Self::SelfAttention(m.try_load_file(path)?),
            Self::Recurrent(m) => Self::Recurrent(m.try_load_file(path)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LstmModel, Output, Pooling};
    use crate::rng::{Stream, rng};

    fn bits(t: Tensor<2>) -> Vec<u32> {
        let values = t.into_data().try_into_vec::<f32>().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// Pooling an evaluation batch in pieces on all threads gives the whole batch's logits bit for
    /// bit, for E2's model (a one-unit sigmoid output, whose matmul is the one that would round
    /// differently if split) and for the LSTM with attention pooling.
    #[test]
    fn evaluation_in_pieces_equals_the_whole_batch() {
        let device = Device::flex();
        let e2 = TextModel::SelfAttention(crate::models::self_attention::tests::e2());
        let lstm = TextModel::Lstm(LstmModel {
            embed: 32,
            hidden: 32,
            pooling: Pooling::Attention,
            units: None,
            output: Output::Sigmoid,
            dropout: 0.5,
        });
        let (rows, t, words) = (500, 40, 2_000);
        let ids: Vec<i64> = (0..rows * t).map(|i| ((i * 7919) % words) as i64).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [rows, t]), &device);
        for config in [e2, lstm] {
            let model =
                TextClassifier::new(&config, words, t, 2, &mut rng(0, Stream::Init), &device);
            let whole = bits(model.forward(ids.clone(), None));
            let split = bits(model.evaluate(ids.clone()));
            assert_eq!(whole.len(), rows);
            let differing = whole.iter().zip(&split).filter(|(a, b)| a != b).count();
            assert_eq!(differing, 0, "{differing} of {rows} logits differ");
        }
    }
}
