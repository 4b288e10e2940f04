//! `attnx report`: the whole result store as tables beside the published figures, plots,
//! REPORT.md, summary.csv and summary.json.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::config::CONFIG_DIR;
use crate::error::InputError;

/// `attnx report [DIR]`.
#[derive(Debug, Args)]
pub struct ReportCommand {
    /// The results folder to read.
    #[arg(default_value = "results")]
    pub results: PathBuf,
    /// What to produce.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Format::Terminal, Format::Markdown, Format::Csv, Format::Json])]
    pub format: Vec<Format>,
    /// Where to write the files [default: the results folder].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The configs to compare the records with.
    #[arg(long, value_name = "DIR", default_value = CONFIG_DIR)]
    pub configs: PathBuf,
    /// The experiments to report.
    #[arg(long, value_name = "DIR", default_value = crate::experiment::EXPERIMENT_DIR)]
    pub experiments: PathBuf,
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

/// `attnx report`.
pub fn run(command: &ReportCommand) -> Result<()> {
    let ReportCommand {
        results,
        format,
        out,
        configs,
        experiments,
    } = command;
    report(results, format, out.as_deref(), configs, experiments)
}

fn report(
    results: &Path,
    formats: &[Format],
    out: Option<&Path>,
    configs: &Path,
    experiments: &Path,
) -> Result<()> {
    let experiments = crate::experiment::Experiment::load_all(experiments)?;
    let scan = crate::report::scan(results, configs).map_err(|e| InputError(format!("{e:#}")))?;
    for warning in &scan.warnings {
        eprintln!("warning: {warning}");
    }
    let plots_dir = out.unwrap_or(results).join("plots");
    // The report links the heatmaps `attnx attention` drew (report::heatmap_file names them).
    let heatmaps: Vec<String> = crate::fsutil::files_named(&plots_dir, "", ".svg")?
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
        .collect();
    let mut sweeps = std::collections::BTreeMap::new();
    for experiment in &experiments {
        if let Some(points) = experiment.points(configs)? {
            sweeps.insert(experiment.name.clone(), points);
        }
    }
    let report = crate::report::build(&scan, &experiments, &sweeps, &heatmaps);
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
