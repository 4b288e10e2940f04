//! The models, as burn `Module`s: E1's encoder-decoders with a leading repeat dimension (see
//! [`stacked`]) and the self-attention text classifiers of E2 and E3.

pub mod echo;
pub mod self_attention;
pub mod stacked;
