//! Repeats until the question is answered: a group-sequential design for comparing configs.
//!
//! The repeats run in looks (3, 5, 8, 13, ... repeats per config, up to a maximum). After each
//! look every comparison of the family (each config against the first) gets a *repeated
//! confidence interval* for its difference of means (Jennison & Turnbull 1989; "Group
//! Sequential Methods with Applications to Clinical Trials", 2000, ch. 9): with Lan-DeMets
//! O'Brien-Fleming alpha spending at level `alpha / m` for a family of `m`, the intervals of
//! every look and every comparison cover the true differences all at once with probability at
//! least `1 - alpha`, whatever the looks decide. So a comparison is decided at the first look
//! whose interval
//!
//! - excludes 0: **different** (the difference has the interval's sign), or
//! - lies inside `(-margin, margin)`: **equivalent** within the margin,
//!
//! and stays undecided otherwise, until the last look. Under that coverage no comparison of the
//! family is called different when its means are equal, nor equivalent when they differ by the
//! margin or more, in more than `alpha` of families, whenever the runs stop.
//!
//! Assumptions: each config's figures are independent normal draws (unequal variances allowed:
//! Welch's standard error and degrees of freedom); the boundaries are those of the normal
//! theory, turned into Student quantiles at the same nominal level at each look (Jennison &
//! Turnbull 2000, §3.8), which a simulation test checks. The family's level is split evenly
//! (Bonferroni): Holm's step-down reallocates the level of rejected hypotheses only, which would
//! void the equivalence decisions' coverage.

use statrs::distribution::{Continuous, ContinuousCDF, Normal, StudentsT};

use crate::stats::{Decision, Summary};

/// A group-sequential comparison's design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Design {
    /// Repeats per config at the last look.
    pub max_repeats: usize,
    /// Two means within this many points are "equivalent".
    pub margin: f64,
    /// The family's error rate.
    pub alpha: f64,
    /// Comparisons in the family (the level is split evenly among them).
    pub comparisons: usize,
}

impl Design {
    /// Repeats per config at each look: 3, 5, 8, 13, ... (each the sum of the two before),
    /// the last one `max_repeats`.
    pub fn looks(&self) -> Vec<usize> {
        let mut looks = Vec::new();
        let (mut a, mut b) = (3, 5);
        while a < self.max_repeats {
            looks.push(a);
            (a, b) = (b, a + b);
        }
        looks.push(self.max_repeats);
        looks
    }

    /// The looks and their critical values (computed once: a numerical integration).
    pub fn plan(&self) -> Plan {
        let looks = self.looks();
        let max = self.max_repeats as f64;
        let fractions: Vec<f64> = looks.iter().map(|&n| n as f64 / max).collect();
        let boundaries =
            spending_boundaries(&fractions, self.alpha / self.comparisons.max(1) as f64);
        Plan {
            looks,
            boundaries,
            margin: self.margin,
        }
    }
}

/// A design's looks (repeats per config) and the critical value `c_k` of the standardised
/// difference at each.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub looks: Vec<usize>,
    pub boundaries: Vec<f64>,
    pub margin: f64,
}

/// The Lan-DeMets O'Brien-Fleming spending function, two-sided: the error spent by
/// information fraction `t`, `2 - 2 Φ(z_{1 - α/2} / sqrt(t))`.
pub fn obf_spending(t: f64, alpha: f64) -> f64 {
    let normal = standard_normal();
    2.0 - 2.0 * normal.cdf(normal.inverse_cdf(1.0 - alpha / 2.0) / t.sqrt())
}

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal")
}

/// Two-sided critical values at information fractions `fractions` (increasing, the last 1)
/// such that the probability of crossing first at look `k` under no difference is the
/// O'Brien-Fleming spending between looks `k - 1` and `k`.
pub fn spending_boundaries(fractions: &[f64], alpha: f64) -> Vec<f64> {
    let mut spent = 0.0;
    let mut grid = Grid::new();
    let mut bounds = Vec::with_capacity(fractions.len());
    for (k, &t) in fractions.iter().enumerate() {
        let total = obf_spending(t, alpha);
        let c = grid.solve(t, total - spent);
        spent = total;
        grid.advance(t, c);
        bounds.push(c);
        debug_assert!(k == 0 || fractions[k - 1] < t);
    }
    bounds
}

/// The density of the score `S = Z sqrt(t)` (a Brownian motion in the information `t`) over
/// the region where no earlier look stopped, on a grid: Armitage, McPherson and Rowe's
/// recursive integration (Jennison & Turnbull 2000, ch. 19), by Simpson's rule.
struct Grid {
    /// Information of the last look (0 before the first).
    t: f64,
    /// Grid points and the density there (empty before the first look: all mass at 0).
    points: Vec<f64>,
    density: Vec<f64>,
}

/// Grid points per look: the continuation region is sampled this finely (Simpson's rule on a
/// smooth density; 401 points reproduce the classic tables to 1e-3).
const GRID_POINTS: usize = 401;

impl Grid {
    fn new() -> Self {
        Self {
            t: 0.0,
            points: Vec::new(),
            density: Vec::new(),
        }
    }

    /// The probability of `|S_t| >= c sqrt(t)` without having stopped before.
    fn crossing(&self, t: f64, c: f64) -> f64 {
        let normal = standard_normal();
        let edge = c * t.sqrt();
        let step = (t - self.t).sqrt();
        let tail = |u: f64| normal.cdf((-edge - u) / step) + normal.sf((edge - u) / step);
        if self.points.is_empty() {
            return tail(0.0);
        }
        simpson(&self.points, |i| self.density[i] * tail(self.points[i]))
    }

    /// The `c` whose crossing probability at `t` is `target` (bisection).
    fn solve(&self, t: f64, target: f64) -> f64 {
        let (mut lo, mut hi) = (0.0, 40.0);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if self.crossing(t, mid) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// Moves to look `t` with boundary `c`: the density of `S_t` on `|S_t| < c sqrt(t)`.
    fn advance(&mut self, t: f64, c: f64) {
        let normal = standard_normal();
        let edge = c * t.sqrt();
        let step = (t - self.t).sqrt();
        let points: Vec<f64> = (0..GRID_POINTS)
            .map(|i| -edge + 2.0 * edge * i as f64 / (GRID_POINTS - 1) as f64)
            .collect();
        let kernel = |s: f64, u: f64| normal.pdf((s - u) / step) / step;
        let density = points
            .iter()
            .map(|&s| {
                if self.points.is_empty() {
                    kernel(s, 0.0)
                } else {
                    simpson(&self.points, |i| {
                        self.density[i] * kernel(s, self.points[i])
                    })
                }
            })
            .collect();
        (self.t, self.points, self.density) = (t, points, density);
    }
}

/// Simpson's rule over equally spaced `points` (an odd count) of `f(i)`.
fn simpson(points: &[f64], f: impl Fn(usize) -> f64) -> f64 {
    let n = points.len();
    let h = (points[n - 1] - points[0]) / (n - 1) as f64;
    let sum: f64 = (0..n)
        .map(|i| {
            let w = if i == 0 || i == n - 1 {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * f(i)
        })
        .sum();
    sum * h / 3.0
}

/// One look at a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// Repeats per config used.
    pub repeats: usize,
    /// The look's critical value of the standardised difference, and its nominal two-sided
    /// level `2 (1 - Φ(c))`.
    pub boundary: f64,
    pub nominal: f64,
    /// `mean(variant) - mean(control)` over those repeats.
    pub difference: f64,
    /// The repeated confidence interval; `None` when neither config has any spread.
    pub interval: Option<(f64, f64)>,
    pub decision: Decision,
}

/// The looks a comparison has taken, from its configs' figures in repeat order: each look uses
/// exactly the first `n_k` figures of each, so figures recorded beyond a look (another process
/// running ahead) change nothing until the look they belong to. Stops at the first look that
/// decides; an undecided last look is "cannot tell" for good.
impl Plan {
    pub fn looks(&self, control: &[f64], variant: &[f64]) -> Vec<Look> {
        let available = control.len().min(variant.len());
        let mut taken = Vec::new();
        for (&n, &c) in self.looks.iter().zip(&self.boundaries) {
            if n > available {
                break;
            }
            let look = look(n, c, self.margin, &control[..n], &variant[..n]);
            let decided = look.decision != Decision::Undecided;
            taken.push(look);
            if decided {
                break;
            }
        }
        taken
    }

    /// The repeats per config the next look needs (`None` once decided, or after the last
    /// look).
    pub fn next_repeats(&self, taken: &[Look]) -> Option<usize> {
        if taken
            .last()
            .is_some_and(|l| l.decision != Decision::Undecided)
        {
            return None;
        }
        self.looks.get(taken.len()).copied()
    }
}

fn look(repeats: usize, boundary: f64, margin: f64, control: &[f64], variant: &[f64]) -> Look {
    let nominal = 2.0 * standard_normal().sf(boundary);
    let (a, b) = (
        Summary::of(control).expect("a look has repeats"),
        Summary::of(variant).expect("a look has repeats"),
    );
    let difference = b.mean - a.mean;
    let interval = welch_interval(control, variant, nominal);
    let decision = match interval {
        Some((lo, _)) if lo > 0.0 => Decision::Higher,
        Some((_, hi)) if hi < 0.0 => Decision::Lower,
        Some((lo, hi)) if -margin < lo && hi < margin => Decision::Equivalent,
        _ => Decision::Undecided,
    };
    Look {
        repeats,
        boundary,
        nominal,
        difference,
        interval,
        decision,
    }
}

/// The two-sided `1 - level` Welch interval of `mean(b) - mean(a)`.
fn welch_interval(a: &[f64], b: &[f64], level: f64) -> Option<(f64, f64)> {
    let (sa, sb) = (Summary::of(a)?, Summary::of(b)?);
    let (va, vb) = (sa.std?.powi(2) / sa.n as f64, sb.std?.powi(2) / sb.n as f64);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return None;
    }
    let df = (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64);
    let q = StudentsT::new(0.0, 1.0, df)
        .ok()?
        .inverse_cdf(1.0 - level / 2.0);
    let d = sb.mean - sa.mean;
    Some((d - q * se, d + q * se))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// The engine against the classic tables (Jennison & Turnbull 2000, Tables 2.1 and 2.3,
    /// two-sided 5%, equally spaced looks): Pocock's constant boundary and O'Brien-Fleming's
    /// `C sqrt(K / k)`, each found as the constant whose total crossing probability is 5%.
    #[test]
    fn the_integration_reproduces_the_classic_tables() {
        let total = |bounds: &[f64], fractions: &[f64]| {
            let mut grid = Grid::new();
            let mut crossed = 0.0;
            for (&c, &t) in bounds.iter().zip(fractions) {
                crossed += grid.crossing(t, c);
                grid.advance(t, c);
            }
            crossed
        };
        let solve = |shape: &dyn Fn(usize, usize) -> f64, k: usize| {
            let fractions: Vec<f64> = (1..=k).map(|i| i as f64 / k as f64).collect();
            let (mut lo, mut hi) = (1.0, 4.0);
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                let bounds: Vec<f64> = (1..=k).map(|i| mid * shape(i, k)).collect();
                if total(&bounds, &fractions) > 0.05 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        let pocock = |_: usize, _: usize| 1.0;
        let obf = |i: usize, k: usize| (k as f64 / i as f64).sqrt();
        for (k, want_pocock, want_obf) in [
            (2, 2.178, 1.977),
            (3, 2.289, 2.004),
            (4, 2.361, 2.024),
            (5, 2.413, 2.040),
        ] {
            let (p, o) = (solve(&pocock, k), solve(&obf, k));
            assert!((p - want_pocock).abs() < 1e-3, "Pocock K={k}: {p}");
            assert!((o - want_obf).abs() < 1e-3, "O'Brien-Fleming K={k}: {o}");
        }
    }

    /// The spending boundaries against an independent computation (scipy's multivariate normal
    /// CDF: `tests/reference/sequential_boundaries.py`): Lan-DeMets O'Brien-Fleming, two-sided
    /// 5%; the first look's is exact (`z_{1 - α(t)/2}`).
    #[test]
    fn spending_boundaries_match_an_independent_computation() {
        let cases: [(&[f64], &[f64]); 3] = [
            (&[1.0 / 3.0, 2.0 / 3.0, 1.0], &[3.3948, 2.4067, 2.0152]),
            (
                &[0.2, 0.4, 0.6, 0.8, 1.0],
                &[4.3826, 3.0997, 2.5532, 2.2539, 2.0635],
            ),
            (
                &[0.15, 0.25, 0.4, 0.65, 1.0],
                &[5.0606, 3.9204, 3.1030, 2.4495, 2.0119],
            ),
        ];
        for (fractions, want) in cases {
            let got = spending_boundaries(fractions, 0.05);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 2e-3, "{fractions:?}: {got:?} vs {want:?}");
            }
        }
        let design = Design {
            max_repeats: 20,
            margin: 1.0,
            alpha: 0.05,
            comparisons: 1,
        };
        assert_eq!(design.looks(), [3, 5, 8, 13, 20]);
        assert_eq!(
            Design {
                max_repeats: 10,
                ..design
            }
            .looks(),
            [3, 5, 8, 10]
        );
    }

    fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
        // Box-Muller.
        let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Runs `sequences` simulated comparisons: the fractions decided "different" and
    /// "equivalent", and the mean repeats per config used.
    fn simulate(design: &Design, difference: f64, sd: f64, sequences: usize) -> (f64, f64, f64) {
        let plan = design.plan();
        let mut rng = StdRng::seed_from_u64(7);
        let (mut different, mut equivalent, mut used) = (0usize, 0usize, 0usize);
        for _ in 0..sequences {
            let n = design.max_repeats;
            let a: Vec<f64> = (0..n).map(|_| normal(&mut rng, 84.0, sd)).collect();
            let b: Vec<f64> = (0..n)
                .map(|_| normal(&mut rng, 84.0 + difference, sd))
                .collect();
            let taken = plan.looks(&a, &b);
            let last = taken.last().unwrap();
            used += last.repeats;
            match last.decision {
                Decision::Higher | Decision::Lower => different += 1,
                Decision::Equivalent => equivalent += 1,
                Decision::Undecided => {}
            }
        }
        let share = |k: usize| k as f64 / sequences as f64;
        (share(different), share(equivalent), share(used))
    }

    /// Under no difference (E2's spread between repeats, 0.9 points) the design calls the
    /// configs different in no more than alpha of 4,000 simulated sequences (within alpha's
    /// binomial interval), and under a difference of exactly the margin it calls them
    /// equivalent as rarely; under a difference of 1.2 points it decides with fewer repeats on
    /// average than the fixed design of the same power needs.
    #[test]
    fn error_rates_hold_under_optional_stopping() {
        let design = Design {
            max_repeats: 20,
            margin: 1.0,
            alpha: 0.05,
            comparisons: 1,
        };
        let sequences = 4000;
        let upper = 0.05 + 2.576 * (0.05 * 0.95 / sequences as f64).sqrt();
        let (different, equivalent, used) = simulate(&design, 0.0, 0.9, sequences);
        println!(
            "no difference: {different:.4} called different (at most {upper:.4}), \
             {equivalent:.4} equivalent, {used:.2} repeats on average"
        );
        assert!(different <= upper, "{different}");
        let (_, equivalent, _) = simulate(&design, 1.0, 0.9, sequences);
        println!("a difference of the margin: {equivalent:.4} called equivalent");
        assert!(equivalent <= upper, "{equivalent}");

        let (power, _, mean_used) = simulate(&design, 1.2, 0.9, 2000);
        // The fixed design of the same power: the fewest repeats whose Welch test at 5% finds
        // the difference as often.
        let mut rng = StdRng::seed_from_u64(11);
        let fixed_power = |n: usize, rng: &mut StdRng| {
            let hits = (0..2000)
                .filter(|_| {
                    let a: Vec<f64> = (0..n).map(|_| normal(rng, 84.0, 0.9)).collect();
                    let b: Vec<f64> = (0..n).map(|_| normal(rng, 85.2, 0.9)).collect();
                    crate::stats::Welch::test(&a, &b).is_some_and(|w| w.p < 0.05)
                })
                .count();
            hits as f64 / 2000.0
        };
        let fixed_n = (2..=40)
            .find(|&n| fixed_power(n, &mut rng) >= power)
            .unwrap();
        println!(
            "difference 1.2: power {power:.3} with {mean_used:.2} repeats on average; \
             the fixed design needs {fixed_n} for that power"
        );
        assert!(power > 0.8, "{power}");
        assert!(mean_used < fixed_n as f64, "{mean_used} vs {fixed_n}");
    }

    /// Each look uses exactly its first repeats: figures recorded beyond it change nothing.
    #[test]
    fn a_look_ignores_repeats_beyond_it() {
        let design = Design {
            max_repeats: 20,
            margin: 1.0,
            alpha: 0.05,
            comparisons: 1,
        };
        let a = [84.0, 84.5, 83.9, 84.2, 84.1];
        let b = [84.1, 84.3, 84.0, 84.4, 83.8];
        let mut b_more = b.to_vec();
        b_more.extend([99.0, 99.0, 99.0]);
        let plan = design.plan();
        assert_eq!(plan.looks(&a, &b), plan.looks(&a, &b_more));
        assert_eq!(plan.next_repeats(&plan.looks(&a, &b)), Some(8));
    }
}
