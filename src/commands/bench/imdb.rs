//! `attnx bench --imdb`: the IMDB classifiers (and text configs, on their own texts) timed
//! through the very loop `attnx run` uses (burn-train's learner, loaders, metrics and
//! checkpoints): `--steps` training batches and `--test-reviews` test reviews per case,
//! extrapolated to a full epoch (25,000 reviews each).

use std::sync::Arc;

use anyhow::Result;

use super::{BenchArgs, Peak, Results, peak};
use crate::backend;
use crate::config::{ExperimentConfig, ImdbTask, Study, resolve_config_path};
use crate::data::prepare;
use crate::error::InputError;
use crate::progress::{Mode, Progress};
use crate::train::{ImdbStudy, imdb};

/// The configs measured when `--imdb` names none: E2 with and without positions, E3, and the
/// LSTM with attention pooling (E4).
const DEFAULT_CONFIGS: [&str; 4] = ["imdb", "imdb_pe", "imdb_single", "imdb_lstm_attention"];

/// Reviews per split of the full data set, for the extrapolated epoch.
const FULL_SPLIT: usize = 25_000;

/// One timed case: seconds of training `steps` batches and of evaluating `test_reviews`, and
/// the CPU time the whole case used.
struct Timing {
    train_seconds: f64,
    eval_seconds: f64,
    cpu_seconds: Option<f64>,
}

/// The configs `--imdb` names (or the defaults) with their tasks, and the sizes, checked before
/// anything is timed.
pub fn configs(args: &BenchArgs, names: &[String]) -> Result<Vec<(ExperimentConfig, ImdbTask)>> {
    let names: Vec<String> = if names.is_empty() {
        DEFAULT_CONFIGS.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    if args.steps < 2 || args.test_reviews < 2 {
        return Err(InputError("--steps and --test-reviews must be at least 2".into()).into());
    }
    let configs = names
        .iter()
        .map(|name| {
            let config = ExperimentConfig::load(&resolve_config_path(name)?)?;
            match config.study {
                Study::Imdb { task, .. } => Ok((config, task)),
                _ => Err(InputError(format!(
                    "{name}: not a classifier (an imdb or text config)"
                ))),
            }
        })
        .collect::<Result<Vec<_>, InputError>>()?;
    Ok(configs)
}

/// `attnx bench --imdb` (the configs checked by [`configs`]).
pub fn run(
    args: &BenchArgs,
    configs: Vec<(ExperimentConfig, ImdbTask)>,
    peak: &Peak,
) -> Result<()> {
    eprintln!(
        "timing {} training batches and {} test reviews per case, through attnx run's training loop",
        args.steps, args.test_reviews
    );
    let mut results = Results::new(&[
        "config",
        "backend",
        "ms/step",
        "s/train epoch",
        "s/test pass",
        "s/epoch",
        "speed vs first",
        "train GFLOP/s",
        "epoch GFLOP/s",
        "of peak",
        "cores",
    ]);
    let mut reference: Option<f64> = None;
    for (config, task) in &configs {
        let Study::Imdb { model, corpus, .. } = &config.study else {
            unreachable!("checked above")
        };
        let model = *model;
        let timed = ImdbTask {
            epochs: 1,
            train_limit: Some(args.steps * task.batch_size),
            test_limit: Some(args.test_reviews),
            validation_split: None,
            early_stopping: None,
            ..*task
        };
        let warm_up = ImdbTask {
            train_limit: Some(4 * task.batch_size),
            test_limit: Some(2),
            ..timed
        };
        let source = prepare::DataSource::locate(corpus, config.seed, args.data.as_deref(), None)?;
        let data = Arc::new(source.prepare(&timed)?);
        for &backend_choice in &args.backends {
            let device = backend::device(backend_choice, None)?;
            let study = |task: ImdbTask| ImdbStudy {
                task,
                model,
                data: data.clone(),
            };
            time(&study(warm_up), config, &device)?;
            let t = time(&study(timed), config, &device)?;
            // A text task's data may hold fewer texts than asked for: time what was run.
            let steps = timed.batches(data.train.len());
            let ms_per_step = 1e3 * t.train_seconds / steps as f64;
            let train_epoch = ms_per_step / 1e3 * timed.batches(FULL_SPLIT) as f64;
            let test_pass = t.eval_seconds * FULL_SPLIT as f64 / data.test.len() as f64;
            let epoch = train_epoch + test_pass;
            let reference = *reference.get_or_insert(epoch);
            let step_flops = crate::models::flops::imdb_step(task, &model);
            let train_gflops = step_flops / (ms_per_step / 1e3) / 1e9;
            let epoch_flops = step_flops * timed.batches(FULL_SPLIT) as f64
                + crate::models::flops::imdb_evaluation(task, &model, FULL_SPLIT);
            let epoch_gflops = epoch_flops / epoch / 1e9;
            let cores = t
                .cpu_seconds
                .map(|c| c / (t.train_seconds + t.eval_seconds));
            let row = vec![
                config.name().to_string(),
                backend_choice.to_string(),
                format!("{ms_per_step:.1}"),
                format!("{train_epoch:.1}"),
                format!("{test_pass:.1}"),
                format!("{epoch:.1}"),
                format!("{:.2}x", reference / epoch),
                format!("{train_gflops:.1}"),
                format!("{epoch_gflops:.1}"),
                format!("{:.1}%", 100.0 * epoch_gflops / peak.all_cores),
                cores.map_or("-".into(), |c| format!("{c:.2}")),
            ];
            results.push(row);
        }
    }
    results.print(&format!(
        "s/train epoch: ms/step x the batches of {FULL_SPLIT} reviews; s/test pass: the {} test \
         reviews' time scaled to {FULL_SPLIT}; s/epoch: both, one repeat's epoch in `attnx run`; \
         GFLOP/s: the matrix products of a step (forward and backward) or of an epoch and its \
         test pass (models::flops) per second; of peak: the epoch's against a large product's \
         GFLOP/s on all cores; cores: CPU time over the wall time of training and testing.",
        args.test_reviews
    ));
    Ok(())
}

/// Trains one epoch of `study` as `attnx run` would (checkpoints in a temporary folder) and
/// returns its split times.
fn time(
    study: &ImdbStudy,
    config: &ExperimentConfig,
    device: &burn::tensor::Device,
) -> Result<Timing> {
    let scratch = tempfile::tempdir()?;
    let checkpoints = imdb::RepeatCheckpoints::new(scratch.path().join("checkpoints"));
    let progress = Progress::new(Mode::Quiet, 1, 0);
    let cpu_before = peak::cpu_seconds();
    let outcome = imdb::train_imdb(
        study,
        &config.optimizer,
        0,
        device,
        &checkpoints,
        &progress,
        config.name(),
    )?;
    Ok(Timing {
        train_seconds: outcome.state.train_seconds,
        eval_seconds: outcome.state.eval_seconds,
        cpu_seconds: cpu_before.and_then(|b| Some(peak::cpu_seconds()? - b)),
    })
}
