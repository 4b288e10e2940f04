//! Summary statistics of repeated measurements, and the comparison of two configs; the
//! group-sequential design of `--until-decided` in [`sequential`].

pub mod sequential;

use statrs::distribution::{ContinuousCDF, StudentsT};

/// n, mean, sample standard deviation, min and max of a set of repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); `None` below 2 values.
    pub std: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// 95% confidence interval of the mean (Student t); `None` below 2 values.
    pub ci95: Option<(f64, f64)>,
}

impl Summary {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n >= 2).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ci95 = std.and_then(|sd| {
            let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
                .ok()?
                .inverse_cdf(0.975);
            let half = t * sd / (n as f64).sqrt();
            Some((mean - half, mean + half))
        });
        Some(Self {
            n,
            mean,
            std,
            min,
            max,
            ci95,
        })
    }
}

/// Welch's comparison of two means (unequal variances).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// mean(b) - mean(a).
    pub difference: f64,
    /// 95% confidence interval of the difference.
    pub ci95: (f64, f64),
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Hedges' g: the difference in pooled standard deviations, corrected for small samples.
    pub hedges_g: f64,
    /// Standard error of the difference.
    pub se: f64,
}

impl Welch {
    /// `None` when either side has fewer than 2 values, or both have zero variance.
    pub fn test(a: &[f64], b: &[f64]) -> Option<Self> {
        let (sa, sb) = (Summary::of(a)?, Summary::of(b)?);
        let (va, vb) = (sa.std?.powi(2) / sa.n as f64, sb.std?.powi(2) / sb.n as f64);
        let se = (va + vb).sqrt();
        if se == 0.0 {
            return None;
        }
        let difference = sb.mean - sa.mean;
        let t = difference / se;
        let df =
            (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64);
        let dist = StudentsT::new(0.0, 1.0, df).ok()?;
        let p = 2.0 * (1.0 - dist.cdf(t.abs()));
        let half = dist.inverse_cdf(0.975) * se;
        let (na, nb) = (sa.n as f64, sb.n as f64);
        let pooled = (((na - 1.0) * sa.std?.powi(2) + (nb - 1.0) * sb.std?.powi(2))
            / (na + nb - 2.0))
            .sqrt();
        let correction = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0);
        Some(Self {
            difference,
            ci95: (difference - half, difference + half),
            t,
            df,
            p,
            hedges_g: difference / pooled * correction,
            se,
        })
    }

    /// The equivalence test of the two means within `margin` (Schuirmann's two one-sided
    /// Welch tests, TOST): the p-value of "the difference lies outside [-margin, margin]", the
    /// larger of the two one-sided p-values. Below alpha, the means are equivalent within the
    /// margin at level alpha (the 1 - 2 alpha confidence interval lies inside it).
    pub fn equivalence_p(&self, margin: f64) -> f64 {
        tost_p(self.difference, self.se, self.df, margin)
    }
}

/// The paired comparison of two measurements of the same repeats (`after[i] - before[i]`):
/// Student's one-sample t-test of the differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Mean of `after - before`.
    pub difference: f64,
    pub ci95: (f64, f64),
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    pub se: f64,
}

impl Paired {
    /// `None` below 2 pairs, for unequal lengths, or when every difference is the same.
    pub fn test(before: &[f64], after: &[f64]) -> Option<Self> {
        if before.len() != after.len() {
            return None;
        }
        let diffs: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        let s = Summary::of(&diffs)?;
        let se = s.std? / (s.n as f64).sqrt();
        if se == 0.0 {
            return None;
        }
        let df = (s.n - 1) as f64;
        let dist = StudentsT::new(0.0, 1.0, df).ok()?;
        let t = s.mean / se;
        let half = dist.inverse_cdf(0.975) * se;
        Some(Self {
            difference: s.mean,
            ci95: (s.mean - half, s.mean + half),
            t,
            df,
            p: 2.0 * (1.0 - dist.cdf(t.abs())),
            se,
        })
    }

    /// The equivalence test of the mean difference within `margin` (TOST), as
    /// [`Welch::equivalence_p`].
    pub fn equivalence_p(&self, margin: f64) -> f64 {
        tost_p(self.difference, self.se, self.df, margin)
    }
}

/// TOST: the larger of the one-sided p-values of "difference <= -margin" and "difference >=
/// margin", for an estimate with standard error `se` and `df` degrees of freedom.
fn tost_p(difference: f64, se: f64, df: f64, margin: f64) -> f64 {
    let Ok(dist) = StudentsT::new(0.0, 1.0, df) else {
        return 1.0;
    };
    let above_lower = 1.0 - dist.cdf((difference + margin) / se);
    let below_upper = dist.cdf((difference - margin) / se);
    above_lower.max(below_upper)
}

impl Summary {
    /// The 95% prediction interval for the mean of `m` new repeats drawn like these
    /// (`m = 1`: a single new run): mean -+ t(n-1, 0.975) sd sqrt(1/n + 1/m). `None` below 2
    /// values. Where a published figure falls outside it, the article's run is unlikely to come
    /// from attnx's distribution.
    pub fn prediction_interval(&self, m: usize) -> Option<(f64, f64)> {
        let sd = self.std?;
        let t = StudentsT::new(0.0, 1.0, (self.n - 1) as f64)
            .ok()?
            .inverse_cdf(0.975);
        let half = t * sd * (1.0 / self.n as f64 + 1.0 / m.max(1) as f64).sqrt();
        Some((self.mean - half, self.mean + half))
    }
}

/// The significance level of the tests behind a decision.
pub const ALPHA: f64 = 0.05;

/// What two sets of repeats say of their difference, after the family's adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Significantly higher (the second set against the first).
    Higher,
    Lower,
    /// Equivalent within the margin, and not significantly different.
    Equivalent,
    /// Neither: more repeats could tell.
    Undecided,
}

impl Decision {
    /// From Holm-adjusted p-values of the difference test and of the equivalence test.
    pub fn of(difference: f64, p: f64, p_equivalent: f64) -> Self {
        if p < ALPHA {
            if difference > 0.0 {
                Decision::Higher
            } else {
                Decision::Lower
            }
        } else if p_equivalent < ALPHA {
            Decision::Equivalent
        } else {
            Decision::Undecided
        }
    }
}

/// Holm's step-down adjustment of `p` for testing them together: the family-wise error rate
/// stays at most alpha when each adjusted value is compared with alpha. Same order as `p`.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Wilcoxon's signed-rank test of paired differences: whether they lean one way, without
/// assuming they are normal (timings are not). Zero differences are dropped (Wilcoxon's
/// convention) and tied magnitudes share their mean rank. The two-sided p-value is exact
/// (the distribution of W+ over all 2^n sign patterns) when no magnitudes tie and n <= 50,
/// else from the normal approximation with the tie correction, as scipy's `wilcoxon`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedRank {
    /// Nonzero differences ranked.
    pub n: usize,
    /// The sum of the ranks of the positive differences.
    pub w_plus: f64,
    pub p: f64,
    pub exact: bool,
}

impl SignedRank {
    /// `None` when no difference is nonzero.
    pub fn test(differences: &[f64]) -> Option<Self> {
        let mut nonzero: Vec<f64> = differences.iter().copied().filter(|d| *d != 0.0).collect();
        let n = nonzero.len();
        if n == 0 {
            return None;
        }
        nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
        // Mid-ranks of the magnitudes, and the tie groups' sizes for the variance correction.
        let mut ranks = vec![0.0; n];
        let mut ties = Vec::new();
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n && nonzero[end].abs() == nonzero[start].abs() {
                end += 1;
            }
            let rank = (start + end + 1) as f64 / 2.0;
            ranks[start..end].fill(rank);
            ties.push(end - start);
            start = end;
        }
        let w_plus: f64 = nonzero
            .iter()
            .zip(&ranks)
            .filter(|(d, _)| **d > 0.0)
            .map(|(_, r)| r)
            .sum();
        let tied = ties.iter().any(|&t| t > 1) || n < differences.len();
        let exact = !tied && n <= 50;
        let total = (n * (n + 1) / 2) as f64;
        let p = if exact {
            // counts[s]: sign patterns whose positive ranks sum to s.
            let mut counts = vec![0.0f64; n * (n + 1) / 2 + 1];
            counts[0] = 1.0;
            for rank in 1..=n {
                for s in (rank..counts.len()).rev() {
                    counts[s] += counts[s - rank];
                }
            }
            let all = 2f64.powi(n as i32);
            let w = w_plus.min(total - w_plus) as usize;
            let tail: f64 = counts[..=w].iter().sum::<f64>() / all;
            (2.0 * tail).min(1.0)
        } else {
            let mean = total / 2.0;
            let correction: f64 = ties.iter().map(|&t| (t.pow(3) - t) as f64).sum::<f64>() / 48.0;
            let variance = (n * (n + 1) * (2 * n + 1)) as f64 / 24.0 - correction;
            let z = (w_plus - mean) / variance.sqrt();
            let normal = statrs::distribution::Normal::new(0.0, 1.0).expect("a normal");
            2.0 * (1.0 - normal.cdf(z.abs()))
        };
        Some(Self {
            n,
            w_plus,
            p,
            exact,
        })
    }
}

/// The middle value (the mean of the two middle ones for an even count); `None` for none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// How many times longer `slower` took than `faster`, paired round by round: the geometric
/// mean of the per-round ratios and its 95% interval (Student t on the log ratios). `None`
/// below 2 rounds or for a time that is not positive.
pub fn ratio(faster: &[f64], slower: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    if faster.len() != slower.len() || faster.iter().chain(slower).any(|t| t.is_nan() || *t <= 0.0)
    {
        return None;
    }
    let logs: Vec<f64> = slower
        .iter()
        .zip(faster)
        .map(|(s, f)| (s / f).ln())
        .collect();
    let s = Summary::of(&logs)?;
    Some((s.mean.exp(), s.ci95.map(|(lo, hi)| (lo.exp(), hi.exp()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let s = Summary::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!(s.mean, 5.0);
        assert!((s.std.unwrap() - 2.138_089_935).abs() < 1e-9);
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert_eq!(Summary::of(&[3.0]).unwrap().std, None);
        assert_eq!(Summary::of(&[3.0]).unwrap().ci95, None);
        // scipy: mean -+ t.ppf(0.975, 9) * sem, for the published E1 baseline repeats.
        let baseline =
            Summary::of(&[20.0, 23.0, 23.0, 18.0, 28.0, 29.0, 23.0, 26.0, 21.0, 20.0]).unwrap();
        let (lo, hi) = baseline.ci95.unwrap();
        assert!(
            (lo - 20.521_846).abs() < 1e-5 && (hi - 25.678_154).abs() < 1e-5,
            "{lo} {hi}"
        );
        assert!(Summary::of(&[]).is_none());
    }

    /// The published E1 repeats; reference: scipy.stats.ttest_ind(attention, baseline,
    /// equal_var=False) gives t = 51.19394, df = 16.58839, p = 1.0668e-19, 95% CI of the
    /// difference 69.60233 to 75.59767.
    #[test]
    fn welch_on_the_published_e1_repeats() {
        let baseline = [20.0, 23.0, 23.0, 18.0, 28.0, 29.0, 23.0, 26.0, 21.0, 20.0];
        let attention = [98.0, 91.0, 94.0, 93.0, 96.0, 99.0, 97.0, 94.0, 99.0, 96.0];
        let w = Welch::test(&baseline, &attention).unwrap();
        assert!((w.difference - 72.6).abs() < 1e-9);
        assert!((w.t - 51.193_944).abs() < 1e-4, "t = {}", w.t);
        assert!((w.df - 16.588_389).abs() < 1e-4, "df = {}", w.df);
        assert!((w.ci95.0 - 69.602_328).abs() < 1e-4, "{:?}", w.ci95);
        assert!((w.ci95.1 - 75.597_672).abs() < 1e-4, "{:?}", w.ci95);
        // Below double precision's resolution of 1 - cdf: only its order can be checked.
        assert!(w.p < 1e-12);
        assert!((w.hedges_g - 21.927_249).abs() < 1e-5, "g = {}", w.hedges_g);
    }

    /// A moderate p-value, where the t distribution's tail matters; reference:
    /// scipy.stats.ttest_ind(b, a, equal_var=False) gives t = 2.225512, df = 24.524635,
    /// p = 0.035485, 95% CI 0.163541 to 4.276459.
    #[test]
    fn welch_moderate_p_value() {
        let a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0];
        let b = [
            28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0,
            23.9, 21.6, 24.3, 20.4, 23.9, 13.3,
        ];
        let w = Welch::test(&a, &b).unwrap();
        assert!((w.t - 2.225_512).abs() < 1e-5, "t = {}", w.t);
        assert!((w.df - 24.524_635).abs() < 1e-5, "df = {}", w.df);
        assert!((w.p - 0.035_485).abs() < 1e-5, "p = {}", w.p);
        assert!((w.ci95.0 - 0.163_541).abs() < 1e-5 && (w.ci95.1 - 4.276_459).abs() < 1e-5);
        assert!((w.hedges_g - 0.623_446).abs() < 1e-5, "g = {}", w.hedges_g);
        assert!(Welch::test(&[1.0], &b).is_none());
    }

    /// Reference: statsmodels.stats.weightstats.ttost_ind(b, a, -1, 1, usevar="unequal")
    /// gives p = 0.020290455965606646 (one-sided 0.020290, 0.014295); with margin 5 on the
    /// E1 repeats below, ttost_ind(d, c, -5, 5, usevar="unequal") gives 0.10840667355457335.
    #[test]
    fn equivalence_matches_statsmodels_tost() {
        let a = [84.91, 83.18, 84.74, 84.54, 84.86];
        let b = [84.39, 84.60, 84.12, 84.30, 84.55];
        let w = Welch::test(&a, &b).unwrap();
        let p = w.equivalence_p(1.0);
        assert!((p - 0.020_290_455_965_606_646).abs() < 1e-9, "p = {p}");
        let c = [20.0, 23.0, 23.0, 18.0, 28.0, 29.0, 23.0, 26.0, 21.0, 20.0];
        let d = [29.0, 18.0, 10.0, 25.0, 23.0, 24.0, 17.0, 15.0, 32.0, 19.0];
        let p = Welch::test(&c, &d).unwrap().equivalence_p(5.0);
        assert!((p - 0.108_406_673_554_573_35).abs() < 1e-9, "p = {p}");
        // A margin far beyond the spread is equivalence for sure; a zero margin never is.
        assert!(w.equivalence_p(10.0) < 1e-4);
        assert!(w.equivalence_p(0.0) >= 0.5);
    }

    /// Reference: scipy.stats.ttest_rel(after, before) gives t = -14.512594000225564,
    /// p = 0.00013108342880332904; statsmodels ttost_paired(after, before, -3, 3) gives
    /// p = 0.0034936873326598342.
    #[test]
    fn paired_matches_scipy() {
        let before = [83.6, 84.1, 83.9, 84.4, 83.8];
        let after = [81.2, 81.9, 82.0, 81.7, 81.9];
        let p = Paired::test(&before, &after).unwrap();
        assert!((p.difference - -2.22).abs() < 1e-9, "{p:?}");
        assert!((p.t - -14.512_594).abs() < 1e-5, "t = {}", p.t);
        assert!((p.p - 0.000_131_083_43).abs() < 1e-9, "p = {}", p.p);
        assert!((p.equivalence_p(3.0) - 0.003_493_687_33).abs() < 1e-9);
        assert!(Paired::test(&before, &after[..4]).is_none());
        assert!(
            Paired::test(&[1.0, 2.0], &[2.0, 3.0]).is_none(),
            "no spread"
        );
    }

    /// Reference: scipy, mean -+ t.ppf(0.975, 4) * s * sqrt(1/5 + 1/m): for m = 1,
    /// 82.250297 to 86.641703; for m = 10, 83.348149 to 85.543851.
    #[test]
    fn prediction_interval_matches_scipy() {
        let s = Summary::of(&[84.91, 83.18, 84.74, 84.54, 84.86]).unwrap();
        let (lo, hi) = s.prediction_interval(1).unwrap();
        assert!(
            (lo - 82.250_297).abs() < 1e-5 && (hi - 86.641_703).abs() < 1e-5,
            "{lo} {hi}"
        );
        let (lo, hi) = s.prediction_interval(10).unwrap();
        assert!(
            (lo - 83.348_149).abs() < 1e-5 && (hi - 85.543_851).abs() < 1e-5,
            "{lo} {hi}"
        );
        assert!(
            Summary::of(&[1.0])
                .unwrap()
                .prediction_interval(1)
                .is_none()
        );
    }

    /// By hand: sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1 gives 0.04, 0.09, 0.08, 0.5; the
    /// running maximum makes the third 0.09.
    #[test]
    fn holm_adjusts_step_down() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.5]);
        let want = [0.04, 0.09, 0.09, 0.5];
        for (a, w) in adjusted.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.6, 0.7]), [1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    /// Reference: tests/reference/speed_comparison.py (scipy 1.x `wilcoxon` and t intervals).
    #[test]
    fn speed_comparisons_match_scipy() {
        /// This build's times, the other's; n, exact, W+ and p; the ratio and its interval.
        type Case<'a> = (&'a [f64], &'a [f64], usize, bool, f64, f64, (f64, f64, f64));
        let cases: [Case; 3] = [
            (
                &[12.31, 12.40, 12.28, 12.35, 12.33, 12.30],
                &[13.05, 13.10, 12.98, 13.20, 13.01, 13.07],
                6,
                true,
                21.0,
                0.03125,
                (1.0600141861, 1.0546911458, 1.0653640918),
            ),
            (
                &[10.0, 10.2, 9.9, 10.1, 10.3, 9.8, 10.0, 10.4],
                &[10.11, 10.03, 10.22, 10.16, 10.64, 9.73, 10.38, 10.31],
                8,
                true,
                26.0,
                0.3125,
                (1.0107801975, 0.9931467910, 1.0287266867),
            ),
            (
                &[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
                &[5.5, 4.5, 5.5, 5.5, 5.0, 6.0, 5.75],
                6,
                false,
                18.5,
                0.0844690323,
                (1.0744486498, 0.9833735267, 1.1739586940),
            ),
        ];
        for (this, other, n, exact, w_plus, p, (r, lo, hi)) in cases {
            let d: Vec<f64> = other.iter().zip(this).map(|(o, t)| o - t).collect();
            let test = SignedRank::test(&d).unwrap();
            assert_eq!(
                (test.n, test.exact, test.w_plus),
                (n, exact, w_plus),
                "{test:?}"
            );
            assert!((test.p - p).abs() < 1e-9, "{} against {p}", test.p);
            let (ratio, ci) = ratio(this, other).unwrap();
            let (a, b) = ci.unwrap();
            assert!((ratio - r).abs() < 1e-9 && (a - lo).abs() < 1e-9 && (b - hi).abs() < 1e-9);
        }
        assert!(SignedRank::test(&[0.0, 0.0]).is_none());
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert!(ratio(&[1.0, 2.0], &[1.0, 0.0]).is_none());
    }
}
