"""Thin adapters over ``implicit``'s CPU models: iALS and BPR-MF.

The algorithms are ``implicit``'s (Hu, Koren & Volinsky 2008 with conjugate gradient;
Rendle et al. 2009). The adapters add what StreamRec needs around them: the Recommender
interface, confidence weighting of the interaction values, seeding from a numpy Generator,
save/load of the factors without pickle, and fold-in of new users (iALS solves the user's
least-squares system against the fixed item factors, ``recalculate_user``). iALS itself is
fitted by :func:`streamrec.factorization.implicit_als`, which the click features share.

Determinism: ``implicit`` runs its inner loops on ``num_threads`` threads. iALS solves
each user (item) independently, so its result does not depend on the thread count; BPR is
Hogwild SGD, whose updates race between threads, so BPR uses one thread unless told
otherwise (``num_threads``), and is then reproducible for a seed.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking

from streamrec.data.interactions import Interactions
from streamrec.factorization import als_solver, confidence_values, implicit_als, one_blas_thread
from streamrec.metrics.full_ranking import ranking_ndcg
from streamrec.models._history import check_items, check_users, train_matrix
from streamrec.models.base import Recommender, as_generator
from streamrec.models.zoo import register

log = logging.getLogger(__name__)


def _seed(rng: np.random.Generator | int | None) -> int:
    return int(as_generator(rng).integers(2**31 - 1))


class _Factors(Recommender):
    """Scoring, persistence and cold users shared by the factor models."""

    user_factors_: np.ndarray  # (n_users, f) float32
    item_factors_: np.ndarray  # (n_items, f) float32

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Dot products, shape (len(users), n_items_ or len(items)); cold users score 0."""
        self._check_fitted()
        users = check_users(users, type(self).__name__)
        warm = users < self.n_users_
        u = np.zeros((len(users), self.user_factors_.shape[1]), np.float32)
        u[warm] = self.user_factors_[users[warm]]
        it = check_items(items, self.n_items_, type(self).__name__)
        v = self.item_factors_ if it is None else self.item_factors_[it]
        return (u @ v.T).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        """``item_factors_``, shape (n_items, f) float32 (``score`` is their dot product
        with the user factors)."""
        self._check_fitted()
        return self.item_factors_

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_factors_ = np.ascontiguousarray(state["user_factors"], dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(state["item_factors"], dtype=np.float32)
        self.n_users_, self.n_items_ = len(self.user_factors_), len(self.item_factors_)


@register("ials")
class ImplicitALS(_Factors):
    """Implicit-feedback ALS (iALS) through ``implicit.cpu.als``.

    Parameters
    ----------
    factors : int
        Latent dimension.
    regularization : float
        L2 weight on the factors. The defaults (10, alpha 0.5) were the best of the grid on
        the *valid* sets of ML-100K and the synthetic world; implicit's own (0.01, 1) lose
        5-30% NDCG@10 there.
    alpha : float
        Confidence of an observed pair: ``c = 1 + alpha * r`` (``linear``) or
        ``1 + alpha * log(1 + r / eps)`` (``log``); unobserved pairs weigh 1.
    iterations : int
        ALS sweeps.
    confidence : {"linear", "log"}
    eps : float
        Scale of the ``log`` confidence.
    binary : bool
        1 per (user, item) pair; otherwise the sum of its values (e.g. play counts).
    use_cg : bool
        Conjugate-gradient solver (implicit's default) instead of the exact Cholesky one.
    num_threads : int
        Threads of implicit's solver (0: all cores); results do not depend on it.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {  # 48 points: search it whole
        "factors": [64, 128, 256],
        "regularization": [1.0, 3.0, 10.0, 30.0],
        "alpha": [0.25, 0.5, 1.0, 2.0],
    }
    stochastic: ClassVar[bool] = True

    def __init__(self, factors: int = 64, regularization: float = 10.0, alpha: float = 0.5,
                 iterations: int = 15, confidence: str = "linear", eps: float = 1.0,
                 binary: bool = True, use_cg: bool = True, num_threads: int = 0) -> None:
        self._set_params(locals())

    def _model(self):
        """implicit's solver with this model's settings (no seed: for fold-ins)."""
        return als_solver(factors=self.factors, regularization=self.regularization,
                          iterations=self.iterations, use_cg=self.use_cg,
                          num_threads=self.num_threads)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Fit on ``train`` (``valid`` is unused: ALS has no early stopping here)."""
        self._check_train(train)
        self.user_factors_, self.item_factors_ = implicit_als(train, **self.get_params(),
                                                              seed=_seed(rng))
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        return self

    def fold_in(self, user_items: sp.csr_array | sp.csr_matrix) -> np.ndarray:
        """User vectors for histories not seen in training (least squares against the fixed
        item factors, implicit's ``recalculate_user``).

        Parameters
        ----------
        user_items : csr, shape (B, n_items_)
            One row per new user: their interactions (values used as in ``fit``).

        Returns
        -------
        ndarray of float32, shape (B, factors)
        """
        self._check_fitted()
        x = sp.csr_matrix(user_items, dtype=np.float32)
        if x.shape[1] != self.n_items_:
            raise ValueError(f"fold_in: user_items has {x.shape[1]} columns, model has "
                             f"{self.n_items_} items")
        x.sum_duplicates()
        if self.binary:
            x.data[:] = 1.0
        x.data = confidence_values(x.data, scheme=self.confidence, alpha=self.alpha,
                                   eps=self.eps)
        with one_blas_thread():
            model = self._solver()
            vecs = model.recalculate_user(np.arange(x.shape[0]), x)
        return np.asarray(vecs, dtype=np.float32).reshape(x.shape[0], -1)

    def _solver(self):
        """An implicit model on the fitted factors, kept between fold-ins so that its cached
        ``YtY`` (items x factors squared: the costly part) is computed once."""
        cached = getattr(self, "_fold_solver", None)
        if cached is None or cached[0] is not self.item_factors_:
            model = self._model()
            model.user_factors = self.user_factors_
            model.item_factors = self.item_factors_
            cached = (self.item_factors_, model)
            self._fold_solver = cached
        return cached[1]

    def recommend_for_history(self, user_items: sp.csr_array | sp.csr_matrix,
                              k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for new users given their histories (seen items excluded).

        Returns
        -------
        items : ndarray of int64, shape (B, k); scores : ndarray of float32, shape (B, k)
        """
        from streamrec.retrieval.topk import mask_rows, topk

        vecs = self.fold_in(user_items)
        scores = (vecs @ self.item_factors_.T).astype(np.float32)
        mask_rows(scores, sp.csr_array(user_items), np.arange(len(vecs)))
        return topk(scores, k)


@register("bpr")
class ImplicitBPR(_Factors):
    """BPR matrix factorisation through ``implicit.cpu.bpr``.

    Scores are ``user_factors_ @ item_factors_.T`` where implicit's last item column is the
    item bias and the matching user column is 1.

    implicit draws each negative as the item of a random training pair, i.e. with
    probability ``q(j) ∝ n_j`` (the item's train count), not uniformly. Under that sampler
    the pairwise logits learn ``s_ui ≈ log p(i | u) − log q(i)``: popular items are pushed
    down. ``sampler_correction`` γ adds ``γ · log n_i`` back to the item bias (the logQ
    correction of sampled softmax, applied after training): γ = 1 undoes the sampler
    exactly, γ = 0 keeps implicit's raw scores. On ML-100K (temporal_user, the default
    hyperparameters) it lifts valid NDCG@10 from 0.117 to 0.125.

    Parameters
    ----------
    factors : int
        Latent dimension (implicit adds one bias column).
    learning_rate, regularization : float
    iterations : int
        Epochs of SGD over the positives.
    binary : bool
        Positives are the stored pairs either way; kept for a uniform interface.
    num_threads : int
        1 (default) keeps BPR reproducible for a seed; more threads are faster but race.
    patience : int
        Early stopping when ``fit`` gets ``valid``: train ``eval_every`` iterations at a
        time (implicit's ``fit`` continues from the current factors), evaluate valid
        NDCG@10 (train items excluded, correction applied), keep the best factors, stop
        after ``patience`` evaluations without improvement. 0 trains all ``iterations``.
    eval_every : int
        Iterations between two validations.
    sampler_correction : float
        γ above (>= 0).
    """

    search_space: ClassVar[dict[str, list[Any]]] = {  # iterations: early stopping on valid
        "factors": [32, 64, 128],
        "learning_rate": [0.005, 0.01, 0.05],
        "regularization": [0.001, 0.01, 0.1],
    }
    stochastic: ClassVar[bool] = True

    def __init__(self, factors: int = 64, learning_rate: float = 0.01,
                 regularization: float = 0.01, iterations: int = 300, binary: bool = True,
                 num_threads: int = 1, patience: int = 10, eval_every: int = 10,
                 sampler_correction: float = 1.0) -> None:
        self._set_params(locals())

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Fit on ``train``; with ``valid``, keep the factors of the best valid NDCG@10
        (checked every ``eval_every`` iterations, stopping after ``patience`` without gain)."""
        self._check_train(train)
        if self.factors < 1 or self.iterations < 1 or not self.sampler_correction >= 0:
            raise ValueError("bpr: factors and iterations must be >= 1 and sampler_correction "
                             f">= 0, got {self.factors}, {self.iterations}, "
                             f"{self.sampler_correction}")
        x = sp.csr_matrix(train_matrix(train, binary=True))
        # γ · log n_i, added to the bias column of the item factors we keep (not implicit's)
        counts = np.bincount(x.indices, minlength=train.n_items)  # binary: one per pair
        shift = (self.sampler_correction * np.log(np.maximum(counts, 1))).astype(np.float32)
        gen = as_generator(rng)
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        stop_early = valid is not None and len(valid) > 0 and self.patience > 0
        step = min(self.eval_every, self.iterations) if stop_early else self.iterations
        model = BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate,
            regularization=self.regularization, iterations=step,
            num_threads=self.num_threads, random_state=_seed(gen))
        best, best_state, bad, done = -np.inf, None, 0, 0
        self.best_iteration_ = self.iterations
        while done < self.iterations:  # eval_every iterations at a time, validated in between
            model.iterations = min(step, self.iterations - done)
            model.random_state = _seed(gen)  # each chunk samples afresh, reproducibly
            model.fit(x, show_progress=False)  # continues from the current factors
            done += model.iterations
            self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
            self.item_factors_ = np.array(model.item_factors, dtype=np.float32, order="C")
            self.item_factors_[:, -1] += shift
            if not stop_early:
                break
            score = ranking_ndcg(self.score, valid, n_items=self.n_items_, exclude=train)
            if score > best:
                best, bad, self.best_iteration_ = score, 0, done
                best_state = (self.user_factors_.copy(), self.item_factors_.copy())
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            self.user_factors_, self.item_factors_ = best_state
        return self
