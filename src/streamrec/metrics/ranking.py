"""Top-K ranking metrics: hit matrices and the per-user metrics that reduce them.

Conventions (RecBole's) are in :mod:`streamrec.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "RANKING_METRICS",
    "average_precision",
    "hit_matrix",
    "hit_rate",
    "hits_from_keys",
    "metrics_from_hits",
    "mrr",
    "ndcg",
    "precision",
    "recall",
    "truth_keys",
]

#: the top-K accuracy metrics, in their key spelling (``"ndcg"`` -> ``"ndcg@10"``)
RANKING_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "mrr", "hit")


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


_WITH_N_REL: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "recall": recall,
    "ndcg": ndcg,
    "map": average_precision,
}
_WITHOUT_N_REL: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "precision": precision,
    "mrr": mrr,
    "hit": hit_rate,
}


def metrics_from_hits(hits: np.ndarray, n_rel: np.ndarray, ks: Sequence[int],
                      metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-row ``"{metric}@{k}"`` arrays from a hit matrix.

    Parameters
    ----------
    hits : ndarray of bool, shape (N, k_max)
        Whether the item ranked ``j`` for row ``n`` is relevant.
    n_rel : ndarray of int, shape (N,)
        Relevant items per row.
    ks, metrics :
        Cut-offs and names among :data:`RANKING_METRICS`.
    """
    out: dict[str, np.ndarray] = {}
    for k in ks:
        for name in metrics:
            if name in _WITH_N_REL:
                out[f"{name}@{k}"] = _WITH_N_REL[name](hits, n_rel, k)
            else:
                out[f"{name}@{k}"] = _WITHOUT_N_REL[name](hits, k)
    return out
