//! The report as a document: [`Block`]s rendered as terminal text or Markdown, and [`Row`]s
//! written as `summary.csv` and `summary.json`. Building it is [`super::build`]'s job.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::table::{table, table_aligned};

/// A Markdown table whose first `left` columns are left-aligned, the others right-aligned.
fn markdown_table(out: &mut String, header: &[String], rows: &[Vec<String>], left: usize) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let rule: Vec<&str> = (0..header.len())
        .map(|i| if i < left { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        // A `|` inside a cell would end it.
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// One piece of the report, rendered as text or as Markdown.
#[derive(Debug, Clone)]
pub enum Block {
    Heading(String),
    /// A part of a section (variants, claims).
    Subheading(String),
    Text(String),
    /// Numbers: the first column left-aligned, the others right-aligned.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// Words: every column left-aligned.
    TextTable {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Image {
        alt: String,
        path: String,
    },
}

/// One config's line in `summary.csv` / `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub experiment: String,
    pub config: String,
    pub label: String,
    pub config_hash: String,
    pub status: String,
    pub attnx_versions: String,
    pub backend: String,
    pub n: usize,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub published: Option<f64>,
    pub difference: Option<f64>,
    pub best_epoch: Option<usize>,
    pub best_epoch_accuracy: Option<f64>,
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    pub blocks: Vec<Block>,
    pub rows: Vec<Row>,
    /// Plot files to draw: (file name, what to draw).
    pub plots: Vec<(String, super::plots::Plot)>,
}

impl Report {
    /// Plain text for the terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for block in &self.blocks {
            match block {
                Block::Heading(h) => {
                    let _ = writeln!(out, "\n{h}\n{}", "=".repeat(h.chars().count()));
                }
                Block::Text(t) => {
                    let _ = writeln!(out, "{t}\n");
                }
                Block::Subheading(h) => {
                    let _ = writeln!(out, "{h}\n{}", "-".repeat(h.chars().count()));
                }
                Block::Table { header, rows } => {
                    let header: Vec<&str> = header.iter().map(String::as_str).collect();
                    let _ = writeln!(out, "{}", table(&header, rows));
                }
                Block::TextTable { header, rows } => {
                    let header: Vec<&str> = header.iter().map(String::as_str).collect();
                    let left: Vec<usize> = (0..header.len()).collect();
                    let _ = writeln!(out, "{}", table_aligned(&header, rows, &left));
                }
                Block::Image { alt, path } => {
                    let _ = writeln!(out, "plot: {path} ({alt})\n");
                }
            }
        }
        out.trim_start().to_string()
    }

    /// Markdown for `REPORT.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut first = true;
        for block in &self.blocks {
            match block {
                Block::Heading(h) => {
                    let _ = writeln!(out, "{} {h}\n", if first { "#" } else { "##" });
                    first = false;
                }
                Block::Text(t) => {
                    for line in t.lines() {
                        let _ = writeln!(out, "{line}  ");
                    }
                    out.push('\n');
                }
                Block::Subheading(h) => {
                    let _ = writeln!(out, "### {h}\n");
                }
                Block::Table { header, rows } => markdown_table(&mut out, header, rows, 1),
                Block::TextTable { header, rows } => {
                    markdown_table(&mut out, header, rows, header.len())
                }
                Block::Image { alt, path } => {
                    let _ = writeln!(out, "![{alt}]({path})\n");
                }
            }
        }
        out
    }

    /// `summary.csv`: one line per config.
    pub fn csv(&self) -> String {
        let header = "experiment,config,label,config_hash,status,attnx_versions,backend,n,mean,std,ci95_low,ci95_high,min,max,published,difference,best_epoch,best_epoch_accuracy";
        let mut out = format!("{header}\n");
        let num = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.4}"));
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        for r in &self.rows {
            let cells = [
                quote(&r.experiment),
                quote(&r.config),
                quote(&r.label),
                r.config_hash.clone(),
                quote(&r.status),
                quote(&r.attnx_versions),
                r.backend.clone(),
                r.n.to_string(),
                num(r.mean),
                num(r.std),
                num(r.ci95_low),
                num(r.ci95_high),
                num(r.min),
                num(r.max),
                num(r.published),
                num(r.difference),
                r.best_epoch.map_or(String::new(), |e| e.to_string()),
                num(r.best_epoch_accuracy),
            ];
            let _ = writeln!(out, "{}", cells.join(","));
        }
        out
    }

    /// `summary.json`: the rows as a JSON array.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).expect("rows serialize") + "\n"
    }

    /// Writes the files of `formats` into `dir` (atomically, each).
    pub fn write(&self, dir: &Path, markdown: bool, csv: bool, json: bool) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = Vec::new();
        let mut put = |path: PathBuf, bytes: &[u8]| -> Result<()> {
            crate::fsutil::write_atomic(&path, bytes)?;
            written.push(path);
            Ok(())
        };
        if markdown {
            put(dir.join("REPORT.md"), self.markdown().as_bytes())?;
            let plots = dir.join("plots");
            std::fs::create_dir_all(&plots)?;
            for (file, plot) in &self.plots {
                put(plots.join(file), plot.svg()?.as_bytes())?;
            }
        }
        if csv {
            put(dir.join("summary.csv"), self.csv().as_bytes())?;
        }
        if json {
            put(dir.join("summary.json"), self.json().as_bytes())?;
        }
        Ok(written)
    }
}
