//! Records as tables and plots, by one path: records are grouped per config ([`scan`]), each
//! experiment (or the configs of one `attnx run` / `attnx compare`) becomes a section of
//! [`document::Block`]s (summary table, comparisons, per-epoch tables, [`plots`]), and the
//! document is rendered as terminal text, Markdown, CSV or JSON ([`document`]).

pub mod document;
pub mod plots;
pub mod scan;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};

pub use document::{Block, Report, Row};
pub use scan::{Group, Scan, Status, scan};

use crate::experiment::{Experiment, Point, Published};
use crate::record::ConfigRecords;
use crate::stats::{Summary, Welch};

/// The file name of the heatmap `attnx attention` draws for a repeat, in the results' `plots/`.
pub fn heatmap_file(config: &str, repeat: usize) -> String {
    format!("{config}_attention_{repeat}.svg")
}

/// Whether `file` is a heatmap of `config` (of any repeat), as [`heatmap_file`] names them.
pub fn is_heatmap_of(file: &str, config: &str) -> bool {
    file.strip_prefix(config)
        .and_then(|rest| rest.strip_prefix("_attention_"))
        .and_then(|rest| rest.strip_suffix(".svg"))
        .is_some_and(|repeat| repeat.parse::<usize>().is_ok())
}

/// Left-aligns the first column, right-aligns the others (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_aligned(header, rows, &[0])
}

/// Left-aligns the columns `left` (text), right-aligns the others.
pub fn table_aligned(header: &[&str], rows: &[Vec<String>], left: &[usize]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            let gap = if i == 0 { "" } else { "  " };
            if left.contains(&i) {
                let _ = write!(text, "{gap}{cell:<w$}", w = widths[i]);
            } else {
                let _ = write!(text, "{gap}{cell:>w$}", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in rows {
        line(row);
    }
    out
}

/// Whole percentages (echo: 100 pairs) without decimals, others with two.
pub fn percent(a: f64) -> String {
    if a.fract() == 0.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.2}")
    }
}

pub fn fixed(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.2}"))
}

/// What `attnx run` and `attnx compare` print: the section `attnx report` gives an experiment
/// (without published figures), then every repeat's accuracy.
pub fn accuracy_report(results: &[ConfigRecords]) -> String {
    let labels: Vec<String> = results
        .iter()
        .map(|r| r.config.name().to_string())
        .collect();
    accuracy_report_labelled(results, &labels)
}

/// [`accuracy_report`] with each config under its label (a sweep's point, the settings
/// `--set` changed), every other config set against the first.
pub fn accuracy_report_labelled(results: &[ConfigRecords], labels: &[String]) -> String {
    let groups: Vec<Group> = results
        .iter()
        .zip(labels)
        .map(|(r, label)| Group {
            name: label.clone(),
            ..Group::current(r)
        })
        .collect();
    let groups: Vec<&Group> = groups.iter().collect();
    let metric = match groups.first().map(|g| g.is_imdb()) {
        Some(true) => "test accuracy after the last epoch (%)",
        _ => "exact-match accuracy (%)",
    };
    let mut report = Report::default();
    report
        .blocks
        .push(Block::Text(format!("Metric: {metric}.")));
    section(&mut report, &groups, "", None);
    let width = groups.iter().map(|g| g.name.len()).max().unwrap_or(0);
    let mut lines = String::from("per-repeat accuracy (%)");
    for g in &groups {
        let values: Vec<String> = g.accuracies().iter().map(|&a| percent(a)).collect();
        let _ = write!(lines, "\n{:<width$}  {}", g.name, values.join(" "));
    }
    report.blocks.push(Block::Text(lines));
    report.text()
}

/// The blocks and rows of one comparison of configs: the summary table, each config against
/// the first of its variant family, attnx against the article where it gives repeats, and the
/// per-epoch tables of IMDB configs. `published` is `None` where there is nothing to set
/// beside (no published columns then).
fn section(
    report: &mut Report,
    groups: &[&Group],
    experiment: &str,
    published: Option<&BTreeMap<String, Published>>,
) {
    let published_of = |g: &Group| published.and_then(|p| p.get(&g.name));
    let rows: Vec<Row> = groups
        .iter()
        .map(|g| row(experiment, g, published_of(g)))
        .collect();
    let imdb = groups.iter().any(|g| g.is_imdb());
    report
        .blocks
        .push(summary_table(&rows, imdb, published.is_some()));
    if imdb {
        let validated = groups.iter().any(|g| g.held_out_split() == "validation");
        let mut note = String::from("mean: test accuracy after the last epoch");
        if validated {
            note.push_str(
                " (with a validation split: of the model of the epoch validation picked, the one \
                 test evaluation)",
            );
        }
        note.push_str("; best acc: the epoch with the best mean test accuracy");
        if published.is_some() {
            note.push_str("; difference: best acc against the published best epoch");
        }
        note.push('.');
        report.blocks.push(Block::Text(note));
    }

    let lines = comparison_lines(groups, published);
    if !lines.is_empty() {
        report.blocks.push(Block::Text(lines.join("\n")));
    }
    if imdb {
        for g in groups {
            report
                .blocks
                .push(epoch_block(g, published.map(|_| published_of(g))));
        }
    }
    report.rows.extend(rows);
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

fn summary_table(rows: &[Row], imdb: bool, with_published: bool) -> Block {
    let mut header: Vec<String> = [
        "config", "backend", "n", "mean", "std", "95% CI", "min", "max",
    ]
    .map(String::from)
    .to_vec();
    if imdb {
        header.extend(["best epoch", "best acc"].map(String::from));
    }
    if with_published {
        header.extend(["published", "difference"].map(String::from));
    }
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
            if with_published {
                cells.push(fixed(r.published));
                cells.push(r.difference.map_or("-".into(), |d| format!("{d:+.2}")));
            }
            cells
        })
        .collect();
    Block::Table { header, rows }
}

/// Builds the report of `scan` for `experiments`. `extra_plots` are the files already in the
/// plots folder (attention heatmaps that `attnx attention` drew), linked where they belong.
/// `sweeps` holds each sweep experiment's points (by experiment name).
pub fn build(
    scan: &Scan,
    experiments: &[Experiment],
    sweeps: &BTreeMap<String, Vec<Point>>,
    extra_plots: &[String],
) -> Report {
    let mut report = Report::default();
    report.blocks.push(Block::Heading("attnx report".into()));
    let total: usize = scan.groups.iter().map(|g| g.records.len()).sum();
    report.blocks.push(Block::Text(format!(
        "{total} records in {} configs. Accuracies in percent. A config marked [..] was recorded with settings other than its file in configs/ has now.",
        scan.groups.len()
    )));
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
    // What a sweep's section shows is not shown again as a variant of a plain experiment.
    let swept: BTreeSet<(String, String)> = sweeps
        .values()
        .flatten()
        .map(|p| (p.config.name().to_string(), p.config.hash()))
        .collect();

    for experiment in experiments {
        if let Some(points) = sweeps.get(&experiment.name) {
            for g in sweep_section(&mut report, experiment, points, scan) {
                reported.insert(g);
            }
            continue;
        }
        // The configs as their files define them, then every other record of those configs
        // (`--set`, another backend, an older config or protocol): the variants.
        let declared: Vec<&Group> = experiment
            .configs
            .iter()
            .filter_map(|name| {
                scan.groups
                    .iter()
                    .find(|g| &g.name == name && g.status == Status::Current)
            })
            .collect();
        let variants: Vec<&Group> = experiment
            .configs
            .iter()
            .flat_map(|name| {
                let mut of_name: Vec<&Group> = scan
                    .groups
                    .iter()
                    .filter(|g| &g.name == name && g.status != Status::Current)
                    .filter(|g| !swept.contains(&(g.name.clone(), g.hash.clone())))
                    .collect();
                of_name.sort_by_key(|g| g.label());
                of_name
            })
            .collect();
        report.blocks.push(Block::Heading(experiment.title.clone()));
        if declared.is_empty() && variants.is_empty() {
            report.blocks.push(Block::Text(format!(
                "No records yet: `attnx compare --experiment {}` runs it.",
                experiment.name
            )));
            continue;
        }
        if !experiment.claims.is_empty() {
            report.blocks.extend(verdict::blocks(
                experiment,
                &verdict::verdicts(experiment, &declared),
            ));
        }
        report
            .blocks
            .push(Block::Text(format!("Metric: {}.", experiment.metric)));
        if !declared.is_empty() {
            section(
                &mut report,
                &declared,
                &experiment.name,
                Some(&experiment.published),
            );
        }
        if !variants.is_empty() {
            report.blocks.push(Block::Subheading(format!(
                "Variants of {}'s configs",
                experiment.name
            )));
            report.blocks.push(Block::Text(
                "Recorded with settings other than the files' (--set, another backend, an older \
                 config or protocol): not the article's setting, so never set against its figures."
                    .into(),
            ));
            section(&mut report, &variants, &experiment.name, None);
        }
        let shown: Vec<&Group> = declared.iter().chain(&variants).copied().collect();
        if let Some(line) = machines_line(&shown) {
            report.blocks.push(Block::Text(line));
        }
        figures(&mut report, experiment, &declared, extra_plots);
        for g in shown {
            reported.insert((g.name.clone(), g.hash.clone()));
        }
    }

    let others: Vec<&Group> = scan
        .groups
        .iter()
        .filter(|g| !reported.contains(&(g.name.clone(), g.hash.clone())))
        .collect();
    if !others.is_empty() {
        report.blocks.push(Block::Heading("Other results".into()));
        let rows: Vec<Row> = others.iter().map(|g| row("", g, None)).collect();
        report.blocks.push(summary_table(
            &rows,
            others.iter().any(|g| g.is_imdb()),
            false,
        ));
        report.rows.extend(rows);
    }
    if !scan.warnings.is_empty() {
        report.blocks.push(Block::Heading("Warnings".into()));
        report.blocks.push(Block::Text(scan.warnings.join("\n")));
    }
    report
}

/// A line saying which machines made the records, when they are not all the same one: bits
/// are reproducible only between machines whose kernels use the same vector instructions.
fn machines_line(groups: &[&Group]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for record in groups.iter().flat_map(|g| &g.records) {
        let machine = record.machine.as_ref().map_or_else(
            || "not recorded (attnx before 0.8.0)".to_string(),
            |m| m.to_string(),
        );
        *counts.entry(machine).or_default() += 1;
    }
    if counts.len() < 2 {
        return None;
    }
    let list: Vec<String> = counts
        .iter()
        .map(|(machine, n)| format!("{machine}: {n}"))
        .collect();
    Some(format!(
        "Machines: these records come from {} machines ({}). Records are the same bits only \
         between machines whose CPU kernels use the same vector instructions; across others they \
         agree statistically (docs/reproducibility.md).",
        counts.len(),
        list.join("; ")
    ))
}

/// Each config against the first of its variant family, attnx against the article where it
/// gives its repeats, and which repeats early stopping ended.
fn comparison_lines(
    groups: &[&Group],
    published: Option<&BTreeMap<String, Published>>,
) -> Vec<String> {
    let published_of = |g: &Group| published.and_then(|p| p.get(&g.name));
    let mut lines: Vec<String> = Vec::new();
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
            lines.extend(
                comparisons(&first.label(), &first.accuracies(), &others)
                    .iter()
                    .map(Comparison::to_string),
            );
        }
    }
    for g in groups {
        if let Some(repeats) = published_of(g).and_then(|p| p.repeats.as_ref())
            && let Some(w) = Welch::test(repeats, &g.accuracies())
        {
            lines.push(format!(
                "{} - published: {:+.2} points (95% CI {:+.2} to {:+.2}; Welch {}; Hedges' g = {:.2})",
                g.label(), w.difference, w.ci95.0, w.ci95.1, format_p(w.p), w.hedges_g
            ));
        }
    }
    for g in groups {
        let stops: Vec<String> = g
            .records
            .iter()
            .filter_map(|r| {
                r.stopped_at
                    .map(|e| format!("#{} after epoch {e}", r.repeat))
            })
            .collect();
        if !stops.is_empty() {
            lines.push(format!(
                "{}: early stopping ended {} of {} repeats: {}",
                g.label(),
                stops.len(),
                g.records.len(),
                stops.join(", ")
            ));
        }
        let selected: Vec<String> = g
            .records
            .iter()
            .filter_map(|r| {
                r.selected_epoch
                    .map(|e| format!("#{} epoch {e} ({:.2}%)", r.repeat, r.accuracy))
            })
            .collect();
        if !selected.is_empty() {
            lines.push(format!(
                "{}: test accuracy of the epoch validation picked: {}",
                g.label(),
                selected.join(", ")
            ));
        }
    }
    lines
}

/// A sweep experiment's section: the table of its points (each under its label, every point
/// against the first), and accuracy against the first axis. Returns the (name, hash) of the
/// groups it showed.
fn sweep_section(
    report: &mut Report,
    experiment: &Experiment,
    points: &[Point],
    scan: &Scan,
) -> Vec<(String, String)> {
    report.blocks.push(Block::Heading(experiment.title.clone()));
    report
        .blocks
        .push(Block::Text(format!("Metric: {}.", experiment.metric)));
    let found: Vec<(&Point, Group)> = points
        .iter()
        .filter_map(|point| {
            let (name, hash) = (point.config.name(), point.config.hash());
            let group = scan
                .groups
                .iter()
                .find(|g| g.name == name && g.hash == hash)?;
            Some((
                point,
                Group {
                    name: point.label.clone(),
                    status: Status::Current,
                    ..group.clone()
                },
            ))
        })
        .collect();
    if found.is_empty() {
        report.blocks.push(Block::Text(format!(
            "No records yet: `attnx compare --experiment {}` runs it.",
            experiment.name
        )));
        return Vec::new();
    }
    let groups: Vec<&Group> = found.iter().map(|(_, g)| g).collect();
    section(report, &groups, &experiment.name, None);
    let line =
        plots::sweep(experiment, &found).map(|p| (format!("{}_sweep.svg", experiment.name), p));
    for (file, plot) in line
        .into_iter()
        .chain(plots::sweep_heatmaps(experiment, &found))
    {
        report.blocks.push(Block::Image {
            alt: plot.title().to_string(),
            path: format!("plots/{file}"),
        });
        report.plots.push((file, plot));
    }
    found
        .iter()
        .map(|(p, _)| (p.config.name().to_string(), p.config.hash()))
        .collect()
}

/// The experiment's plots (of its current configs) and the attention heatmaps already drawn
/// for its configs, as image blocks.
fn figures(
    report: &mut Report,
    experiment: &Experiment,
    groups: &[&Group],
    extra_plots: &[String],
) {
    let current: Vec<&Group> = groups
        .iter()
        .copied()
        .filter(|g| g.status == Status::Current)
        .collect();
    for (file, plot) in plots::for_experiment(experiment, &current) {
        report.blocks.push(Block::Image {
            alt: plot.title().to_string(),
            path: format!("plots/{file}"),
        });
        report.plots.push((file, plot));
    }
    for config in &experiment.configs {
        for file in extra_plots.iter().filter(|f| is_heatmap_of(f, config)) {
            report.blocks.push(Block::Image {
                alt: format!("{config}: attention heatmap ({file})"),
                path: format!("plots/{file}"),
            });
        }
    }
}

/// Per-epoch means of one IMDB config, beside the published run (`published`: `None` for no
/// published columns, `Some(None)` for a config the article did not run).
fn epoch_block(group: &Group, published: Option<Option<&Published>>) -> Block {
    let with_published = published.is_some();
    let published = published.flatten();
    let train = group.epoch_means(|m| m.train_accuracy);
    let test = group.epoch_means(|m| m.held_out.accuracy());
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
            let mut cells = vec![
                format!("{} ep {}", group.label(), e + 1),
                fixed(train.get(e).map(|s| s.mean)),
                fixed(test.get(e).map(|s| s.mean)),
                fixed(test.get(e).and_then(|s| s.std)),
            ];
            if with_published {
                cells.push(fixed(pub_train.get(e).copied()));
                cells.push(fixed(pub_test.get(e).copied()));
            }
            cells.push(fixed(seconds.get(e).map(|s| s.mean)));
            cells
        })
        .collect();
    let split = group.held_out_split();
    let (acc, std) = (format!("{split} acc"), format!("{split} std"));
    let mut header = vec!["epoch", "train acc", acc.as_str(), std.as_str()];
    if with_published {
        header.extend(["published train", "published test"]);
    }
    header.push("seconds");
    Block::Table {
        header: header.into_iter().map(String::from).collect(),
        rows,
    }
}

/// `variant - control` in points: the difference of means with its 95% CI, Welch's test and
/// Hedges' g, or why there is no interval.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub control: String,
    pub variant: String,
    pub sizes: (usize, usize),
    pub difference: Option<f64>,
    /// `None` when a group has fewer than two repeats or neither has any spread.
    pub welch: Option<Welch>,
    /// The Holm-adjusted p-value and the number of comparisons it adjusts for, when several
    /// variants were tested against one control.
    pub holm: Option<(f64, usize)>,
    /// The equivalence test's p-value within ±[`MARGIN`] (TOST), Holm-adjusted like `holm`.
    pub equivalence: Option<f64>,
}

/// The margin of the comparisons' equivalence tests, in points.
pub const MARGIN: f64 = 1.0;

impl Comparison {
    /// What the tests decide: different, equivalent within [`MARGIN`], or cannot tell.
    pub fn decision(&self) -> Option<verdict::Decision> {
        let w = self.welch.as_ref()?;
        let p = self.holm.map_or(w.p, |(p, _)| p);
        Some(verdict::Decision::of(
            w.difference,
            p,
            self.equivalence.unwrap_or(1.0),
        ))
    }
}

impl Comparison {
    pub fn new(control: &str, a: &[f64], variant: &str, b: &[f64]) -> Self {
        Comparison {
            control: control.to_string(),
            variant: variant.to_string(),
            sizes: (a.len(), b.len()),
            difference: Summary::of(b)
                .zip(Summary::of(a))
                .map(|(sb, sa)| sb.mean - sa.mean),
            welch: Welch::test(a, b),
            holm: None,
            equivalence: Welch::test(a, b).map(|w| w.equivalence_p(MARGIN)),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} - {}: ", self.variant, self.control)?;
        let Some(w) = &self.welch else {
            return write!(
                f,
                "{} points (n too small, or no spread, for a confidence interval or test: {} and {} repeats)",
                self.difference.map_or("-".into(), |d| format!("{d:+.2}")),
                self.sizes.0,
                self.sizes.1
            );
        };
        write!(
            f,
            "{:+.2} points (95% CI {:+.2} to {:+.2}; Welch t = {:.2}, df = {:.1}, {}; Hedges' g = {:.2}",
            w.difference,
            w.ci95.0,
            w.ci95.1,
            w.t,
            w.df,
            format_p(w.p),
            w.hedges_g
        )?;
        if let Some((p, m)) = self.holm {
            write!(f, "; Holm-adjusted over {m} comparisons: {}", format_p(p))?;
        }
        if let (Some(p), Some(decision)) = (self.equivalence, self.decision()) {
            write!(
                f,
                "; TOST ±{}: {}) -> {}",
                verdict::points(MARGIN),
                format_p(p),
                decision.describe(MARGIN)
            )
        } else {
            f.write_str(")")
        }
    }
}

/// Every config in `others` against `control`. With more than one test, each carries its
/// Holm-adjusted p-value: testing several variants against one control at 5% each would find
/// a "significant" difference by chance too often.
pub fn comparisons(control: &str, a: &[f64], others: &[(String, Vec<f64>)]) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = others
        .iter()
        .map(|(name, b)| Comparison::new(control, a, name, b))
        .collect();
    let tested: Vec<f64> = out.iter().filter_map(|c| c.welch.map(|w| w.p)).collect();
    if tested.len() > 1 {
        let equivalence: Vec<f64> = out.iter().filter_map(|c| c.equivalence).collect();
        let mut adjusted = crate::stats::holm(&tested).into_iter();
        let mut adjusted_equivalence = crate::stats::holm(&equivalence).into_iter();
        for c in out.iter_mut().filter(|c| c.welch.is_some()) {
            c.holm = adjusted.next().map(|p| (p, tested.len()));
            c.equivalence = adjusted_equivalence.next();
        }
    }
    out
}

/// `p = ...` to 4 decimals, in scientific notation below 0.001, or a bound where double
/// precision runs out.
pub fn format_p(p: f64) -> String {
    if p < 1e-12 {
        "p < 1e-12".to_string()
    } else if p < 1e-3 {
        format!("p = {p:.2e}")
    } else {
        format!("p = {p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["config", "n"],
            &[
                vec!["attention".into(), "10".into()],
                vec!["b".into(), "2".into()],
            ],
        );
        assert_eq!(t, "config      n\nattention  10\nb           2\n");
    }

    /// Several variants against one control: each line carries its Holm-adjusted p-value; a
    /// single comparison carries none.
    #[test]
    fn comparisons_against_a_control_adjust_for_multiplicity() {
        let control = [99.0, 100.0, 98.0, 97.0, 100.0];
        let others = vec![
            ("close".to_string(), vec![98.0, 99.0, 97.0, 99.0, 100.0]),
            ("far".to_string(), vec![90.0, 88.0, 93.0, 85.0, 91.0]),
            ("one".to_string(), vec![50.0]),
        ];
        let lines: Vec<String> = comparisons("control", &control, &others)
            .iter()
            .map(Comparison::to_string)
            .collect();
        assert_eq!(lines.len(), 3);
        let raw: Vec<f64> = others[..2]
            .iter()
            .map(|(_, b)| Welch::test(&control, b).unwrap().p)
            .collect();
        let adjusted = crate::stats::holm(&raw);
        for (line, p) in lines.iter().zip(&adjusted) {
            let want = format!("Holm-adjusted over 2 comparisons: {};", format_p(*p));
            assert!(line.contains(&want), "{line}");
        }
        // The close variant cannot be told apart (nor shown within 1 point at n = 5); the far
        // one is lower.
        assert!(lines[0].ends_with("-> cannot tell"), "{}", lines[0]);
        assert!(lines[1].ends_with("-> different (lower)"), "{}", lines[1]);
        assert!(lines[2].contains("n too small"), "{}", lines[2]);
        let single = comparisons("control", &control, &others[..1]);
        assert!(single[0].holm.is_none());
        assert!(!single[0].to_string().contains("Holm"), "{}", single[0]);
    }

    #[test]
    fn heatmap_names_belong_to_their_config_only() {
        let file = heatmap_file("imdb_pe", 3);
        assert_eq!(file, "imdb_pe_attention_3.svg");
        assert!(is_heatmap_of(&file, "imdb_pe"));
        assert!(!is_heatmap_of(&file, "imdb"));
        assert!(!is_heatmap_of("imdb_pe_attention_x.svg", "imdb_pe"));
        assert!(!is_heatmap_of("e2_accuracy.svg", "e2"));
    }
}
