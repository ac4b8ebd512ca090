"""Paired tests, bootstrap intervals and seed summaries: scipy cross-checks and hand cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from streamrec.eval.significance import (
    PairedComparison,
    bootstrap_ci,
    compare,
    mean_std,
    paired_ttest,
    wilcoxon,
)


def _pair(seed: int = 0, n: int = 200):
    rng = np.random.default_rng(seed)
    a = rng.random(n)
    b = np.clip(a - 0.05 + 0.2 * rng.normal(size=n), 0, 1)
    return a, b


def test_paired_ttest_matches_scipy():
    a, b = _pair()
    res = paired_ttest(a, b)
    ref = stats.ttest_rel(a, b)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.mean_diff == pytest.approx(np.mean(a - b))
    assert res.n == 200


def test_paired_ttest_hand_case():
    # d = (1, 2, 3): mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.4641, df 2
    res = paired_ttest(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert res.statistic == pytest.approx(2 * np.sqrt(3))
    assert res.p_value == pytest.approx(2 * stats.t.sf(2 * np.sqrt(3), df=2))
    assert res.mean_diff == 2.0


def test_wilcoxon_matches_scipy():
    a, b = _pair(1)
    res = wilcoxon(a, b)
    ref = stats.wilcoxon(a, b)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    # with many zero differences (typical of per-user metrics) and another zero_method
    a2, b2 = a.copy(), b.copy()
    b2[:80] = a2[:80]
    for zm in ("wilcox", "pratt", "zsplit"):
        ours = wilcoxon(a2, b2, zero_method=zm)
        ref = stats.wilcoxon(a2, b2, zero_method=zm)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12), zm


def test_wilcoxon_hand_case():
    # d = (1, 2, 3, 4, 5), all positive: W- = 0; exact two-sided p = 2 / 2^5 = 0.0625
    res = wilcoxon(np.arange(1.0, 6.0) * 2, np.arange(1.0, 6.0))
    assert res.statistic == 0.0
    assert res.p_value == pytest.approx(0.0625)


def test_all_zero_differences_do_not_crash():
    a = np.array([0.1, 0.0, 0.5, 0.0])
    for f in (paired_ttest, wilcoxon):
        res = f(a, a.copy())
        assert (res.statistic, res.p_value, res.mean_diff, res.n) == (0.0, 1.0, 0.0, 4)


def test_constant_nonzero_difference_and_nan_pairs():
    res = paired_ttest(np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.5, 2.5]))
    assert res.statistic == np.inf and res.p_value == 0.0
    # nan pairs are dropped: the remaining pairs are those of the hand case
    res = paired_ttest(np.array([2.0, np.nan, 4.0, 6.0]), np.array([1.0, 7.0, 2.0, 3.0]))
    assert res.n == 3 and res.statistic == pytest.approx(2 * np.sqrt(3))
    with pytest.raises(ValueError, match="same test users"):
        paired_ttest(np.zeros(3), np.zeros(4))
    assert np.isnan(wilcoxon(np.array([1.0]), np.array([0.0])).p_value)


def test_compare_runs_both_tests():
    a, b = _pair(2)
    cmp = compare(a, b)
    assert isinstance(cmp, PairedComparison)
    assert cmp.ttest == paired_ttest(a, b)
    assert cmp.wilcoxon == wilcoxon(a, b)


def test_bootstrap_ci_properties():
    rng = np.random.default_rng(0)
    v = rng.normal(0.3, 0.1, size=2000)
    lo, hi = bootstrap_ci(v, n_boot=2000, alpha=0.05, rng=0)
    se = v.std(ddof=1) / np.sqrt(v.size)
    assert lo < v.mean() < hi
    # percentile interval ~ mean +- 1.96 se for a normal sample
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert bootstrap_ci(v, n_boot=500, rng=5) == bootstrap_ci(v, n_boot=500, rng=5)
    ci = bootstrap_ci(v, n_boot=2000, rng=np.random.default_rng(0))
    assert ci.low == lo and ci.high == hi


def test_bootstrap_ci_hand_cases():
    # a constant sample: every resample has mean 2
    assert tuple(bootstrap_ci(np.full(10, 2.0), n_boot=50)) == (2.0, 2.0)
    # nan dropped; none left -> (nan, nan)
    assert tuple(bootstrap_ci(np.array([1.0, np.nan]), n_boot=20)) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(np.array([np.nan]))))
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(np.ones(3), alpha=1.5)


def test_mean_std():
    # (0.2, 0.4, 0.6): mean 0.4, sd = sqrt((0.04 + 0 + 0.04) / 2) = 0.2
    m, s = mean_std(np.array([0.2, 0.4, 0.6]))
    assert m == pytest.approx(0.4) and s == pytest.approx(0.2)
    assert mean_std(np.array([0.7])) == (0.7, 0.0)
    assert all(np.isnan(mean_std(np.array([]))))
