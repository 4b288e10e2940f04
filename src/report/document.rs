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
    /// Every claim of every experiment, each linking to its experiment's section.
    Overview(Vec<OverviewRow>),
    /// An experiment's claims with their verdicts.
    Verdicts(Vec<super::verdict::Verdict>),
    /// A part the page folds away (variants): a subheading and its blocks elsewhere.
    Fold {
        title: String,
        blocks: Vec<Block>,
    },
    /// Links to configs' pages of repeats, (label, page): on the page only.
    Repeats(Vec<(String, String)>),
}

/// One line of the overview: a claim (or a run-until-decided comparison, or an experiment
/// without claims) and where it stands.
#[derive(Debug, Clone)]
pub struct OverviewRow {
    /// The experiment's section heading (its anchor) and short name.
    pub section: String,
    pub experiment: String,
    pub claim: String,
    /// The article's figure ("-" where it gives none).
    pub article: String,
    pub attnx: String,
    pub test: String,
    pub mark: Mark,
}

/// Where an overview row stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// A claim's verdict.
    Verdict(super::verdict::Outcome),
    /// A run-until-decided comparison's decision ("different (lower)", "equivalent").
    Decided(String),
    /// A run-until-decided comparison that has not decided (yet).
    Undecided,
    /// None of the experiment's configs has records.
    NotRun,
    /// An experiment that states no claim: its tables compare the configs.
    NoClaim,
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mark::Verdict(outcome) => write!(f, "{outcome}"),
            Mark::Decided(decision) => write!(f, "decided: {decision}"),
            Mark::Undecided => f.write_str("undecided"),
            Mark::NotRun => f.write_str("not run yet"),
            Mark::NoClaim => f.write_str("no claim"),
        }
    }
}

/// The anchor GitHub gives a Markdown heading (lower case, punctuation dropped, spaces as
/// hyphens): the page's sections use the same, so links work in both.
pub fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

impl Block {
    /// A folded part as text and Markdown show it: its title as a subheading, then its blocks.
    fn unfolded(title: &str, blocks: &[Block]) -> Report {
        Report {
            blocks: std::iter::once(Block::Subheading(title.to_string()))
                .chain(blocks.iter().cloned())
                .collect(),
            ..Report::default()
        }
    }

    /// The verdicts as rows of (claim, attnx, test, verdict).
    fn verdict_rows(verdicts: &[super::verdict::Verdict]) -> (Vec<String>, Vec<Vec<String>>) {
        let rows = verdicts
            .iter()
            .map(|v| {
                vec![
                    v.claim.clone(),
                    v.measured.clone(),
                    v.test.clone(),
                    v.outcome.to_string(),
                ]
            })
            .collect();
        (VERDICTS_HEADER.map(String::from).to_vec(), rows)
    }
}

/// A claims table's header.
pub const VERDICTS_HEADER: [&str; 4] = ["claim", "attnx", "test", "verdict"];

/// The overview's header.
pub const OVERVIEW_HEADER: [&str; 6] =
    ["experiment", "claim", "article", "attnx", "test", "verdict"];

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

/// Which files [`Report::write`] writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Formats {
    /// REPORT.md.
    pub markdown: bool,
    /// `report/index.html` and a page per config's repeats.
    pub html: bool,
    /// summary.csv.
    pub csv: bool,
    /// summary.json.
    pub json: bool,
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    pub blocks: Vec<Block>,
    pub rows: Vec<Row>,
    /// Plot files to draw: (file name, what to draw).
    pub plots: Vec<(String, super::plots::Plot)>,
    /// Each config's page of repeats (HTML).
    pub pages: Vec<super::repeats::RepeatsPage>,
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
                Block::Overview(rows) => {
                    // The terminal is narrow: the verdict and the claim, by experiment.
                    let rows: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| vec![r.experiment.clone(), r.mark.to_string(), r.claim.clone()])
                        .collect();
                    let _ = writeln!(
                        out,
                        "{}",
                        table_aligned(&["experiment", "verdict", "claim"], &rows, &[0, 1, 2])
                    );
                }
                Block::Verdicts(verdicts) => {
                    let (header, rows) = Block::verdict_rows(verdicts);
                    let header: Vec<&str> = header.iter().map(String::as_str).collect();
                    let left: Vec<usize> = (0..header.len()).collect();
                    let _ = writeln!(out, "{}", table_aligned(&header, &rows, &left));
                }
                Block::Fold { title, blocks } => {
                    out.push_str(&Block::unfolded(title, blocks).text());
                }
                Block::Repeats(_) => {}
            }
        }
        out.trim_start().to_string()
    }

    /// Markdown for `REPORT.md`.
    pub fn markdown(&self) -> String {
        self.markdown_from(true)
    }

    /// Markdown, its first heading the document's title (`#`) when `titled`.
    fn markdown_from(&self, titled: bool) -> String {
        let mut out = String::new();
        let mut first = titled;
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
                Block::Overview(rows) => {
                    let header = OVERVIEW_HEADER.map(String::from);
                    let rows: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| {
                            vec![
                                format!("[{}](#{})", r.experiment, slug(&r.section)),
                                r.claim.clone(),
                                r.article.clone(),
                                r.attnx.clone(),
                                r.test.clone(),
                                r.mark.to_string(),
                            ]
                        })
                        .collect();
                    markdown_table(&mut out, &header, &rows, header.len());
                }
                Block::Verdicts(verdicts) => {
                    let (header, rows) = Block::verdict_rows(verdicts);
                    markdown_table(&mut out, &header, &rows, header.len());
                }
                Block::Fold { title, blocks } => {
                    // Not the first heading of a document: no `#` title.
                    out.push_str(&Block::unfolded(title, blocks).markdown_from(false));
                }
                Block::Repeats(_) => {}
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

    /// Writes the files of `formats` into `dir` (atomically, each): REPORT.md, the pages
    /// (`report/`), and the plots both show.
    pub fn write(&self, dir: &Path, formats: Formats) -> Result<Vec<PathBuf>> {
        let Formats {
            markdown,
            html,
            csv,
            json,
        } = formats;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = Vec::new();
        let mut put = |path: PathBuf, bytes: &[u8]| -> Result<()> {
            crate::fsutil::write_atomic(&path, bytes)?;
            written.push(path);
            Ok(())
        };
        if markdown || html {
            let plots = dir.join("plots");
            std::fs::create_dir_all(&plots)
                .with_context(|| format!("cannot create {}", plots.display()))?;
            for (file, plot) in &self.plots {
                put(plots.join(file), plot.svg()?.as_bytes())?;
            }
        }
        if markdown {
            put(dir.join("REPORT.md"), self.markdown().as_bytes())?;
        }
        if html {
            let pages = dir.join(super::html::DIR);
            let configs = pages.join("configs");
            std::fs::create_dir_all(&configs)
                .with_context(|| format!("cannot create {}", configs.display()))?;
            put(
                pages.join("index.html"),
                super::html::index(self).as_bytes(),
            )?;
            let mut kept = std::collections::BTreeSet::new();
            for page in &self.pages {
                let path = pages.join(&page.file);
                put(path.clone(), super::html::repeats_page(page).as_bytes())?;
                kept.insert(path);
            }
            // Pages of records that are gone would otherwise linger (and be committed).
            for stale in crate::fsutil::files_named(&configs, "", ".html")? {
                if !kept.contains(&stale) {
                    std::fs::remove_file(&stale)
                        .with_context(|| format!("cannot remove {}", stale.display()))?;
                }
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
