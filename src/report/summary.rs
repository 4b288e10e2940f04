//! `attnx report`: the result store summarised per experiment, beside the published figures.
//!
//! The report is built once as a list of [`Block`]s and rendered twice: as text for the
//! terminal and as Markdown for `REPORT.md`. `summary.csv` and `summary.json` hold one
//! [`Row`] per config (and per changed config) found in the store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::{fixed, format_p, table};
use crate::config::ExperimentConfig;
use crate::experiment::{Experiment, Published};
use crate::record::{EpochMetrics, RepeatRecord};
use crate::stats::{Summary, Welch};

/// How a group of records relates to the configs in `configs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Recorded with the config as it is now.
    Current,
    /// Recorded with another version of the config: the differing settings, `path=value`.
    Changed(String),
    /// No config of that name exists any more.
    NoConfig,
}

/// The records of one config (one experiment name and config hash).
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub hash: String,
    pub config: ExperimentConfig,
    pub records: Vec<RepeatRecord>,
    pub status: Status,
    /// attnx versions that wrote the records.
    pub versions: BTreeSet<String>,
}

impl Group {
    /// The name, with what sets it apart from the current config and attnx.
    pub fn label(&self) -> String {
        let mut label = match &self.status {
            Status::Current => self.name.clone(),
            Status::Changed(diff) => format!("{} [{diff}]", self.name),
            Status::NoConfig => format!("{} [no config]", self.name),
        };
        let others: Vec<&str> = self
            .versions
            .iter()
            .map(String::as_str)
            .filter(|v| *v != env!("CARGO_PKG_VERSION"))
            .collect();
        if !others.is_empty() {
            label.push_str(&format!(" (attnx {})", others.join(", ")));
        }
        label
    }

    /// The variant family: groups with the same changes are compared with one another.
    fn family(&self) -> String {
        match &self.status {
            Status::Current => String::new(),
            Status::Changed(diff) => diff.clone(),
            Status::NoConfig => "no config".into(),
        }
    }

    pub fn accuracies(&self) -> Vec<f64> {
        self.records.iter().map(|r| r.accuracy).collect()
    }

    fn is_imdb(&self) -> bool {
        self.config.study.is_imdb()
    }

    /// Mean over repeats of a per-epoch figure, per epoch.
    pub fn epoch_means(&self, pick: fn(&EpochMetrics) -> f64) -> Vec<Summary> {
        super::epoch_means(&self.records, pick)
    }

    /// The epoch (1-based) with the best mean test accuracy.
    pub fn best_epoch(&self) -> Option<(usize, f64)> {
        super::best_epoch(&self.records)
    }
}

/// What the result store holds.
#[derive(Debug, Default)]
pub struct Scan {
    pub groups: Vec<Group>,
    /// Records that could not be read, one line each.
    pub warnings: Vec<String>,
}

/// Reads every record under `results` (`<name>/<hash>/repeat-*.json`). An unreadable record
/// becomes a warning, never an error.
pub fn scan(results: &Path, configs_dir: &Path) -> Result<Scan> {
    let mut scan = Scan::default();
    let current = current_configs(configs_dir);
    let mut by_key: BTreeMap<(String, String), Vec<RepeatRecord>> = BTreeMap::new();
    let names = std::fs::read_dir(results)
        .with_context(|| format!("{}: cannot read the results folder", results.display()))?;
    let mut files = Vec::new();
    for name_dir in names
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
    {
        for hash_dir in std::fs::read_dir(&name_dir)?.filter_map(|e| e.ok().map(|e| e.path())) {
            files.extend(
                crate::fsutil::files_named(&hash_dir, "repeat-", ".json").unwrap_or_default(),
            );
        }
    }
    files.sort();
    for file in files {
        let shown = file
            .strip_prefix(results)
            .unwrap_or(&file)
            .display()
            .to_string();
        match RepeatRecord::read(&file) {
            Ok(record) => by_key
                .entry((record.experiment.clone(), record.config_hash.clone()))
                .or_default()
                .push(record),
            Err(e) => scan
                .warnings
                .push(format!("{shown}: unreadable record, skipped ({e})")),
        }
    }
    for ((name, hash), mut records) in by_key {
        records.sort_by_key(|r| r.repeat);
        records.dedup_by_key(|r| r.repeat);
        let config = records[0].config.clone();
        let status = match current.get(&name) {
            Some(now) if now.hash() == hash => Status::Current,
            Some(now) => Status::Changed(differences(now, &config)),
            None => Status::NoConfig,
        };
        let versions = records.iter().map(|r| r.attnx_version.clone()).collect();
        scan.groups.push(Group {
            name,
            hash,
            config,
            records,
            status,
            versions,
        });
    }
    Ok(scan)
}

/// The configs in `configs/`, by experiment name.
fn current_configs(dir: &Path) -> BTreeMap<String, ExperimentConfig> {
    crate::fsutil::files_named(dir, "", ".json")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| ExperimentConfig::load(p).ok())
        .map(|c| (c.name().to_string(), c))
        .collect()
}

/// `path=value` for every setting of `then` that differs from `now` (hash-relevant ones only).
fn differences(now: &ExperimentConfig, then: &ExperimentConfig) -> String {
    fn leaves(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&path, v, out);
                }
            }
            other => {
                out.insert(
                    prefix.to_string(),
                    other.to_string().trim_matches('"').to_string(),
                );
            }
        }
    }
    // Only what counts for the hash: the fields that change a result.
    let flat = |c: &ExperimentConfig| {
        let mut out = BTreeMap::new();
        leaves(
            "",
            &serde_json::to_value(c.hash_key()).unwrap_or(Value::Null),
            &mut out,
        );
        out
    };
    let (a, b) = (flat(now), flat(then));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}={}", b.get(k).map_or("-", String::as_str)))
        .collect();
    if diffs.is_empty() {
        "older config".into()
    } else {
        diffs.join(", ")
    }
}

/// One piece of the report, rendered as text or as Markdown.
#[derive(Debug, Clone)]
pub enum Block {
    Heading(String),
    Text(String),
    Table {
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

fn row(experiment: &str, group: &Group, published: Option<&Published>) -> Row {
    let s = Summary::of(&group.accuracies());
    let best = group.best_epoch();
    // For IMDB the comparable number is the best epoch's test accuracy.
    let attnx = if group.is_imdb() {
        best.map(|b| b.1)
    } else {
        s.map(|s| s.mean)
    };
    let published = published.and_then(Published::headline);
    Row {
        experiment: experiment.to_string(),
        config: group.name.clone(),
        label: group.label(),
        config_hash: group.hash.clone(),
        status: match &group.status {
            Status::Current => "current".into(),
            Status::Changed(d) => format!("changed: {d}"),
            Status::NoConfig => "no config".into(),
        },
        attnx_versions: group.versions.iter().cloned().collect::<Vec<_>>().join(" "),
        backend: group.config.backend.to_string(),
        n: group.records.len(),
        mean: s.map(|s| s.mean),
        std: s.and_then(|s| s.std),
        ci95_low: s.and_then(|s| s.ci95).map(|c| c.0),
        ci95_high: s.and_then(|s| s.ci95).map(|c| c.1),
        min: s.map(|s| s.min),
        max: s.map(|s| s.max),
        published,
        difference: attnx.zip(published).map(|(a, p)| a - p),
        best_epoch: best.map(|b| b.0),
        best_epoch_accuracy: best.map(|b| b.1),
    }
}

fn ci(row: &Row) -> String {
    match (row.ci95_low, row.ci95_high) {
        (Some(lo), Some(hi)) => format!("{lo:.2} to {hi:.2}"),
        _ => "n too small".into(),
    }
}

fn summary_table(rows: &[Row], imdb: bool) -> Block {
    let mut header: Vec<String> = [
        "config", "backend", "n", "mean", "std", "95% CI", "min", "max",
    ]
    .map(String::from)
    .to_vec();
    if imdb {
        header.extend(["best epoch", "best acc"].map(String::from));
    }
    header.extend(["published", "difference"].map(String::from));
    let rows = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                r.label.clone(),
                r.backend.clone(),
                r.n.to_string(),
                fixed(r.mean),
                fixed(r.std),
                ci(r),
                fixed(r.min),
                fixed(r.max),
            ];
            if imdb {
                cells.push(r.best_epoch.map_or("-".into(), |e| e.to_string()));
                cells.push(fixed(r.best_epoch_accuracy));
            }
            cells.push(fixed(r.published));
            cells.push(r.difference.map_or("-".into(), |d| format!("{d:+.2}")));
            cells
        })
        .collect();
    Block::Table { header, rows }
}

/// The difference of two groups' means, or why there is none.
/// Builds the report of `scan` for `experiments`. `extra_plots` are the files already in the
/// plots folder (attention heatmaps that `attnx attention` drew), linked where they belong.
pub fn build(scan: &Scan, experiments: &[Experiment], extra_plots: &[String]) -> Report {
    let mut report = Report::default();
    report.blocks.push(Block::Heading("attnx report".into()));
    let total: usize = scan.groups.iter().map(|g| g.records.len()).sum();
    report.blocks.push(Block::Text(format!(
        "{total} records in {} configs. Accuracies in percent. A config marked [..] was recorded with settings other than its file in configs/ has now.",
        scan.groups.len()
    )));
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();

    for experiment in experiments {
        let groups: Vec<&Group> = experiment
            .configs
            .iter()
            .flat_map(|name| {
                let mut of_name: Vec<&Group> =
                    scan.groups.iter().filter(|g| &g.name == name).collect();
                of_name.sort_by_key(|g| (g.status != Status::Current, g.label()));
                of_name
            })
            .collect();
        report.blocks.push(Block::Heading(experiment.title.clone()));
        report
            .blocks
            .push(Block::Text(format!("Metric: {}.", experiment.metric)));
        if groups.is_empty() {
            report.blocks.push(Block::Text(format!(
                "No records yet: `attnx compare --experiment {}` runs it.",
                experiment.name
            )));
            continue;
        }
        let rows: Vec<Row> = groups
            .iter()
            .map(|g| row(&experiment.name, g, experiment.published.get(&g.name)))
            .collect();
        let imdb = groups.iter().any(|g| g.is_imdb());
        report.blocks.push(summary_table(&rows, imdb));
        if imdb {
            report.blocks.push(Block::Text(
                "mean: test accuracy after the last epoch; best acc: the epoch with the best mean test accuracy; difference: best acc against the published best epoch.".into(),
            ));
        }

        // Comparisons: within each variant family, every config against the first.
        let mut lines = Vec::new();
        let families: BTreeSet<String> = groups.iter().map(|g| g.family()).collect();
        for family in &families {
            let members: Vec<&Group> = groups
                .iter()
                .copied()
                .filter(|g| &g.family() == family)
                .collect();
            if let Some((first, rest)) = members.split_first() {
                let others: Vec<(String, Vec<f64>)> =
                    rest.iter().map(|g| (g.label(), g.accuracies())).collect();
                lines.extend(super::comparisons(
                    &first.label(),
                    &first.accuracies(),
                    &others,
                ));
            }
        }
        // attnx against the article, where the article gives its repeats.
        for g in &groups {
            if let Some(published) = experiment
                .published
                .get(&g.name)
                .and_then(|p| p.repeats.as_ref())
                && let Some(w) = Welch::test(published, &g.accuracies())
            {
                lines.push(format!(
                    "{} - published: {:+.2} points (95% CI {:+.2} to {:+.2}; Welch {}; Hedges' g = {:.2})",
                    g.label(), w.difference, w.ci95.0, w.ci95.1, format_p(w.p), w.hedges_g
                ));
            }
        }
        if !lines.is_empty() {
            report.blocks.push(Block::Text(lines.join("\n")));
        }

        if imdb {
            for g in &groups {
                report
                    .blocks
                    .push(epoch_block(g, experiment.published.get(&g.name)));
            }
        }
        let current: Vec<&Group> = groups
            .iter()
            .copied()
            .filter(|g| g.status == Status::Current)
            .collect();
        for (file, plot) in super::plots::for_experiment(experiment, &current) {
            report.blocks.push(Block::Image {
                alt: plot.title().to_string(),
                path: format!("plots/{file}"),
            });
            report.plots.push((file, plot));
        }
        for config in &experiment.configs {
            for file in extra_plots
                .iter()
                .filter(|f| super::is_heatmap_of(f, config))
            {
                report.blocks.push(Block::Image {
                    alt: format!("{config}: attention heatmap ({file})"),
                    path: format!("plots/{file}"),
                });
            }
        }
        for g in &groups {
            reported.insert((g.name.clone(), g.hash.clone()));
        }
        report.rows.extend(rows);
    }

    let others: Vec<&Group> = scan
        .groups
        .iter()
        .filter(|g| !reported.contains(&(g.name.clone(), g.hash.clone())))
        .collect();
    if !others.is_empty() {
        report.blocks.push(Block::Heading("Other results".into()));
        let rows: Vec<Row> = others.iter().map(|g| row("", g, None)).collect();
        report
            .blocks
            .push(summary_table(&rows, others.iter().any(|g| g.is_imdb())));
        report.rows.extend(rows);
    }
    if !scan.warnings.is_empty() {
        report.blocks.push(Block::Heading("Warnings".into()));
        report.blocks.push(Block::Text(scan.warnings.join("\n")));
    }
    report
}

/// Per-epoch means of one IMDB config, beside the published run.
fn epoch_block(group: &Group, published: Option<&Published>) -> Block {
    let train = group.epoch_means(|m| m.train_accuracy);
    let test = group.epoch_means(|m| m.test_accuracy);
    let seconds = group.epoch_means(|m| m.seconds);
    let pub_test = published
        .and_then(|p| p.test_accuracy.clone())
        .unwrap_or_default();
    let pub_train = published
        .and_then(|p| p.train_accuracy.clone())
        .unwrap_or_default();
    let epochs = test.len().max(pub_test.len());
    let rows = (0..epochs)
        .map(|e| {
            vec![
                format!("{} ep {}", group.label(), e + 1),
                fixed(train.get(e).map(|s| s.mean)),
                fixed(test.get(e).map(|s| s.mean)),
                fixed(test.get(e).and_then(|s| s.std)),
                fixed(pub_train.get(e).copied()),
                fixed(pub_test.get(e).copied()),
                fixed(seconds.get(e).map(|s| s.mean)),
            ]
        })
        .collect();
    Block::Table {
        header: [
            "epoch",
            "train acc",
            "test acc",
            "test std",
            "published train",
            "published test",
            "seconds",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
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
                Block::Table { header, rows } => {
                    let header: Vec<&str> = header.iter().map(String::as_str).collect();
                    let _ = writeln!(out, "{}", table(&header, rows));
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
                Block::Table { header, rows } => {
                    let _ = writeln!(out, "| {} |", header.join(" | "));
                    let _ = writeln!(
                        out,
                        "|{}|",
                        header
                            .iter()
                            .enumerate()
                            .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                            .collect::<Vec<_>>()
                            .join("|")
                    );
                    for row in rows {
                        let _ = writeln!(out, "| {} |", row.join(" | "));
                    }
                    out.push('\n');
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
