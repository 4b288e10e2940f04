//! The on-disk schema of a finished repeat: what `attnx run` writes and `attnx report` reads.
//!
//! These types are plain data. The store and the report read them without knowing anything of
//! training; training fills them in.

use serde::{Deserialize, Serialize};

use crate::config::{Attending, Backend, EchoModel, ExperimentConfig, Score, Study, TextModel};
pub use crate::data::labelled::{ClassCount, DataFile, TextData};
pub use crate::machine::Machine;

/// Everything known about one finished repeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepeatRecord {
    pub attnx_version: String,
    /// The commit attnx was built from, when it was built from a git checkout.
    pub git_commit: Option<String>,
    pub experiment: String,
    pub config_hash: String,
    /// The full resolved config, defaults filled in.
    pub config: ExperimentConfig,
    pub repeat: usize,
    /// The repeat's own seed, derived from (config seed, repeat).
    pub seed: u64,
    pub backend: Backend,
    /// The device that ran it, as burn describes it (on wgpu, the GPU adapter's name).
    pub device: String,
    /// The machine that ran it: what decides whether another machine gives the same bits
    /// (records of attnx before 0.8.0 do not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
    /// Final accuracy in percent: exact match on the evaluation pairs (echo), test accuracy
    /// after the last epoch (IMDB), or of the model of `selected_epoch` (IMDB with
    /// `task.validation_split`).
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    /// Echo: per output position, how many of the `total` evaluation pairs the model got right
    /// there (records before 0.11.0 do not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_correct: Option<Vec<usize>>,
    pub loss_curve: LossCurve,
    /// Per-epoch metrics (IMDB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<EpochMetrics>,
    /// The epoch early stopping ended training after (`task.early_stopping`), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<usize>,
    /// With `task.validation_split`: the epoch whose model was evaluated on the test split, the
    /// best on validation (by early stopping's metric, or validation accuracy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_epoch: Option<usize>,
    /// sha256 of the data archive the repeat was trained on, when it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    /// A text task's data: its files (sha256, rows) and classes with their counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<TextData>,
    /// A text task's test predictions: `confusion[true][predicted]`, classes in `data`'s order,
    /// for the model the record's accuracy is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<usize>>>,
    /// Training time charged to this repeat (its share of its stack's time).
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// How many repeats were trained together as one stacked model.
    pub stack_size: usize,
    /// Unix time (seconds) the record was written.
    pub finished_at: u64,
    /// The saved weights, a burnpack file beside the record, when they were saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_file: Option<String>,
}

/// Macro-F1 in percent from a confusion matrix (`[true][predicted]`): the mean over all the
/// data's classes of each class's F1, a class with no test text that is never predicted
/// counting 0 (scikit-learn's `f1_score(average="macro", labels=<every class>,
/// zero_division=0)`).
pub fn macro_f1(confusion: &[Vec<usize>]) -> f64 {
    let k = confusion.len();
    if k == 0 {
        return 0.0;
    }
    let total: f64 = (0..k)
        .map(|c| {
            let hits = confusion[c][c] as f64;
            let actual: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[c]).sum();
            let denominator = (actual + predicted) as f64;
            if denominator == 0.0 {
                0.0
            } else {
                2.0 * hits / denominator
            }
        })
        .sum();
    100.0 * total / k as f64
}

/// Mean training loss over consecutive windows of `every` steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossCurve {
    pub every: usize,
    pub values: Vec<f32>,
}

/// One epoch of an IMDB run. Accuracies in percent; the training figures are running means
/// over the epoch's batches, with dropout on, as Keras reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    #[serde(flatten)]
    pub held_out: HeldOut,
    /// Training plus the held-out evaluation.
    pub seconds: f64,
}

/// An epoch's loss and accuracy on the split evaluated after it (`test_loss`/`test_accuracy`
/// or `validation_loss`/`validation_accuracy` in the record).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeldOut {
    /// The test split: the articles' protocol.
    Test { test_loss: f64, test_accuracy: f64 },
    /// A validation split carved from the training reviews (`task.validation_split`).
    Validation {
        validation_loss: f64,
        validation_accuracy: f64,
    },
}

impl HeldOut {
    pub fn new(validation: bool, loss: f64, accuracy: f64) -> Self {
        if validation {
            HeldOut::Validation {
                validation_loss: loss,
                validation_accuracy: accuracy,
            }
        } else {
            HeldOut::Test {
                test_loss: loss,
                test_accuracy: accuracy,
            }
        }
    }

    /// The split's name, as reports print it.
    pub fn split(&self) -> &'static str {
        match self {
            HeldOut::Test { .. } => "test",
            HeldOut::Validation { .. } => "validation",
        }
    }

    pub fn loss(&self) -> f64 {
        match *self {
            HeldOut::Test { test_loss: l, .. }
            | HeldOut::Validation {
                validation_loss: l, ..
            } => l,
        }
    }

    pub fn accuracy(&self) -> f64 {
        match *self {
            HeldOut::Test {
                test_accuracy: a, ..
            }
            | HeldOut::Validation {
                validation_accuracy: a,
                ..
            } => a,
        }
    }

    /// The accuracy when it was measured on the test split.
    pub fn test_accuracy(&self) -> Option<f64> {
        match *self {
            HeldOut::Test { test_accuracy, .. } => Some(test_accuracy),
            HeldOut::Validation { .. } => None,
        }
    }
}

impl RepeatRecord {
    /// A record of repeat `repeat` (seeded `seed`) of `config`, written by this build of attnx,
    /// with empty results: the runner fills them in (and tests, with made-up ones).
    pub fn new(config: &ExperimentConfig, repeat: usize, seed: u64) -> Self {
        RepeatRecord {
            attnx_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: Some(env!("ATTNX_GIT_COMMIT").to_string()).filter(|c| !c.is_empty()),
            experiment: config.name().to_string(),
            config_hash: config.hash(),
            config: config.clone(),
            repeat,
            seed,
            backend: config.backend,
            device: String::new(),
            machine: Some(crate::machine::this()),
            accuracy: 0.0,
            correct: 0,
            total: 0,
            position_correct: None,
            loss_curve: LossCurve {
                every: 0,
                values: Vec::new(),
            },
            epochs: Vec::new(),
            stopped_at: None,
            selected_epoch: None,
            data_sha256: None,
            data: None,
            confusion: None,
            train_seconds: 0.0,
            eval_seconds: 0.0,
            stack_size: 1,
            finished_at: 0,
            model_file: None,
        }
    }

    /// The record in `path`; the reason as a line when it cannot be read or parsed (the store
    /// and the report name such files and go on).
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }
}

/// Which figure of a repeat a comparison is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum At {
    /// The record's accuracy: exact match (echo), after the last epoch (IMDB).
    #[default]
    Final,
    /// Each repeat's best test accuracy over its epochs (the articles' headline figure).
    Best,
    /// The test accuracy after this epoch (1-based).
    Epoch(usize),
    /// The macro-F1 (%) of the model the record's accuracy is of (text tasks).
    MacroF1,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Final => f.write_str("final"),
            At::Best => f.write_str("best epoch"),
            At::Epoch(e) => write!(f, "epoch {e}"),
            At::MacroF1 => f.write_str("macro-F1"),
        }
    }
}

impl At {
    /// As `--at` takes it.
    pub fn argument(&self) -> String {
        match self {
            At::Final => "final".into(),
            At::Best => "best".into(),
            At::Epoch(e) => format!("epoch:{e}"),
            At::MacroF1 => "macro_f1".into(),
        }
    }
}

impl std::str::FromStr for At {
    type Err = String;

    /// `final`, `best`, `macro_f1`, or an epoch: `epoch:2` or `2`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "final" => Ok(At::Final),
            "best" => Ok(At::Best),
            "macro_f1" => Ok(At::MacroF1),
            other => other
                .strip_prefix("epoch:")
                .unwrap_or(other)
                .parse::<usize>()
                .ok()
                .filter(|&e| e >= 1)
                .map(At::Epoch)
                .ok_or_else(|| {
                    format!("{text:?}: expected final, best, macro_f1 or an epoch (epoch:N)")
                }),
        }
    }
}

impl RepeatRecord {
    /// Echo: the share (%) of evaluation pairs right at each output position; `None` for
    /// records without the counts.
    pub fn position_accuracy(&self) -> Option<Vec<f64>> {
        let total = self.total.max(1) as f64;
        let counts = self.position_correct.as_ref()?;
        Some(counts.iter().map(|&n| 100.0 * n as f64 / total).collect())
    }

    /// The repeat's figure at `at`: its accuracy (final), or its best or a given epoch's test
    /// accuracy; `None` when it has no such figure (echo records have no epochs; a validation
    /// split tests once).
    pub fn figure(&self, at: At) -> Option<f64> {
        match at {
            At::Final => Some(self.accuracy),
            At::Best => self
                .epochs
                .iter()
                .map(|e| e.held_out.test_accuracy())
                .collect::<Option<Vec<f64>>>()?
                .into_iter()
                .reduce(f64::max),
            At::Epoch(e) => self.epochs.get(e.checked_sub(1)?)?.held_out.test_accuracy(),
            At::MacroF1 => self.confusion.as_deref().map(macro_f1),
        }
    }
}

/// The figures at `at` of repeats 0, 1, ... (records sorted by repeat), up to the first repeat
/// not recorded or without that figure: what a sequential design's looks are taken from, so
/// that every process and the report count the same repeats.
pub fn leading_figures(records: &[RepeatRecord], at: At) -> Vec<f64> {
    records
        .iter()
        .enumerate()
        .take_while(|(i, r)| r.repeat == *i)
        .map_while(|(_, r)| r.figure(at))
        .collect()
}

/// Which configs a change of numerics touched.
type Touches = fn(&ExperimentConfig) -> bool;

/// The attnx versions that changed what training computes, each with the configs it changed
/// (versions not listed changed no figure: they made attnx faster, bit for bit).
const NUMERICS_CHANGES: &[(&str, Touches)] = &[
    // The self-attention's softmax through the backend's fused kernel.
    ("0.2.0", |c| {
        matches!(
            c.study,
            Study::Imdb {
                model: TextModel::SelfAttention(_),
                ..
            }
        )
    }),
    // IMDB batches trained as two halves on two threads (CPU backends).
    ("0.3.0", |c| {
        matches!(c.study, Study::Imdb { .. }) && c.backend.is_cpu()
    }),
    // Echo: each recurrent kernel's gradient in one matmul, the decoder's fused softmax.
    ("0.4.0", |c| matches!(c.study, Study::Echo { .. })),
    // Self-attention without masked scores as one fused CPU kernel.
    ("0.5.0", |c| match c.study {
        Study::Imdb {
            model: TextModel::SelfAttention(m),
            ..
        } => !m.masks_scores() && c.backend.is_cpu(),
        _ => false,
    }),
    // The IMDB LSTMs' element-wise step as one fused CPU op (its own sigmoid and tanh).
    ("0.6.0", |c| {
        matches!(
            c.study,
            Study::Imdb {
                model: TextModel::Lstm(_),
                ..
            }
        ) && c.backend.is_cpu()
    }),
    // Echo's LSTMs and E1's attention decoder as fused CPU ops (whole sequences, own
    // activations and summation order).
    ("0.7.0", |c| {
        matches!(c.study, Study::Echo { .. }) && c.backend.is_cpu()
    }),
    // Echo's loss as one fused CPU op whose sums do not depend on the vector width (burn-flex's
    // log_softmax summed in 8 lanes with AVX2, 16 with AVX-512).
    ("0.8.0", |c| {
        matches!(c.study, Study::Echo { .. }) && c.backend.is_cpu()
    }),
    // The IMDB LSTMs' whole recurrence as one fused CPU op (was: a fused cell per step, burn's
    // products): another summation order for the recurrent products and their gradient. And
    // E4's echo decoders (dot, general, cosine, hard) through E1's fused decoder op.
    ("0.9.0", |c| {
        let e4_decoder = match &c.study {
            Study::Echo {
                model: EchoModel::Attention(m),
                ..
            } => m.score != Score::Additive || m.attention == Attending::Hard,
            _ => false,
        };
        let imdb_lstm = matches!(
            c.study,
            Study::Imdb {
                model: TextModel::Lstm(_),
                ..
            }
        );
        (e4_decoder || imdb_lstm) && c.backend.is_cpu()
    }),
];

/// Whether a record of `config` made by attnx `version` has the figures this attnx would
/// compute: no later version changed that config's numbers. (`attnx report` labels the
/// records that do not.)
pub fn numerics_current(version: &str, config: &ExperimentConfig) -> bool {
    let parse = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    let Some(made) = parse(version) else {
        return false;
    };
    NUMERICS_CHANGES.iter().all(|(changed, touches)| {
        parse(changed).is_some_and(|changed| changed <= made) || !touches(config)
    })
}

/// A config and its records for repeats `0..repeats`, in order: what a run returns and what
/// its table is made of.
#[derive(Debug)]
pub struct ConfigRecords {
    pub config: ExperimentConfig,
    pub records: Vec<RepeatRecord>,
}

impl ConfigRecords {
    pub fn accuracies(&self) -> Vec<f64> {
        self.records.iter().map(|r| r.accuracy).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(file: &str) -> ExperimentConfig {
        ExperimentConfig::load(std::path::Path::new(&format!("configs/{file}.json"))).unwrap()
    }

    /// A record stands for this attnx unless a later version changed its config's numbers.
    #[test]
    fn a_record_is_current_until_a_later_version_changes_its_model() {
        let current = env!("CARGO_PKG_VERSION");
        for file in ["baseline", "imdb_pe", "imdb_lstm_last", "imdb_pe_masked"] {
            assert!(numerics_current(current, &config(file)), "{file}");
        }
        // E1 changed last in 0.8.0 (on the CPU), E4's echo decoders and the LSTM classifiers
        // in 0.9.0.
        assert!(numerics_current("0.8.0", &config("baseline")));
        assert!(numerics_current("0.8.0", &config("attention")));
        for variant in ["attention_dot", "attention_hard", "attention_cosine"] {
            assert!(!numerics_current("0.8.0", &config(variant)), "{variant}");
            assert!(numerics_current("0.9.0", &config(variant)), "{variant}");
        }
        assert!(!numerics_current("0.7.0", &config("attention")));
        assert!(numerics_current("0.7.0", &config("imdb_pe")));
        let mut echo_on_gpu = config("attention");
        echo_on_gpu.backend = Backend::Wgpu;
        assert!(
            numerics_current("0.4.0", &echo_on_gpu),
            "the GPU keeps burn's ops"
        );
        assert!(!numerics_current("0.3.0", &config("baseline")));
        assert!(numerics_current("0.9.0", &config("imdb_lstm_last")));
        assert!(!numerics_current("0.8.0", &config("imdb_lstm_last")));
        assert!(numerics_current("0.8.0", &config("baseline")));
        // The fused kernel (0.5.0) changed E2, not the masked variants nor the GPU's path.
        assert!(!numerics_current("0.4.0", &config("imdb_pe")));
        assert!(numerics_current("0.3.0", &config("imdb_pe_masked")));
        let mut on_gpu = config("imdb_pe");
        on_gpu.backend = Backend::Wgpu;
        assert!(numerics_current("0.2.0", &on_gpu));
        assert!(!numerics_current("0.1.0", &on_gpu));
        assert!(!numerics_current("not a version", &config("baseline")));
        assert!(
            numerics_current("0.10.0", &config("imdb_pe")),
            "numeric order"
        );
    }

    /// Committed records keep their exact form, and a validation epoch names its split.
    #[test]
    fn epoch_figures_name_their_split() {
        let committed = r#"{"epoch":2,"train_loss":0.3,"train_accuracy":88.5,"test_loss":0.4,"test_accuracy":83.25,"seconds":41.0}"#;
        let epoch: EpochMetrics = serde_json::from_str(committed).unwrap();
        assert_eq!(epoch.held_out, HeldOut::new(false, 0.4, 83.25));
        assert_eq!(epoch.held_out.test_accuracy(), Some(83.25));
        assert_eq!(serde_json::to_string(&epoch).unwrap(), committed);

        let validation = EpochMetrics {
            held_out: HeldOut::new(true, 0.5, 81.0),
            ..epoch
        };
        let text = serde_json::to_string(&validation).unwrap();
        assert!(text.contains(r#""validation_loss":0.5,"validation_accuracy":81.0"#));
        assert!(!text.contains("test_"));
        let back: EpochMetrics = serde_json::from_str(&text).unwrap();
        assert_eq!(back, validation);
        assert_eq!(back.held_out.test_accuracy(), None);
        assert_eq!(back.held_out.split(), "validation");
    }
}
