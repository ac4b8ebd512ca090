"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form.

``P = (X^T X + lam I)^-1`` and ``B = I - P diag(1 / diag(P))``, i.e. ``B[i, j] =
-P[i, j] / P[j, j]`` off the diagonal and ``B[j, j] = 0``. Scores are ``x_u @ B``.
The inverse is a dense (n_items x n_items) float64 Cholesky solve: O(n_items^3) time and
O(n_items^2) memory, suitable up to a few tens of thousands of items.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.linalg

from streamrec.data.interactions import Interactions
from streamrec.models._history import (
    csr_from_state,
    csr_state,
    item_item_scores,
    train_matrix,
)
from streamrec.models.base import Recommender
from streamrec.models.zoo import register


@register("ease")
class EASE(Recommender):
    """Linear item-item model with an L2 penalty and a zero-diagonal constraint.

    Parameters
    ----------
    lam : float
        L2 regularisation added to the diagonal of the Gram matrix (> 0).
    binary : bool
        Use 1 per (user, item) pair; otherwise the summed ``values``.

    Attributes
    ----------
    B_ : ndarray of float32, shape (n_items_, n_items_)
        Item-item weights, zero diagonal.
    X_ : csr_array of float32, shape (n_users_, n_items_)
        Train matrix used to score known users.
    n_users_, n_items_ : int
        Users ``>= n_users_`` (cold) score as an empty history: all zeros.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "lam": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0],
    }
    stochastic: ClassVar[bool] = False

    def __init__(self, lam: float = 250.0, binary: bool = True) -> None:
        self._set_params(locals())

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Solve for ``B`` in closed form; returns ``self`` (``valid`` and ``rng`` are unused:
        the model is deterministic)."""
        self._check_train(train)
        if not float(self.lam) > 0:
            raise ValueError(f"EASE: lam must be > 0, got {self.lam!r}")
        x = train_matrix(train, binary=bool(self.binary))  # (U, I)
        x64 = x.astype(np.float64)
        gram = (x64.T @ x64).toarray()  # (I, I)
        gram[np.diag_indices_from(gram)] += float(self.lam)
        factor = scipy.linalg.cho_factor(gram, lower=False, overwrite_a=True, check_finite=False)
        p = scipy.linalg.cho_solve(factor, np.eye(gram.shape[0]), overwrite_b=True,
                                   check_finite=False)  # (I, I) = (X^T X + lam I)^-1
        b = p / -np.diag(p)[None, :]  # B[i, j] = -P[i, j] / P[j, j]
        b[np.diag_indices_from(b)] = 0.0
        self.B_ = b.astype(np.float32)
        self.X_ = x
        self.n_users_, self.n_items_ = (int(s) for s in x.shape)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """``x_u @ B`` for each user (restricted to ``items`` when given).

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
        return item_item_scores(self, users, items, self.B_)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"B_": self.B_, **csr_state("X_", self.X_)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.B_ = np.asarray(state["B_"], dtype=np.float32)
        self.X_ = csr_from_state("X_", state)
        self.n_users_, self.n_items_ = (int(s) for s in self.X_.shape)
