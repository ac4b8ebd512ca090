"""Biased matrix factorisation for explicit ratings, trained by alternating least squares.

``r̂(u, i) = μ + b_u + b_i + p_u · q_i``. Each half-sweep solves every user's (item's)
ridge system at once: with the other side's vectors augmented by a constant 1 (for the
bias), the Gram matrices of all users are one sparse-by-dense product
``R_mask @ vec(y yᵀ)`` and the systems are solved batched by ``np.linalg.solve``: no Python
loop over users, items or ratings. The regularisation is weighted by the number of ratings
(``reg * n_u``), as in Zhou et al. (2008).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.metrics import mae, rmse
from streamrec.models._history import check_items, check_users
from streamrec.models.base import RatingPredictor, Recommender, as_generator
from streamrec.models.zoo import register


def _half_sweep(r: sp.csr_array, other: np.ndarray, other_bias: np.ndarray, mu: float,
                reg: float, reg_bias: float) -> tuple[np.ndarray, np.ndarray]:
    """Solve the rows of ``r`` for (factors, bias) given the other side's factors and biases.

    Parameters
    ----------
    r : csr_array, shape (n, m)
        Ratings (stored entries only).
    other : ndarray, shape (m, f)
    other_bias : ndarray, shape (m,)

    Returns
    -------
    factors : ndarray, shape (n, f); bias : ndarray, shape (n,)
    """
    m, f = other.shape
    y = np.hstack([other, np.ones((m, 1))])  # (m, f+1): the 1 carries this side's bias
    outer = (y[:, :, None] * y[:, None, :]).reshape(m, -1)  # (m, (f+1)^2)
    mask = r.copy()
    mask.data = np.ones_like(mask.data)
    gram = (mask @ outer).reshape(-1, f + 1, f + 1)  # (n, f+1, f+1)
    target = r.copy()
    target.data = r.data - mu - other_bias[r.indices]
    rhs = target @ y  # (n, f+1)
    counts = np.diff(r.indptr).astype(np.float64)
    lam = np.concatenate([np.full(f, reg), [reg_bias]])
    gram += (np.maximum(counts, 1.0)[:, None, None] * np.diag(lam)[None])
    sol = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
    return sol[:, :f], sol[:, f]


@register("biased_mf")
class BiasedMF(Recommender, RatingPredictor):
    """Biased MF for explicit ratings (ALS); ranks items by predicted rating.

    Parameters
    ----------
    factors : int
        Latent dimension.
    reg : float
        Ridge weight on the factors, per rating of the user/item.
    reg_bias : float
        Ridge weight on the biases, per rating.
    iterations : int
        ALS sweeps (users then items).
    init_std : float
        Standard deviation of the random initial factors.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [8, 16, 32, 64],
        "reg": [0.02, 0.05, 0.1, 0.2],
        "reg_bias": [0.01, 0.1],
        "iterations": [10, 20],
    }
    stochastic: ClassVar[bool] = True

    mu_: float
    user_factors_: np.ndarray  # (n_users, f) float32
    item_factors_: np.ndarray  # (n_items, f) float32
    user_bias_: np.ndarray  # (n_users,) float32
    item_bias_: np.ndarray  # (n_items,) float32

    def __init__(self, factors: int = 32, reg: float = 0.1, reg_bias: float = 0.01,
                 iterations: int = 20, init_std: float = 0.1) -> None:
        self._set_params(locals())

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Fit on the ratings in ``train.values`` (duplicate pairs averaged)."""
        self._check_train(train)
        if self.factors < 1 or self.iterations < 1:
            raise ValueError("biased_mf: factors and iterations must be >= 1")
        gen = as_generator(rng)
        total = train.to_csr(values="values", dtype=np.float64)
        count = train.to_csr(values="count", dtype=np.float64)
        r = sp.csr_array((total.data / count.data, total.indices, total.indptr), shape=total.shape)
        rt = sp.csr_array(r.T)
        mu = float(r.data.mean())
        n_u, n_i = r.shape
        p = gen.normal(0.0, self.init_std, (n_u, self.factors))
        q = gen.normal(0.0, self.init_std, (n_i, self.factors))
        bu, bi = np.zeros(n_u), np.zeros(n_i)
        for _ in range(self.iterations):
            p, bu = _half_sweep(r, q, bi, mu, self.reg, self.reg_bias)
            q, bi = _half_sweep(rt, p, bu, mu, self.reg, self.reg_bias)
        self.mu_ = mu
        self.user_factors_, self.item_factors_ = p.astype(np.float32), q.astype(np.float32)
        self.user_bias_, self.item_bias_ = bu.astype(np.float32), bi.astype(np.float32)
        self.n_users_, self.n_items_ = n_u, n_i
        return self

    def item_vectors(self) -> np.ndarray:
        """``item_factors_``, shape (n_items, factors) float32 (the biases not included)."""
        self._check_fitted()
        return self.item_factors_

    def _user_parts(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        warm = users < self.n_users_
        p = np.zeros((len(users), self.user_factors_.shape[1]), np.float32)
        b = np.zeros(len(users), np.float32)
        p[warm] = self.user_factors_[users[warm]]
        b[warm] = self.user_bias_[users[warm]]
        return p, b

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Predicted ratings, shape (len(users), n_items_ or len(items)), float32; cold users
        get ``μ + b_i``."""
        self._check_fitted()
        users = check_users(users, "BiasedMF")
        it = check_items(items, self.n_items_, "BiasedMF")
        q = self.item_factors_ if it is None else self.item_factors_[it]
        bi = self.item_bias_ if it is None else self.item_bias_[it]
        p, bu = self._user_parts(users)
        return (np.float32(self.mu_) + bu[:, None] + bi[None, :] + p @ q.T).astype(np.float32)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, shape (N,), float32. Cold users or items
        (index beyond the train vocabulary) fall back to the biases that are known."""
        self._check_fitted()
        users = check_users(users, "BiasedMF")
        items = np.asarray(items, dtype=np.int64)
        if users.shape != items.shape:
            raise ValueError(f"predict: users {users.shape} and items {items.shape} differ")
        p, bu = self._user_parts(users)
        warm_i = (items >= 0) & (items < self.n_items_)
        q = np.zeros_like(p)
        bi = np.zeros(len(items), np.float32)
        q[warm_i] = self.item_factors_[items[warm_i]]
        bi[warm_i] = self.item_bias_[items[warm_i]]
        return (np.float32(self.mu_) + bu + bi + np.einsum("nf,nf->n", p, q)).astype(np.float32)

    def evaluate_ratings(self, test: Interactions) -> dict[str, float]:
        """RMSE and MAE of :meth:`predict` on ``test.values``."""
        pred = self.predict(test.users, test.items)
        return {"rmse": rmse(test.values, pred), "mae": mae(test.values, pred)}

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"mu": np.array([self.mu_], np.float64), "user_factors": self.user_factors_,
                "item_factors": self.item_factors_, "user_bias": self.user_bias_,
                "item_bias": self.item_bias_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.mu_ = float(state["mu"][0])
        self.user_factors_ = state["user_factors"].astype(np.float32)
        self.item_factors_ = state["item_factors"].astype(np.float32)
        self.user_bias_ = state["user_bias"].astype(np.float32)
        self.item_bias_ = state["item_bias"].astype(np.float32)
        self.n_users_, self.n_items_ = len(self.user_factors_), len(self.item_factors_)
