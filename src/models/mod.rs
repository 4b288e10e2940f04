//! The models, as burn `Module`s: E1's encoder-decoders with a leading repeat dimension (see
//! [`stacked`]) and their E4 attention variants, and the IMDB text classifiers: E2/E3's
//! self-attention ones and E4's recurrent ones.

pub mod classifier;
pub mod cpu_kernel;
#[allow(deprecated)] // its backend extension names burn-ndarray, deprecated upstream
pub mod cross_entropy;
pub mod echo;
pub mod footprint;
#[allow(deprecated)] // its backend extension names burn-ndarray, deprecated upstream
pub mod fused_attention;
#[allow(deprecated)] // its backend extension names burn-ndarray, deprecated upstream
pub mod fused_decoder;
pub mod init;
pub mod layers;
#[allow(deprecated)] // its backend extension names burn-ndarray, deprecated upstream
pub mod lstm_cell;
#[allow(deprecated)] // its backend extension names burn-ndarray, deprecated upstream
pub mod lstm_sequence;
pub mod recurrent;
pub mod self_attention;
pub mod stacked;
pub mod step_weight;

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
