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
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Format::Terminal, Format::Markdown, Format::Html, Format::Csv, Format::Json])]
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
    /// report/index.html (and a page per config's repeats) with the same plots.
    Html,
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
        crate::report::document::Formats {
            markdown: formats.contains(&Format::Markdown),
            html: formats.contains(&Format::Html),
            csv: formats.contains(&Format::Csv),
            json: formats.contains(&Format::Json),
        },
    )?;
    // Hundreds of files: name the ones a person opens, and count the rest.
    let (named, others): (Vec<_>, Vec<_>) = written.iter().partition(|p| {
        p.file_name().is_some_and(|n| {
            n == "REPORT.md" || n == "index.html" || n.to_string_lossy().starts_with("summary.")
        })
    });
    for path in named {
        eprintln!("wrote {}", path.display());
    }
    if !others.is_empty() {
        eprintln!("wrote {} plots and pages beside them", others.len());
    }
    Ok(gathered)
}
