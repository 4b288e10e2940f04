//! The overview the report opens with: every claim of every experiment, with the article's
//! figure, attnx's, the test and the verdict; every run-until-decided comparison with its
//! decision; and every experiment without either, so that none is missing.

use crate::experiment::Experiment;
use crate::stats::Decision;
use crate::stats::sequential::Plan;

use super::document::{Mark, OverviewRow};
use super::sequential::Compared;
use super::verdict::{self, Verdict};

/// What the report found for one experiment, judged once for its section and its rows here.
pub struct Judged<'a> {
    /// Records of the configs its claims are judged on (a sweep: of its points).
    pub records: usize,
    /// Its claims' verdicts, in order.
    pub verdicts: &'a [Verdict],
    /// A run-until-decided design's plan and comparisons (none before the control has
    /// records).
    pub sequential: Option<(&'a Plan, &'a [Compared])>,
}

/// The overview's rows of one experiment.
pub fn rows(experiment: &Experiment, judged: &Judged) -> Vec<OverviewRow> {
    let mut rows = Vec::new();
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
    let run = judged.records > 0;
    for (claim, v) in experiment.claims.iter().zip(judged.verdicts) {
        let article = verdict::article(experiment, &claim.test);
        rows.push(if run {
            row(
                v.claim.clone(),
                article,
                v.measured.clone(),
                v.test_name.clone(),
                Mark::Verdict(v.outcome),
            )
        } else {
            row(
                v.claim.clone(),
                article,
                "-".into(),
                "-".into(),
                Mark::NotRun,
            )
        });
    }
    if let (Some(spec), Some((plan, compared))) = (&experiment.sequential, judged.sequential) {
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
        let what = if experiment.sweep.is_some() {
            "a sweep: its table and plots show accuracy over the grid"
        } else {
            "its tables compare the configs"
        };
        rows.push(row(
            format!("No claim: {what}."),
            "-".into(),
            if run {
                format!("{} records", judged.records)
            } else {
                "-".into()
            },
            "-".into(),
            if run { Mark::NoClaim } else { Mark::NotRun },
        ));
    }
    rows
}
