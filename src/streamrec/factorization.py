"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) through ``implicit``'s CPU solver.

The one place that fits iALS factors, below both users of it: the ``ials`` model
(:class:`streamrec.models.als.ImplicitALS`, which adds scoring, persistence and fold-in)
and the ``collaborative_score`` click feature (:mod:`streamrec.features.streamrec`), which
must not depend on the models layer. :func:`implicit_als`'s defaults are the ``ials``
model's.

Determinism: implicit solves each user (item) independently on ``num_threads`` threads, so
the factors do not depend on the thread count; BLAS is capped at one thread meanwhile
(implicit's threads would oversubscribe it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import ThreadpoolController

from streamrec.data.interactions import Interactions

__all__ = ["als_solver", "confidence_matrix", "confidence_values", "implicit_als",
           "one_blas_thread"]


def confidence_values(r: np.ndarray, *, scheme: str, alpha: float, eps: float) -> np.ndarray:
    """``c = 1 + alpha * f(r)`` with ``f(r) = r`` (``linear``) or ``log(1 + r / eps)``
    (``log``), float32."""
    if scheme == "log":
        f = np.log1p(r / eps)
    elif scheme == "linear":
        f = r
    else:
        raise ValueError(f"confidence must be 'linear' or 'log' (got {scheme!r})")
    return (1.0 + alpha * f).astype(np.float32)


def confidence_matrix(train: Interactions, *, binary: bool, scheme: str, alpha: float,
                      eps: float) -> sp.csr_matrix:
    """User x item confidence matrix, float32 csr (:func:`confidence_values` of 1 per pair
    when ``binary``, else of the summed values).

    implicit takes the stored value itself as the confidence of an observed pair (its
    solver adds ``(c - 1) y yᵀ``; unobserved pairs weigh 1), so the 1 is stored here and
    implicit is given ``alpha=1``.
    """
    x = train.to_csr(values="binary" if binary else "values", dtype=np.float32)
    x.eliminate_zeros()
    x.data = confidence_values(x.data, scheme=scheme, alpha=alpha, eps=eps)
    return sp.csr_matrix(x)


_THREADPOOLS: ThreadpoolController | None = None


def one_blas_thread():
    """A context capping BLAS at one thread (the libraries are scanned once, not per call:
    ``threadpool_limits`` rescans them, about a millisecond, too slow for serving fold-ins)."""
    global _THREADPOOLS
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


def als_solver(*, factors: int, regularization: float, iterations: int, use_cg: bool,
               num_threads: int, seed: int | None = None) -> AlternatingLeastSquares:
    """implicit's solver for confidences built by :func:`confidence_matrix`."""
    return AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=1.0, iterations=iterations,
        use_cg=use_cg, num_threads=num_threads, random_state=seed,
        calculate_training_loss=False)


def implicit_als(train: Interactions, *, factors: int = 64, regularization: float = 10.0,
                 alpha: float = 0.5, iterations: int = 15, confidence: str = "linear",
                 eps: float = 1.0, binary: bool = True, use_cg: bool = True,
                 num_threads: int = 0, seed: int | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors of iALS on ``train``.

    Parameters
    ----------
    train : Interactions
    factors, regularization, alpha, iterations, confidence, eps, binary, use_cg, num_threads :
        As :class:`streamrec.models.als.ImplicitALS` (same defaults).
    seed : int, optional
        implicit's ``random_state`` (the initial factors).

    Returns
    -------
    user_factors : ndarray of float32, shape (train.n_users, factors), C-contiguous
    item_factors : ndarray of float32, shape (train.n_items, factors), C-contiguous
    """
    if factors < 1 or iterations < 1:
        raise ValueError("ials: factors and iterations must be >= 1")
    conf = confidence_matrix(train, binary=binary, scheme=confidence, alpha=alpha, eps=eps)
    with one_blas_thread():
        model = als_solver(factors=factors, regularization=regularization,
                           iterations=iterations, use_cg=use_cg, num_threads=num_threads,
                           seed=seed)
        model.fit(conf, show_progress=False)
    return (np.ascontiguousarray(model.user_factors, dtype=np.float32),
            np.ascontiguousarray(model.item_factors, dtype=np.float32))
