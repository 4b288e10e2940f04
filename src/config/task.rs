//! The tasks a model is trained and evaluated on, with the articles' defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::FieldError;

/// The task of a config file, as written (`"task": {"kind": "echo", ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskConfig {
    /// E1's synthetic echo task: output the first `n_out` of `n_in` random values, then zeros.
    Echo(EchoTask),
    /// IMDB sentiment classification (E2, E3): 25,000 training and 25,000 test reviews.
    Imdb(ImdbTask),
    /// The user's own labelled text, k classes, trained as the IMDB classifiers are.
    Text(TextTask),
}

impl TaskConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            TaskConfig::Echo(_) => "echo",
            TaskConfig::Imdb(_) => "imdb",
            TaskConfig::Text(_) => "text",
        }
    }
}

/// A classification task on the user's own labelled text (`"kind": "text"`): where the texts
/// are, and the same training settings as the IMDB task, with the same defaults.
///
/// The fields are the IMDB task's plus the source's, written out rather than flattened:
/// serde cannot combine `flatten` with `deny_unknown_fields`, and a misspelt field must fail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextTask {
    /// The training texts: a CSV, TSV or JSON Lines file, or a folder with a subfolder of
    /// `.txt` files per class (`train/<label>/*.txt`). Relative to the current folder.
    pub train: PathBuf,
    /// The test texts, in the same form; or else `test_fraction` or `split_column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// Hold out this fraction of the training texts as the test split, stratified by class and
    /// drawn from the config's seed (the same split for every repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// A column (key) of the training file saying each row's split: `train` or `test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_column: Option<String>,
    /// The column (CSV, TSV) or key (JSON Lines) holding the text.
    #[serde(default = "text::text_column")]
    pub text_column: String,
    /// The column or key holding the label: any string, or a number.
    #[serde(default = "text::label_column")]
    pub label_column: String,
    #[serde(default = "imdb::num_words")]
    pub num_words: usize,
    #[serde(default = "imdb::maxlen")]
    pub maxlen: usize,
    #[serde(default = "imdb::epochs")]
    pub epochs: usize,
    #[serde(default = "imdb::batch_size")]
    pub batch_size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_split: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
}

/// Where a text task's texts are, and how to read them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TextSource {
    pub train: PathBuf,
    pub test: TestSplit,
    pub text_column: String,
    pub label_column: String,
}

/// Where a text task's test texts come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TestSplit {
    File(PathBuf),
    /// A fraction of the training texts.
    Fraction(Fraction),
    Column(String),
}

/// A fraction in (0, 1), kept as its bits so that a source can be compared and hashed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fraction(u64);

impl Fraction {
    pub fn new(value: f64) -> Self {
        Self(value.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

mod text {
    pub fn text_column() -> String {
        "text".into()
    }
    pub fn label_column() -> String {
        "label".into()
    }
}

impl TextTask {
    /// The training settings (those the IMDB task has) and the source.
    pub fn split(&self) -> (ImdbTask, TextSource) {
        let training = ImdbTask {
            num_words: self.num_words,
            maxlen: self.maxlen,
            epochs: self.epochs,
            batch_size: self.batch_size,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            validation_split: self.validation_split,
            early_stopping: self.early_stopping,
        };
        let test = match (&self.test, self.test_fraction, &self.split_column) {
            (Some(file), _, _) => TestSplit::File(file.clone()),
            (_, Some(fraction), _) => TestSplit::Fraction(Fraction::new(fraction)),
            (_, _, Some(column)) => TestSplit::Column(column.clone()),
            (None, None, None) => unreachable!("validated: one test source"),
        };
        let source = TextSource {
            train: self.train.clone(),
            test,
            text_column: self.text_column.clone(),
            label_column: self.label_column.clone(),
        };
        (training, source)
    }

    /// The task as written, from its two halves.
    pub fn join(training: &ImdbTask, source: &TextSource) -> Self {
        let (mut test, mut test_fraction, mut split_column) = (None, None, None);
        match &source.test {
            TestSplit::File(file) => test = Some(file.clone()),
            TestSplit::Fraction(fraction) => test_fraction = Some(fraction.get()),
            TestSplit::Column(column) => split_column = Some(column.clone()),
        }
        TextTask {
            train: source.train.clone(),
            test,
            test_fraction,
            split_column,
            text_column: source.text_column.clone(),
            label_column: source.label_column.clone(),
            num_words: training.num_words,
            maxlen: training.maxlen,
            epochs: training.epochs,
            batch_size: training.batch_size,
            train_limit: training.train_limit,
            test_limit: training.test_limit,
            validation_split: training.validation_split,
            early_stopping: training.early_stopping,
        }
    }

    pub(super) fn validate(&self) -> Result<(), FieldError> {
        let given = [
            self.test.is_some(),
            self.test_fraction.is_some(),
            self.split_column.is_some(),
        ];
        match given.iter().filter(|&&g| g).count() {
            0 => {
                return Err(FieldError::new(
                    "task",
                    "a text task needs its test texts: \"test\" (a file or folder), \
                     \"test_fraction\" (held out of \"train\") or \"split_column\"",
                ));
            }
            1 => {}
            _ => {
                return Err(FieldError::new(
                    "task",
                    "give one of \"test\", \"test_fraction\" and \"split_column\", not several",
                ));
            }
        }
        if let Some(fraction) = self.test_fraction
            && !(fraction > 0.0 && fraction < 1.0)
        {
            return Err(FieldError::new(
                "task.test_fraction",
                format!("must be a fraction between 0 and 1 (exclusive), got {fraction}"),
            ));
        }
        for (field, value) in [
            ("task.text_column", &self.text_column),
            ("task.label_column", &self.label_column),
        ] {
            if value.is_empty() {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        if self.text_column == self.label_column {
            return Err(FieldError::new(
                "task.label_column",
                format!("is the text column too ({:?})", self.text_column),
            ));
        }
        self.split().0.validate()
    }
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
}

impl EchoTask {
    /// Repeats a config runs when it does not say: the article's 10.
    pub const DEFAULT_REPEATS: usize = 10;

    pub(super) fn validate(&self) -> Result<(), FieldError> {
        FieldError::positive("task.n_in", self.n_in)?;
        FieldError::positive("task.n_out", self.n_out)?;
        if self.n_out > self.n_in {
            return Err(FieldError::new(
                "task.n_out",
                format!(
                    "must not exceed task.n_in ({}), got {}",
                    self.n_in, self.n_out
                ),
            ));
        }
        if self.cardinality < 2 {
            return Err(FieldError::new(
                "task.cardinality",
                format!("must be at least 2, got {}", self.cardinality),
            ));
        }
        FieldError::positive("task.train_steps", self.train_steps)?;
        FieldError::positive("task.eval_samples", self.eval_samples)
    }
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
    /// Use only this many training reviews (a fixed sample, stratified by class), for quick runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Evaluate on only this many test reviews (a fixed sample, stratified by class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Hold out this fraction of the training reviews (stratified by class, drawn anew for each
    /// repeat from its seed) as a validation split: it is evaluated after every epoch in place
    /// of the test split, and the test split is evaluated once, after training, on the model of
    /// the epoch validation picks. Off by default: the articles evaluate on the test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_split: Option<f64>,
    /// Stop a repeat once a held-out figure has not improved for `patience` epochs. Off by
    /// default: the articles train every epoch and report the best one after the fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
}

/// When a repeat stops before `epochs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// The figure watched after each epoch.
    pub metric: StopMetric,
    /// Epochs without a new best after which the repeat stops.
    #[serde(default = "one")]
    pub patience: usize,
}

fn one() -> usize {
    1
}

/// A figure early stopping can watch, measured after each epoch on the held-out split: the
/// test split, or the validation split when `task.validation_split` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    TestLoss,
    TestAccuracy,
    ValidationLoss,
    ValidationAccuracy,
}

impl StopMetric {
    /// Whether lower is better.
    pub fn is_loss(self) -> bool {
        matches!(self, StopMetric::TestLoss | StopMetric::ValidationLoss)
    }

    fn is_validation(self) -> bool {
        matches!(
            self,
            StopMetric::ValidationLoss | StopMetric::ValidationAccuracy
        )
    }
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
}

impl ImdbTask {
    /// The default `num_words` and `maxlen` (E2's).
    pub fn default_sizes() -> (usize, usize) {
        (imdb::num_words(), imdb::maxlen())
    }

    /// Repeats a config runs when it does not say: the articles ran one.
    pub const DEFAULT_REPEATS: usize = 1;

    /// How IMDB repeats are trained, part of their hash so that records of one protocol are
    /// never taken for another's. 1: attnx's hand-written loop (one permutation reshuffled
    /// every epoch, one dropout stream per repeat); 2: burn-train's loop over burn's
    /// `DataLoader` (a fresh shuffle per epoch from the loader's generator, one dropout stream
    /// per batch), which can resume from a checkpoint.
    pub const PROTOCOL: u32 = 2;

    /// Training batches per epoch over `train_reviews` reviews.
    pub fn batches(&self, train_reviews: usize) -> usize {
        train_reviews.div_ceil(self.batch_size)
    }

    /// How many of `train_reviews` training reviews `validation_split` holds out (none
    /// without one); an error when that leaves either side without a review of each label.
    pub fn validation_reviews(&self, train_reviews: usize) -> Result<usize, FieldError> {
        let Some(fraction) = self.validation_split else {
            return Ok(0);
        };
        let held = (fraction * train_reviews as f64).round() as usize;
        if held < 2 || train_reviews - held < 2 {
            return Err(FieldError::new(
                "task.validation_split",
                format!(
                    "{fraction} of {train_reviews} training reviews holds out {held}; both the \
                     validation and the training part need at least 2 reviews"
                ),
            ));
        }
        Ok(held)
    }

    /// The metric that picks the epoch whose model is tested when `validation_split` is set:
    /// early stopping's, or else validation accuracy (the figure the articles pick by).
    pub fn selection_metric(&self) -> StopMetric {
        self.early_stopping
            .map_or(StopMetric::ValidationAccuracy, |s| s.metric)
    }

    pub(super) fn validate(&self) -> Result<(), FieldError> {
        if self.num_words <= 3 {
            return Err(FieldError::new(
                "task.num_words",
                format!(
                    "must exceed 3 (ids 0-2 are padding, start and out-of-vocabulary), got {}",
                    self.num_words
                ),
            ));
        }
        FieldError::positive("task.maxlen", self.maxlen)?;
        FieldError::positive("task.epochs", self.epochs)?;
        FieldError::positive("task.batch_size", self.batch_size)?;
        if let Some(fraction) = self.validation_split
            && !(fraction > 0.0 && fraction < 1.0)
        {
            return Err(FieldError::new(
                "task.validation_split",
                format!("must be a fraction between 0 and 1 (exclusive), got {fraction}"),
            ));
        }
        if let Some(stopping) = self.early_stopping {
            FieldError::positive("task.early_stopping.patience", stopping.patience)?;
            match (
                stopping.metric.is_validation(),
                self.validation_split.is_some(),
            ) {
                (true, false) => {
                    return Err(FieldError::new(
                        "task.early_stopping.metric",
                        "validation_loss and validation_accuracy need task.validation_split",
                    ));
                }
                (false, true) => {
                    return Err(FieldError::new(
                        "task.early_stopping.metric",
                        "with task.validation_split the test split is evaluated once, after \
                         training; watch validation_loss or validation_accuracy",
                    ));
                }
                _ => {}
            }
        }
        for (field, limit) in [
            ("task.train_limit", self.train_limit),
            ("task.test_limit", self.test_limit),
        ] {
            if limit.is_some_and(|n| n < 2) {
                return Err(FieldError::new(
                    field,
                    "must be at least 2 (one text of each label)",
                ));
            }
        }
        Ok(())
    }
}
