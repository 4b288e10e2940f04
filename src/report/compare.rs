//! Comparisons between configs: the difference of means with its interval, Welch's test,
//! Holm's adjustment over a family, the equivalence test and what they decide; and the lines a
//! section prints for them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::scan::Group;
use super::table::{format_p, points};
use crate::experiment::Published;
use crate::stats::{Summary, Welch};

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
    /// The equivalence test's p-value within ±`margin` (TOST), Holm-adjusted like `holm`.
    pub equivalence: Option<f64>,
    /// The equivalence margin, in points: the experiment's or the command line's.
    pub margin: f64,
}

pub use crate::experiment::DEFAULT_MARGIN;

impl Comparison {
    /// What the tests decide: different, equivalent within `margin`, or cannot tell.
    pub fn decision(&self) -> Option<crate::stats::Decision> {
        let w = self.welch.as_ref()?;
        let p = self.holm.map_or(w.p, |(p, _)| p);
        Some(crate::stats::Decision::of(
            w.difference,
            p,
            self.equivalence.unwrap_or(1.0),
        ))
    }
}

impl Comparison {
    pub fn new(control: &str, a: &[f64], variant: &str, b: &[f64], margin: f64) -> Self {
        let welch = Welch::test(a, b);
        Comparison {
            control: control.to_string(),
            variant: variant.to_string(),
            sizes: (a.len(), b.len()),
            difference: Summary::of(b)
                .zip(Summary::of(a))
                .map(|(sb, sa)| sb.mean - sa.mean),
            welch,
            holm: None,
            equivalence: welch.map(|w| w.equivalence_p(margin)),
            margin,
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
                points(self.margin),
                format_p(p),
                decision.describe(self.margin)
            )
        } else {
            f.write_str(")")
        }
    }
}

/// Every config in `others` against `control`. With more than one test, each carries its
/// Holm-adjusted p-value: testing several variants against one control at 5% each would find
/// a "significant" difference by chance too often.
pub fn comparisons(
    control: &str,
    a: &[f64],
    others: &[(String, Vec<f64>)],
    margin: f64,
) -> Vec<Comparison> {
    let mut out: Vec<Comparison> = others
        .iter()
        .map(|(name, b)| Comparison::new(control, a, name, b, margin))
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

/// Each config against the first of its variant family, attnx against the article where it
/// gives its repeats, and which repeats early stopping ended.
pub(super) fn comparison_lines(
    groups: &[&Group],
    published: Option<&BTreeMap<String, Published>>,
    margin: f64,
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
                comparisons(&first.label(), &first.accuracies(), &others, margin)
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let lines: Vec<String> = comparisons("control", &control, &others, DEFAULT_MARGIN)
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
        let single = comparisons("control", &control, &others[..1], DEFAULT_MARGIN);
        assert!(single[0].holm.is_none());
        assert!(!single[0].to_string().contains("Holm"), "{}", single[0]);
    }
}
