//! The overview the report opens with: every claim of every experiment, with the article's
//! figure, attnx's, the test and the verdict; every run-until-decided comparison with its
//! decision; and every experiment without either, so that none is missing.

use std::collections::BTreeMap;

use crate::experiment::{Experiment, Point};
use crate::stats::Decision;

use super::document::{Mark, OverviewRow};
use super::scan::{Group, Scan};
use super::{declared, sequential, verdict};

/// The records an experiment's rows are about: a sweep's points, else its configs as their
/// files define them now (variants, `--set` runs and older configs are not its run).
fn its_groups<'a>(
    scan: &'a Scan,
    experiment: &Experiment,
    points: Option<&Vec<Point>>,
) -> Vec<&'a Group> {
    match points {
        Some(points) => points
            .iter()
            .filter_map(|p| {
                let (name, hash) = (p.config.name(), p.config.hash());
                scan.groups
                    .iter()
                    .find(|g| g.name == name && g.hash == hash)
            })
            .collect(),
        None => declared(scan, experiment),
    }
}

/// The overview's rows, experiment by experiment (`sweeps`: each sweep's points).
pub fn rows(
    scan: &Scan,
    experiments: &[Experiment],
    sweeps: &BTreeMap<String, Vec<Point>>,
) -> Vec<OverviewRow> {
    let mut rows = Vec::new();
    for experiment in experiments {
        let row =
            |claim: String, article: String, attnx: String, test: String, mark: Mark| OverviewRow {
                section: experiment.title.clone(),
                experiment: experiment.name.clone(),
                claim,
                article,
                attnx,
                test,
                mark,
            };
        let groups = its_groups(scan, experiment, sweeps.get(&experiment.name));
        let run = groups.iter().any(|g| !g.records.is_empty());
        let verdicts = verdict::verdicts(experiment, &groups);
        for (claim, v) in experiment.claims.iter().zip(verdicts) {
            let article = verdict::article(experiment, &claim.test);
            rows.push(if run {
                row(
                    v.claim,
                    article,
                    v.measured,
                    v.test_name,
                    Mark::Verdict(v.outcome),
                )
            } else {
                row(v.claim, article, "-".into(), "-".into(), Mark::NotRun)
            });
        }
        if let Some(spec) = &experiment.sequential {
            let plan = spec.plan(experiment.configs.len());
            // Without the control's records there is nothing to compare yet.
            let compared = sequential::outcome(spec, &plan, &groups)
                .filter(|_| {
                    groups
                        .first()
                        .is_some_and(|g| g.name == experiment.configs[0])
                })
                .map(|(compared, _)| compared)
                .unwrap_or_default();
            if compared.is_empty() {
                let names = &experiment.configs;
                for variant in names.iter().skip(1) {
                    rows.push(row(
                        format!("{variant} - {}, run until decided", names[0]),
                        "-".into(),
                        if run {
                            format!("no records of {} yet", names[0])
                        } else {
                            "-".into()
                        },
                        "-".into(),
                        if run { Mark::Undecided } else { Mark::NotRun },
                    ));
                }
            }
            for c in compared {
                let last = c.looks.last();
                let attnx = last.map_or("no look yet".into(), |l| {
                    let interval = l.interval.map_or(String::new(), |(lo, hi)| {
                        format!(" (repeated 95% CI {lo:+.2} to {hi:+.2})")
                    });
                    format!(
                        "{:+.2} points{interval}, {} repeats each",
                        l.difference, l.repeats
                    )
                });
                let test = format!(
                    "group-sequential, look {} of at most {}",
                    c.looks.len(),
                    plan.looks.len()
                );
                let mark = match last.map(|l| l.decision) {
                    Some(Decision::Undecided) | None => Mark::Undecided,
                    Some(decision) => Mark::Decided(match decision {
                        Decision::Equivalent => "equivalent".into(),
                        other => other.describe(spec.margin),
                    }),
                };
                rows.push(row(
                    format!("{}, run until decided", c.name),
                    "-".into(),
                    attnx,
                    test,
                    mark,
                ));
            }
        }
        if experiment.claims.is_empty() && experiment.sequential.is_none() {
            let records: usize = groups.iter().map(|g| g.records.len()).sum();
            let what = if experiment.sweep.is_some() {
                "a sweep: its table and plots show accuracy over the grid"
            } else {
                "its tables compare the configs"
            };
            rows.push(row(
                format!("No claim: {what}."),
                "-".into(),
                if run {
                    format!("{records} records")
                } else {
                    "-".into()
                },
                "-".into(),
                if run { Mark::NoClaim } else { Mark::NotRun },
            ));
        }
    }
    rows
}
