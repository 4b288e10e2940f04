//! The model architectures, with the articles' defaults. A file names any of the four
//! ([`ModelConfig`]); a validated config holds an [`EchoModel`] or a [`TextModel`], whichever
//! its task trains, so no consumer meets a model it cannot build.

use serde::{Deserialize, Serialize};

use super::FieldError;

/// The model of a config file, as written (`"model": {"kind": "attention", ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelConfig {
    /// LSTM encoder -> last state repeated -> LSTM decoder -> per-step softmax.
    Baseline(BaselineModel),
    /// LSTM encoder keeping every state -> Bahdanau-style attention decoder.
    Attention(AttentionModel),
    /// Embedding -> [position embedding] -> multi-head self-attention -> mean over time ->
    /// dropout -> dense output (E2, E3).
    SelfAttention(SelfAttentionModel),
    /// Embedding -> LSTM keeping every state -> pooling of the states -> dropout -> dense
    /// output: the recurrent classifiers of E4.
    Lstm(LstmModel),
}

impl ModelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Baseline(_) => "baseline",
            ModelConfig::Attention(_) => "attention",
            ModelConfig::SelfAttention(_) => "self_attention",
            ModelConfig::Lstm(_) => "lstm",
        }
    }
}

/// A sequence-to-sequence model for the echo task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EchoModel {
    Baseline(BaselineModel),
    Attention(AttentionModel),
}

impl EchoModel {
    pub fn hidden(&self) -> usize {
        match self {
            EchoModel::Baseline(m) => m.hidden,
            EchoModel::Attention(m) => m.hidden,
        }
    }

    pub(super) fn validate(&self) -> Result<(), FieldError> {
        match self {
            EchoModel::Baseline(m) => FieldError::positive("model.hidden", m.hidden),
            EchoModel::Attention(m) => m.validate(),
        }
    }
}

impl From<EchoModel> for ModelConfig {
    fn from(model: EchoModel) -> Self {
        match model {
            EchoModel::Baseline(m) => ModelConfig::Baseline(m),
            EchoModel::Attention(m) => ModelConfig::Attention(m),
        }
    }
}

/// A text classifier for IMDB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextModel {
    SelfAttention(SelfAttentionModel),
    Lstm(LstmModel),
}

impl TextModel {
    /// The output layer and the dropout rate before it.
    pub fn head(&self) -> (Output, f64) {
        match self {
            TextModel::SelfAttention(m) => (m.output, m.dropout),
            TextModel::Lstm(m) => (m.output, m.dropout),
        }
    }

    pub(super) fn validate(&self) -> Result<(), FieldError> {
        let (_, dropout) = self.head();
        match self {
            TextModel::SelfAttention(m) => m.validate()?,
            TextModel::Lstm(m) => m.validate()?,
        }
        if (0.0..1.0).contains(&dropout) {
            Ok(())
        } else {
            Err(FieldError::new(
                "model.dropout",
                format!("must be in [0, 1), got {dropout}"),
            ))
        }
    }
}

impl From<TextModel> for ModelConfig {
    fn from(model: TextModel) -> Self {
        match model {
            TextModel::SelfAttention(m) => ModelConfig::SelfAttention(m),
            TextModel::Lstm(m) => ModelConfig::Lstm(m),
        }
    }
}

/// LSTM encoder -> last state repeated -> LSTM decoder -> per-step softmax.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineModel {
    #[serde(default = "echo::hidden")]
    pub hidden: usize,
    /// The LSTMs' gate activation (Keras' `recurrent_activation`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub recurrent_activation: GateActivation,
}

/// LSTM encoder keeping every state -> Bahdanau-style attention decoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionModel {
    #[serde(default = "echo::hidden")]
    pub hidden: usize,
    /// How the decoder scores an encoder state against its own state (E4).
    #[serde(default, skip_serializing_if = "is_default")]
    pub score: Score,
    /// Soft (a weighted mean of the encoder states) or hard (one state per step).
    #[serde(default, skip_serializing_if = "is_default")]
    pub attention: Attending,
    /// Hard attention's Gumbel-softmax temperature in training (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The encoder LSTM's gate activation (Keras' `recurrent_activation`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub recurrent_activation: GateActivation,
    /// How the decoder's kernels are drawn.
    #[serde(default, skip_serializing_if = "is_default")]
    pub decoder_init: DecoderInit,
}

impl AttentionModel {
    fn validate(&self) -> Result<(), FieldError> {
        FieldError::positive("model.hidden", self.hidden)?;
        if let Some(t) = self.temperature {
            if self.attention != Attending::Hard {
                return Err(FieldError::new(
                    "model.temperature",
                    "only applies to hard attention (\"attention\": \"hard\")",
                ));
            }
            positive_number("model.temperature", t)?;
        }
        Ok(())
    }
}

/// E1's article default.
mod echo {
    pub fn hidden() -> usize {
        150
    }
}

/// Embedding -> [position embedding] -> multi-head self-attention -> mean over time ->
/// dropout -> dense output (E2, E3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfAttentionModel {
    #[serde(default = "imdb::embed")]
    pub embed: usize,
    #[serde(default = "imdb::heads")]
    pub heads: usize,
    #[serde(default = "imdb::head_dim")]
    pub head_dim: usize,
    #[serde(default)]
    pub position: Position,
    /// Multiplies `Q K^T`; default `1 / sqrt(head_dim)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default)]
    pub output: Output,
    #[serde(default = "imdb::dropout")]
    pub dropout: f64,
    /// Initialisation of the Q, K, V kernels.
    #[serde(default)]
    pub kernel_init: KernelInit,
    /// Padded positions get no attention weight and are left out of the mean pooling.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mask_padding: bool,
    /// Local attention: position `i` attends only to positions `j` with `|i - j| <= window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Attention layers applied one after the other; layer `l + 1` takes the concatenated
    /// heads of layer `l` as its input, with nothing in between.
    #[serde(default = "imdb::layers", skip_serializing_if = "is_one")]
    pub layers: usize,
}

impl SelfAttentionModel {
    /// What multiplies `Q K^T`: `scale`, by default `1 / sqrt(head_dim)`.
    pub fn scale_or_default(&self) -> f64 {
        self.scale.unwrap_or(1.0 / (self.head_dim as f64).sqrt())
    }

    /// Whether some scores are masked (padding, a window): then the attention is composed from
    /// burn's ops on every backend, not run as attnx's fused CPU kernel.
    pub fn masks_scores(&self) -> bool {
        self.mask_padding || self.window.is_some()
    }

    fn validate(&self) -> Result<(), FieldError> {
        FieldError::positive("model.embed", self.embed)?;
        FieldError::positive("model.heads", self.heads)?;
        FieldError::positive("model.head_dim", self.head_dim)?;
        FieldError::positive("model.layers", self.layers)?;
        if self.position == Position::Sinusoidal && self.embed % 2 == 1 {
            return Err(FieldError::new(
                "model.embed",
                format!("must be even for sinusoidal positions, got {}", self.embed),
            ));
        }
        if let Some(scale) = self.scale {
            positive_number("model.scale", scale)?;
        }
        if let KernelInit::Uniform { limit } = self.kernel_init {
            positive_number("model.kernel_init.limit", limit)?;
        }
        Ok(())
    }
}

/// E2's article defaults.
mod imdb {
    pub fn embed() -> usize {
        128
    }
    pub fn heads() -> usize {
        8
    }
    pub fn head_dim() -> usize {
        16
    }
    pub fn dropout() -> f64 {
        0.5
    }
    pub fn layers() -> usize {
        1
    }
}

/// Embedding -> LSTM keeping every state -> pooling of the states -> dropout -> dense
/// output: the recurrent classifiers of E4.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmModel {
    #[serde(default = "imdb::embed")]
    pub embed: usize,
    #[serde(default = "lstm::hidden")]
    pub hidden: usize,
    pub pooling: Pooling,
    /// Width of the attention pooling's output `tanh([c; h_T] W_c)` (default 32, as the
    /// article's example).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<usize>,
    #[serde(default)]
    pub output: Output,
    #[serde(default = "imdb::dropout")]
    pub dropout: f64,
}

impl LstmModel {
    /// The attention pooling's output width.
    pub fn units(&self) -> usize {
        self.units.unwrap_or(lstm::UNITS)
    }

    fn validate(&self) -> Result<(), FieldError> {
        FieldError::positive("model.embed", self.embed)?;
        FieldError::positive("model.hidden", self.hidden)?;
        if let Some(units) = self.units {
            if self.pooling != Pooling::Attention {
                return Err(FieldError::new(
                    "model.units",
                    "only applies to attention pooling (\"pooling\": \"attention\")",
                ));
            }
            FieldError::positive("model.units", units)?;
        }
        Ok(())
    }
}

/// Seed 002's recurrent classifier defaults.
pub mod lstm {
    pub fn hidden() -> usize {
        64
    }
    pub const UNITS: usize = 32;
}

fn positive_number(field: &'static str, value: f64) -> Result<(), FieldError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be a positive number, got {value}"),
        ))
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn is_one(value: &usize) -> bool {
    *value == 1
}

/// The attention decoder's score between its state `s` (the query) and an encoder state `h_j`
/// (the key). `concat` is accepted as another name for `additive`: `v . tanh(W [s; h_j] + b)`
/// is `v . tanh(s W_s + h_j W_h + b)`, the same function with the same parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// Bahdanau: `v_a . tanh(s W_a + h_j U_a + b_a)` (E1).
    #[default]
    #[serde(alias = "concat")]
    Additive,
    /// `s . h_j`: no parameters.
    Dot,
    /// Bilinear (Luong's "general"): `s W h_j`.
    General,
    /// `g cos(s, h_j)`, with `g` a learned scale per model, initialised to 10.
    Cosine,
}

/// The activation of an LSTM's input, forget and output gates (Keras' `recurrent_activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateActivation {
    /// `1 / (1 + e^-x)`: Keras' default since 2.3 (and tf.keras', and PyTorch's).
    #[default]
    Sigmoid,
    /// `clip(0.2 x + 0.5, 0, 1)`: the default of Keras 2.0 to 2.2, the Keras of E1's article
    /// (its attention layer imports `keras.layers.recurrent.Recurrent`, gone in 2.2).
    HardSigmoid,
}

/// How the attention decoder's kernels are drawn (biases are zero either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderInit {
    /// attnx's: glorot-uniform for every kernel but those of the state `s` (`U_r`, `U_z`,
    /// `U_p`, `U_o`), which are orthogonal; `v_a` with Keras 3's fan of a vector (its length).
    #[default]
    Attnx,
    /// The article's `AttentionDecoder` layer (its `build`): glorot-uniform `V_a`, `W_a`, `U_a`
    /// (the layer's `kernel_initializer`; `V_a` with Keras 2's fan of a vector, the square root
    /// of its length), orthogonal for every other kernel (`recurrent_initializer`): `W_s` and
    /// all of `C_*`, `U_*`, `W_*` of the gates, the proposal and the output.
    Article,
}

/// Soft or hard attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attending {
    /// A softmax-weighted mean of every encoder state.
    #[default]
    Soft,
    /// One encoder state per step: a straight-through Gumbel-softmax sample in training, the
    /// highest-scoring state at evaluation.
    Hard,
}

/// How the recurrent classifier turns its states into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The last hidden state `h_T`.
    Last,
    /// The mean of all hidden states.
    Mean,
    /// Seed 002's many-to-one attention: `a = softmax(h_T . (H W))`, `c = sum_j a_j H_j`,
    /// `tanh([c; h_T] W_c)`.
    Attention,
}

/// Position information added to the embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    #[default]
    None,
    /// `PE(p)_{2i} = sin(p / 10000^{2i/d})`, `PE(p)_{2i+1} = cos(...)`, added (E2).
    Sinusoidal,
    /// A trained embedding of each position (uniform in [-0.05, 0.05] at first), added.
    Learned,
}

/// The classifier's output layer and loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// One unit, sigmoid, binary cross-entropy (E2).
    #[default]
    Sigmoid,
    /// Two units, softmax, categorical cross-entropy (E3).
    Softmax,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KernelInit {
    /// Keras `glorot_uniform`, per kernel (E2).
    #[default]
    Glorot,
    /// Uniform in `[-limit, limit]` (E3: 0.05).
    Uniform { limit: f64 },
}
