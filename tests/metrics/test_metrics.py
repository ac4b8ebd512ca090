"""Metrics (streamrec.metrics): hand-computed cases and cross-checks against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics as skm

from streamrec import metrics as M

L3 = 1.0 / np.log2(3.0)  # discount at rank 2 = 0.6309297535714575


def _csr(rows: list[list[int]], n_cols: int) -> sp.csr_array:
    r = np.repeat(np.arange(len(rows)), [len(x) for x in rows])
    c = np.array([i for x in rows for i in x], dtype=np.int64)
    return sp.csr_array((np.ones(len(c)), (r, c)), shape=(len(rows), n_cols))


# ---------------------------------------------------------------------------- hits
def test_hit_matrix_hand_case():
    truth = _csr([[1, 2], [5, 7]], n_cols=8)
    ranked = np.array([[3, 1, -1], [0, 9, 5]])  # -1 padding and id 9 >= n_cols: never hits
    hits = M.hit_matrix(ranked, truth)
    assert hits.dtype == bool
    assert hits.tolist() == [[False, True, False], [False, False, True]]


def test_hit_matrix_unsorted_and_explicit_zero_entries():
    # stored entries are relevant whatever their value; column order inside a row is free
    truth = sp.csr_array((np.array([0.0, 1.0, 1.0]), np.array([4, 0, 2]), np.array([0, 3, 3])),
                         shape=(2, 5))
    assert not truth.has_sorted_indices
    hits = M.hit_matrix(np.array([[4, 3, 0], [0, 1, 2]]), truth)
    assert hits.tolist() == [[True, False, True], [False, False, False]]


def test_hit_matrix_shape_errors():
    with pytest.raises(ValueError, match="rows"):
        M.hit_matrix(np.zeros((3, 2), np.int64), _csr([[1]], 4))
    with pytest.raises(ValueError, match="2-D"):
        M.hit_matrix(np.zeros(3, np.int64), _csr([[1]], 4))


# ---------------------------------------------------------------------------- ranking
HITS = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
N_REL = np.array([2, 3, 5])


def test_ranking_metrics_hand_case_at_3():
    k = 3
    # precision: hits in top 3 / 3 -> 2/3, 0, 1/3
    np.testing.assert_allclose(M.precision(HITS, k), [2 / 3, 0, 1 / 3])
    # recall: hits / n_rel -> 2/2, 0/3, 1/5
    np.testing.assert_allclose(M.recall(HITS, N_REL, k), [1.0, 0.0, 0.2])
    # ndcg row 0: dcg = 1 + 1/log2(4) = 1.5, idcg = 1 + 1/log2(3) = 1.6309 -> 0.91972
    # row 2: dcg = 1/log2(3) = 0.6309, idcg (3 hits) = 1 + 0.6309 + 0.5 = 2.1309 -> 0.29608
    np.testing.assert_allclose(
        M.ndcg(HITS, N_REL, k), [1.5 / (1 + L3), 0.0, L3 / (1 + L3 + 0.5)]
    )
    np.testing.assert_allclose(M.ndcg(HITS, N_REL, k)[[0, 2]], [0.919720, 0.296082], atol=1e-6)
    # map row 0: (P@1 = 1 + P@3 = 2/3) / min(2, 3) = 5/6; row 2: P@2 = 1/2 / min(5, 3) = 1/6
    np.testing.assert_allclose(M.average_precision(HITS, N_REL, k), [5 / 6, 0.0, 1 / 6])
    # mrr: first hit at rank 1, none, rank 2
    np.testing.assert_allclose(M.mrr(HITS, k), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(M.hit_rate(HITS, k), [1.0, 0.0, 1.0])


def test_ranking_metrics_hand_case_at_1_and_beyond_width():
    # k = 1: only the first column counts
    np.testing.assert_allclose(M.precision(HITS, 1), [1, 0, 0])
    np.testing.assert_allclose(M.recall(HITS, N_REL, 1), [0.5, 0, 0])
    np.testing.assert_allclose(M.ndcg(HITS, N_REL, 1), [1, 0, 0])
    np.testing.assert_allclose(M.average_precision(HITS, N_REL, 1), [1, 0, 0])
    # k = 10 > K = 4 columns: precision still divides by k (2/10, 0, 1/10)
    np.testing.assert_allclose(M.precision(HITS, 10), [0.2, 0.0, 0.1])
    # ndcg row 0: ideal over min(2, 10) = 2 hits, same as at k = 3
    np.testing.assert_allclose(M.ndcg(HITS, N_REL, 10)[0], 1.5 / (1 + L3))


def test_ranking_metrics_nan_for_users_without_relevant_items():
    hits = np.zeros((2, 3), dtype=bool)
    n_rel = np.array([0, 1])
    for f in (M.recall, M.ndcg, M.average_precision):
        out = f(hits, n_rel, 3)
        assert np.isnan(out[0]) and out[1] == 0.0
    with pytest.raises(ValueError, match="n_relevant"):
        M.recall(hits, np.array([1, 1, 1]), 3)
    with pytest.raises(ValueError, match="k must be"):
        M.precision(hits, 0)


def test_ndcg_matches_sklearn_binary_relevance():
    rng = np.random.default_rng(3)
    n_users, n_items = 25, 40
    y_true = (rng.random((n_users, n_items)) < 0.15).astype(np.float64)
    y_true[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0  # >= 1 relevant
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float64)
    ranked = np.argsort(-scores, axis=1)[:, :20]
    hits = M.hit_matrix(ranked, sp.csr_array(y_true))
    n_rel = y_true.sum(axis=1)
    for k in (1, 5, 10, 20):
        ours = M.ndcg(hits, n_rel, k)
        ref = [skm.ndcg_score(y_true[u:u + 1], scores[u:u + 1], k=k, ignore_ties=True)
               for u in range(n_users)]
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_map_and_recall_match_brute_force():
    rng = np.random.default_rng(4)
    hits = rng.random((30, 12)) < 0.3
    n_rel = hits.sum(axis=1) + rng.integers(0, 4, 30)
    n_rel[n_rel == 0] = 1
    for k in (3, 12):
        ap, rc = [], []
        for h, n in zip(hits, n_rel, strict=True):
            ranks = np.flatnonzero(h[:k]) + 1
            ap.append(sum(np.arange(1, len(ranks) + 1) / ranks) / min(n, k))
            rc.append(len(ranks) / n)
        np.testing.assert_allclose(M.average_precision(hits, n_rel, k), ap)
        np.testing.assert_allclose(M.recall(hits, n_rel, k), rc)


# ---------------------------------------------------------------------------- beyond accuracy
def test_coverage_hand_case():
    # items {0, 1, 2} of 5 appear; -1 and 7 (outside the catalogue) are ignored -> 0.6
    assert M.coverage(np.array([[0, 1, -1], [1, 2, 7]]), 5) == pytest.approx(0.6)


def test_novelty_and_popularity_hand_case():
    counts = np.array([4, 2, 1, 0])
    ranked = np.array([[0, 1], [2, 3], [-1, -1]])
    # self-information with 8 users: -log2(4/8)=1, -log2(2/8)=2, -log2(1/8)=3, count 0 -> 1 -> 3
    nov = M.novelty(ranked, counts, n_users=8)
    np.testing.assert_allclose(nov[:2], [1.5, 3.0])
    assert np.isnan(nov[2])
    pop = M.average_popularity(ranked, counts)
    np.testing.assert_allclose(pop[:2], [3.0, 0.5])
    assert np.isnan(pop[2])


def test_intra_list_diversity_categories_hand_case():
    cats = np.array([0, 0, 1, 2])
    ranked = np.array([[0, 1, 2], [0, 1, -1], [3, -1, -1]])
    # row 0 pairs: (0,1) same -> 0, (0,2) -> 1, (1,2) -> 1 => 2/3; row 1: one same pair -> 0
    out = M.intra_list_diversity(ranked, categories=cats)
    np.testing.assert_allclose(out[:2], [2 / 3, 0.0])
    assert np.isnan(out[2])  # fewer than two items


def test_intra_list_diversity_embeddings_hand_case():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    # row 0: 1 - cos = 1 (0,1), 1 - 1/sqrt2 (0,2), 1 - 1/sqrt2 (1,2) => (3 - sqrt2) / 3
    # row 1: the zero vector has cosine 0 -> 1
    out = M.intra_list_diversity(np.array([[0, 1, 2], [0, 3, -1]]), embeddings=emb, chunk_size=1)
    np.testing.assert_allclose(out, [(3 - np.sqrt(2)) / 3, 1.0])
    with pytest.raises(ValueError, match="exactly one"):
        M.intra_list_diversity(np.array([[0, 1]]))


# ---------------------------------------------------------------------------- rating
def test_rmse_mae_hand_case():
    y, yhat = np.array([3.0, 4.0, 5.0]), np.array([2.5, 4.0, 6.0])
    # errors -0.5, 0, 1 -> squared 0.25, 0, 1; rmse = sqrt(1.25 / 3) = 0.645497; mae = 1.5 / 3
    np.testing.assert_allclose(M.squared_errors(y, yhat), [0.25, 0.0, 1.0])
    assert M.rmse(y, yhat) == pytest.approx(0.6454972244)
    assert M.mae(y, yhat) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="predictions"):
        M.rmse(y, yhat[:2])


# ---------------------------------------------------------------------------- CTR
def test_auc_log_loss_ap_hand_cases():
    labels = np.array([1, 0, 1, 0])
    # pos x neg pairs: 0.8>0.4, 0.8>0.1, 0.4=0.4 (half), 0.4>0.1 -> 3.5 / 4
    assert M.auc(labels, np.array([0.8, 0.4, 0.4, 0.1])) == pytest.approx(0.875)
    # -(ln 0.8 + ln 0.6) / 2 = (0.223144 + 0.510826) / 2
    assert M.log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(0.366985, abs=1e-6)
    # hits at ranks 1 (P=1, R=.5) and 3 (P=2/3, R=1): 0.5 * 1 + 0.5 * 2/3 = 5/6
    ap = M.average_precision_score(labels, np.array([0.9, 0.8, 0.7, 0.1]))
    assert ap == pytest.approx(5 / 6)
    assert np.isnan(M.auc(np.ones(3), np.arange(3.0)))
    assert np.isnan(M.average_precision_score(np.zeros(3), np.arange(3.0)))
    with pytest.raises(ValueError, match="0/1"):
        M.auc(np.array([0, 2]), np.array([0.1, 0.2]))


def test_ctr_metrics_match_sklearn_with_ties():
    rng = np.random.default_rng(7)
    labels = (rng.random(500) < 0.3).astype(int)
    scores = np.round(rng.random(500) * 0.5 + 0.4 * labels, 2)  # many tied scores
    probs = np.clip(scores, 0.01, 0.99)
    assert M.auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores), rel=1e-12)
    assert M.average_precision_score(labels, scores) == pytest.approx(
        skm.average_precision_score(labels, scores), rel=1e-12
    )
    assert M.log_loss(labels, probs) == pytest.approx(skm.log_loss(labels, probs), rel=1e-12)


def test_calibration_hand_case():
    probs = np.array([0.05, 0.15, 0.12, 0.95, 0.99, 1.0])
    labels = np.array([0, 0, 1, 1, 1, 1])
    cal = M.calibration(labels, probs, n_bins=10)
    # bin 0: {0.05} obs 0; bin 1: {0.15, 0.12} mean 0.135 obs 0.5; bin 9: {0.95, 0.99, 1.0}
    # mean 0.98 obs 1 (1.0 falls in the last, closed bin)
    assert cal.counts.tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 3]
    np.testing.assert_allclose(cal.mean_predicted[[0, 1, 9]], [0.05, 0.135, 0.98])
    np.testing.assert_allclose(cal.observed[[0, 1, 9]], [0.0, 0.5, 1.0])
    assert np.isnan(cal.observed[2]) and np.isnan(cal.mean_predicted[5])
    # ece = (1 * 0.05 + 2 * 0.365 + 3 * 0.02) / 6 = 0.84 / 6
    assert cal.ece == pytest.approx(0.14)
    np.testing.assert_allclose(cal.edges, np.linspace(0, 1, 11))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.calibration(np.array([0, 1]), np.array([0.5, 1.5]))
