"""Co-visitation candidates: items watched close together in users' histories.

Two items are *co-visited* when one user interacted with both within ``window`` positions of
each other in their time-ordered sequence. :class:`CoVisitation` counts co-visits over all
users (symmetric: a pair at positions ``t`` and ``t + o`` adds 1 to both ``(a, b)`` and
``(b, a)``, for every offset ``o = 1..window``; an item next to itself is ignored), drops
pairs seen fewer than ``min_count`` times, and keeps the ``top_n`` best neighbours per item.

Score choice: by default the score is the raw count. Raw counts favour popular neighbours,
which is what a candidate generator wants (the ranker downstream personalises); with
``normalize=True`` the count is divided by ``sqrt(freq(a) * freq(b))`` (cosine of the two items'
occurrence vectors, ``freq``: interactions of the item), which surfaces niche neighbours.
``min_count`` always applies to the raw counts.

Everything is vectorised: pairs come from numpy shifts of the sorted (user, time) sequence, are
counted by a scipy COO -> CSR sum and truncated to ``top_n`` per row by one lexsort.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

__all__ = ["CoVisitation"]

_FORMAT = 1


class CoVisitation:
    """Item-to-item co-visitation table and recency-weighted candidate generation.

    Parameters
    ----------
    window : int
        Items within this many positions of each other in a user's time-ordered sequence count
        as co-visited (``1``: consecutive items only).
    top_n : int
        Neighbours kept per item (the best by score, ties to the lower item index).
    min_count : int
        Pairs co-visited fewer times are dropped.
    normalize : bool
        Score = ``count / sqrt(freq_a * freq_b)`` instead of ``count`` (see the module
        docstring).
    decay : float
        Recency weight of :meth:`candidates`: the most recent item weighs 1, the one before
        ``decay``, then ``decay**2``, ... (``1.0``: all recent items weigh the same).

    Attributes
    ----------
    table_ : scipy.sparse.csr_array of float32, shape (n_items, n_items)
        ``table_[a, b]``: score of ``b`` as a neighbour of ``a``; at most ``top_n`` stored
        entries per row (so not symmetric after truncation), no diagonal.
    item_freq_ : ndarray of int64, shape (n_items,)
        Interactions per item in the fitted data.
    n_items_ : int
    """

    def __init__(self, *, window: int = 3, top_n: int = 50, min_count: int = 2,
                 normalize: bool = False, decay: float = 0.8) -> None:
        self.window = window
        self.top_n = top_n
        self.min_count = min_count
        self.normalize = normalize
        self.decay = decay

    def fit(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray,
            n_items: int) -> Self:
        """Count co-visits in the interaction log.

        Parameters
        ----------
        users, items : ndarray of int, shape (N,)
            Integer user and item indices (``0 <= items < n_items``).
        timestamps : ndarray of int or float, shape (N,)
            Interaction times; a user's interactions with equal times keep their input order.
        n_items : int
            Size of the item index space (the table is ``n_items x n_items``).

        Returns
        -------
        CoVisitation
            ``self``.
        """
        self._check_params()
        if int(n_items) < 1:
            raise ValueError(f"CoVisitation.fit: n_items must be >= 1, got {n_items}")
        n_items = int(n_items)
        users, items, timestamps = (np.asarray(a) for a in (users, items, timestamps))
        for name, a in (("users", users), ("items", items), ("timestamps", timestamps)):
            if a.ndim != 1 or len(a) != len(users):
                raise ValueError(f"CoVisitation.fit: {name} must be 1-d with len(users)="
                                 f"{len(users)} entries, got shape {a.shape}")
        for name, a in (("users", users), ("items", items)):
            if len(a) and not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"CoVisitation.fit: {name} must be integer indices, got "
                                 f"{a.dtype}; map external ids with a Vocabulary first")
        bad = np.flatnonzero((items < 0) | (items >= n_items))
        if len(bad):
            raise ValueError(f"CoVisitation.fit: items[{bad[0]}] = {items[bad[0]]} is outside "
                             f"[0, {n_items}) ({len(bad)} such rows); pass the right n_items")

        order = np.lexsort((timestamps, users))  # by user, then time; stable
        u = users[order]
        it = items[order].astype(np.int32)
        counts = sp.csr_array((n_items, n_items), dtype=np.int64)
        for o in range(1, min(self.window, max(len(it) - 1, 0)) + 1):  # window passes, each vectorised
            a, b = it[:-o], it[o:]
            pair = (u[:-o] == u[o:]) & (a != b)
            a, b = a[pair], b[pair]
            rows, cols = np.concatenate([a, b]), np.concatenate([b, a])
            ones = np.ones(len(rows), np.int64)
            counts = counts + sp.coo_array((ones, (rows, cols)), shape=(n_items, n_items)).tocsr()
        counts = sp.csr_array(counts)
        counts.sum_duplicates()
        counts.data[counts.data < self.min_count] = 0
        counts.eliminate_zeros()

        freq = np.bincount(items, minlength=n_items).astype(np.int64)
        row_of = np.repeat(np.arange(n_items), np.diff(counts.indptr))
        scores = counts.data.astype(np.float64)
        if self.normalize:
            scores = scores / np.sqrt(freq[row_of] * freq[counts.indices].astype(np.float64))
        # keep the top_n per row: sort by (row, -score, column), rank within the row
        srt = np.lexsort((counts.indices, -scores, row_of))
        rank = np.arange(len(srt)) - counts.indptr[row_of[srt]]
        keep = srt[rank < self.top_n]
        table = sp.coo_array((scores[keep].astype(np.float32), (row_of[keep],
                             counts.indices[keep])), shape=(n_items, n_items)).tocsr()
        table.sort_indices()
        self.table_ = sp.csr_array(table)
        self.item_freq_ = freq
        self.n_items_ = n_items
        return self

    def neighbours(self, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best co-visited neighbours of each item.

        Parameters
        ----------
        items : ndarray of int, shape (B,)
            Item indices; indices outside ``[0, n_items_)`` (e.g. items released after
            :meth:`fit`) have no neighbours.
        k : int
            Neighbours per item, ``>= 1``.

        Returns
        -------
        ids : ndarray of int64, shape (B, k)
            Best first (ties to the lower index); ``-1`` pads.
        scores : ndarray of float32, shape (B, k)
            ``0`` where ``ids == -1``.
        """
        self._check_fitted("neighbours")
        k = _check_k(k, "neighbours")
        items = np.asarray(items, dtype=np.int64).ravel()
        rows, cols, vals = self._gather(items)
        ids = np.full((len(items), k), -1, np.int64)
        scores = np.zeros((len(items), k), np.float32)
        srt = np.lexsort((cols, -vals, rows))
        rows, cols, vals = rows[srt], cols[srt], vals[srt]
        starts = np.searchsorted(rows, np.arange(len(items)))
        rank = np.arange(len(rows)) - starts[rows]
        ok = rank < k
        ids[rows[ok], rank[ok]] = cols[ok]
        scores[rows[ok], rank[ok]] = vals[ok]
        return ids, scores

    def candidates(self, recent_items: np.ndarray, k: int, *,
                   exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidates for one user from their recent items.

        Score of a candidate ``c``: ``sum_j decay**(L - 1 - j) * table_[recent_items[j], c]``
        over the ``L`` recent items (the most recent weighs 1).

        Parameters
        ----------
        recent_items : ndarray of int, shape (L,)
            The user's recent items, most recent last (unknown indices contribute nothing).
        k : int
            Candidates to return, ``>= 1``.
        exclude : ndarray of int, optional
            Items never returned (e.g. everything the user has seen; the recent items
            themselves are only excluded when listed here).

        Returns
        -------
        ids : ndarray of int64, shape (k,)
            Best first (ties to the lower index); ``-1`` pads.
        scores : ndarray of float32, shape (k,)
            ``0`` where ``ids == -1``.
        """
        self._check_fitted("candidates")
        k = _check_k(k, "candidates")
        recent = np.asarray(recent_items, dtype=np.int64).ravel()
        weight = float(self.decay) ** np.arange(len(recent) - 1, -1, -1, dtype=np.float64)
        rows, cols, vals = self._gather(recent)
        vals = vals * weight[rows]
        if exclude is not None and len(cols):
            drop = np.isin(cols, np.asarray(exclude, dtype=np.int64).ravel())
            cols, vals = cols[~drop], vals[~drop]
        uniq, inv = np.unique(cols, return_inverse=True)
        total = np.bincount(inv, weights=vals, minlength=len(uniq))
        top = np.lexsort((uniq, -total))[:k]
        ids = np.full(k, -1, np.int64)
        scores = np.zeros(k, np.float32)
        ids[: len(top)] = uniq[top]
        scores[: len(top)] = total[top]
        return ids, scores

    def save(self, path: str | Path) -> None:
        """Write one ``.npz`` file at ``path`` (exactly that name): the CSR arrays of
        ``table_``, ``item_freq_`` and the hyperparameters (a JSON string). No pickle."""
        self._check_fitted("save")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        t = self.table_
        params = {"format": _FORMAT, "class": type(self).__name__, "window": self.window,
                  "top_n": self.top_n, "min_count": self.min_count,
                  "normalize": self.normalize, "decay": self.decay, "n_items": self.n_items_}
        with path.open("wb") as f:  # a file object: numpy does not append ".npz"
            np.savez(f, data=t.data, indices=t.indices, indptr=t.indptr,
                     shape=np.asarray(t.shape, np.int64), item_freq=self.item_freq_,
                     params=np.asarray(json.dumps(params)))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a table written by :meth:`save` (``allow_pickle=False``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; expected a file written by "
                                    "CoVisitation.save")
        with np.load(path, allow_pickle=False) as z:
            missing = {"data", "indices", "indptr", "shape", "item_freq", "params"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not a CoVisitation save, missing {sorted(missing)}")
            params = json.loads(str(z["params"]))
            shape = tuple(int(v) for v in z["shape"])
            table = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=shape)
            item_freq = z["item_freq"]
        if params.get("class") != cls.__name__ or params.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a CoVisitation save (format {_FORMAT}); got "
                             f"class={params.get('class')!r} format={params.get('format')!r}")
        self = cls(window=params["window"], top_n=params["top_n"],
                   min_count=params["min_count"], normalize=params["normalize"],
                   decay=params["decay"])
        self.n_items_ = int(params["n_items"])
        if shape != (self.n_items_, self.n_items_) or len(item_freq) != self.n_items_:
            raise ValueError(f"{path}: table shape {shape} does not match n_items="
                             f"{self.n_items_}")
        self.table_, self.item_freq_ = table, item_freq
        return self

    # ------------------------------------------------------------------ helpers

    def _gather(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stored entries of the rows ``items``: (position in ``items``, column, score)."""
        t = self.table_
        known = (items >= 0) & (items < self.n_items_)
        safe = np.where(known, items, 0)
        starts = t.indptr[safe]
        lens = np.where(known, t.indptr[safe + 1] - starts, 0)
        rows = np.repeat(np.arange(len(items)), lens)
        offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        flat = np.repeat(starts, lens) + offs
        return rows, t.indices[flat].astype(np.int64), t.data[flat].astype(np.float64)

    def _check_params(self) -> None:
        for name in ("window", "top_n", "min_count"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"CoVisitation: {name} must be an int >= 1, got {v!r}")
        if not 0.0 < float(self.decay) <= 1.0:
            raise ValueError(f"CoVisitation: decay must be in (0, 1], got {self.decay}")

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "table_"):
            raise RuntimeError(f"CoVisitation.{what}: call fit (or load) first")


def _check_k(k: int, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise ValueError(f"CoVisitation.{what}: k must be a positive int, got {k!r}")
    return int(k)
