"""Beyond-accuracy metrics of ranked lists: coverage, novelty, popularity, diversity."""

from __future__ import annotations

import numpy as np

from streamrec.metrics.ranking import _safe_div

__all__ = ["average_popularity", "coverage", "intra_list_diversity", "novelty"]


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
    for lo in range(0, n_rows, max(int(chunk_size), 1)):  # chunks of rows bound the (chunk, K, K) memory
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
