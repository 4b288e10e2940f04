//! A sequential comparison in the report: for each comparison of the family, the looks taken
//! (repeats, boundary, difference, repeated confidence interval, decision), the repeats used
//! against the maximum, and the verdict.

use crate::experiment::Sequential;
use crate::record::leading_figures;
use crate::stats::Decision;
use crate::stats::sequential::{Look, Plan};

use super::table::{format_p, points};
use super::{Block, Group};

/// A look's decision in words, with its interval.
pub fn describe(look: &Look, margin: f64) -> String {
    let interval = look.interval.map_or_else(
        || "no interval (no spread)".to_string(),
        |(lo, hi)| format!("repeated 95% CI {lo:+.2} to {hi:+.2}"),
    );
    // Mid-design, no decision yet is "undecided" (the fixed-n report's "cannot tell").
    let decision = match look.decision {
        Decision::Undecided => "undecided".to_string(),
        decided => decided.describe(margin),
    };
    format!("{:+.2} points, {interval}: {decision}", look.difference)
}

/// One comparison of a sequential design, against the control: its looks and its verdict.
pub struct Compared {
    /// `variant - control`.
    pub name: String,
    pub looks: Vec<Look>,
    /// Decided at which look, or why not yet.
    pub verdict: String,
}

/// Every comparison of a sequential experiment, from its configs' records (`groups`, the
/// first the control, named `control`), and the compute it took; `None` until the control has
/// records (a config without records is not among `groups`).
pub fn outcome(
    sequential: &Sequential,
    plan: &Plan,
    control: &str,
    groups: &[&Group],
) -> Option<(Vec<Compared>, String)> {
    let (control, variants) = groups.split_first().filter(|(c, _)| c.name == control)?;
    let figures = |g: &Group| leading_figures(&g.records, sequential.at);
    let control_figures = figures(control);
    // Repeats each config's comparisons needed: the control's, the largest of them.
    let mut used = vec![0usize; groups.len()];
    let mut compared = Vec::new();
    for (i, variant) in variants.iter().enumerate() {
        let looks = plan.looks(&control_figures, &figures(variant));
        let verdict = match looks.last() {
            None => "no look yet (fewer than 3 repeats each)".to_string(),
            Some(last) if last.decision != Decision::Undecided => format!(
                "decided at look {} with {} of at most {} repeats each: {}",
                looks.len(),
                last.repeats,
                sequential.max_repeats,
                describe(last, sequential.margin)
            ),
            Some(last) if last.repeats == sequential.max_repeats => format!(
                "undecided after all {} repeats: cannot tell ({})",
                last.repeats,
                describe(last, sequential.margin)
            ),
            Some(last) => format!(
                "undecided so far, after {} repeats each: the next look needs {}",
                last.repeats,
                plan.next_repeats(&looks).unwrap_or(last.repeats)
            ),
        };
        let repeats = looks.last().map_or(0, |l| l.repeats);
        used[0] = used[0].max(repeats);
        used[i + 1] = repeats;
        compared.push(Compared {
            name: format!("{} - {}", variant.name, control.name),
            looks,
            verdict,
        });
    }
    let total: usize = used.iter().sum();
    let fixed = sequential.max_repeats * groups.len();
    let compute = format!(
        "Compute: {total} repeats in all ({}), against {fixed} for a fixed design of {} \
         repeats each ({:.0}%).",
        groups
            .iter()
            .zip(&used)
            .map(|(g, n)| format!("{} {n}", g.name))
            .collect::<Vec<_>>()
            .join(", "),
        sequential.max_repeats,
        100.0 * total as f64 / fixed as f64
    );
    Some((compared, compute))
}

/// The blocks of a sequential experiment's comparisons: its design, and from [`outcome`] (of
/// its records) each comparison's looks and the compute it took; `configs` counts the design's
/// configs, the control among them.
pub fn blocks(
    sequential: &Sequential,
    plan: &Plan,
    configs: usize,
    outcome: Option<&(Vec<Compared>, String)>,
) -> Vec<Block> {
    let mut blocks = vec![Block::Text(format!(
        "Run until decided: looks at {} repeats per config (at most {}), Lan-DeMets \
         O'Brien-Fleming boundaries at level {} / {} for the family, repeated confidence \
         intervals of the difference at the {} figure; a comparison is different when its \
         interval excludes 0, equivalent when it lies within ±{} (docs/sequential.md).",
        plan.looks
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        sequential.max_repeats,
        sequential.alpha,
        configs.saturating_sub(1).max(1),
        sequential.at,
        points(sequential.margin)
    ))];
    let Some((compared, compute)) = outcome else {
        return blocks;
    };
    for comparison in compared {
        let rows = comparison
            .looks
            .iter()
            .enumerate()
            .map(|(k, look)| {
                vec![
                    (k + 1).to_string(),
                    look.repeats.to_string(),
                    format!("{:.3}", look.boundary),
                    format_p(look.nominal).replace("p = ", ""),
                    format!("{:+.2}", look.difference),
                    look.interval
                        .map_or("-".into(), |(lo, hi)| format!("{lo:+.2} to {hi:+.2}")),
                    // The table's column: the margin stands in the design line above.
                    match look.decision {
                        Decision::Equivalent => "equivalent".into(),
                        Decision::Undecided => "undecided".into(),
                        different => different.describe(sequential.margin),
                    },
                ]
            })
            .collect();
        blocks.push(Block::Subheading(comparison.name.clone()));
        blocks.push(Block::Table {
            header: [
                "look",
                "repeats each",
                "boundary z",
                "nominal level",
                "difference",
                "repeated 95% CI",
                "decision",
            ]
            .map(String::from)
            .to_vec(),
            rows,
        });
        blocks.push(Block::Text(comparison.verdict.clone()));
    }
    blocks.push(Block::Text(compute.clone()));
    blocks
}
