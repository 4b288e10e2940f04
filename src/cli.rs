//! The command line (clap): `attnx run`, `compare`, `report`, `attention`, `info`, `list`,
//! `bench` and `data`; each command's options, and the one-line error and exit code of a
//! failure.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::{Backend, CONFIG_DIR, ExperimentConfig};
use crate::error::InputError;
use crate::progress::Mode;
use crate::report;
use crate::runner::{self, RunOptions};
use crate::store::ResultStore;

/// Re-run and compare the attention models of four Keras articles, on burn.
///
/// Configs are JSON files (see configs/ and the README); results are recorded per repeat under
/// results/<experiment>/<config-hash>/, and repeats already recorded are never run twice.
#[derive(Debug, Parser)]
#[command(name = "attnx", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train and evaluate every missing repeat of a config, then print its accuracy table.
    Run {
        /// A config file, or the name of one in configs/ (e.g. `attention`).
        config: String,
        #[command(flatten)]
        options: RunArgs,
    },
    /// Run what is missing of several configs, then compare them in one table.
    ///
    /// The table gives n, mean, std, min and max accuracy per config, the difference of the
    /// first two means with its 95% confidence interval and Welch's t-test, and every
    /// repeat's value.
    Compare {
        /// Two or more configs (files, or names in configs/).
        #[arg(num_args = 2.., required_unless_present = "experiment")]
        configs: Vec<String>,
        /// Compare the configs of an experiment (a file, or a name in experiments/).
        #[arg(long, short = 'e', value_name = "NAME", conflicts_with = "configs")]
        experiment: Option<String>,
        #[command(flatten)]
        options: RunArgs,
    },
    /// Summarise the result store: per experiment, tables with spread and significance beside
    /// the published figures, per-epoch tables, and plots.
    ///
    /// Prints the report and writes REPORT.md (with plots/*.svg), summary.csv and summary.json.
    /// Never trains anything; unreadable records are named in a warning and skipped.
    Report {
        /// The results folder to read.
        #[arg(default_value = "results")]
        results: PathBuf,
        /// What to produce.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Format::Terminal, Format::Markdown, Format::Csv, Format::Json])]
        format: Vec<Format>,
        /// Where to write the files [default: the results folder].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The configs to compare the records with.
        #[arg(long, value_name = "DIR", default_value = CONFIG_DIR)]
        configs: PathBuf,
        /// The experiments to report.
        #[arg(long, value_name = "DIR", default_value = crate::experiment::EXPERIMENT_DIR)]
        experiments: PathBuf,
    },
    /// Draw a repeat's attention as a heatmap (SVG), from its saved model, after checking that
    /// the model reproduces its recorded accuracy.
    Attention(crate::inspect::AttentionArgs),
    /// Show the build (version, commit, backends) and whether each backend can run here.
    Info,
    /// List the configs in configs/, one line each.
    List {
        /// The folder to list.
        #[arg(long, default_value = CONFIG_DIR)]
        dir: PathBuf,
    },
    /// Measure training speed (steps per second) of each model on each CPU backend, side by
    /// side in one run.
    Bench(crate::bench::BenchArgs),
    /// Get the data sets, and see where attnx finds them.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a data set into attnx's cache folder, verified by its sha256.
    Fetch {
        /// The data set.
        #[arg(value_enum)]
        dataset: Dataset,
        /// Download from this address instead (a mirror).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The sha256 the download must have [default: the official archive's].
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Download again even if the archive is already in the cache.
        #[arg(long)]
        force: bool,
    },
    /// Say where the IMDB data is found and what it holds.
    Info {
        /// An aclImdb archive or folder to look at instead of the usual places.
        #[arg(long, value_name = "PATH")]
        data: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables on standard output.
    Terminal,
    /// REPORT.md and its plots (SVG).
    Markdown,
    /// summary.csv, one line per config.
    Csv,
    /// summary.json, one object per config.
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Dataset {
    /// The IMDB Large Movie Review Dataset v1.0 (84 MB).
    Imdb,
}

/// Options shared by `run` and `compare`.
#[derive(Debug, Args)]
pub struct RunArgs {
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
    /// [default: 1 on flex, one stack per worker on ndarray, all of a config's repeats on wgpu].
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
    /// Run every repeat again, replacing the recorded ones.
    #[arg(long)]
    pub force: bool,
    /// Print no progress, only the final table.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl RunArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            repeats: self.repeats.map(|n| n as usize),
            backend: self.backend,
            device: self.device,
            seed: self.seed,
            jobs: self.jobs.map_or_else(default_jobs, |n| n as usize),
            stack: self.stack.map(|n| n as usize),
            data: self.data.clone(),
            save_model: self.save_model,
            force: self.force,
            progress: Mode::detect(self.quiet),
        }
    }
}

/// All cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { config, options } => {
            let path = crate::config::resolve_config_path(&config).or_else(|e| {
                crate::experiment::resolve(&config).map_err(|_| {
                    InputError(format!(
                        "{e}; no experiment of that name in experiments/ either"
                    ))
                })
            })?;
            if crate::experiment::is_experiment_file(&path) {
                run_experiment(&path, &options)
            } else {
                run_and_report(&[config], &options)
            }
        }
        Command::Compare {
            configs,
            experiment,
            options,
        } => match experiment {
            Some(name) => run_experiment(&crate::experiment::resolve(&name)?, &options),
            None => run_and_report(&configs, &options),
        },
        Command::Report {
            results,
            format,
            out,
            configs,
            experiments,
        } => report(&results, &format, out.as_deref(), &configs, &experiments),
        Command::List { dir } => list(&dir),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Attention(args) => crate::inspect::run(&args),
        Command::Info => {
            println!(
                "attnx {} (commit {})",
                env!("CARGO_PKG_VERSION"),
                option_env!("ATTNX_GIT_COMMIT")
                    .filter(|c| !c.is_empty())
                    .unwrap_or("unknown")
            );
            println!(
                "default backend: {}; default jobs: {}",
                Backend::default(),
                default_jobs()
            );
            for (backend, state) in crate::backend::report() {
                println!("{:<8} {state}", backend.name());
            }
            println!(
                "cache folder: {}",
                crate::data::prepare::cache_dir().display()
            );
            Ok(())
        }
        Command::Data(command) => data(command),
    }
}

fn data(command: DataCommand) -> Result<()> {
    use crate::data::{fetch, imdb::ImdbReviews, prepare};
    match command {
        DataCommand::Fetch {
            dataset: Dataset::Imdb,
            url,
            sha256,
            force,
        } => {
            let dest = fetch::imdb_destination();
            if dest.exists() && !force {
                eprintln!(
                    "{} is already there (--force downloads it again)",
                    dest.display()
                );
                return Ok(());
            }
            let url = url.as_deref().unwrap_or(fetch::IMDB_URL);
            let sha256 = sha256.as_deref().unwrap_or(fetch::IMDB_SHA256);
            eprintln!("downloading {url} to {}", dest.display());
            fetch::download(
                url,
                &dest,
                sha256,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            eprintln!("saved {} (sha256 verified)", dest.display());
            Ok(())
        }
        DataCommand::Info { data } => {
            let (path, origin) = prepare::locate(data.as_deref(), None)?;
            println!("IMDB data: {} (found through {origin})", path.display());
            if path.is_file() {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                println!(
                    "archive: {size} bytes, sha256 {}",
                    crate::fsutil::sha256_file(&path)?
                );
            }
            let reviews = ImdbReviews::read(&path)?;
            for (name, split) in [("train", &reviews.train), ("test", &reviews.test)] {
                let positive = split.iter().filter(|r| r.label == 1).count();
                println!(
                    "{name}: {} reviews ({positive} positive, {} negative)",
                    split.len(),
                    split.len() - positive
                );
            }
            println!("cache folder: {}", prepare::cache_dir().display());
            Ok(())
        }
    }
}

fn run_and_report(names: &[String], args: &RunArgs) -> Result<()> {
    let options = args.options();

    let configs: Vec<ExperimentConfig> = runner::load_configs(names)?
        .into_iter()
        .map(|c| runner::apply_overrides(c, &options))
        .collect::<Result<_, _>>()?;
    let store = ResultStore::new(&args.out);
    let results = runner::run(&store, configs, &options)?;
    print!("{}", report::accuracy_report(&results));
    Ok(())
}

/// Runs every config of an experiment, then prints their comparison.
fn run_experiment(path: &std::path::Path, args: &RunArgs) -> Result<()> {
    let experiment = crate::experiment::Experiment::load(path)?;
    eprintln!("{}", experiment.title);
    run_and_report(&experiment.configs, args)
}

fn report(
    results: &std::path::Path,
    formats: &[Format],
    out: Option<&std::path::Path>,
    configs: &std::path::Path,
    experiments: &std::path::Path,
) -> Result<()> {
    use crate::report::summary;
    let experiments = crate::experiment::Experiment::load_all(experiments)?;
    let scan = summary::scan(results, configs).map_err(|e| InputError(format!("{e:#}")))?;
    for warning in &scan.warnings {
        eprintln!("warning: {warning}");
    }
    let plots_dir = out.unwrap_or(results).join("plots");
    // The report links the heatmaps `attnx attention` drew (report::heatmap_file names them).
    let heatmaps: Vec<String> = crate::fsutil::files_named(&plots_dir, "", ".svg")?
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
        .collect();
    let report = summary::build(&scan, &experiments, &heatmaps);
    if formats.contains(&Format::Terminal) {
        print!("{}", report.text());
    }
    let written = report.write(
        out.unwrap_or(results),
        formats.contains(&Format::Markdown),
        formats.contains(&Format::Csv),
        formats.contains(&Format::Json),
    )?;
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn list(dir: &std::path::Path) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InputError(format!("{}: cannot list configs: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut rows = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        match ExperimentConfig::load(&path) {
            Ok(c) => rows.push(vec![
                stem,
                c.model.kind().to_string(),
                c.backend.to_string(),
                c.repeats().to_string(),
                c.description.clone().unwrap_or_default(),
            ]),
            Err(e) => rows.push(vec![
                stem,
                "-".into(),
                "-".into(),
                "-".into(),
                format!("invalid: {e}"),
            ]),
        }
    }
    print!(
        "{}",
        report::table_aligned(
            &["config", "model", "backend", "repeats", "description"],
            &rows,
            &[0, 1, 2, 4]
        )
    );
    Ok(())
}

/// The error and its causes on one line.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

/// 2 for bad input (configs, backends that cannot run here), 1 for failures while running.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<InputError>().is_some() {
        2
    } else {
        1
    }
}
