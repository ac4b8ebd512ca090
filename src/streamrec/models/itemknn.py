"""Item-based nearest neighbours: cosine similarity with shrinkage, top-k pruned.

``sim(i, j) = <w_i, w_j> / (|w_i| |w_j| + shrink)`` over the item columns ``w`` of the
(optionally BM25/TF-IDF weighted) user x item matrix; for each target item ``j`` only the
``k`` most similar items ``i`` are kept, giving a sparse ``S`` (n_items x n_items).
A user's scores are ``x_u @ S`` with ``x_u`` the user's train row.

The similarity is computed one block of target items at a time: ``W^T @ W[:, block]``
(sparse; by symmetry computed as rows ``W[:, block]^T @ W``), densified to (block, n_items),
then the top-k neighbours of each target are picked with the shared
:func:`streamrec.retrieval.topk.topk` (argpartition; ties go to the lower item index). Memory is bounded by ``_BLOCK_ENTRIES`` dense entries per block.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.models._history import (
    csr_from_state,
    csr_state,
    item_item_scores,
    train_matrix,
)
from streamrec.models.base import Recommender
from streamrec.models.zoo import register
from streamrec.retrieval.topk import topk

WEIGHTINGS = ("none", "bm25", "tfidf")
#: dense float64 entries per similarity block (2**23 * 8 bytes = 64 MiB)
_BLOCK_ENTRIES = 2**23


@register("itemknn")
class ItemKNN(Recommender):
    """Item-item collaborative filtering (cosine + shrinkage, top-``k`` neighbours).

    Parameters
    ----------
    k : int
        Neighbours kept per item (the ``k`` largest similarities of each column of ``S``).
    shrink : float
        Added to the cosine denominator; damps similarities resting on few co-occurrences.
    binary : bool
        Use 1 per (user, item) pair; otherwise the summed ``values`` (e.g. ratings).
    normalize : bool
        Cosine (divide by the norms, with ``shrink``); ``False`` keeps raw co-occurrence
        dot products (``shrink`` is then unused).
    weighting : {"none", "bm25", "tfidf"}
        Feature weighting of the user x item matrix before the similarity (scores still
        use the unweighted train rows). ``tfidf``: ``sqrt(x) * log(n_items / (1 + n_u))``
        with ``n_u`` the user's item count; ``bm25``: Okapi BM25 with users as terms and
        items as documents (parameters ``bm25_k1``, ``bm25_b``).
    bm25_k1, bm25_b : float
        BM25 saturation and length-normalisation parameters.

    Attributes
    ----------
    similarity_ : csr_array of float32, shape (n_items_, n_items_)
        ``S[i, j]``: similarity of neighbour ``i`` to target item ``j``; at most ``k`` stored
        entries per column, zero diagonal.
    X_ : csr_array of float32, shape (n_users_, n_items_)
        Train matrix used to score known users.
    n_users_, n_items_ : int
        Users ``>= n_users_`` (cold) score as an empty history: all zeros.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "k": [20, 50, 100, 200, 400],
        "shrink": [0.0, 10.0, 50.0, 100.0],
    }
    stochastic: ClassVar[bool] = False

    def __init__(self, k: int = 100, shrink: float = 10.0, binary: bool = True,
                 normalize: bool = True, weighting: str = "none",
                 bm25_k1: float = 1.2, bm25_b: float = 0.75) -> None:
        self._set_params(locals())

    # ------------------------------------------------------------------ learning
    def _check_params(self) -> None:
        name = type(self).__name__
        if int(self.k) != self.k or self.k < 1:
            raise ValueError(f"{name}: k must be a positive integer, got {self.k!r}")
        if not float(self.shrink) >= 0:
            raise ValueError(f"{name}: shrink must be >= 0, got {self.shrink!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"{name}: weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if not float(self.bm25_k1) >= 0 or not 0 <= float(self.bm25_b) <= 1:
            raise ValueError(f"{name}: need bm25_k1 >= 0 and 0 <= bm25_b <= 1")

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Compute the pruned item-item similarity matrix.

        Parameters
        ----------
        train : Interactions
        valid : Interactions, optional
            Unused.
        rng : Generator or int, optional
            Unused (the model is deterministic).

        Returns
        -------
        ItemKNN
            ``self``.
        """
        self._check_train(train)
        self._check_params()
        x = train_matrix(train, binary=bool(self.binary))  # (U, I)
        w = self._weighted(x)  # (U, I)
        self.similarity_ = self._similarity(w)
        self.X_ = x
        self.n_users_, self.n_items_ = (int(s) for s in x.shape)
        return self

    def _weighted(self, x: sp.csr_array) -> sp.csr_array:
        """``x`` (U, I) reweighted by :attr:`weighting`, float64."""
        w = sp.csr_array(x, dtype=np.float64, copy=True)
        if self.weighting == "none":
            return w
        n_users, n_items = w.shape
        row = np.repeat(np.arange(n_users), np.diff(w.indptr))  # user of each stored entry
        user_len = np.diff(w.indptr)  # (U,) items per user: the "document frequency" of a term
        if self.weighting == "tfidf":
            idf = np.log(n_items / (1.0 + user_len))  # (U,)
            w.data = np.sqrt(w.data) * np.maximum(idf, 0.0)[row]
        else:  # bm25: items are documents, users are terms
            idf = np.maximum(np.log(n_items) - np.log1p(user_len), 0.0)  # (U,)
            item_len = np.bincount(w.indices, weights=w.data, minlength=n_items)  # (I,)
            mean_len = item_len.mean() if item_len.mean() > 0 else 1.0
            k1, b = float(self.bm25_k1), float(self.bm25_b)
            length_norm = (1.0 - b) + b * item_len / mean_len  # (I,)
            w.data = w.data * (k1 + 1.0) / (k1 * length_norm[w.indices] + w.data) * idf[row]
        w.eliminate_zeros()
        return w

    def _similarity(self, w: sp.csr_array) -> sp.csr_array:
        """Top-k pruned similarity ``S`` (I, I), float32, from the weighted matrix ``w``."""
        n_items = w.shape[1]
        k = min(int(self.k), max(n_items - 1, 1))
        wt = sp.csr_array(w.T)  # (I, U): row slices are cheap
        norms = np.sqrt(np.asarray(w.multiply(w).sum(axis=0)).ravel())  # (I,)
        block = max(1, min(n_items, _BLOCK_ENTRIES // max(n_items, 1)))
        rows, cols, vals = [], [], []
        for lo in range(0, n_items, block):
            hi = min(lo + block, n_items)
            targets = np.arange(lo, hi)
            dots = (wt[lo:hi] @ w).toarray()  # (b, I): column j of W^T W is row j (symmetric)
            if self.normalize:
                denom = norms[lo:hi, None] * norms[None, :] + float(self.shrink)  # (b, I)
                np.divide(dots, denom, out=dots, where=denom > 0)
            dots[np.arange(hi - lo), targets] = 0.0  # no self-similarity
            # the shared exact top-k: ties go to the lower item index, whatever the blocking
            top, top_vals = topk(dots, k)  # (b, k) neighbours of each target item
            keep = top_vals != 0
            rows.append(top[keep])
            cols.append(np.broadcast_to(targets[:, None], top.shape)[keep])
            vals.append(top_vals[keep])
        s = sp.csr_array(
            (np.concatenate(vals).astype(np.float32),
             (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
        )
        s.sort_indices()
        return s

    # ------------------------------------------------------------------ scoring
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """``x_u @ S`` for each user (restricted to ``items`` when given).

        Parameters
        ----------
        users : ndarray of int, shape (U,)
            Cold users (``>= n_users_``) get all-zero scores.
        items : ndarray of int, shape (C,), optional

        Returns
        -------
        ndarray of float32, shape (U, n_items_) or (U, C)
        """
        self._check_fitted()
        return item_item_scores(self, users, items, self.similarity_)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        return {**csr_state("X_", self.X_), **csr_state("similarity_", self.similarity_)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.X_ = csr_from_state("X_", state)
        self.similarity_ = csr_from_state("similarity_", state)
        self.n_users_, self.n_items_ = (int(s) for s in self.X_.shape)
