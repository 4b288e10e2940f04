//! The models, as burn `Module`s with a leading repeat dimension (see [`stacked`]).

pub mod echo;
pub mod stacked;
