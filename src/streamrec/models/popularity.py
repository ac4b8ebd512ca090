"""Most-popular baseline: every user gets the same ranking, by train interaction count."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from streamrec.data.interactions import Interactions
from streamrec.models._history import check_items, check_users
from streamrec.models.base import Recommender
from streamrec.models.zoo import register

_SECONDS_PER_DAY = 86_400.0


@register("pop")
class Popularity(Recommender):
    """Item score = number of train interactions (optionally decayed by age).

    Parameters
    ----------
    recency_half_life_days : float, optional
        When set, an interaction ``d`` days older than the latest train timestamp counts
        ``0.5 ** (d / recency_half_life_days)`` instead of 1. Timestamps are seconds.

    Attributes
    ----------
    popularity_ : ndarray of float32, shape (n_items_,)
        The (decayed) interaction count of each item: the score of every user.
    n_users_, n_items_ : int
        Train index-space sizes. Users ``>= n_users_`` (cold) get the same scores.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "recency_half_life_days": [None, 7.0, 30.0, 90.0, 365.0],
    }
    stochastic: ClassVar[bool] = False
    scores_sessions: ClassVar[bool] = True  # a session gets the popular items

    def __init__(self, recency_half_life_days: float | None = None) -> None:
        self._set_params(locals())

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Count interactions per item (weighted by recency when ``recency_half_life_days``
        is set); returns ``self``. ``valid`` and ``rng`` are unused: it is deterministic."""
        self._check_train(train)
        half_life = self.recency_half_life_days
        if half_life is None:
            weights = None
        else:
            if not float(half_life) > 0:
                raise ValueError(
                    f"Popularity: recency_half_life_days must be > 0 or None, got {half_life!r}"
                )
            age_days = (train.timestamps.max() - train.timestamps) / _SECONDS_PER_DAY  # (n,)
            weights = np.exp2(-age_days / float(half_life))
        counts = np.bincount(train.items, weights=weights, minlength=train.n_items)  # (I,)
        self.popularity_ = counts.astype(np.float32)
        self.n_users_ = int(train.n_users)
        self.n_items_ = int(train.n_items)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """The popularity of ``items`` (default all), repeated for each user.

        Parameters
        ----------
        users : ndarray of int, shape (U,)
            Any non-negative indices; cold users score like everybody else.
        items : ndarray of int, shape (C,), optional

        Returns
        -------
        ndarray of float32, shape (U, n_items_) or (U, C)
        """
        self._check_fitted()
        owner = type(self).__name__
        u = check_users(users, owner)
        it = check_items(items, self.n_items_, owner)
        pop = self.popularity_ if it is None else self.popularity_[it]
        return np.tile(pop, (len(u), 1))

    def score_sequences(self, seqs: Any, items: np.ndarray | None = None) -> np.ndarray:
        """The popularity for each of ``seqs`` (sessions): the global-popularity baseline of
        next-item evaluation. Shape (len(seqs), n_items_) or (len(seqs), C)."""
        self._check_fitted()
        return self.score(np.zeros(len(seqs), dtype=np.int64), items)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {
            "popularity_": self.popularity_,
            "shape_": np.array([self.n_users_, self.n_items_], dtype=np.int64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.popularity_ = np.asarray(state["popularity_"], dtype=np.float32)
        self.n_users_, self.n_items_ = (int(s) for s in state["shape_"])
