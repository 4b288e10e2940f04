//! Any IMDB classifier, built from a config: what the IMDB training loop, the agreement test
//! and `attnx attention` work with.

use burn::prelude::*;
use burn::store::RecordError;
use rand::rngs::StdRng;

use super::recurrent::RecurrentClassifier;
use super::self_attention::SelfAttentionClassifier;
use crate::config::TextModel;

#[allow(clippy::large_enum_variant)] // one per repeat
#[derive(Module, Debug)]
pub enum TextClassifier {
    SelfAttention(SelfAttentionClassifier),
    Recurrent(RecurrentClassifier),
}

impl TextClassifier {
    /// The model of `config` for a vocabulary of `num_words` and reviews of `maxlen` tokens.
    pub fn new(
        config: &TextModel,
        num_words: usize,
        maxlen: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        match config {
            TextModel::SelfAttention(model) => Self::SelfAttention(SelfAttentionClassifier::new(
                model, num_words, maxlen, rng, device,
            )),
            TextModel::Lstm(model) => {
                Self::Recurrent(RecurrentClassifier::new(model, num_words, rng, device))
            }
        }
    }

    /// Logits `[B, outputs]` for ids `[B, T]`, with an optional dropout keep-mask
    /// `[B, pooled_width]`.
    pub fn forward(&self, ids: Tensor<2, Int>, keep_mask: Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Self::SelfAttention(m) => m.forward(ids, keep_mask),
            Self::Recurrent(m) => m.forward(ids, keep_mask),
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
