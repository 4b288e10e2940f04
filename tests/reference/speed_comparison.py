"""Reference values for src/stats/mod.rs's speed-comparison tests (`attnx bench --against`),
computed independently of attnx with scipy: Wilcoxon's signed-rank test (scipy.stats.wilcoxon,
two-sided, zero differences dropped) and the ratio's 95% interval (the mean of the log ratios
-+ t.ppf(0.975, n - 1) times their standard error, exponentiated).

    pip install scipy && python3 tests/reference/speed_comparison.py
"""
import numpy as np
from scipy import stats

CASES = {
    # Six rounds, every one faster: the smallest exact p with six pairs.
    "all_faster": ([12.31, 12.40, 12.28, 12.35, 12.33, 12.30],
                   [13.05, 13.10, 12.98, 13.20, 13.01, 13.07]),
    # Mixed signs, no ties: exact distribution.
    "mixed": ([10.0, 10.2, 9.9, 10.1, 10.3, 9.8, 10.0, 10.4],
              [10.11, 10.03, 10.22, 10.16, 10.64, 9.73, 10.38, 10.31]),
    # Tied absolute differences and a zero: mid-ranks, normal approximation.
    "ties": ([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
             [5.5, 4.5, 5.5, 5.5, 5.0, 6.0, 5.75]),
}

for name, (this, other) in CASES.items():
    this, other = np.array(this), np.array(other)
    d = other - this
    nonzero = d[d != 0]
    ties = len(np.unique(np.abs(nonzero))) < len(nonzero) or len(nonzero) < len(d)
    method = "approx" if ties else "exact"
    w = stats.wilcoxon(other, this, zero_method="wilcox", correction=False, method=method)
    ranks = stats.rankdata(np.abs(nonzero))
    w_plus = ranks[nonzero > 0].sum()
    r = np.log(other / this)
    half = stats.t.ppf(0.975, len(r) - 1) * r.std(ddof=1) / np.sqrt(len(r))
    print(f"{name}: n = {len(nonzero)}, {method}, W+ = {w_plus}, p = {w.pvalue:.10f}, "
          f"ratio {np.exp(r.mean()):.10f} ({np.exp(r.mean() - half):.10f} to "
          f"{np.exp(r.mean() + half):.10f})")
