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
    /// Also write every experiment's claims, decisions or summary into this Markdown file,
    /// between its two `<!-- attnx report: ... -->` marker lines (the project's README.md).
    #[arg(long, value_name = "FILE")]
    pub readme: Option<PathBuf>,
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
        readme,
    } = command;
    let gathered = report(results, format, out.as_deref(), configs, experiments)?;
    if let Some(path) = readme {
        write_readme(&gathered, path)?;
    }
    Ok(())
}

/// Writes the generated results into `path` between its markers (the file is left as it is
/// when they are already current).
fn write_readme(gathered: &crate::report::Gathered, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError(format!("{}: cannot read: {e}", path.display())))?;
    let generated = crate::report::readme::markdown(&gathered.scan, &gathered.experiments);
    let spliced = crate::report::readme::splice(&path.display().to_string(), &text, &generated)?;
    if spliced == text {
        eprintln!("{}'s results are current", path.display());
    } else {
        crate::fsutil::write_atomic(path, spliced.as_bytes())?;
        eprintln!("wrote {}'s results", path.display());
    }
    Ok(())
}

fn report(
    results: &Path,
    formats: &[Format],
    out: Option<&Path>,
    configs: &Path,
    experiments: &Path,
) -> Result<crate::report::Gathered> {
    let gathered = crate::report::gather(results, configs, experiments, out)?;
    for warning in &gathered.scan.warnings {
        eprintln!("warning: {warning}");
    }
    let report = gathered.build();
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
    Ok(gathered)
}
