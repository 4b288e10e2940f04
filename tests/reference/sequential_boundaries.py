"""Reference values for src/sequential.rs's tests, computed independently of attnx:
Lan-DeMets O'Brien-Fleming boundaries (two-sided) from scipy's multivariate normal CDF, and the
classic constant boundaries (Pocock, O'Brien-Fleming) that Jennison & Turnbull tabulate.

    pip install scipy && python3 tests/reference/sequential_boundaries.py
"""
import numpy as np
from scipy import optimize, stats
from scipy.stats import multivariate_normal as mvn


def obf_spend(t, alpha):
    return 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / np.sqrt(t))


def cov(ts):
    return np.array([[np.sqrt(min(a, b) / max(a, b)) for b in ts] for a in ts])


def inside(c, ts):
    """P(|Z_i| < c_i for every look i) under no difference."""
    if len(c) == 1:
        return stats.norm.cdf(c[0]) - stats.norm.cdf(-c[0])
    return mvn(mean=np.zeros(len(c)), cov=cov(ts)).cdf(np.array(c), lower_limit=-np.array(c))


def spending_boundaries(ts, alpha):
    c = []
    for k in range(len(ts)):
        target = obf_spend(ts[k], alpha) - (obf_spend(ts[k - 1], alpha) if k else 0)
        before = inside(c, ts[:k]) if k else 1.0
        c.append(optimize.brentq(lambda x: before - inside(c + [x], ts[: k + 1]) - target, 0.5, 12))
    return c


def classic(shape, K, alpha=0.05):
    ts = [(i + 1) / K for i in range(K)]
    return optimize.brentq(lambda x: 1 - inside([x * shape(i + 1, K) for i in range(K)], ts) - alpha, 1.5, 4)


if __name__ == "__main__":
    for ts in ([1 / 3, 2 / 3, 1], [0.2, 0.4, 0.6, 0.8, 1], [0.15, 0.25, 0.4, 0.65, 1]):
        print("OBF spending", ts, ["%.4f" % x for x in spending_boundaries(ts, 0.05)])
    for K in (2, 3, 4, 5):
        print(K, "Pocock %.3f" % classic(lambda i, k: 1.0, K),
              "O'Brien-Fleming %.3f" % classic(lambda i, k: np.sqrt(k / i), K))
