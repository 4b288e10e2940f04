//! Verdicts: each claim an article makes (`claims` in `experiments/*.json`), decided from the
//! records by a rule the report states ([`RULE`]).
//!
//! A difference is decided by two tests at 5%, Holm-adjusted over the experiment's difference
//! and change claims together: Welch's t-test (is there a difference, and which way?) and the
//! equivalence test TOST (is the difference inside the experiment's margin?). A level, one
//! config against the article's own figure, by whether that figure lies inside attnx's 95%
//! prediction interval for a run like the article's (the mean of as many repeats).

use std::fmt;

use crate::experiment::{At, Claim, ClaimTest, Direction, Experiment};
use crate::stats::{Decision, Paired, Summary, Welch, holm};

use super::Block;
use super::scan::Group;
use super::table::{format_p, points};

pub use crate::stats::ALPHA;

/// The rule the report states under its verdicts (`{margin}` is the experiment's margin).
pub const RULE: &str = "Rule: a claim that one config scores higher (lower) is reproduced when \
attnx's difference goes that way and Welch's test is significant at 5% after Holm's adjustment \
over the experiment's difference claims; it is not reproduced when the difference goes the other \
way significantly, or when the two means are equivalent within ±{margin} (two one-sided \
tests, TOST, at 5%, Holm-adjusted); otherwise it is inconclusive. A claim of no difference is \
reproduced when the means are equivalent within the margin, not reproduced when they differ \
significantly. A claim about a figure is reproduced when the published figure lies inside attnx's \
95% prediction interval for a run like the article's (one run, or the mean of as many repeats as \
the article ran).";

/// What a claim came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reproduced,
    NotReproduced,
    Inconclusive,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Reproduced => "reproduced",
            Outcome::NotReproduced => "not reproduced",
            Outcome::Inconclusive => "inconclusive",
        })
    }
}

impl Decision {
    pub fn describe(self, margin: f64) -> String {
        match self {
            Decision::Higher => "different (higher)".into(),
            Decision::Lower => "different (lower)".into(),
            Decision::Equivalent => format!("equivalent within ±{}", points(margin)),
            Decision::Undecided => "cannot tell".into(),
        }
    }

    /// The verdict on a claim that the difference goes `direction`.
    fn outcome(self, direction: Direction, equivalent: bool) -> Outcome {
        match (direction, self) {
            // A difference inside the margin is "the same" even when it is significant.
            (Direction::Same, _) if equivalent => Outcome::Reproduced,
            (_, Decision::Undecided) => Outcome::Inconclusive,
            (Direction::Higher, Decision::Higher) | (Direction::Lower, Decision::Lower) => {
                Outcome::Reproduced
            }
            _ => Outcome::NotReproduced,
        }
    }
}

/// One claim's verdict, with what attnx measured and the test that decided it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub claim: String,
    pub measured: String,
    pub test: String,
    /// The test's name, for the overview ("Welch + TOST ±1 point, Holm").
    pub test_name: String,
    pub outcome: Outcome,
}

/// Each repeat's figure at `at` ([`RepeatRecord::figure`]); `None` when a record lacks it.
pub fn values_at(group: &Group, at: At) -> Option<Vec<f64>> {
    group.records.iter().map(|r| r.figure(at)).collect()
}

/// A difference or change test before the family's adjustment.
enum Test {
    Welch(Welch),
    Paired(Paired),
}

impl Test {
    fn name(&self) -> &'static str {
        match self {
            Test::Welch(_) => "Welch",
            Test::Paired(_) => "paired t",
        }
    }
    fn difference(&self) -> f64 {
        match self {
            Test::Welch(w) => w.difference,
            Test::Paired(p) => p.difference,
        }
    }
    fn ci95(&self) -> (f64, f64) {
        match self {
            Test::Welch(w) => w.ci95,
            Test::Paired(p) => p.ci95,
        }
    }
    fn p(&self) -> f64 {
        match self {
            Test::Welch(w) => w.p,
            Test::Paired(p) => p.p,
        }
    }
    fn equivalence_p(&self, margin: f64) -> f64 {
        match self {
            Test::Welch(w) => w.equivalence_p(margin),
            Test::Paired(p) => p.equivalence_p(margin),
        }
    }
}

/// The verdict on every claim of `experiment`, from `groups`: the records of its configs as
/// the files define them (no variants).
pub fn verdicts(experiment: &Experiment, groups: &[&Group]) -> Vec<Verdict> {
    let margin = experiment.margin;
    let find = |name: &str| groups.iter().copied().find(|g| g.name == name);
    // First the difference and change tests, whose p-values are adjusted together.
    let tests: Vec<Option<Test>> = experiment
        .claims
        .iter()
        .map(|claim| match &claim.test {
            ClaimTest::Difference {
                control,
                variant,
                at,
                ..
            } => {
                let a = values_at(find(control)?, *at)?;
                let b = values_at(find(variant)?, *at)?;
                Welch::test(&a, &b).map(Test::Welch)
            }
            ClaimTest::Change {
                config, from, to, ..
            } => {
                let g = find(config)?;
                let before = values_at(g, At::Epoch(*from))?;
                let after = values_at(g, At::Epoch(*to))?;
                Paired::test(&before, &after).map(Test::Paired)
            }
            ClaimTest::Level { .. } => None,
        })
        .collect();
    let tested: Vec<&Test> = tests.iter().flatten().collect();
    let p_adjusted = holm(&tested.iter().map(|t| t.p()).collect::<Vec<_>>());
    let eq_adjusted = holm(
        &tested
            .iter()
            .map(|t| t.equivalence_p(margin))
            .collect::<Vec<_>>(),
    );
    let mut adjusted = p_adjusted.into_iter().zip(eq_adjusted);

    experiment
        .claims
        .iter()
        .zip(&tests)
        .map(|(claim, test)| match (&claim.test, test) {
            (ClaimTest::Level { config, at }, _) => level(experiment, claim, find(config), *at),
            (
                ClaimTest::Difference { direction, .. } | ClaimTest::Change { direction, .. },
                Some(test),
            ) => {
                let (p, p_eq) = adjusted.next().expect("one adjusted pair per test");
                let decision = Decision::of(test.difference(), p, p_eq);
                let (lo, hi) = test.ci95();
                Verdict {
                    claim: claim.claim.clone(),
                    measured: format!(
                        "{:+.2} points (95% CI {lo:+.2} to {hi:+.2}){}",
                        test.difference(),
                        match claim.test {
                            ClaimTest::Change { .. } => ", paired over repeats",
                            _ => "",
                        }
                    ),
                    test: format!(
                        "{} {} (Holm {}); TOST ±{}: {} (Holm {}): {}",
                        test.name(),
                        format_p(test.p()),
                        format_p(p),
                        points(margin),
                        format_p(test.equivalence_p(margin)),
                        format_p(p_eq),
                        decision.describe(margin)
                    ),
                    test_name: format!("{} + TOST ±{}, Holm", test.name(), points(margin)),
                    outcome: decision.outcome(*direction, p_eq < ALPHA),
                }
            }
            (_, None) => {
                // A figure the records cannot have (macro-F1 of an IMDB config, a best epoch of
                // an echo one) is said as such, not as too few repeats.
                let lacking = match &claim.test {
                    ClaimTest::Difference {
                        control,
                        variant,
                        at,
                        ..
                    } => [control, variant]
                        .into_iter()
                        .filter_map(|name| find(name))
                        .find(|g| !g.records.is_empty() && values_at(g, *at).is_none())
                        .map(|g| (g.name.clone(), *at)),
                    _ => None,
                };
                match lacking {
                    Some((name, at)) => Verdict {
                        claim: claim.claim.clone(),
                        measured: format!("no {at} figure"),
                        test: format!("{name}'s records have no {at} figure"),
                        test_name: "-".into(),
                        outcome: Outcome::Inconclusive,
                    },
                    None => Verdict {
                        claim: claim.claim.clone(),
                        measured: "not enough repeats".into(),
                        test: "needs at least 2 repeats of each config, with spread".into(),
                        test_name: "-".into(),
                        outcome: Outcome::Inconclusive,
                    },
                }
            }
        })
        .collect()
}

/// A level claim: the published figure against attnx's prediction interval.
fn level(experiment: &Experiment, claim: &Claim, group: Option<&Group>, at: At) -> Verdict {
    let inconclusive = |why: &str| Verdict {
        claim: claim.claim.clone(),
        measured: why.to_string(),
        test: "needs at least 2 repeats".into(),
        test_name: "-".into(),
        outcome: Outcome::Inconclusive,
    };
    let ClaimTest::Level { config, .. } = &claim.test else {
        unreachable!("a level claim");
    };
    let Some(published) = experiment.published.get(config) else {
        return inconclusive("no published figure");
    };
    let (Some(figure), runs) = (published.at(at), published.runs()) else {
        return inconclusive("no published figure");
    };
    let Some(summary) = group
        .and_then(|g| values_at(g, at))
        .and_then(|v| Summary::of(&v))
    else {
        return inconclusive("no records");
    };
    let Some((lo, hi)) = summary.prediction_interval(runs) else {
        return inconclusive(&format!("{:.2} from one repeat", summary.mean));
    };
    let what = if runs == 1 {
        "one run".to_string()
    } else {
        format!("the mean of {runs} runs")
    };
    let inside = (lo..=hi).contains(&figure);
    let mut test = format!(
        "published {figure:.2}: {} the interval",
        if inside { "inside" } else { "outside" }
    );
    if let Some(w) = published
        .repeats
        .as_ref()
        .zip(group)
        .and_then(|(repeats, g)| Welch::test(repeats, &values_at(g, at)?))
    {
        test.push_str(&format!(
            "; Welch against the published repeats: {:+.2} points, {}",
            w.difference,
            format_p(w.p)
        ));
    }
    Verdict {
        claim: claim.claim.clone(),
        measured: format!(
            "{:.2}, n = {} (95% prediction interval for {what}: {lo:.2} to {hi:.2})",
            summary.mean, summary.n
        ),
        test,
        test_name: "95% prediction interval".into(),
        outcome: if inside {
            Outcome::Reproduced
        } else {
            Outcome::NotReproduced
        },
    }
}

/// The verdicts as a table, with the rule under it.
pub fn blocks(experiment: &Experiment, verdicts: &[Verdict]) -> Vec<Block> {
    vec![
        Block::Verdicts(verdicts.to_vec()),
        Block::Text(RULE.replace("{margin}", &points(experiment.margin))),
    ]
}

/// The figure the article publishes for what a claim tests ("-" where it gives none).
pub fn article(experiment: &Experiment, test: &ClaimTest) -> String {
    let at = |config: &str, at: At| experiment.published.get(config)?.at(at);
    let figure = match test {
        ClaimTest::Difference {
            control,
            variant,
            at: when,
            ..
        } if experiment.published.get(variant) != experiment.published.get(control) => {
            at(variant, *when)
                .zip(at(control, *when))
                .map(|(v, c)| format!("{v:.2} against {c:.2}"))
        }
        // Both configs stand for the same published run (a variant of the article's model):
        // the article measured no difference between them.
        ClaimTest::Difference { .. } => None,
        ClaimTest::Level { config, at: when } => at(config, *when).map(|v| format!("{v:.2}")),
        ClaimTest::Change {
            config, from, to, ..
        } => at(config, At::Epoch(*to))
            .zip(at(config, At::Epoch(*from)))
            .map(|(after, before)| format!("{:+.2} points", after - before)),
    };
    figure.unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_adjusted_tests() {
        assert_eq!(Decision::of(2.0, 0.01, 0.9), Decision::Higher);
        assert_eq!(Decision::of(-2.0, 0.01, 0.9), Decision::Lower);
        assert_eq!(Decision::of(0.1, 0.5, 0.01), Decision::Equivalent);
        assert_eq!(Decision::of(0.1, 0.5, 0.2), Decision::Undecided);
        // Significant and inside the margin: a difference, which a "same" claim accepts.
        let tiny = Decision::of(0.3, 0.01, 0.01);
        assert_eq!(tiny, Decision::Higher);
        assert_eq!(tiny.outcome(Direction::Same, true), Outcome::Reproduced);
        assert_eq!(tiny.outcome(Direction::Higher, true), Outcome::Reproduced);
        assert_eq!(
            Decision::Lower.outcome(Direction::Higher, false),
            Outcome::NotReproduced
        );
        assert_eq!(
            Decision::Equivalent.outcome(Direction::Higher, true),
            Outcome::NotReproduced
        );
        assert_eq!(
            Decision::Undecided.outcome(Direction::Higher, false),
            Outcome::Inconclusive
        );
        assert_eq!(
            Decision::Higher.outcome(Direction::Same, false),
            Outcome::NotReproduced
        );
    }
}
