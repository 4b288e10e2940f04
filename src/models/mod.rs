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
