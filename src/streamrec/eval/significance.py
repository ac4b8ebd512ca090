"""Confidence intervals and paired significance tests over per-user metric arrays.

Two models evaluated on the same test users give paired per-user values (the rows of
:attr:`streamrec.eval.protocol.EvalResult.per_user` line up by user). :func:`compare` runs
the paired t-test and the Wilcoxon signed-rank test on them; :func:`bootstrap_ci` gives a
percentile interval of a mean over users; :func:`mean_std` summarises a metric over seeds;
:func:`delong_test` compares two ROC AUCs on the same labelled examples (click models).
Pairs with a ``nan`` on either side are dropped before testing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy import stats

__all__ = [
    "ConfidenceInterval",
    "DeLongResult",
    "PairedComparison",
    "PairedTestResult",
    "bootstrap_ci",
    "compare",
    "delong_test",
    "mean_std",
    "paired_ttest",
    "wilcoxon",
]


@dataclass(frozen=True)
class PairedTestResult:
    """Outcome of a paired test of ``a`` against ``b``.

    Attributes
    ----------
    statistic : float
        t statistic (t-test) or the signed-rank statistic (Wilcoxon).
    p_value : float
        Two-sided p-value; 1.0 when every difference is zero, nan with fewer than 2 pairs.
    mean_diff : float
        ``mean(a - b)`` over the pairs used.
    n : int
        Number of pairs used (both values finite-or-inf, i.e. not nan).
    """

    statistic: float
    p_value: float
    mean_diff: float
    n: int


@dataclass(frozen=True)
class PairedComparison:
    """Both paired tests of one metric between two models.

    Attributes
    ----------
    ttest : PairedTestResult
    wilcoxon : PairedTestResult
    """

    ttest: PairedTestResult
    wilcoxon: PairedTestResult


class ConfidenceInterval(NamedTuple):
    """Lower and upper bound (a tuple: ``lo, hi = bootstrap_ci(...)``)."""

    low: float
    high: float


def _pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired test: arrays differ in length ({x.size} vs {y.size}); "
                         "evaluate both models on the same test users")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def paired_ttest(a: np.ndarray, b: np.ndarray) -> PairedTestResult:
    """Paired (dependent) two-sided t-test of ``a`` against ``b``.

    Parameters
    ----------
    a, b : ndarray of float, shape (U,)
        Per-user values of two models on the same users.

    Returns
    -------
    PairedTestResult
        ``statistic`` and ``p_value`` from :func:`scipy.stats.ttest_rel`; all-zero differences
        give ``(0.0, 1.0)``; constant non-zero differences give ``(+-inf, 0.0)``.
    """
    x, y = _pairs(a, b)
    d = x - y
    n = int(d.size)
    mean_diff = float(d.mean()) if n else float("nan")
    if n and not d.any():
        return PairedTestResult(0.0, 1.0, 0.0, n)
    if n < 2:
        return PairedTestResult(float("nan"), float("nan"), mean_diff, n)
    if np.all(d == d[0]):  # zero variance, non-zero mean: certain difference
        return PairedTestResult(float(np.sign(d[0]) * np.inf), 0.0, mean_diff, n)
    res = stats.ttest_rel(x, y)
    return PairedTestResult(float(res.statistic), float(res.pvalue), mean_diff, n)


def wilcoxon(a: np.ndarray, b: np.ndarray, *,
             zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox") -> PairedTestResult:
    """Wilcoxon signed-rank two-sided test of ``a`` against ``b``.

    Parameters
    ----------
    a, b : ndarray of float, shape (U,)
        Per-user values of two models on the same users.
    zero_method : {"wilcox", "pratt", "zsplit"}
        Treatment of zero differences, as in :func:`scipy.stats.wilcoxon` (default: drop them).

    Returns
    -------
    PairedTestResult
        All-zero differences give ``(0.0, 1.0)`` instead of scipy's error.
    """
    x, y = _pairs(a, b)
    d = x - y
    n = int(d.size)
    mean_diff = float(d.mean()) if n else float("nan")
    if n and not d.any():
        return PairedTestResult(0.0, 1.0, 0.0, n)
    if n < 2:
        return PairedTestResult(float("nan"), float("nan"), mean_diff, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small-sample / ties notices
        res = stats.wilcoxon(x, y, zero_method=zero_method)
    return PairedTestResult(float(res.statistic), float(res.pvalue), mean_diff, n)


def compare(per_user_a: np.ndarray, per_user_b: np.ndarray) -> PairedComparison:
    """Paired t-test and Wilcoxon signed-rank test of model A against model B.

    Parameters
    ----------
    per_user_a, per_user_b : ndarray of float, shape (U,)

    Returns
    -------
    PairedComparison
    """
    return PairedComparison(paired_ttest(per_user_a, per_user_b),
                            wilcoxon(per_user_a, per_user_b))


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05,
                 rng: np.random.Generator | int | None = 0) -> ConfidenceInterval:
    """Percentile bootstrap confidence interval of the mean.

    Parameters
    ----------
    values : ndarray of float, shape (U,)
        nan entries are dropped.
    n_boot : int
        Bootstrap resamples (drawn in vectorised chunks).
    alpha : float
        The interval covers ``1 - alpha``.
    rng : numpy Generator or int seed, optional

    Returns
    -------
    ConfidenceInterval
        ``(low, high)``; ``(nan, nan)`` when no value is left.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"bootstrap_ci: alpha must lie in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"bootstrap_ci: n_boot must be >= 1, got {n_boot}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return ConfidenceInterval(float("nan"), float("nan"))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    means = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, 4_000_000 // v.size)  # bound the (chunk, U) index block to ~32 MB
    for lo in range(0, n_boot, chunk):
        m = min(chunk, n_boot - lo)
        means[lo:lo + m] = v[gen.integers(0, v.size, size=(m, v.size))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return ConfidenceInterval(float(low), float(high))


def mean_std(values_over_seeds: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of a metric over seeds.

    Parameters
    ----------
    values_over_seeds : ndarray of float, shape (S,)

    Returns
    -------
    (mean, std) : tuple of float
        ``std`` is 0.0 for a single seed; both nan for none.
    """
    v = np.asarray(values_over_seeds, dtype=np.float64).ravel()
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), 0.0
    return float(v.mean()), float(v.std(ddof=1))


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of two correlated ROC AUCs (the same labelled examples).

    Attributes
    ----------
    auc_a, auc_b : float
    z : float
        ``(auc_a - auc_b) / se``.
    p_value : float
        Two-sided; 1.0 when both score vectors rank every pair alike.
    se : float
        Standard error of ``auc_a - auc_b``.
    ci_a : ConfidenceInterval
        95% interval of ``auc_a`` (its DeLong variance, normal approximation).
    """

    auc_a: float
    auc_b: float
    z: float
    p_value: float
    se: float
    ci_a: ConfidenceInterval


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLongResult:
    """DeLong, DeLong & Clarke-Pearson (1988) test of AUC(a) = AUC(b), computed with
    midranks as in Sun & Xu (2014): O(n log n), vectorised.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    scores_a, scores_b : ndarray of float, shape (n,)
        Two models' scores of the same examples (higher = more likely positive).

    Returns
    -------
    DeLongResult
    """
    y = np.asarray(labels).reshape(-1)
    s = np.stack([np.asarray(scores_a, np.float64).reshape(-1),
                  np.asarray(scores_b, np.float64).reshape(-1)])  # (2, n)
    if s.shape[1] != len(y):
        raise ValueError(f"delong_test: {len(y)} labels but {s.shape[1]} scores")
    pos, neg = y == 1, y == 0
    if not np.all(pos | neg):
        raise ValueError("delong_test: labels must be 0 or 1")
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise ValueError("delong_test needs at least two positive and two negative examples")
    x, z = s[:, pos], s[:, neg]  # (2, m), (2, n)
    tx = stats.rankdata(x, axis=1)  # midranks within positives
    tz = stats.rankdata(z, axis=1)  # within negatives
    t_all = stats.rankdata(np.concatenate([x, z], axis=1), axis=1)  # (2, m + n)
    aucs = (t_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)  # (2,)
    v01 = (t_all[:, :m] - tx) / n  # (2, m): structural components of the positives
    v10 = 1.0 - (t_all[:, m:] - tz) / m  # (2, n): of the negatives
    cov = np.cov(v01) / m + np.cov(v10) / n  # (2, 2)
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    if var <= 1e-300:
        z_stat, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    else:
        z_stat = diff / math.sqrt(var)
        p = float(2.0 * stats.norm.sf(abs(z_stat)))
    half = 1.959963984540054 * math.sqrt(max(float(cov[0, 0]), 0.0))
    return DeLongResult(float(aucs[0]), float(aucs[1]), float(z_stat), p,
                        math.sqrt(max(var, 0.0)),
                        ConfidenceInterval(float(aucs[0]) - half, float(aucs[0]) + half))
