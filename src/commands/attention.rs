//! `attnx attention`: loads a repeat's saved model, checks it against its record, and draws
//! its attention as a heatmap: output step x input position for the echo decoder, the
//! attention each word of a review receives for an IMDB model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;

use crate::config::{ExperimentConfig, Study, TextModel};
use crate::data::imdb::{FIRST_WORD, OOV, PAD, START, pad_pre};
use crate::error::InputError;
use crate::models::classifier::TextClassifier;
use crate::record::RepeatRecord;
use crate::report::heatmap::{Panel, heatmap_svg, tokens_svg};
use crate::rng::{self, Stream, repeat_seed};
use crate::store::ResultStore;
use crate::train::echo::{build_model, evaluate, evaluation_pairs};

#[derive(Debug, clap::Args)]
pub struct AttentionArgs {
    /// A config file, or the name of one in configs/.
    pub config: String,
    /// Which repeat's saved model to use.
    #[arg(long, default_value_t = 0)]
    pub repeat: usize,
    /// The results folder holding the model.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Where to write the SVG [default: <results>/plots/<config>_attention_<repeat>.svg].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Echo: how many evaluation pairs to draw.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=16))]
    pub pairs: u64,
    /// IMDB: which test review to draw (in attnx's order: negative, then positive, by file name).
    #[arg(long, default_value_t = 0)]
    pub review: usize,
    /// IMDB: the data (as for `attnx run`).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
}

pub fn run(args: &AttentionArgs) -> Result<()> {
    let path = crate::config::resolve_config_path(&args.config)?;
    let config = ExperimentConfig::load(&path)?;
    if let crate::config::Study::Imdb {
        corpus: crate::config::Corpus::Text(_),
        ..
    } = &config.study
    {
        return Err(InputError(format!(
            "{}: a text task; attnx attention draws the echo and IMDB models only",
            path.display()
        ))
        .into());
    }
    let store = ResultStore::new(&args.results);
    let dir = store.config_dir(&config);
    let stored = store.load(&config)?;
    let Some(record) = stored.records.get(&args.repeat) else {
        return Err(InputError(format!(
            "{}: no record of repeat {} in {} (run it first)",
            config.name(),
            args.repeat,
            dir.display()
        ))
        .into());
    };
    let model_path = record.model_file.as_ref().map(|file| dir.join(file));
    let Some(model_path) = model_path.filter(|path| path.is_file()) else {
        let out = if args.results == Path::new("results") {
            String::new()
        } else {
            format!(" --out {}", args.results.display())
        };
        return Err(InputError(format!(
            "{}: no saved model for repeat {} in {} (saved models are not committed); `attnx run {} --repeats {} --save-model --force{out}` trains it again, to the same record, and saves it",
            config.name(),
            args.repeat,
            dir.display(),
            args.config,
            args.repeat + 1,
        ))
        .into());
    };
    let device = crate::backend::device(config.backend, config.device)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.results
            .join("plots")
            .join(crate::report::heatmap_file(config.name(), args.repeat))
    });
    let shown = Shown {
        config: &config,
        record,
        model_path: &model_path,
        device: &device,
    };
    let svg = match &config.study {
        Study::Echo { task, model } => echo(&shown, task, model, args.pairs as usize)?,
        Study::Imdb { task, model, .. } => imdb(&shown, task, model, args)?,
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::fsutil::write_atomic(&out, svg.as_bytes())?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn load_error(path: &Path) -> impl Fn(burn::store::RecordError) -> anyhow::Error + '_ {
    move |e| {
        anyhow::anyhow!(
            "{}: cannot load the model: {}",
            path.display(),
            crate::models::record_error(&e)
        )
    }
}

/// The saved repeat whose attention is drawn.
struct Shown<'a> {
    config: &'a ExperimentConfig,
    record: &'a RepeatRecord,
    model_path: &'a Path,
    device: &'a Device,
}

impl Shown<'_> {
    fn seed(&self) -> u64 {
        repeat_seed(self.config.seed, self.record.repeat)
    }

    /// Fails unless the loaded model evaluates to the accuracy its record holds.
    fn check(&self, accuracy: f64) -> Result<()> {
        println!(
            "{} repeat {}: the saved model evaluates to {accuracy:.2}% (recorded: {:.2}%)",
            self.config.name(),
            self.record.repeat,
            self.record.accuracy
        );
        if (accuracy - self.record.accuracy).abs() > 1e-9 {
            bail!("the saved model does not reproduce its recorded accuracy");
        }
        Ok(())
    }

    fn title(&self, what: &str) -> String {
        format!(
            "{}, repeat {}: {what}",
            self.config.name(),
            self.record.repeat
        )
    }
}

fn echo(
    shown: &Shown<'_>,
    task: &crate::config::EchoTask,
    model: &crate::config::EchoModel,
    pairs: usize,
) -> Result<String> {
    let (device, total) = (shown.device, shown.record.total);
    let seed = shown.seed();
    let model = build_model(task, model, &[seed], device)
        .try_load_file(shown.model_path)
        .map_err(load_error(shown.model_path))?;
    let task = *task;
    let correct = evaluate(&model, &task, &[seed], total, device)[0].correct;
    shown.check(100.0 * correct as f64 / total as f64)?;

    // The first pairs the evaluation drew.
    let drawn: Vec<_> = evaluation_pairs(&task, seed).take(pairs).collect();
    let mut x = Vec::new();
    for pair in &drawn {
        task.one_hot_into(&pair.input, &mut x);
    }
    let (t, v) = (task.n_in, task.cardinality);
    let x = Tensor::<4>::from_data(TensorData::new(x, [1, pairs, t, v]), device);
    let weights = model
        .attention(x.clone())
        .context("this model has no attention to draw (the baseline)")?
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let logits = model
        .forward(x)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    let panels: Vec<Panel> = drawn
        .iter()
        .enumerate()
        .map(|(i, pair)| {
            let predicted = task.decode(&logits[i * t * v..(i + 1) * t * v]);
            let weights = &weights[i * t * t..(i + 1) * t * t];
            Panel {
                title: format!("pair {}: target {:?}", i + 1, &pair.target[..task.n_out]),
                columns: pair.input.iter().map(|v| v.to_string()).collect(),
                rows: predicted.iter().map(|v| v.to_string()).collect(),
                cells: weights
                    .chunks(t)
                    .map(|row| row.iter().map(|&w| Some(f64::from(w))).collect())
                    .collect(),
                x_desc: "input value (encoder position)".into(),
                y_desc: "output value (decoder step)".into(),
                decimals: Some(2),
            }
        })
        .collect();
    let title = format!(
        "{}: attention of repeat {}",
        shown.config.name(),
        shown.record.repeat
    );
    heatmap_svg(&title, &panels)
}

fn imdb(
    shown: &Shown<'_>,
    task: &crate::config::ImdbTask,
    text_model: &TextModel,
    args: &AttentionArgs,
) -> Result<String> {
    let device = shown.device;
    let model = TextClassifier::new(
        text_model,
        task.num_words,
        task.maxlen,
        2,
        &mut rng::rng(shown.seed(), Stream::Init),
        device,
    )
    .load_weights(shown.model_path)
    .map_err(load_error(shown.model_path))?;
    let (path, _) =
        crate::data::prepare::locate(args.data.as_deref(), shown.config.data.as_deref())?;
    let (data, encoded) = crate::data::prepare::ImdbData::prepare_encoded(task, &path)?;
    let data = std::sync::Arc::new(data);
    let hits = crate::train::imdb::evaluate(&model, &data, device).correct;
    shown.check(100.0 * hits as f64 / data.test.len() as f64)?;

    let Some(review_ids) = encoded.test.ids.get(args.review) else {
        bail!(
            "--review {}: there are {} test reviews",
            args.review,
            encoded.test.ids.len()
        );
    };
    let ids = pad_pre(review_ids, task.maxlen);
    let input = Tensor::<2, Int>::from_data(
        TensorData::new(
            ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
            [1, task.maxlen],
        ),
        device,
    );
    // [1, H, T, T] -> what each key position receives, averaged over heads and queries.
    let received = model
        .attention(input)
        .context("this model has no attention to draw (its pooling is not attention)")?
        .mean_dim(1)
        .mean_dim(2)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let subtitle = match text_model {
        TextModel::Lstm(_) => {
            "the attention pooling's weights (query: the last LSTM state); darker = more attention; the model sees the last maxlen tokens"
        }
        TextModel::SelfAttention(_) => {
            "mean over heads and query positions; darker = more attention; the model sees the last maxlen tokens"
        }
    };
    let label = if encoded.test.labels[args.review] == 1 {
        "positive"
    } else {
        "negative"
    };
    let title = shown.title(&format!(
        "attention each token of test review {} ({label}) receives",
        encoded.test.names[args.review]
    ));
    tokens_svg(
        &title,
        subtitle,
        &words_and_weights(&ids, &received, &encoded.words),
    )
}

/// Each token of a padded review as the model sees it (from the cached ids and vocabulary, no
/// re-tokenizing) with the attention it receives. Padding receives attention too (no mask in
/// E2/E3), but it is no word: it is left out.
fn words_and_weights(ids: &[u32], received: &[f32], words: &[String]) -> Vec<(String, f32)> {
    ids.iter()
        .zip(received)
        .filter(|(id, _)| **id != PAD)
        .map(|(&id, &weight)| {
            let word = match id {
                START => "<start>".to_string(),
                OOV => "<oov>".to_string(),
                id => words
                    .get((id - FIRST_WORD) as usize)
                    .cloned()
                    .unwrap_or_default(),
            };
            (word, weight)
        })
        .collect()
}
