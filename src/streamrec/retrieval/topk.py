"""Exact top-k over dense score blocks, with per-row exclusion (argpartition, no sort of all).

Shared by ``Recommender.recommend`` and the full-ranking evaluator so that both break ties
the same way: higher score first, then lower item index.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def mask_rows(scores: np.ndarray, exclude: sp.csr_array | sp.csr_matrix | None,
              rows: np.ndarray) -> np.ndarray:
    """Set ``scores[b, j] = -inf`` where ``exclude[rows[b], j]`` is stored (in place).

    Parameters
    ----------
    scores : ndarray, shape (B, I)
        Scores of the users ``rows`` over items ``0..I-1``.
    exclude : csr, shape (n_users, >= I) or None
        Items to exclude per user; columns ``>= I`` are ignored.
    rows : ndarray of int, shape (B,)
        Row of ``exclude`` for each score row; rows ``>= exclude.shape[0]`` exclude nothing.

    Returns
    -------
    ndarray, shape (B, I)
        ``scores``, modified.
    """
    if exclude is None or scores.size == 0:
        return scores
    exclude = sp.csr_array(exclude)
    rows = np.asarray(rows, dtype=np.int64)
    ok = rows < exclude.shape[0]
    safe = np.where(ok, rows, 0)
    starts, ends = exclude.indptr[safe], exclude.indptr[safe + 1]
    lens = np.where(ok, ends - starts, 0)
    if lens.sum() == 0:
        return scores
    b = np.repeat(np.arange(len(rows)), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    cols = exclude.indices[np.repeat(starts, lens) + offs]
    keep = cols < scores.shape[1]
    scores[b[keep], cols[keep]] = -np.inf
    return scores


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, best first.

    Ties are broken by lower column index. Entries equal to ``-inf`` (excluded) are
    returned as index ``-1`` with score ``-inf`` when a row has fewer than ``k`` others.

    Parameters
    ----------
    scores : ndarray, shape (B, I)
    k : int

    Returns
    -------
    idx : ndarray of int64, shape (B, min(k, I))
    vals : ndarray, shape (B, min(k, I))
    """
    n_rows, n_cols = scores.shape
    k = min(int(k), n_cols)
    if k <= 0 or n_rows == 0:
        return np.empty((n_rows, max(k, 0)), np.int64), np.empty((n_rows, max(k, 0)), scores.dtype)
    if k < n_cols:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        # argpartition may cut inside a group of tied scores: take every column tied with the
        # k-th value so the tie-break by index below is exact
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        n_above = (scores > kth).sum(axis=1)
        if np.any((scores == kth).sum(axis=1) + n_above > k):
            part = _exact_candidates(scores, kth, k)
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)  # score desc, then index asc
    idx = np.take_along_axis(part, order, axis=1)[:, :k].astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)[:, :k]
    idx[np.isneginf(vals)] = -1
    return idx, vals


def _exact_candidates(scores: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """Per row: the columns above ``kth`` and the lowest-index columns equal to it, k in all."""
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    take_tied = tied & (np.cumsum(tied, axis=1) <= need)
    chosen = above | take_tied
    # every row has exactly k chosen columns; stable argsort puts them first in index order
    return np.argsort(~chosen, axis=1, kind="stable")[:, :k]
