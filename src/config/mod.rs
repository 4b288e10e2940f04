//! Experiment configs: the JSON schema, its article defaults, validation and the hash.
//!
//! A file is parsed into [`RawConfig`] (`deny_unknown_fields`, tagged enums: a file that
//! deserializes is well-formed), then checked into an [`ExperimentConfig`], whose [`Study`]
//! pairs a task with a model that task trains: consumers match on it and never meet a
//! combination they cannot run. Each task and model struct owns its defaults and checks
//! ([`task`], [`model`]); [`backend`] says where a config runs.

pub mod backend;
mod load;
pub mod model;
pub mod overrides;
pub mod task;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use backend::{Backend, WgpuDevice};
pub use load::{CONFIG_DIR, resolve_config_path, resolve_named};
pub use model::{
    Attending, AttentionModel, BaselineModel, DecoderInit, EchoModel, GateActivation, KernelInit,
    LstmModel, ModelConfig, Output, Pooling, Position, Score, SelfAttentionModel, TextModel, lstm,
};
pub use overrides::{Axis, Override};
pub use task::{
    EarlyStopping, EchoTask, ImdbTask, StopMetric, TaskConfig, TestSplit, TextSource, TextTask,
};

use crate::error::InputError;

/// A rule a field breaks: which field (its JSON path) and a sentence saying what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    fn positive(field: &'static str, value: usize) -> Result<(), Self> {
        if value == 0 {
            Err(Self::new(field, "must be at least 1, got 0"))
        } else {
            Ok(())
        }
    }

    /// The error as the user sees it, naming the file the field is in.
    fn in_file(self, file: &Path) -> InputError {
        InputError::at(file, self.field, self.message)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl InputError {
    fn at(file: &Path, field: &str, message: impl fmt::Display) -> Self {
        if field.is_empty() || field == "." {
            Self(format!("{}: {message}", file.display()))
        } else {
            Self(format!("{}: {field}: {message}", file.display()))
        }
    }
}

/// A config file as written: the serialized form of [`ExperimentConfig`] (records embed it,
/// and its canonical JSON is what the hash hashes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub task: TaskConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub backend: Backend,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<WgpuDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<usize>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
}

/// One experiment: a task, a model trained on it, and how many seeded repeats to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct ExperimentConfig {
    /// Experiment name; results go under `results/<name>/`. Default: the file's stem.
    pub name: Option<String>,
    /// One line for `attnx list`.
    pub description: Option<String>,
    /// The task and the model trained on it.
    pub study: Study,
    pub optimizer: OptimizerConfig,
    pub backend: Backend,
    /// Which wgpu adapter runs the config (`backend: "wgpu"` only). Not part of the config's
    /// hash: adapters compute the same results up to float error, and records name the adapter.
    pub device: Option<WgpuDevice>,
    /// Number of repeats (create, train, evaluate), each with its own seed. Default: the
    /// article's (10 for the echo task, 1 for IMDB); see [`ExperimentConfig::repeats`].
    pub repeats: Option<usize>,
    /// Base seed; repeat `i` derives its own seed from (`seed`, `i`).
    pub seed: u64,
    /// Where the task's data set is (IMDB: an archive or an unpacked folder). Not part of the
    /// config's hash: records name the data by its checksum instead.
    pub data: Option<PathBuf>,
}

/// A task with a model that trains on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Study {
    /// E1 (and E4's echo variants): a sequence-to-sequence model on the echo task.
    Echo { task: EchoTask, model: EchoModel },
    /// E2, E3 (and E4's IMDB variants): a text classifier on IMDB or on the user's own texts,
    /// trained by the same settings (`task`).
    Imdb {
        task: ImdbTask,
        model: TextModel,
        corpus: Corpus,
    },
}

/// The texts a classifier trains on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Corpus {
    /// The IMDB archive (`"kind": "imdb"`), found by `--data`, the config or `$ATTNX_DATA`.
    Imdb,
    /// The user's own labelled texts (`"kind": "text"`; boxed: the IMDB variant is empty).
    Text(Box<TextSource>),
}

impl Study {
    /// Pairs a file's task and model, or says that the model does not fit the task.
    fn pair(task: TaskConfig, model: ModelConfig) -> Result<Self, FieldError> {
        match (task, model) {
            (TaskConfig::Echo(task), ModelConfig::Baseline(m)) => Ok(Study::Echo {
                task,
                model: EchoModel::Baseline(m),
            }),
            (TaskConfig::Echo(task), ModelConfig::Attention(m)) => Ok(Study::Echo {
                task,
                model: EchoModel::Attention(m),
            }),
            (TaskConfig::Imdb(task), ModelConfig::SelfAttention(m)) => Ok(Study::Imdb {
                task,
                model: TextModel::SelfAttention(m),
                corpus: Corpus::Imdb,
            }),
            (TaskConfig::Imdb(task), ModelConfig::Lstm(m)) => Ok(Study::Imdb {
                task,
                model: TextModel::Lstm(m),
                corpus: Corpus::Imdb,
            }),
            (TaskConfig::Text(text), ModelConfig::SelfAttention(m)) => {
                let (task, source) = text.split();
                Ok(Study::Imdb {
                    task,
                    model: TextModel::SelfAttention(m),
                    corpus: Corpus::Text(Box::new(source)),
                })
            }
            (TaskConfig::Text(text), ModelConfig::Lstm(m)) => {
                let (task, source) = text.split();
                Ok(Study::Imdb {
                    task,
                    model: TextModel::Lstm(m),
                    corpus: Corpus::Text(Box::new(source)),
                })
            }
            (task, model) => {
                let fits = match task {
                    TaskConfig::Echo(_) => "baseline or attention",
                    TaskConfig::Imdb(_) | TaskConfig::Text(_) => "self_attention or lstm",
                };
                Err(FieldError::new(
                    "model.kind",
                    format!(
                        "{:?} does not fit task {:?} (expected {fits})",
                        model.kind(),
                        task.kind()
                    ),
                ))
            }
        }
    }

    /// The model's own rules (the task's are checked before pairing).
    fn validate_model(&self) -> Result<(), FieldError> {
        match self {
            Study::Echo { model, .. } => model.validate(),
            Study::Imdb { model, .. } => model.validate(),
        }
    }

    pub fn task(&self) -> TaskConfig {
        match self {
            Study::Echo { task, .. } => TaskConfig::Echo(*task),
            Study::Imdb {
                task,
                corpus: Corpus::Imdb,
                ..
            } => TaskConfig::Imdb(*task),
            Study::Imdb {
                task,
                corpus: Corpus::Text(source),
                ..
            } => TaskConfig::Text(TextTask::join(task, source)),
        }
    }

    pub fn model(&self) -> ModelConfig {
        match *self {
            Study::Echo { model, .. } => model.into(),
            Study::Imdb { model, .. } => model.into(),
        }
    }

    /// `"echo"`, `"imdb"` or `"text"`.
    pub fn task_kind(&self) -> &'static str {
        self.task().kind()
    }

    /// `"baseline"`, `"attention"`, `"self_attention"` or `"lstm"`.
    pub fn model_kind(&self) -> &'static str {
        self.model().kind()
    }

    /// Whether the model's output layer can tell `classes` classes apart: one sigmoid unit
    /// tells two; softmax has a unit per class.
    pub fn fits_classes(&self, classes: usize) -> Result<(), FieldError> {
        match self {
            Study::Imdb { model, .. } if model.head().0 == Output::Sigmoid && classes != 2 => {
                Err(FieldError::new(
                    "model.output",
                    format!(
                        "\"sigmoid\" is one unit for two classes, and the data has {classes}; \
                         set \"output\": \"softmax\" (a unit per class)"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn is_imdb(&self) -> bool {
        matches!(self, Study::Imdb { .. })
    }
}

impl TryFrom<RawConfig> for ExperimentConfig {
    type Error = FieldError;

    /// Checks the rules that types alone do not enforce (`n_out <= n_in`, sizes above zero, a
    /// model that fits the task), in the order the fields are written.
    fn try_from(raw: RawConfig) -> Result<Self, FieldError> {
        if let Some(name) = &raw.name {
            check_name(name)?;
        }
        if raw.device.is_some() && raw.backend != Backend::Wgpu {
            return Err(FieldError::new(
                "device",
                format!(
                    "only applies to the wgpu backend (this config runs on {})",
                    raw.backend
                ),
            ));
        }
        if raw.repeats == Some(0) {
            return Err(FieldError::new("repeats", "must be at least 1, got 0"));
        }
        raw.task.validate_alone()?;
        let study = Study::pair(raw.task, raw.model)?;
        study.validate_model()?;
        raw.optimizer.validate()?;
        Ok(ExperimentConfig {
            name: raw.name,
            description: raw.description,
            study,
            optimizer: raw.optimizer,
            backend: raw.backend,
            device: raw.device,
            repeats: raw.repeats,
            seed: raw.seed,
            data: raw.data,
        })
    }
}

impl From<ExperimentConfig> for RawConfig {
    fn from(config: ExperimentConfig) -> Self {
        RawConfig {
            name: config.name,
            description: config.description,
            task: config.study.task(),
            model: config.study.model(),
            optimizer: config.optimizer,
            backend: config.backend,
            device: config.device,
            repeats: config.repeats,
            seed: config.seed,
            data: config.data,
        }
    }
}

impl TaskConfig {
    /// The task's own rules, checked before the model is paired with it.
    fn validate_alone(&self) -> Result<(), FieldError> {
        match self {
            TaskConfig::Echo(task) => task.validate(),
            TaskConfig::Imdb(task) => task.validate(),
            TaskConfig::Text(task) => task.validate(),
        }
    }
}

fn check_name(name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "name",
            format!("{name:?} is not a usable folder name (use letters, digits, - _ .)"),
        ))
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

impl OptimizerConfig {
    pub fn lr(&self) -> f64 {
        let OptimizerConfig::Adam { lr } = *self;
        lr
    }

    fn validate(&self) -> Result<(), FieldError> {
        let lr = self.lr();
        if lr.is_finite() && lr > 0.0 {
            Ok(())
        } else {
            Err(FieldError::new(
                "optimizer.lr",
                format!("must be a positive number, got {lr}"),
            ))
        }
    }
}

impl ExperimentConfig {
    /// The number of repeats: the config's, or the article's default for its task.
    pub fn repeats(&self) -> usize {
        self.repeats.unwrap_or(match self.study {
            Study::Echo { .. } => EchoTask::DEFAULT_REPEATS,
            Study::Imdb { .. } => ImdbTask::DEFAULT_REPEATS,
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
        let mut canonical =
            serde_json::to_vec(&self.hash_key()).expect("a config always serializes");
        if self.study.is_imdb() {
            canonical.extend_from_slice(format!("\nprotocol {}", ImdbTask::PROTOCOL).as_bytes());
        }
        crate::fsutil::sha256_hex(&canonical)[..12].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ExperimentConfig, String> {
        let origin = Path::new("x.json");
        ExperimentConfig::parse(text, origin).map_err(|e| e.to_string())
    }

    #[test]
    fn omitted_fields_take_the_article_defaults() {
        let config =
            parse(r#"{"task": {"kind": "echo"}, "model": {"kind": "attention"}}"#).unwrap();
        assert_eq!(
            config.study,
            Study::Echo {
                task: EchoTask {
                    n_in: 5,
                    n_out: 2,
                    cardinality: 50,
                    train_steps: 5000,
                    eval_samples: 100
                },
                model: EchoModel::Attention(AttentionModel {
                    hidden: 150,
                    score: Score::Additive,
                    attention: Attending::Soft,
                    temperature: None,
                    recurrent_activation: GateActivation::Sigmoid,
                    decoder_init: DecoderInit::Attnx,
                })
            }
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

    #[test]
    fn validation_split_and_the_stopping_metric_must_agree() {
        let imdb = |task: &str| {
            parse(&format!(
                r#"{{"task": {{"kind": "imdb", {task}}}, "model": {{"kind": "self_attention"}}}}"#
            ))
        };
        assert!(imdb(r#""validation_split": 0.2"#).is_ok());
        assert!(
            imdb(r#""validation_split": 0.2, "early_stopping": {"metric": "validation_loss"}"#)
                .is_ok()
        );
        assert_eq!(
            imdb(r#""validation_split": 1.5"#).unwrap_err(),
            "x.json: task.validation_split: must be a fraction between 0 and 1 (exclusive), got 1.5"
        );
        let e = imdb(r#""validation_split": 0.2, "early_stopping": {"metric": "test_loss"}"#)
            .unwrap_err();
        assert!(e.starts_with("x.json: task.early_stopping.metric: with task.validation_split the test split is evaluated once"), "{e}");
        let e = imdb(r#""early_stopping": {"metric": "validation_accuracy"}"#).unwrap_err();
        assert_eq!(
            e,
            "x.json: task.early_stopping.metric: validation_loss and validation_accuracy need task.validation_split"
        );
        let Study::Imdb { task, .. } = imdb(r#""validation_split": 0.2"#).unwrap().study else {
            unreachable!()
        };
        assert_eq!(task.validation_reviews(25_000).unwrap(), 5_000);
        assert_eq!(task.selection_metric(), StopMetric::ValidationAccuracy);
        let e = task.validation_reviews(5).unwrap_err().to_string();
        assert_eq!(
            e,
            "task.validation_split: 0.2 of 5 training reviews holds out 1; both the validation and the training part need at least 2 reviews"
        );
    }

    /// An override changes the hash; one that sets what the file (or its default) already
    /// says does not, so it finds the file's records.
    #[test]
    fn overrides_change_the_hash_unless_they_change_nothing() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(CONFIG_DIR)
            .join("attention.json");
        let with = |sets: &[&str]| {
            let sets: Vec<Override> = sets.iter().map(|s| s.parse().unwrap()).collect();
            ExperimentConfig::load_with(&path, &sets).unwrap()
        };
        let file = ExperimentConfig::load(&path).unwrap();
        assert_eq!(with(&[]).hash(), file.hash());
        assert_eq!(
            with(&["model.hidden=150", "task.eval_samples=100"]).hash(),
            file.hash()
        );
        let general = with(&["model.score=general"]);
        assert_ne!(general.hash(), file.hash());
        assert_eq!(general.name(), "attention", "the name stays the file's");
        let Study::Echo {
            model: EchoModel::Attention(m),
            ..
        } = general.study
        else {
            unreachable!()
        };
        assert_eq!(m.score, Score::General);
    }

    /// New optional fields must leave every recorded hash as it was: the committed configs
    /// still hash to the folders their results are stored under. IMDB configs also hash their
    /// training protocol: the serialized config is the one protocol 1 hashed (first column),
    /// and protocol 2 (burn-train) gives the second.
    #[test]
    fn committed_configs_keep_their_recorded_hashes() {
        let load = |name: &str| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(CONFIG_DIR)
                .join(format!("{name}.json"));
            ExperimentConfig::load(&path).unwrap()
        };
        for (name, hash) in [("baseline", "6ae247a4f9ef"), ("attention", "4b4698704096")] {
            assert_eq!(load(name).hash(), hash, "{name}");
        }
        for (name, protocol_1, protocol_2) in [
            ("imdb", "318106d4fb0c", "de4ec5e3d363"),
            ("imdb_pe", "b7f9cb7f475c", "6a5d135d6db9"),
            ("imdb_single", "a25bd5904b66", "65e4626836ec"),
        ] {
            let config = load(name);
            let serialized = serde_json::to_vec(&config.hash_key()).unwrap();
            assert_eq!(&crate::fsutil::sha256_hex(&serialized)[..12], protocol_1);
            assert_eq!(config.hash(), protocol_2, "{name}");
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
