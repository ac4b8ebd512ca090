"""Item-to-item transitions (first-order Markov chain / co-visitation counts).

``C[i, j]`` counts how often item ``j`` directly follows item ``i`` in a train sequence
(with ``window > 1``: follows within ``window`` steps, weighted ``1 / distance``). A
session is scored by the transition row of its latest item, normalised, plus the rows of
earlier items weighted by ``decay`` per step back, with a small popularity term breaking
ties (and scoring sessions whose items have no transitions).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.models.base import as_generator
from streamrec.models.sequential.base import SequentialRecommender
from streamrec.models.zoo import register

__all__ = ["Markov"]


@register("markov")
class Markov(SequentialRecommender):
    """Transition counts from the latest items to the next one.

    Parameters
    ----------
    window : int
        Steps ahead counted as a transition (1: the classic first-order chain).
    decay : float
        Weight of the item ``k`` steps before the latest one: ``decay ** k`` (0: only the
        latest item).
    max_len : int
        History used (items older than ``max_len`` steps are ignored).

    Attributes
    ----------
    transitions_ : csr_array, shape (n_items_, n_items_)
        Row-normalised transition counts.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "window": [1, 2, 3],
        "decay": [0.0, 0.3, 0.6],
    }
    stochastic: ClassVar[bool] = False

    def __init__(self, window: int = 1, decay: float = 0.0, max_len: int = 5) -> None:
        self._set_params(locals())

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Count transitions within each user's time-ordered sequence."""
        self._check_train(train)
        as_generator(rng)
        if self.window < 1 or self.max_len < 1 or not 0.0 <= self.decay < 1.0:
            raise ValueError("Markov: window and max_len must be >= 1 and decay in [0, 1)")
        self.n_users_, self.n_items_ = int(train.n_users), int(train.n_items)
        order = train.chronological_order()
        users, items = train.users[order], train.items[order]
        rows, cols, vals = [], [], []
        for d in range(1, int(self.window) + 1):  # a few distances: the loop is cheap
            same = users[d:] == users[:-d]
            rows.append(items[:-d][same])
            cols.append(items[d:][same])
            vals.append(np.full(int(same.sum()), 1.0 / d, np.float32))
        n = self.n_items_
        c = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n), dtype=np.float32)
        c.sum_duplicates()
        norm = np.asarray(c.sum(axis=1)).ravel()
        self.transitions_ = sp.csr_array(sp.diags_array(1.0 / np.maximum(norm, 1e-12)) @ c)
        self.item_popularity_ = np.bincount(train.items, minlength=n).astype(np.float32)
        self._set_history(train)
        return self

    def _score_history(self, hist: np.ndarray) -> np.ndarray:
        b, t = hist.shape
        steps_back = (t - 1) - np.arange(t)  # (T,) 0 for the latest column
        w = np.where(hist >= 0, float(self.decay) ** steps_back[None, :], 0.0)  # (B, T); 0**0 = 1
        r, c = np.nonzero(w)
        weights = sp.csr_array((w[r, c], (r, hist[r, c])), shape=(b, self.n_items_))
        s = np.asarray((weights @ self.transitions_).todense(), dtype=np.float32)  # (B, I)
        pop = self.item_popularity_
        return s + 1e-6 * pop[None, :] / max(float(pop.max()), 1.0)

    def _get_state(self) -> dict[str, np.ndarray]:
        t = self.transitions_
        return {"user_seqs_": self.user_seqs_, "item_popularity_": self.item_popularity_,
                "T_indptr": t.indptr, "T_indices": t.indices, "T_data": t.data,
                "shape_": np.array([self.n_users_, self.n_items_], dtype=np.int64)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_seqs_ = np.asarray(state["user_seqs_"], np.int64)
        self.item_popularity_ = np.asarray(state["item_popularity_"], np.float32)
        self.n_users_, self.n_items_ = (int(s) for s in state["shape_"])
        n = self.n_items_
        self.transitions_ = sp.csr_array(
            (state["T_data"], state["T_indices"], state["T_indptr"]), shape=(n, n))
