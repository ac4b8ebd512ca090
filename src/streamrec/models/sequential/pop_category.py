"""Most popular in the last item's category: the case study's session baseline.

After a session whose latest item is in category ``c``, the items of ``c`` are ranked by
train popularity, ahead of every other item (ranked by popularity too). It needs one
category per item (``item_categories`` in ``fit``; the benchmark runner passes the first
category/genre of each item).
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np

from streamrec.data.interactions import Interactions
from streamrec.models.base import as_generator
from streamrec.models.sequential.base import SequentialRecommender
from streamrec.models.zoo import register

__all__ = ["PopLastCategory"]


@register("pop_last_category")
class PopLastCategory(SequentialRecommender):
    """Popularity within the category of the session's latest item.

    Parameters
    ----------
    max_len : int
        History kept per user (only the latest item is used).

    Attributes
    ----------
    item_category_ : ndarray of int64, shape (n_items_,)
        Category code per item (``-1``: none; such items only get the global popularity).
    item_popularity_ : ndarray of float32, shape (n_items_,)
    """

    uses_item_categories: ClassVar[bool] = True
    stochastic: ClassVar[bool] = False

    def __init__(self, max_len: int = 1) -> None:
        self._set_params(locals())

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None,
            item_categories: np.ndarray | None = None) -> Self:
        """Count item popularity; remember each item's category.

        Parameters
        ----------
        train : Interactions
        valid, rng :
            Unused (deterministic).
        item_categories : ndarray of int, shape (>= n_items,)
            Category code per train item index.
        """
        self._check_train(train)
        as_generator(rng)
        if item_categories is None:
            raise ValueError(
                "pop_last_category needs item categories: an items table with a 'category' or "
                "'genres' column (the benchmark passes it), or fit(..., item_categories=codes)")
        cats = np.asarray(item_categories)
        if cats.ndim != 1 or len(cats) < train.n_items:
            raise ValueError(f"pop_last_category: item_categories must have one code per item "
                             f"(>= {train.n_items}), got shape {cats.shape}")
        self.n_users_, self.n_items_ = int(train.n_users), int(train.n_items)
        self.item_category_ = cats[: self.n_items_].astype(np.int64)
        self.item_popularity_ = np.bincount(train.items, minlength=self.n_items_).astype(
            np.float32)
        self._set_history(train)
        return self

    def _score_history(self, hist: np.ndarray) -> np.ndarray:
        last = hist[:, -1]  # (B,) latest item (non-empty rows only)
        cat = self.item_category_[last]  # (B,)
        pop = self.item_popularity_
        same = (self.item_category_[None, :] == cat[:, None]) & (cat[:, None] >= 0)  # (B, I)
        # in-category items first: offset them by more than any popularity
        return (pop[None, :] + same * (float(pop.max()) + 1.0)).astype(np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"user_seqs_": self.user_seqs_, "item_popularity_": self.item_popularity_,
                "item_category_": self.item_category_,
                "shape_": np.array([self.n_users_, self.n_items_], dtype=np.int64)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_seqs_ = np.asarray(state["user_seqs_"], np.int64)
        self.item_popularity_ = np.asarray(state["item_popularity_"], np.float32)
        self.item_category_ = np.asarray(state["item_category_"], np.int64)
        self.n_users_, self.n_items_ = (int(s) for s in state["shape_"])
