"""Evaluation metrics as pure, vectorised functions (DESIGN.md §4).

Three families:

* **Top-K ranking** (per user). :func:`hit_matrix` turns ranked item lists and the ground
  truth into a boolean hit matrix; :func:`precision`, :func:`recall`, :func:`ndcg`,
  :func:`average_precision` (MAP@K), :func:`mrr` and :func:`hit_rate` reduce it to one
  float64 value per user.
* **Beyond accuracy**: :func:`coverage` (a scalar), :func:`novelty`,
  :func:`intra_list_diversity` and :func:`average_popularity` (per user).
* **Rating / CTR** (scalars over all predictions): :func:`rmse`, :func:`mae`,
  :func:`squared_errors`, :func:`auc`, :func:`log_loss`, :func:`average_precision_score`
  and :func:`calibration` (reliability-curve data and expected calibration error).

Conventions for the ranking metrics (those of RecBole, so numbers compare with its tables):

* ``hits[u, r]`` is True when the item at rank ``r`` (0-based) of user ``u`` is relevant.
* ``precision@k`` divides by ``k`` even when fewer than ``k`` items were ranked.
* ``recall@k`` divides by the number of relevant items (all of them, including items the
  model cannot rank, such as items unseen at training time).
* ``ndcg@k`` uses binary gains and the discount ``1 / log2(rank + 1)`` (rank 1-based); the
  ideal DCG puts ``min(n_relevant, k)`` hits at the top.
* ``map@k`` is the sum of precision@i at every hit ``i <= k`` divided by
  ``min(n_relevant, k)``.
* Users with no relevant item get ``nan`` from the metrics that take ``n_relevant``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

__all__ = [
    "Calibration",
    "auc",
    "average_popularity",
    "average_precision",
    "average_precision_score",
    "calibration",
    "coverage",
    "hit_matrix",
    "hit_rate",
    "intra_list_diversity",
    "log_loss",
    "mae",
    "mrr",
    "ndcg",
    "novelty",
    "precision",
    "recall",
    "rmse",
    "squared_errors",
]


# ---------------------------------------------------------------------------- hits
def truth_keys(truth: sp.csr_array | sp.csr_matrix) -> tuple[np.ndarray, int]:
    """Sorted int64 keys ``row * n_cols + col`` of the stored entries of ``truth``.

    Parameters
    ----------
    truth : csr, shape (n_rows, n_cols)

    Returns
    -------
    keys : ndarray of int64, shape (nnz,)
        Sorted ascending (duplicates kept).
    n_cols : int
    """
    t = sp.csr_array(truth)
    n_rows, n_cols = t.shape
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(t.indptr))
    keys = rows * n_cols + t.indices.astype(np.int64)
    keys.sort(kind="stable")  # O(n) when already sorted (canonical csr)
    return keys, int(n_cols)


def hits_from_keys(ranked: np.ndarray, rows: np.ndarray, keys: np.ndarray,
                   n_cols: int) -> np.ndarray:
    """Hit matrix of ``ranked`` against precomputed :func:`truth_keys`.

    Parameters
    ----------
    ranked : ndarray of int, shape (U, K)
        Item indices, ``-1`` for padding.
    rows : ndarray of int, shape (U,)
        Row of the truth matrix for each row of ``ranked``.
    keys : ndarray of int64, shape (nnz,)
        Sorted keys from :func:`truth_keys`.
    n_cols : int
        Number of columns of the truth matrix.

    Returns
    -------
    ndarray of bool, shape (U, K)
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    valid = (ranked >= 0) & (ranked < n_cols)
    if keys.size == 0 or ranked.size == 0:
        return np.zeros(ranked.shape, dtype=bool)
    query = rows[:, None] * n_cols + np.where(valid, ranked, 0)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return valid & (keys[pos] == query)


def hit_matrix(ranked: np.ndarray, truth: sp.csr_array | sp.csr_matrix) -> np.ndarray:
    """Which ranked items are relevant.

    Parameters
    ----------
    ranked : ndarray of int64, shape (U, K)
        Item indices per user, best first; ``-1`` pads short lists.
    truth : csr, shape (U, n_cols)
        Row ``u`` stores the relevant items of user ``u`` (the stored values are ignored).

    Returns
    -------
    ndarray of bool, shape (U, K)
        ``True`` where ``ranked[u, r]`` is stored in ``truth[u]``; padding and ids outside
        ``[0, n_cols)`` are never hits.
    """
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"hit_matrix: ranked must be 2-D (U, K), got shape {ranked.shape}")
    if truth.shape[0] != ranked.shape[0]:
        raise ValueError(
            f"hit_matrix: truth has {truth.shape[0]} rows but ranked has {ranked.shape[0]}"
        )
    keys, n_cols = truth_keys(truth)
    return hits_from_keys(ranked, np.arange(ranked.shape[0]), keys, n_cols)


# ---------------------------------------------------------------------------- ranking
def _cut(hits: np.ndarray, k: int) -> np.ndarray:
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 2:
        raise ValueError(f"hits must be 2-D (U, K), got shape {h.shape}")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return h[:, : int(k)]


def _n_rel(n_relevant: np.ndarray, n_rows: int) -> np.ndarray:
    n = np.asarray(n_relevant, dtype=np.float64)
    if n.shape != (n_rows,):
        raise ValueError(f"n_relevant must have shape ({n_rows},), got {n.shape}")
    return n


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, else nan (float64)."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..k, shape (k,)."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def precision(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@k: hits in the top ``k`` divided by ``k``.

    Parameters
    ----------
    hits : ndarray of bool, shape (U, K)
    k : int

    Returns
    -------
    ndarray of float64, shape (U,)
    """
    h = _cut(hits, k)
    return h.sum(axis=1, dtype=np.float64) / float(k)


def recall(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@k: hits in the top ``k`` divided by the number of relevant items.

    Parameters
    ----------
    hits : ndarray of bool, shape (U, K)
    n_relevant : ndarray of int, shape (U,)
    k : int

    Returns
    -------
    ndarray of float64, shape (U,)
        ``nan`` where ``n_relevant == 0``.
    """
    h = _cut(hits, k)
    return _safe_div(h.sum(axis=1, dtype=np.float64), _n_rel(n_relevant, h.shape[0]))


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k with binary gains and the discount ``1 / log2(rank + 1)``.

    Parameters
    ----------
    hits : ndarray of bool, shape (U, K)
    n_relevant : ndarray of int, shape (U,)
        The ideal DCG places ``min(n_relevant, k)`` hits at the top.
    k : int

    Returns
    -------
    ndarray of float64, shape (U,)
        ``nan`` where ``n_relevant == 0``.
    """
    h = _cut(hits, k)
    n = _n_rel(n_relevant, h.shape[0])
    disc = _discounts(int(k))
    dcg = h.astype(np.float64) @ disc[: h.shape[1]]
    ideal_table = np.concatenate([[0.0], np.cumsum(disc)])  # ideal DCG with j hits, j = 0..k
    ideal = ideal_table[np.minimum(n, k).astype(np.int64)]
    return _safe_div(dcg, ideal)


def average_precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k (averaged over users it is MAP@k), RecBole's convention.

    ``sum_{i <= k, hit at i} precision@i / min(n_relevant, k)``.

    Parameters
    ----------
    hits : ndarray of bool, shape (U, K)
    n_relevant : ndarray of int, shape (U,)
    k : int

    Returns
    -------
    ndarray of float64, shape (U,)
        ``nan`` where ``n_relevant == 0``.
    """
    h = _cut(hits, k)
    n = _n_rel(n_relevant, h.shape[0])
    prec_at = np.cumsum(h, axis=1, dtype=np.float64) / np.arange(1, h.shape[1] + 1)
    total = (prec_at * h).sum(axis=1)
    return _safe_div(total, np.minimum(n, k))


def mrr(hits: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first hit in the top ``k`` (0 when there is none).

    Parameters
    ----------
    hits : ndarray of bool, shape (U, K)
    k : int

    Returns
    -------
    ndarray of float64, shape (U,)
    """
    h = _cut(hits, k)
    if h.shape[1] == 0:
        return np.zeros(h.shape[0], dtype=np.float64)
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate(hits: np.ndarray, k: int) -> np.ndarray:
    """HitRate@k: 1.0 when the top ``k`` holds at least one relevant item, else 0.0.

    Parameters
    ----------
    hits : ndarray of bool, shape (U, K)
    k : int

    Returns
    -------
    ndarray of float64, shape (U,)
    """
    return _cut(hits, k).any(axis=1).astype(np.float64)


# ---------------------------------------------------------------------------- beyond accuracy
def _ranked(ranked: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ranked int64, valid mask, ids with invalid entries replaced by 0)."""
    r = np.asarray(ranked, dtype=np.int64)
    if r.ndim != 2:
        raise ValueError(f"ranked must be 2-D (U, K), got shape {r.shape}")
    valid = (r >= 0) & (r < n_items)
    return r, valid, np.where(valid, r, 0)


def _row_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return _safe_div(np.where(valid, values, 0.0).sum(axis=1), valid.sum(axis=1).astype(np.float64))


def coverage(ranked: np.ndarray, n_items: int) -> float:
    """Fraction of the catalogue that appears in at least one list.

    Parameters
    ----------
    ranked : ndarray of int, shape (U, K)
        ``-1`` (and ids outside ``[0, n_items)``) are ignored.
    n_items : int

    Returns
    -------
    float
    """
    if n_items <= 0:
        raise ValueError(f"coverage: n_items must be positive, got {n_items}")
    r, valid, _ = _ranked(ranked, n_items)
    seen = np.zeros(n_items, dtype=bool)
    seen[r[valid]] = True
    return float(seen.sum()) / n_items


def novelty(ranked: np.ndarray, item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Mean self-information ``-log2(count_i / n_users)`` of each list.

    Parameters
    ----------
    ranked : ndarray of int, shape (U, K)
    item_counts : ndarray, shape (n_items,)
        Training popularity of each item (ideally distinct users); clipped to >= 1.
    n_users : int
        Number of training users.

    Returns
    -------
    ndarray of float64, shape (U,)
        ``nan`` for rows without a valid item.
    """
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    info = -np.log2(counts / float(n_users))
    _, valid, safe = _ranked(ranked, len(counts))
    return _row_mean(info[safe], valid)


def average_popularity(ranked: np.ndarray, item_counts: np.ndarray) -> np.ndarray:
    """Mean training count of the items of each list (popularity bias).

    Parameters
    ----------
    ranked : ndarray of int, shape (U, K)
    item_counts : ndarray, shape (n_items,)

    Returns
    -------
    ndarray of float64, shape (U,)
        ``nan`` for rows without a valid item.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    _, valid, safe = _ranked(ranked, len(counts))
    return _row_mean(counts[safe], valid)


def intra_list_diversity(
    ranked: np.ndarray,
    categories: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    *,
    chunk_size: int = 2048,
) -> np.ndarray:
    """Mean pairwise dissimilarity of the items of each list.

    Exactly one of ``categories`` (dissimilarity ``1 - [same category]``) or ``embeddings``
    (dissimilarity ``1 - cosine``) must be given.

    Parameters
    ----------
    ranked : ndarray of int, shape (U, K)
    categories : ndarray of int, shape (n_items,), optional
        One category code per item.
    embeddings : ndarray of float, shape (n_items, D), optional
        Item vectors; all-zero vectors have cosine 0 with everything.
    chunk_size : int
        Rows processed at once (bounds memory to ``chunk_size * K * max(K, D)``).

    Returns
    -------
    ndarray of float64, shape (U,)
        ``nan`` for rows with fewer than two valid items.
    """
    if (categories is None) == (embeddings is None):
        raise ValueError("intra_list_diversity: pass exactly one of categories or embeddings")
    if categories is not None:
        cats = np.asarray(categories)
        n_items = len(cats)
        unit = None
    else:
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2:
            raise ValueError(f"embeddings must be 2-D (n_items, D), got shape {emb.shape}")
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        unit = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
        n_items = len(emb)
    _, valid, safe = _ranked(ranked, n_items)
    n_rows, width = safe.shape
    upper = np.triu(np.ones((width, width), dtype=bool), k=1)
    out = np.empty(n_rows, dtype=np.float64)
    for lo in range(0, n_rows, max(int(chunk_size), 1)):  # a loop over row chunks, not users
        ids, ok = safe[lo:lo + chunk_size], valid[lo:lo + chunk_size]
        pairs = ok[:, :, None] & ok[:, None, :] & upper  # (C, K, K)
        if unit is None:
            c = cats[ids]
            dis = (c[:, :, None] != c[:, None, :]).astype(np.float64)
        else:
            e = unit[ids]  # (C, K, D)
            dis = 1.0 - e @ e.transpose(0, 2, 1)  # (C, K, K)
        total = np.where(pairs, dis, 0.0).sum(axis=(1, 2))
        out[lo:lo + len(ids)] = _safe_div(total, pairs.sum(axis=(1, 2)).astype(np.float64))
    return out


# ---------------------------------------------------------------------------- rating
def _pair(y: np.ndarray, yhat: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y, dtype=np.float64).ravel()
    b = np.asarray(yhat, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a.size} targets but {b.size} predictions")
    if a.size == 0:
        raise ValueError(f"{name}: no predictions")
    return a, b


def squared_errors(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Per-prediction squared errors ``(y - yhat)**2``, shape (n,) float64."""
    a, b = _pair(y, yhat, "squared_errors")
    return (a - b) ** 2


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared error of ``yhat`` (n,) against ``y`` (n,)."""
    return float(np.sqrt(squared_errors(y, yhat).mean()))


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error of ``yhat`` (n,) against ``y`` (n,)."""
    a, b = _pair(y, yhat, "mae")
    return float(np.abs(a - b).mean())


# ---------------------------------------------------------------------------- CTR
def _binary(labels: np.ndarray, other: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    y, s = _pair(labels, other, name)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name}: labels must be 0/1")
    return y, s


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; tied scores get averaged ranks).

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    scores : ndarray of float, shape (n,)

    Returns
    -------
    float
        ``nan`` when only one class is present.
    """
    y, s = _binary(labels, scores, "auc")
    pos = y == 1.0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy; probabilities are clipped to ``[eps, 1 - eps]``.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    probs : ndarray of float, shape (n,)
        Predicted probability of label 1.
    eps : float

    Returns
    -------
    float
    """
    y, p = _binary(labels, probs, "log_loss")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)).mean())


def average_precision_score(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum (scikit-learn's definition).

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, highest first.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    scores : ndarray of float, shape (n,)

    Returns
    -------
    float
        ``nan`` when there is no positive label.
    """
    y, s = _binary(labels, scores, "average_precision_score")
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    tps = np.cumsum(y)
    if tps[-1] == 0:
        return float("nan")
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each threshold
    tp = tps[last]
    prec = tp / (last + 1.0)
    rec = tp / tps[-1]
    return float(np.sum(np.diff(rec, prepend=0.0) * prec))


@dataclass(frozen=True)
class Calibration:
    """Reliability-curve data of predicted probabilities.

    Attributes
    ----------
    ece : float
        Expected calibration error: ``sum_b counts[b] / n * |observed[b] - mean_predicted[b]|``.
    edges : ndarray of float64, shape (n_bins + 1,)
        Bin edges over ``[0, 1]``; bin ``b`` is ``[edges[b], edges[b + 1])``, the last closed.
    mean_predicted : ndarray of float64, shape (n_bins,)
        Mean predicted probability per bin (``nan`` for empty bins).
    observed : ndarray of float64, shape (n_bins,)
        Fraction of positive labels per bin (``nan`` for empty bins).
    counts : ndarray of int64, shape (n_bins,)
        Predictions per bin.
    """

    ece: float
    edges: np.ndarray
    mean_predicted: np.ndarray
    observed: np.ndarray
    counts: np.ndarray


def calibration(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> Calibration:
    """Bin predictions into ``n_bins`` equal-width bins and compare with observed rates.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    probs : ndarray of float in [0, 1], shape (n,)
    n_bins : int

    Returns
    -------
    Calibration
    """
    if n_bins < 1:
        raise ValueError(f"calibration: n_bins must be >= 1, got {n_bins}")
    y, p = _binary(labels, probs, "calibration")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("calibration: probabilities must lie in [0, 1]")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(b, minlength=n_bins).astype(np.int64)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y, minlength=n_bins)
    c = counts.astype(np.float64)
    mean_p, obs = _safe_div(sum_p, c), _safe_div(sum_y, c)
    gap = np.where(counts > 0, np.abs(np.nan_to_num(obs) - np.nan_to_num(mean_p)), 0.0)
    ece = float((c * gap).sum() / c.sum())
    return Calibration(ece, np.linspace(0.0, 1.0, n_bins + 1), mean_p, obs, counts)
