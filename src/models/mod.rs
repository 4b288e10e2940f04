//! The models, as burn `Module`s: E1's encoder-decoders with a leading repeat dimension (see
//! [`stacked`]) and their E4 attention variants, and the IMDB text classifiers: E2/E3's
//! self-attention ones and E4's recurrent ones.

pub mod attention_decoder;
pub mod classifier;
pub mod echo;
pub mod flops;
pub mod footprint;
pub mod init;
pub mod layers;
pub mod recurrent;
pub mod self_attention;
pub mod stacked;
#[cfg(test)]
pub mod testing;

use crate::kernels::matmul::Products;

/// The kernels of the echo models' products: gemm's AVX2 ones on every x86-64 machine with AVX2
/// and FMA, so that E1's and E4's records are the same bits with or without AVX-512
/// (docs/reproducibility.md).
pub const ECHO_PRODUCTS: Products = Products::Avx2;
/// The kernels of the text classifiers' products: the CPU's widest, AVX-512 where it has it.
pub const TEXT_PRODUCTS: Products = Products::Widest;

/// A model file's error as a sentence: burn's own `Debug` form (`Io("I/O error: ...")`) is
/// not for users.
pub fn record_error(error: &burn::store::RecordError) -> String {
    match error {
        burn::store::RecordError::Io(message) => message.clone(),
        burn::store::RecordError::Validation(message) => {
            format!("the file does not fit this config's model ({message})")
        }
    }
}
