//! The models, as burn `Module`s: E1's encoder-decoders with a leading repeat dimension (see
//! [`stacked`]) and their E4 attention variants, and the IMDB text classifiers: E2/E3's
//! self-attention ones and E4's recurrent ones.

pub mod classifier;
pub mod echo;
pub mod recurrent;
pub mod self_attention;
pub mod stacked;
