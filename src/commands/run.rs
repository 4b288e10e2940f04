//! `attnx run` and `attnx compare`: train what is missing of one or more configs (or of an
//! experiment's), record it, and print the comparison table.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::config::{Backend, ExperimentConfig, Override};
use crate::error::InputError;
use crate::progress::Mode;
use crate::report;
use crate::runner::{self, RunOptions};
use crate::store::ResultStore;

/// `attnx run CONFIG`.
#[derive(Debug, Args)]
pub struct RunCommand {
    /// A config file, or the name of one in configs/ (e.g. `attention`).
    pub config: String,
    #[command(flatten)]
    pub options: RunArgs,
}

/// `attnx compare A B [C ...]` or `attnx compare --experiment NAME`.
#[derive(Debug, Args)]
pub struct CompareCommand {
    /// Two or more configs (files, or names in configs/).
    #[arg(num_args = 2.., required_unless_present = "experiment")]
    pub configs: Vec<String>,
    /// Compare the configs of an experiment (a file, or a name in experiments/).
    #[arg(long, short = 'e', value_name = "NAME", conflicts_with = "configs")]
    pub experiment: Option<String>,
    #[command(flatten)]
    pub sequential: SequentialArgs,
    #[command(flatten)]
    pub options: RunArgs,
}

/// `--until-decided` and its design.
#[derive(Debug, Args)]
pub struct SequentialArgs {
    /// Run repeats in looks (3, 5, 8, 13, ... per config) until every config's comparison with
    /// the first is decided: different, or equivalent within --margin (a group-sequential
    /// design whose error rates hold under this stopping; docs/sequential.md). An experiment
    /// with a `sequential` block runs so without it, by its own design.
    #[arg(long)]
    pub until_decided: bool,
    /// The most repeats per config [default: 20, or the experiment's].
    #[arg(long, value_name = "N", requires = "until_decided")]
    pub max_repeats: Option<usize>,
    /// Two means within this many points are equivalent [default: 1, or the experiment's].
    #[arg(long, value_name = "POINTS", requires = "until_decided")]
    pub margin: Option<f64>,
    /// The family's error rate [default: 0.05, or the experiment's].
    #[arg(long, value_name = "A", requires = "until_decided")]
    pub alpha: Option<f64>,
    /// The figure compared: final, best (each repeat's best epoch), or epoch:N [default: final,
    /// or the experiment's].
    #[arg(long, value_name = "AT", requires = "until_decided")]
    pub at: Option<crate::record::At>,
}

impl SequentialArgs {
    /// The design to run: an experiment's own (`experiment`), with the options given on the
    /// command line over its fields; without one, the command line's with its defaults and
    /// `margin` (the experiment file's, or the default); none when neither asks for one.
    pub fn spec(
        &self,
        experiment: Option<crate::experiment::Sequential>,
        margin: f64,
    ) -> Result<Option<crate::experiment::Sequential>, InputError> {
        if !self.until_decided {
            return Ok(experiment);
        }
        let base = experiment.unwrap_or(crate::experiment::Sequential {
            margin,
            ..Default::default()
        });
        let spec = crate::experiment::Sequential {
            max_repeats: self.max_repeats.unwrap_or(base.max_repeats),
            margin: self.margin.unwrap_or(base.margin),
            alpha: self.alpha.unwrap_or(base.alpha),
            at: self.at.unwrap_or(base.at),
        };
        spec.validate("--until-decided")?;
        Ok(Some(spec))
    }
}

/// Options shared by `run`, `compare` and `sweep`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Change a config field by its JSON path, e.g. `--set task.train_steps=20000 --set
    /// model.score=general` (repeatable; checked like the file). The changed config is what is
    /// hashed and recorded.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Number of repeats (overrides the config's `repeats`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub repeats: Option<u64>,
    /// Backend to run on (overrides the config's `backend`).
    #[arg(long, value_enum, value_name = "B")]
    pub backend: Option<Backend>,
    /// The wgpu adapter: default, cpu, discrete[:N], integrated[:N] or virtual[:N] (overrides
    /// the config's `device`; needs the wgpu backend).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<crate::config::WgpuDevice>,
    /// Base seed (overrides the config's `seed`); repeat i derives its seed from (S, i).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Worker threads, each training one stack of repeats at a time [default: all cores].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Repeats trained together as one stacked model (same results, one batched model)
    /// [default: 1 on flex and ndarray, all of a config's repeats on wgpu].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub stack: Option<u64>,
    /// The IMDB data: an aclImdb archive or folder (overrides the config's `data` and
    /// $ATTNX_DATA).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// The results folder.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Save each repeat's trained weights beside its record [default: only for configs of a
    /// single repeat]; `--save-model=false` never saves.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub save_model: Option<bool>,
    /// Run every repeat again, replacing the recorded ones (and ignoring checkpoints).
    #[arg(long)]
    pub force: bool,
    /// Keep each IMDB repeat's per-epoch checkpoints (under the results folder's
    /// `<config>/<hash>/checkpoints/`) after its record is written; by default they are
    /// removed then. An interrupted repeat always resumes from its last finished epoch.
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Print no progress, only the final table.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Leave repeats that another process is training (a claim in the results folder) to it
    /// and stop when nothing else is left, instead of waiting for them (and taking them over
    /// if their process dies): what Slurm array tasks do.
    #[arg(long)]
    pub no_wait: bool,
}

impl RunArgs {
    /// The `--set` options, parsed.
    pub fn overrides(&self) -> Result<Vec<Override>, InputError> {
        crate::config::overrides::parse_all(&self.set)
    }

    pub fn options(&self) -> RunOptions {
        RunOptions {
            repeats: self.repeats.map(|n| n as usize),
            backend: self.backend,
            device: self.device,
            seed: self.seed,
            jobs: self.jobs.map_or_else(super::default_jobs, |n| n as usize),
            stack: self.stack.map(|n| n as usize),
            data: self.data.clone(),
            save_model: self.save_model,
            force: self.force,
            keep_checkpoints: self.keep_checkpoints,
            wait_for_others: !self.no_wait,
            progress: Mode::detect(self.quiet),
        }
    }
}

/// `attnx run`: a config, or an experiment file named like one.
pub fn run(command: &RunCommand) -> Result<()> {
    let RunCommand { config, options } = command;
    let path = crate::config::resolve_config_path(config).or_else(|e| {
        crate::experiment::resolve(config).map_err(|_| {
            InputError(format!(
                "{e}; no experiment of that name in experiments/ either"
            ))
        })
    })?;
    if crate::experiment::is_experiment_file(&path) {
        run_experiment(&path, options)
    } else {
        run_and_report(
            std::slice::from_ref(config),
            options,
            report::DEFAULT_MARGIN,
        )
    }
}

/// `attnx compare`.
pub fn compare(command: &CompareCommand) -> Result<()> {
    match &command.experiment {
        Some(name) => {
            let path = crate::experiment::resolve(name)?;
            let experiment = crate::experiment::Experiment::load(&path)?;
            match command
                .sequential
                .spec(experiment.sequential, experiment.margin)?
            {
                Some(spec) => {
                    eprintln!("{}", experiment.title);
                    note_margin(spec.margin, experiment.margin);
                    until_decided(&experiment.configs, &spec, &command.options)
                }
                None => run_experiment(&path, &command.options),
            }
        }
        None => match command.sequential.spec(None, report::DEFAULT_MARGIN)? {
            Some(spec) => until_decided(&command.configs, &spec, &command.options),
            None => run_and_report(&command.configs, &command.options, report::DEFAULT_MARGIN),
        },
    }
}

/// Says when `--margin` differs from the experiment file's: the run's output uses the one
/// given, `attnx report` the file's.
pub(crate) fn note_margin(given: f64, file: f64) {
    if given != file {
        eprintln!(
            "note: this run judges equivalence within ±{} (--margin); `attnx report` judges the \
             experiment within its file's ±{}",
            report::points(given),
            report::points(file)
        );
    }
}

/// Runs the configs' looks until every comparison with the first is decided, then prints the
/// looks and the table.
fn until_decided(
    names: &[String],
    spec: &crate::experiment::Sequential,
    args: &RunArgs,
) -> Result<()> {
    if args.repeats.is_some() || args.force {
        return Err(InputError(
            "--until-decided chooses the repeats itself: leave out --repeats and --force".into(),
        )
        .into());
    }
    let set = args.overrides()?;
    let options = args.options();
    let configs = runner::load_configs(names, &set)?
        .into_iter()
        .map(|c| runner::apply_overrides(c, &options))
        .collect::<Result<Vec<_>, _>>()?;
    let store = ResultStore::new(&args.out);
    let quiet = options.progress == Mode::Quiet;
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let standing = runner::sequential::until_decided(&store, configs, spec, &options, &say)?;
    print_standing(spec, &standing);
    print!(
        "{}",
        report::accuracy_report(&standing.results, spec.margin)
    );
    Ok(())
}

/// Prints a sequential comparison's looks, boundaries and decisions (also `attnx slurm
/// --until-decided --wait`'s).
pub(crate) fn print_standing(
    spec: &crate::experiment::Sequential,
    standing: &runner::sequential::Standing,
) {
    let groups: Vec<report::Group> = standing
        .results
        .iter()
        .map(report::Group::current)
        .collect();
    let groups: Vec<&report::Group> = groups.iter().collect();
    // The standing holds every config's results, the control's first.
    let control = groups.first().map_or("", |g| g.name.as_str());
    let outcome = report::sequential::outcome(spec, &standing.plan, control, &groups);
    let document = report::Report {
        blocks: report::sequential::blocks(spec, &standing.plan, groups.len(), outcome.as_ref()),
        ..report::Report::default()
    };
    print!("{}", document.text());
}

/// Runs what is missing of the configs named and prints their comparison, equivalence judged
/// within `margin` points.
fn run_and_report(names: &[String], args: &RunArgs, margin: f64) -> Result<()> {
    let set = args.overrides()?;
    let configs = runner::load_configs(names, &set)?;
    let labels: Vec<String> = configs
        .iter()
        .map(|c| crate::config::overrides::label(c.name(), &set))
        .collect();
    run_labelled(configs, &labels, args, margin)
}

/// Runs what is missing of `configs` (with the command line's options) and prints their
/// comparison, each config under its label, equivalence judged within `margin` points.
pub fn run_labelled(
    configs: Vec<ExperimentConfig>,
    labels: &[String],
    args: &RunArgs,
    margin: f64,
) -> Result<()> {
    let options = args.options();
    let configs: Vec<ExperimentConfig> = configs
        .into_iter()
        .map(|c| runner::apply_overrides(c, &options))
        .collect::<Result<_, _>>()?;
    let store = ResultStore::new(&args.out);
    let results = runner::run(&store, configs, &options)?;
    print!(
        "{}",
        report::accuracy_report_labelled(&results, labels, margin)
    );
    Ok(())
}

/// Runs every config of an experiment (every point of a sweep), then prints their comparison.
fn run_experiment(path: &Path, args: &RunArgs) -> Result<()> {
    let experiment = crate::experiment::Experiment::load(path)?;
    eprintln!("{}", experiment.title);
    match experiment.points(Path::new(crate::config::CONFIG_DIR))? {
        Some(points) => {
            let labels: Vec<String> = points.iter().map(|p| p.label.clone()).collect();
            let configs = points.into_iter().map(|p| p.config).collect();
            run_labelled(configs, &labels, args, experiment.margin)
        }
        None => run_and_report(&experiment.configs, args, experiment.margin),
    }
}
