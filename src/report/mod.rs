//! Records as tables and plots, by one path: records are grouped per config ([`scan`]), each
//! experiment (or the configs of one `attnx run` / `attnx compare`) becomes a section of
//! [`document::Block`]s (summary table, comparisons, per-epoch tables, [`plots`]), and the
//! document is rendered as terminal text, Markdown, CSV or JSON ([`document`]).

pub mod compare;
pub mod document;
pub mod heatmap;
pub mod html;
pub mod overview;
pub mod plots;
pub mod readme;
pub mod repeats;
pub mod scan;
pub mod sequential;
mod summary;
pub mod table;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

pub use compare::{Comparison, DEFAULT_MARGIN, comparisons};
pub use document::{Block, Report, Row};
pub use scan::{Group, Scan, Status, scan};
pub use table::{fixed, format_p, percent, points, table, table_aligned};

use compare::comparison_lines;
use summary::{epoch_block, positions_block, row, summary_table};

use crate::error::InputError;
use crate::experiment::{Experiment, Point, Published};
use crate::record::ConfigRecords;

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

/// What `attnx run` and `attnx compare` print: the section `attnx report` gives an experiment
/// (without published figures), then every repeat's accuracy; equivalence is judged within
/// `margin` points.
pub fn accuracy_report(results: &[ConfigRecords], margin: f64) -> String {
    let labels: Vec<String> = results
        .iter()
        .map(|r| r.config.name().to_string())
        .collect();
    accuracy_report_labelled(results, &labels, margin)
}

/// [`accuracy_report`] with each config under its label (a sweep's point, the settings
/// `--set` changed), every other config set against the first.
pub fn accuracy_report_labelled(
    results: &[ConfigRecords],
    labels: &[String],
    margin: f64,
) -> String {
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
    section(&mut report, &groups, "", margin, None);
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
    margin: f64,
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

    let lines = comparison_lines(groups, published, margin);
    if !lines.is_empty() {
        report.blocks.push(Block::Text(lines.join("\n")));
    }
    if let Some(block) = summary::classes_block(groups) {
        report.blocks.push(block);
        report.blocks.push(Block::Text(
            "macro-F1: the mean over classes of each class's F1 on the test texts, for the model \
             the accuracy is of; a rare class weighs as much as a common one."
                .into(),
        ));
    }
    if let Some(block) = positions_block(groups) {
        report.blocks.push(block);
        report.blocks.push(Block::Text(
            "position k: the mean share (%) of evaluation pairs whose output at position k is \
             right. The first n_out positions echo the input; the others' targets are 0."
                .into(),
        ));
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

/// Links to the pages of `groups`' repeats.
fn repeats_links(groups: &[&Group]) -> Block {
    Block::Repeats(
        groups
            .iter()
            .map(|g| (g.label(), repeats::page_file(&g.name, &g.hash)))
            .collect(),
    )
}

/// What a report is built from: the records, the experiments, each sweep's points, and the
/// heatmaps `attnx attention` drew into the plots folder.
pub struct Gathered {
    pub scan: Scan,
    pub experiments: Vec<Experiment>,
    pub sweeps: BTreeMap<String, Vec<Point>>,
    pub heatmaps: Vec<String>,
}

/// Reads the records under `results` (compared with the configs in `configs`) and the
/// experiments in `experiments` (and the built-in ones with records); the plots folder is
/// `out`'s (default `results`'s).
pub fn gather(
    results: &std::path::Path,
    configs: &std::path::Path,
    experiments: &std::path::Path,
    out: Option<&std::path::Path>,
) -> anyhow::Result<Gathered> {
    let scan = scan(results, configs).map_err(|e| InputError(format!("{e:#}")))?;
    // The folder's experiments always; a built-in one only once one of its configs has records
    // (in a folder of the user's own, the articles' experiments would be empty sections).
    let experiments: Vec<Experiment> = Experiment::load_all(experiments)?
        .into_iter()
        .filter(|(e, builtin)| !builtin || scan.groups.iter().any(|g| e.configs.contains(&g.name)))
        .map(|(e, _)| e)
        .collect();
    let plots_dir = out.unwrap_or(results).join("plots");
    // The report links the heatmaps `attnx attention` drew (heatmap_file names them).
    let heatmaps: Vec<String> = crate::fsutil::files_named(&plots_dir, "", ".svg")?
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
        .collect();
    let mut sweeps = BTreeMap::new();
    for experiment in &experiments {
        if let Some(points) = experiment.points(configs)? {
            sweeps.insert(experiment.name.clone(), points);
        }
    }
    Ok(Gathered {
        scan,
        experiments,
        sweeps,
        heatmaps,
    })
}

impl Gathered {
    /// The report of what was gathered.
    pub fn build(&self) -> Report {
        build(&self.scan, &self.experiments, &self.sweeps, &self.heatmaps)
    }
}

/// An experiment's configs as their files define them now, in the experiment's order: what
/// its claims are judged on.
fn declared<'a>(scan: &'a Scan, experiment: &Experiment) -> Vec<&'a Group> {
    experiment
        .configs
        .iter()
        .filter_map(|name| {
            scan.groups
                .iter()
                .find(|g| &g.name == name && g.status == Status::Current)
        })
        .collect()
}

/// Builds the report of `scan` for `experiments`. `extra_plots` are the files already in the
/// plots folder (attention heatmaps that `attnx attention` drew), linked where they belong.
/// `sweeps` holds each sweep experiment's points (by experiment name).
fn build(
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
    // Filled experiment by experiment below, then placed here, at the top.
    let overview_at = report.blocks.len();
    let mut overview = Vec::new();
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
    // What a sweep's section shows is not shown again as a variant of a plain experiment.
    let swept: BTreeSet<(String, String)> = sweeps
        .values()
        .flatten()
        .map(|p| (p.config.name().to_string(), p.config.hash()))
        .collect();

    for experiment in experiments {
        if let Some(points) = sweeps.get(&experiment.name) {
            let (shown, records) = sweep_section(&mut report, experiment, points, scan);
            reported.extend(shown);
            let judged = overview::Judged {
                records,
                verdicts: &[],
                sequential: None,
            };
            overview.extend(overview::rows(experiment, &judged));
            continue;
        }
        // The configs as their files define them, then every other record of those configs
        // (`--set`, another backend, an older config or protocol): the variants.
        let declared = declared(scan, experiment);
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
        // Judged once, for the section and for the overview.
        let verdicts = verdict::verdicts(experiment, &declared);
        let design = experiment.sequential.as_ref().map(|spec| {
            let plan = spec.plan(experiment.configs.len());
            let outcome = sequential::outcome(spec, &plan, &experiment.configs[0], &declared);
            (spec, plan, outcome)
        });
        let judged = overview::Judged {
            records: declared.iter().map(|g| g.records.len()).sum(),
            verdicts: &verdicts,
            sequential: design.as_ref().map(|(_, plan, outcome)| {
                let compared = outcome.as_ref().map_or(&[][..], |(c, _)| c.as_slice());
                (plan, compared)
            }),
        };
        overview.extend(overview::rows(experiment, &judged));
        report.blocks.push(Block::Heading(experiment.title.clone()));
        if declared.is_empty() && variants.is_empty() {
            report.blocks.push(Block::Text(format!(
                "No records yet: `attnx compare --experiment {}` runs it.",
                experiment.name
            )));
            continue;
        }
        if !experiment.claims.is_empty() {
            report.blocks.extend(verdict::blocks(experiment, &verdicts));
        }
        // The plots beside the claims they support.
        figures(&mut report, experiment, &declared, extra_plots);
        if let Some((spec, plan, outcome)) = &design {
            report.blocks.extend(sequential::blocks(
                spec,
                plan,
                experiment.configs.len(),
                outcome.as_ref(),
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
                experiment.margin,
                Some(&experiment.published),
            );
            report.blocks.push(repeats_links(&declared));
        }
        if !variants.is_empty() {
            let mut folded = Report::default();
            folded.blocks.push(Block::Text(
                "Recorded with settings other than the files' (--set, another backend, an older \
                 config or protocol): not the article's setting, so never set against its figures."
                    .into(),
            ));
            section(
                &mut folded,
                &variants,
                &experiment.name,
                experiment.margin,
                None,
            );
            folded.blocks.push(repeats_links(&variants));
            report.blocks.push(Block::Fold {
                title: format!("Variants of {}'s configs", experiment.name),
                blocks: folded.blocks,
            });
            report.rows.extend(folded.rows);
        }
        let shown: Vec<&Group> = declared.iter().chain(&variants).copied().collect();
        if let Some(line) = machines_line(&shown) {
            report.blocks.push(Block::Text(line));
        }
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
        if let Some(block) = summary::classes_block(&others) {
            report.blocks.push(block);
        }
        report.blocks.push(repeats_links(&others));
        report.rows.extend(rows);
    }
    if !scan.warnings.is_empty() {
        report.blocks.push(Block::Heading("Warnings".into()));
        report.blocks.push(Block::Text(scan.warnings.join("\n")));
    }
    report.blocks.insert(overview_at, Block::Overview(overview));
    report.pages = scan.groups.iter().map(repeats::page).collect();
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

/// A sweep experiment's section: the table of its points (each under its label, every point
/// against the first), and accuracy against the first axis. Returns the (name, hash) of the
/// groups it showed, and how many records they hold.
fn sweep_section(
    report: &mut Report,
    experiment: &Experiment,
    points: &[Point],
    scan: &Scan,
) -> (Vec<(String, String)>, usize) {
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
        return (Vec::new(), 0);
    }
    let groups: Vec<&Group> = found.iter().map(|(_, g)| g).collect();
    section(report, &groups, &experiment.name, experiment.margin, None);
    // The groups carry their point's label as their name; their pages, the config's.
    report.blocks.push(Block::Repeats(
        found
            .iter()
            .map(|(p, g)| (g.label(), repeats::page_file(p.config.name(), &g.hash)))
            .collect(),
    ));
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
    let shown = found
        .iter()
        .map(|(p, g)| (p.config.name().to_string(), g.hash.clone()))
        .collect();
    (shown, groups.iter().map(|g| g.records.len()).sum())
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

#[cfg(test)]
mod tests {
    use super::*;

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
