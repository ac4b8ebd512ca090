"""Negative sampling for implicit-feedback training (vectorised; seeded by a Generator).

``NegativeSampler(positives).sample(users, n, rng)`` draws ``n`` items per user that the
user has not interacted with, by one of four strategies:

- ``uniform``: every item equally likely;
- ``popularity``: proportional to ``count ** alpha`` (word2vec's 0.75 by default);
- ``hard``: draw ``hard_candidates`` uniform candidates and keep the one the current model
  scores highest (needs ``score_fn``);
- ``mixed``: each negative is hard with probability ``hard_ratio``, else uniform.

Uniform negatives are drawn exactly among each user's unseen items (one ``searchsorted``);
popular positives are rejected in vectorised rounds (only the drawn positives are redrawn),
so the cost is a few array operations per batch whatever its size. ``allow_positives=True``
skips the check (the classic "sample from everything" shortcut).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["STRATEGIES", "NegativeSampler"]

STRATEGIES = ("uniform", "popularity", "hard", "mixed")
_MAX_ROUNDS = 16


class NegativeSampler:
    """Draw negatives for (user, positive) training examples.

    Parameters
    ----------
    positives : csr, shape (n_users, n_items)
        Stored entries are the items a user must not get as a negative.
    strategy : {"uniform", "popularity", "hard", "mixed"}
    alpha : float
        Popularity exponent (``popularity`` only; 0 is uniform).
    hard_candidates : int
        Uniform candidates scored per hard negative.
    hard_ratio : float
        Share of hard negatives under ``mixed``.
    allow_positives : bool
        Do not reject the user's positives.
    """

    def __init__(self, positives: sp.csr_array | sp.csr_matrix, *, strategy: str = "uniform",
                 alpha: float = 0.75, hard_candidates: int = 16, hard_ratio: float = 0.5,
                 allow_positives: bool = False) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if hard_candidates < 1 or not 0.0 <= hard_ratio <= 1.0:
            raise ValueError("hard_candidates must be >= 1 and hard_ratio in [0, 1]")
        x = sp.csr_array(positives)
        x.sum_duplicates()
        x.sort_indices()
        self.n_users, self.n_items = x.shape
        self.strategy, self.alpha = strategy, float(alpha)
        self.hard_candidates, self.hard_ratio = int(hard_candidates), float(hard_ratio)
        self.allow_positives = allow_positives
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(x.indptr))
        cols = x.indices.astype(np.int64)
        self._keys = rows * self.n_items + cols  # sorted (csr order)
        self._indptr = x.indptr.astype(np.int64)
        self._n_unseen = self.n_items - np.diff(self._indptr)
        # the m-th positive of a user minus m is non-decreasing within the row: searching it
        # maps "the k-th unseen item" to an item index (see _unseen)
        rank = np.arange(len(cols)) - np.repeat(self._indptr[:-1], np.diff(self._indptr))
        self._gap_keys = rows * self.n_items + (cols - rank)
        counts = np.bincount(x.indices, minlength=self.n_items).astype(np.float64)
        self.item_counts = counts
        weights = counts ** self.alpha if strategy == "popularity" else np.ones(self.n_items)
        if weights.sum() <= 0:
            weights = np.ones(self.n_items)
        self._cdf = np.cumsum(weights / weights.sum())
        #: sampling probability of each item (for logQ corrections)
        self.probabilities = weights / weights.sum()

    # ------------------------------------------------------------------ helpers
    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array: ``items[...]`` is a stored positive of the matching user.

        ``users`` broadcasts against ``items`` (e.g. shapes (B, 1) and (B, N)).
        """
        if len(self._keys) == 0:
            return np.zeros(np.broadcast_shapes(np.shape(users), np.shape(items)), bool)
        q = np.asarray(users, np.int64) * self.n_items + np.asarray(items, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, q), len(self._keys) - 1)
        return self._keys[pos] == q

    def _draw(self, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if self.strategy == "popularity":
            idx = np.searchsorted(self._cdf, rng.random(size), side="right")
            return np.minimum(idx, self.n_items - 1)
        return rng.integers(0, self.n_items, size=size)

    def _unseen(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniformly drawn unseen item per entry of ``users`` (any shape), exactly.

        Draw ``k`` uniform in ``[0, n_unseen(u))`` and return the ``k``-th item the user has
        not interacted with: ``k + m`` where ``m`` counts the positives ``p_j`` with
        ``p_j - j <= k``. Users who own every item get a uniform item (there is no negative).
        """
        users = np.asarray(users, np.int64)
        free = self._n_unseen[users]
        k = np.floor(rng.random(users.shape) * np.maximum(free, 1)).astype(np.int64)
        m = np.searchsorted(self._gap_keys, users * self.n_items + k, side="right")
        return np.where(free > 0, k + m - self._indptr[users], k % self.n_items)

    def _reject(self, users: np.ndarray, out: np.ndarray, rng: np.random.Generator) -> None:
        """Replace, in place, the entries of ``out`` (B, N) that are positives of their user.

        Uniform: every entry is drawn exactly among the user's unseen items. Popularity:
        rejection rounds (only the drawn positives are redrawn); entries still positive after
        them (users owning most popular items) get a uniform unseen item.
        """
        if self.allow_positives:
            return
        ub = np.broadcast_to(users[:, None], out.shape)
        if self.strategy != "popularity":
            out[...] = self._unseen(ub, rng)
            return
        bad = self.is_positive(ub, out)
        for _ in range(_MAX_ROUNDS):  # rounds of redraws; each is vectorised
            n_bad = int(bad.sum())
            if n_bad == 0:
                return
            out[bad] = self._draw((n_bad,), rng)
            bad[bad] = self.is_positive(ub[bad], out[bad])
        out[bad] = self._unseen(ub[bad], rng)

    # ------------------------------------------------------------------ sampling
    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
               ) -> np.ndarray:
        """``n`` negatives per user.

        Parameters
        ----------
        users : ndarray of int, shape (B,)
            The user of each training example (repeat users for several positives).
        n : int
            Negatives per example.
        rng : numpy Generator
        score_fn : callable, optional
            ``score_fn(users (B,), items (B, C)) -> scores (B, C)`` under the current model;
            required by ``hard`` and ``mixed``.

        Returns
        -------
        ndarray of int64, shape (B, n)
        """
        users = np.asarray(users, np.int64)
        b = len(users)
        if self.strategy == "uniform" and not self.allow_positives:
            return self._unseen(np.broadcast_to(users[:, None], (b, n)), rng)
        if self.strategy in ("uniform", "popularity"):
            out = self._draw((b, n), rng)
            self._reject(users, out, rng)
            return out
        if score_fn is None:
            raise ValueError(f"strategy {self.strategy!r} needs score_fn (the current model)")
        out = rng.integers(0, self.n_items, size=(b, n))  # the uniform share of "mixed"
        self._reject(users, out, rng)
        hard = (np.ones((b, n), bool) if self.strategy == "hard"
                else rng.random((b, n)) < self.hard_ratio)
        rows, cols = np.nonzero(hard)
        if len(rows):
            c = self.hard_candidates
            cand = rng.integers(0, self.n_items, size=(len(rows), c))
            self._reject(users[rows], cand, rng)
            scores = np.asarray(score_fn(users[rows], cand), dtype=np.float64)
            if not self.allow_positives:  # a leftover positive never wins
                scores[self.is_positive(users[rows][:, None], cand)] = -np.inf
            out[rows, cols] = cand[np.arange(len(rows)), scores.argmax(1)]
        return out
