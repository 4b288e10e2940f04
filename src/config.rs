//! Experiment configs: the JSON schema, its article defaults, and validation.
//!
//! A config file is parsed straight into these types (`deny_unknown_fields`, tagged enums), so a
//! config that deserializes is well-formed; [`ExperimentConfig::validate`] then checks the few
//! cross-field rules serde cannot express (`n_out <= n_in`, sizes above zero).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::InputError;

impl InputError {
    fn at(file: &Path, field: &str, message: impl fmt::Display) -> Self {
        if field.is_empty() || field == "." {
            Self(format!("{}: {message}", file.display()))
        } else {
            Self(format!("{}: {field}: {message}", file.display()))
        }
    }
}

/// One experiment: a task, a model trained on it, and how many seeded repeats to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name; results go under `results/<name>/`. Default: the file's stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// One line for `attnx list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub task: TaskConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub backend: Backend,
    /// Which wgpu adapter runs the config (`backend: "wgpu"` only). Not part of the config's
    /// hash: adapters compute the same results up to float error, and records name the adapter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<WgpuDevice>,
    /// Number of repeats (create, train, evaluate), each with its own seed. Default: the
    /// article's (10 for the echo task, 1 for IMDB); see [`ExperimentConfig::repeats`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
    /// Base seed; repeat `i` derives its own seed from (`seed`, `i`).
    #[serde(default)]
    pub seed: u64,
    /// Where the task's data set is (IMDB: an archive or an unpacked folder). Not part of the
    /// config's hash: records name the data by its checksum instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
}

/// The task a model is trained and evaluated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskConfig {
    /// E1's synthetic echo task: output the first `n_out` of `n_in` random values, then zeros.
    Echo(EchoTask),
    /// IMDB sentiment classification (E2, E3): 25,000 training and 25,000 test reviews.
    Imdb(ImdbTask),
}

/// E1's echo task; omitted fields take the article's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoTask {
    #[serde(default = "echo::n_in")]
    pub n_in: usize,
    #[serde(default = "echo::n_out")]
    pub n_out: usize,
    #[serde(default = "echo::cardinality")]
    pub cardinality: usize,
    /// Training steps, each on one freshly drawn pair (batch size 1).
    #[serde(default = "echo::train_steps")]
    pub train_steps: usize,
    /// Fresh pairs drawn for evaluation (exact match of the whole sequence).
    #[serde(default = "echo::eval_samples")]
    pub eval_samples: usize,
}

/// The IMDB task (E2, E3); omitted fields take the article's values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImdbTask {
    /// Vocabulary: ids below `num_words` are kept, rarer words become out-of-vocabulary.
    #[serde(default = "imdb::num_words")]
    pub num_words: usize,
    /// Tokens per review: zeros in front of shorter ones, the last `maxlen` of longer ones.
    #[serde(default = "imdb::maxlen")]
    pub maxlen: usize,
    #[serde(default = "imdb::epochs")]
    pub epochs: usize,
    #[serde(default = "imdb::batch_size")]
    pub batch_size: usize,
    /// Use only this many training reviews (a fixed, label-balanced sample), for quick runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Evaluate on only this many test reviews (a fixed, label-balanced sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

/// E2's article defaults.
mod imdb {
    pub fn num_words() -> usize {
        20_000
    }
    pub fn maxlen() -> usize {
        80
    }
    pub fn epochs() -> usize {
        5
    }
    pub fn batch_size() -> usize {
        32
    }
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

impl TaskConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            TaskConfig::Echo(_) => "echo",
            TaskConfig::Imdb(_) => "imdb",
        }
    }
}

/// E1's article defaults.
mod echo {
    pub fn n_in() -> usize {
        5
    }
    pub fn n_out() -> usize {
        2
    }
    pub fn cardinality() -> usize {
        50
    }
    pub fn train_steps() -> usize {
        5000
    }
    pub fn eval_samples() -> usize {
        100
    }
    pub fn hidden() -> usize {
        150
    }
}

/// The model architecture.
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
    /// output: the recurrent classifiers of E4 (seed 002).
    Lstm(LstmModel),
}

/// LSTM encoder -> last state repeated -> LSTM decoder -> per-step softmax.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineModel {
    #[serde(default = "echo::hidden")]
    pub hidden: usize,
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

/// Embedding -> LSTM keeping every state -> pooling of the states -> dropout -> dense
/// output: the recurrent classifiers of E4 (seed 002).
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

/// Seed 002's recurrent classifier defaults.
pub mod lstm {
    pub fn hidden() -> usize {
        64
    }
    pub const UNITS: usize = 32;
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Adam with Keras' defaults (beta 0.9 / 0.999, epsilon 1e-7).
    Adam {
        #[serde(default = "default_lr")]
        lr: f64,
    },
}

fn default_lr() -> f64 {
    1e-3
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam { lr: default_lr() }
    }
}

/// The burn backend that runs the model. One model code path serves all of them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// burn's ndarray CPU backend (deprecated upstream, kept for comparison).
    Ndarray,
    /// burn's flex CPU backend: the fastest CPU backend for these models.
    #[default]
    Flex,
    /// burn's wgpu backend (GPU; Vulkan, Metal or DX12).
    Wgpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ndarray => "ndarray",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A wgpu adapter, written `default`, `cpu`, `discrete`, `integrated`, `virtual`, or one of the
/// last three with an index (`discrete:1`: the second discrete GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WgpuDevice {
    /// wgpu's choice: the best discrete GPU, else integrated, else a CPU adapter
    /// (`CUBECL_WGPU_DEFAULT_DEVICE` overrides it).
    #[default]
    Default,
    Discrete(usize),
    Integrated(usize),
    Virtual(usize),
    /// A CPU adapter (Mesa's lavapipe on Linux).
    Cpu,
}

impl std::str::FromStr for WgpuDevice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, index) = match text.split_once(':') {
            Some((kind, index)) => {
                let index = index
                    .parse()
                    .map_err(|_| format!("{text:?}: the index after ':' must be a number"))?;
                (kind, Some(index))
            }
            None => (text, None),
        };
        let at = index.unwrap_or(0);
        match (kind, index) {
            ("default", None) => Ok(Self::Default),
            ("cpu", None) => Ok(Self::Cpu),
            ("discrete", _) => Ok(Self::Discrete(at)),
            ("integrated", _) => Ok(Self::Integrated(at)),
            ("virtual", _) => Ok(Self::Virtual(at)),
            _ => Err(format!(
                "unknown wgpu device {text:?}, expected default, cpu, discrete[:N], integrated[:N] or virtual[:N]"
            )),
        }
    }
}

impl TryFrom<String> for WgpuDevice {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<WgpuDevice> for String {
    fn from(device: WgpuDevice) -> String {
        device.to_string()
    }
}

impl fmt::Display for WgpuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Cpu => f.write_str("cpu"),
            Self::Discrete(i) => write!(f, "discrete:{i}"),
            Self::Integrated(i) => write!(f, "integrated:{i}"),
            Self::Virtual(i) => write!(f, "virtual:{i}"),
        }
    }
}

/// Fields whose value is a tagged enum: a bad or missing tag is reported at `<field>.kind`.
const TAGGED_FIELDS: [&str; 3] = ["task", "model", "optimizer"];

impl ExperimentConfig {
    /// Reads, parses and validates a config file. Every failure names the file and the field.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("{}: cannot read config: {e}", path.display())))?;
        let mut config = Self::parse(&text, path)?;
        if config.name.is_none() {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("experiment");
            config.name = Some(stem.to_string());
        }
        config.validate(path)?;
        Ok(config)
    }

    /// Parses JSON text; `origin` is only used in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, InputError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|err| {
            let mut field = err.path().to_string();
            let inner = err.into_inner();
            let message = tidy_serde_message(&inner.to_string());
            if inner.is_syntax() || inner.is_eof() {
                return InputError::at(origin, "", format!("malformed JSON: {message}"));
            }
            // The field path says where; serde_json's position points past a buffered object.
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_string(),
                None => message,
            };
            if TAGGED_FIELDS.contains(&field.as_str())
                && (message.starts_with("unknown variant") || message.contains("field `kind`"))
            {
                field.push_str(".kind");
            }
            InputError::at(origin, &field, message)
        })
    }

    /// Checks the rules that types alone do not enforce.
    pub fn validate(&self, origin: &Path) -> Result<(), InputError> {
        let err = |field: &str, msg: String| Err(InputError::at(origin, field, msg));
        if let Some(name) = &self.name {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !name.starts_with('.');
            if !ok {
                return err(
                    "name",
                    format!("{name:?} is not a usable folder name (use letters, digits, - _ .)"),
                );
            }
        }
        if self.device.is_some() && self.backend != Backend::Wgpu {
            return err(
                "device",
                format!(
                    "only applies to the wgpu backend (this config runs on {})",
                    self.backend
                ),
            );
        }
        if self.repeats == Some(0) {
            return err("repeats", "must be at least 1, got 0".into());
        }
        let check_dropout = |dropout: f64| {
            if (0.0..1.0).contains(&dropout) {
                Ok(())
            } else {
                Err(InputError::at(
                    origin,
                    "model.dropout",
                    format!("must be in [0, 1), got {dropout}"),
                ))
            }
        };
        let positive = |field: &str, value: usize| {
            if value == 0 {
                Err(InputError::at(origin, field, "must be at least 1, got 0"))
            } else {
                Ok(())
            }
        };
        match self.task {
            TaskConfig::Echo(EchoTask {
                n_in,
                n_out,
                cardinality,
                train_steps,
                eval_samples,
            }) => {
                positive("task.n_in", n_in)?;
                positive("task.n_out", n_out)?;
                if n_out > n_in {
                    return err(
                        "task.n_out",
                        format!("must not exceed task.n_in ({n_in}), got {n_out}"),
                    );
                }
                if cardinality < 2 {
                    return err(
                        "task.cardinality",
                        format!("must be at least 2, got {cardinality}"),
                    );
                }
                positive("task.train_steps", train_steps)?;
                positive("task.eval_samples", eval_samples)?;
            }
            TaskConfig::Imdb(ImdbTask {
                num_words,
                maxlen,
                epochs,
                batch_size,
                train_limit,
                test_limit,
            }) => {
                if num_words <= 3 {
                    return err(
                        "task.num_words",
                        format!(
                            "must exceed 3 (ids 0-2 are padding, start and out-of-vocabulary), got {num_words}"
                        ),
                    );
                }
                positive("task.maxlen", maxlen)?;
                positive("task.epochs", epochs)?;
                positive("task.batch_size", batch_size)?;
                for (field, limit) in [
                    ("task.train_limit", train_limit),
                    ("task.test_limit", test_limit),
                ] {
                    if limit.is_some_and(|n| n < 2) {
                        return err(
                            field,
                            "must be at least 2 (one review of each label)".into(),
                        );
                    }
                }
            }
        }
        match (self.task.kind(), self.model) {
            ("echo", ModelConfig::Baseline(BaselineModel { hidden })) => {
                positive("model.hidden", hidden)?
            }
            (
                "echo",
                ModelConfig::Attention(AttentionModel {
                    hidden,
                    attention,
                    temperature,
                    ..
                }),
            ) => {
                positive("model.hidden", hidden)?;
                if let Some(t) = temperature {
                    if attention != Attending::Hard {
                        return err(
                            "model.temperature",
                            "only applies to hard attention (\"attention\": \"hard\")".into(),
                        );
                    }
                    if !(t.is_finite() && t > 0.0) {
                        return err(
                            "model.temperature",
                            format!("must be a positive number, got {t}"),
                        );
                    }
                }
            }
            (
                "imdb",
                ModelConfig::SelfAttention(SelfAttentionModel {
                    embed,
                    heads,
                    head_dim,
                    position,
                    scale,
                    dropout,
                    kernel_init,
                    layers,
                    ..
                }),
            ) => {
                positive("model.embed", embed)?;
                positive("model.heads", heads)?;
                positive("model.head_dim", head_dim)?;
                positive("model.layers", layers)?;
                if position == Position::Sinusoidal && embed % 2 == 1 {
                    return err(
                        "model.embed",
                        format!("must be even for sinusoidal positions, got {embed}"),
                    );
                }
                if scale.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                    return err(
                        "model.scale",
                        format!(
                            "must be a positive number, got {}",
                            scale.unwrap_or_default()
                        ),
                    );
                }
                check_dropout(dropout)?;
                if let KernelInit::Uniform { limit } = kernel_init
                    && !(limit.is_finite() && limit > 0.0)
                {
                    return err(
                        "model.kernel_init.limit",
                        format!("must be a positive number, got {limit}"),
                    );
                }
            }
            (
                "imdb",
                ModelConfig::Lstm(LstmModel {
                    embed,
                    hidden,
                    pooling,
                    units,
                    dropout,
                    ..
                }),
            ) => {
                positive("model.embed", embed)?;
                positive("model.hidden", hidden)?;
                if let Some(units) = units {
                    if pooling != Pooling::Attention {
                        return err(
                            "model.units",
                            "only applies to attention pooling (\"pooling\": \"attention\")".into(),
                        );
                    }
                    positive("model.units", units)?;
                }
                check_dropout(dropout)?;
            }
            (task, model) => {
                let fits = if task == "echo" {
                    "baseline or attention"
                } else {
                    "self_attention or lstm"
                };
                return err(
                    "model.kind",
                    format!(
                        "{:?} does not fit task {task:?} (expected {fits})",
                        model.kind()
                    ),
                );
            }
        }
        let OptimizerConfig::Adam { lr } = self.optimizer;
        if !(lr.is_finite() && lr > 0.0) {
            return err(
                "optimizer.lr",
                format!("must be a positive number, got {lr}"),
            );
        }
        Ok(())
    }

    /// The number of repeats: the config's, or the article's default for its task.
    pub fn repeats(&self) -> usize {
        self.repeats.unwrap_or(match self.task {
            TaskConfig::Echo(_) => 10,
            TaskConfig::Imdb(_) => 1,
        })
    }

    /// The experiment's name (set by [`load`](Self::load) from the file name when omitted).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("experiment")
    }

    /// The config with every field that does not change a result cleared (name, description,
    /// data location, wgpu device, repeat count): what [`hash`](Self::hash) hashes, and what the
    /// report compares when it names how an older config differs.
    pub fn hash_key(&self) -> Self {
        let mut key = self.clone();
        key.name = None;
        key.description = None;
        key.data = None;
        key.device = None;
        // Hashed as `"repeats": 0`, the form the first records were written with, so that their
        // hashes stay valid. New optional fields must likewise be left out of the serialized
        // config while they hold their default, or every recorded hash would change.
        key.repeats = Some(0);
        key
    }

    /// Identifies what a repeat's result depends on: everything but the name, the description
    /// and the repeat count, so that raising `repeats` reuses the repeats already recorded.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_vec(&self.hash_key()).expect("a config always serializes");
        crate::fsutil::sha256_hex(&canonical)[..12].to_string()
    }
}

/// serde quotes names with backticks; a one-line error reads better with double quotes.
fn tidy_serde_message(message: &str) -> String {
    message.replace('`', "\"")
}

/// Where configs named without a path are looked up.
pub const CONFIG_DIR: &str = "configs";

/// Resolves `baseline` to `configs/baseline.json`, or takes a path as it is.
pub fn resolve_config_path(name: &str) -> Result<PathBuf, InputError> {
    resolve_named(
        name,
        Path::new(CONFIG_DIR),
        "config",
        "; `attnx list` shows the configs",
    )
}

/// `name` as a path if it is a file, else `<dir>/<name>.json`; `what` and `hint` word the error.
pub fn resolve_named(
    name: &str,
    dir: &Path,
    what: &str,
    hint: &str,
) -> Result<PathBuf, InputError> {
    let as_path = PathBuf::from(name);
    if as_path.is_file() {
        return Ok(as_path);
    }
    let in_dir = dir.join(format!("{name}.json"));
    if in_dir.is_file() {
        return Ok(in_dir);
    }
    Err(InputError(format!(
        "{name}: no such {what} (looked for {} and {}{hint})",
        as_path.display(),
        in_dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ExperimentConfig, String> {
        let origin = Path::new("x.json");
        let config = ExperimentConfig::parse(text, origin).map_err(|e| e.to_string())?;
        config.validate(origin).map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn omitted_fields_take_the_article_defaults() {
        let config =
            parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "attention"}}"#).unwrap();
        assert_eq!(
            config.task,
            TaskConfig::Echo(EchoTask {
                n_in: 5,
                n_out: 2,
                cardinality: 50,
                train_steps: 5000,
                eval_samples: 100
            })
        );
        assert_eq!(
            config.model,
            ModelConfig::Attention(AttentionModel {
                hidden: 150,
                score: Score::Additive,
                attention: Attending::Soft,
                temperature: None
            })
        );
        assert_eq!(config.optimizer, OptimizerConfig::Adam { lr: 1e-3 });
        assert_eq!(config.repeats(), 10);
        assert_eq!(config.backend, Backend::Flex);
    }

    #[test]
    fn errors_name_the_field_and_what_was_expected() {
        let e = parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "lstmm"}}"#).unwrap_err();
        assert!(
            e.starts_with("x.json: model.kind: unknown variant \"lstmm\""),
            "{e}"
        );
        assert!(e.contains("baseline") && e.contains("attention"), "{e}");

        let e = parse(r#"{"task": {"kind": "echo", "n_inn": 3}, "model": {"kind": "baseline"}}"#)
            .unwrap_err();
        assert!(
            e.starts_with("x.json: task: unknown field \"n_inn\""),
            "{e}"
        );

        let e = parse(
            r#"{"task": {"kind": "echo", "n_in": 2, "n_out": 3}, "model": {"kind": "baseline"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "x.json: task.n_out: must not exceed task.n_in (2), got 3"
        );

        let e = parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "repeats": 0}"#)
            .unwrap_err();
        assert_eq!(e, "x.json: repeats: must be at least 1, got 0");

        let e = parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline", "hidden": -1}}"#)
            .unwrap_err();
        // Inside a tagged enum serde buffers the object, so the path stops at the enum.
        assert_eq!(
            e,
            "x.json: model: invalid value: integer \"-1\", expected usize"
        );

        let e = parse(r#"{"task": {"kind": "echo"},"#).unwrap_err();
        assert!(e.starts_with("x.json: malformed JSON"), "{e}");
        assert!(!e.contains('\n'));
    }

    /// New optional fields must leave every recorded hash as it was: the committed configs
    /// still hash to the folders their results are stored under.
    #[test]
    fn committed_configs_keep_their_recorded_hashes() {
        for (name, hash) in [
            ("baseline", "6ae247a4f9ef"),
            ("attention", "4b4698704096"),
            ("imdb", "318106d4fb0c"),
            ("imdb_pe", "b7f9cb7f475c"),
            ("imdb_single", "a25bd5904b66"),
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(CONFIG_DIR)
                .join(format!("{name}.json"));
            assert_eq!(
                ExperimentConfig::load(&path).unwrap().hash(),
                hash,
                "{name}"
            );
        }
    }

    #[test]
    fn e4_switches_parse_and_bad_combinations_are_refused() {
        let config = parse(
            r#"{"task": {"kind": "echo"}, "model": {"kind": "attention", "score": "concat"}}"#,
        )
        .unwrap();
        let additive = parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "attention"}}"#);
        assert_eq!(
            config.hash(),
            additive.unwrap().hash(),
            "concat is additive"
        );

        let e = parse(
            r#"{"task": {"kind": "echo"}, "model": {"kind": "attention", "temperature": 0.5}}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("x.json: model.temperature: only applies to hard"),
            "{e}"
        );
        let e = parse(
            r#"{"task": {"kind": "imdb"}, "model": {"kind": "lstm", "pooling": "mean", "units": 8}}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("x.json: model.units: only applies to attention"),
            "{e}"
        );
        let e = parse(r#"{"task": {"kind": "imdb"}, "model": {"kind": "lstm"}}"#).unwrap_err();
        assert!(e.contains("missing field \"pooling\""), "{e}");
        let e = parse(
            r#"{"task": {"kind": "imdb"}, "model": {"kind": "self_attention", "layers": 0}}"#,
        )
        .unwrap_err();
        assert_eq!(e, "x.json: model.layers: must be at least 1, got 0");
        let e =
            parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "lstm", "pooling": "last"}}"#)
                .unwrap_err();
        assert!(
            e.contains("model.kind: \"lstm\" does not fit task \"echo\""),
            "{e}"
        );
    }

    #[test]
    fn wgpu_devices_parse_and_belong_to_wgpu() {
        for (text, device) in [
            ("default", WgpuDevice::Default),
            ("cpu", WgpuDevice::Cpu),
            ("discrete", WgpuDevice::Discrete(0)),
            ("discrete:1", WgpuDevice::Discrete(1)),
            ("integrated:0", WgpuDevice::Integrated(0)),
            ("virtual:2", WgpuDevice::Virtual(2)),
        ] {
            assert_eq!(text.parse::<WgpuDevice>(), Ok(device));
        }
        assert!("gpu".parse::<WgpuDevice>().is_err());
        assert!("discrete:x".parse::<WgpuDevice>().is_err());
        let config = parse(
            r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "backend": "wgpu", "device": "discrete:1"}"#,
        )
        .unwrap();
        assert_eq!(config.device, Some(WgpuDevice::Discrete(1)));
        let mut default = config.clone();
        default.device = None;
        assert_eq!(config.hash(), default.hash());
        let e =
            parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "device": "cpu"}"#)
                .unwrap_err();
        assert_eq!(
            e,
            "x.json: device: only applies to the wgpu backend (this config runs on flex)"
        );
        let e = parse(
            r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}, "backend": "wgpu", "device": "gpu"}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("x.json: device: unknown wgpu device \"gpu\""),
            "{e}"
        );
    }

    #[test]
    fn hash_ignores_repeats_and_name_but_not_seed_or_backend() {
        let a = parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "baseline"}}"#).unwrap();
        let mut b = a.clone();
        b.repeats = Some(3);
        b.data = Some("elsewhere.tar.gz".into());
        b.name = Some("other".into());
        assert_eq!(a.hash(), b.hash());
        b.seed = 1;
        assert_ne!(a.hash(), b.hash());
        let mut c = a.clone();
        c.backend = Backend::Ndarray;
        assert_ne!(a.hash(), c.hash());
    }
}
