//! The command line (clap): one file per subcommand (`run` and `compare` share one), each
//! with its arguments and its `run`; this file parses, dispatches, and turns an error into one
//! line and an exit code.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::CONFIG_DIR;
use crate::error::InputError;

pub mod attention;
pub mod bench;
pub mod data;
pub mod info;
pub mod list;
pub mod report;
pub mod run;
pub mod show;
pub mod slurm;
pub mod sweep;

/// Re-run and compare the attention models of four Keras articles, on burn.
///
/// Configs are JSON files (see configs/ and docs/configs.md); results are recorded per repeat
/// under results/<config>/<config-hash>/, and repeats already recorded are never run twice.
#[derive(Debug, Parser)]
#[command(name = "attnx", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train and evaluate every missing repeat of a config, then print its accuracy table.
    Run(run::RunCommand),
    /// Run what is missing of several configs, then compare them in one table.
    ///
    /// The table gives n, mean, std, min and max accuracy per config, the difference of the
    /// first two means with its 95% confidence interval and Welch's t-test, and every
    /// repeat's value.
    Compare(run::CompareCommand),
    /// Run a grid of one config's variants (`--set PATH=V1,V2,...` per axis) and compare them
    /// in one table, every point against the first.
    Sweep(sweep::SweepCommand),
    /// Summarise the result store: per experiment, tables with spread and significance beside
    /// the published figures, per-epoch tables, and plots.
    ///
    /// Prints the report and writes REPORT.md (with plots/*.svg), summary.csv and summary.json.
    /// Never trains anything; unreadable records are named in a warning and skipped.
    Report(report::ReportCommand),
    /// Draw a repeat's attention as a heatmap (SVG), from its saved model, after checking that
    /// the model reproduces its recorded accuracy.
    Attention(attention::AttentionArgs),
    /// Show the build (version, commit, backends) and whether each backend can run here.
    Info,
    /// List the configs and experiments: those in ./configs/ and ./experiments/, and those
    /// built into attnx that no file there shadows, each with where it comes from.
    List {
        /// The folder of configs to list.
        #[arg(long, default_value = CONFIG_DIR)]
        dir: PathBuf,
        /// The folder of experiments to list.
        #[arg(long, value_name = "DIR", default_value = crate::experiment::EXPERIMENT_DIR)]
        experiments: PathBuf,
    },
    /// Print a config as attnx resolves it, every default filled in, ready to save, edit and
    /// run (`attnx show baseline > mine.json`).
    Show(show::ShowArgs),
    /// Measure training speed (steps per second) of each model on each CPU backend, side by
    /// side in one run.
    Bench(bench::BenchArgs),
    /// Run configs or an experiment as a Slurm array job on a shared results folder.
    ///
    /// Writes an sbatch script under <out>/slurm/ and submits it (`--dry-run` prints it). Each
    /// array task trains the next unclaimed missing repeat until none is left; submitting
    /// again finishes what a killed task left. `--wait` blocks, then prints the table.
    Slurm(slurm::SlurmArgs),
    /// Get the data sets, and see where attnx finds them.
    #[command(subcommand)]
    Data(data::DataCommand),
}

/// All cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the command the command line names.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(command) => run::run(&command),
        Command::Compare(command) => run::compare(&command),
        Command::Sweep(command) => sweep::run(&command),
        Command::Report(command) => report::run(&command),
        Command::Attention(args) => attention::run(&args),
        Command::Info => info::run(),
        Command::List { dir, experiments } => list::run(&dir, &experiments),
        Command::Show(args) => show::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Slurm(args) => slurm::run(&args),
        Command::Data(command) => data::run(command),
    }
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
