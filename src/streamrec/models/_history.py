"""Helpers shared by the models that score from the train user-item matrix (ItemKNN, EASE).

The train matrix ``X_`` (users x items, csr) is part of the fitted state: it is saved as three
numeric arrays (``X_indptr``, ``X_indices``, ``X_data``) plus its shape, never pickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions


def train_matrix(train: Interactions, *, binary: bool) -> sp.csr_array:
    """The train user x item matrix, shape (n_users, n_items), float32.

    Parameters
    ----------
    train : Interactions
    binary : bool
        1 where the user interacted; otherwise the sum of ``values`` over duplicate pairs.
    """
    x = train.to_csr(values="binary" if binary else "values", dtype=np.float32)
    x.eliminate_zeros()
    return x


def check_users(users: np.ndarray, owner: str) -> np.ndarray:
    """``users`` as a 1-D int64 array; raise on negative indices or a non-integer dtype."""
    u = np.asarray(users)
    if u.ndim != 1:
        raise ValueError(f"{owner}.score: users must be 1-D, got shape {u.shape}")
    if u.size and not np.issubdtype(u.dtype, np.integer):
        raise TypeError(f"{owner}.score: users must be integer indices, got dtype {u.dtype}")
    u = u.astype(np.int64, copy=False)
    if u.size and u.min() < 0:
        raise IndexError(f"{owner}.score: negative user index {int(u.min())}")
    return u


def check_items(items: np.ndarray | None, n_items: int, owner: str) -> np.ndarray | None:
    """``items`` as a 1-D int64 array within ``[0, n_items)``, or None."""
    if items is None:
        return None
    it = np.asarray(items)
    if it.ndim != 1:
        raise ValueError(f"{owner}.score: items must be 1-D, got shape {it.shape}")
    if it.size and not np.issubdtype(it.dtype, np.integer):
        raise TypeError(f"{owner}.score: items must be integer indices, got dtype {it.dtype}")
    it = it.astype(np.int64, copy=False)
    if it.size and (it.min() < 0 or it.max() >= n_items):
        raise IndexError(
            f"{owner}.score: item indices must lie in [0, {n_items}) (the items known at "
            f"training time), got range [{int(it.min())}, {int(it.max())}]"
        )
    return it


def history_rows(x: sp.csr_array, users: np.ndarray) -> sp.csr_array:
    """Rows of ``x`` for ``users``; users ``>= x.shape[0]`` (cold) get an empty row.

    Parameters
    ----------
    x : csr, shape (n_users, n_items)
    users : ndarray of int64, shape (U,), non-negative

    Returns
    -------
    csr, shape (U, n_items)
    """
    known = np.flatnonzero(users < x.shape[0])
    select = sp.csr_array(
        (np.ones(len(known), dtype=x.dtype), (known, users[known])),
        shape=(len(users), x.shape[0]),
    )
    return sp.csr_array(select @ x)


def csr_state(prefix: str, m: sp.csr_array) -> dict[str, np.ndarray]:
    """Numeric arrays that rebuild the csr ``m`` (see :func:`csr_from_state`)."""
    m = sp.csr_array(m)
    return {
        f"{prefix}indptr": m.indptr.astype(np.int64),
        f"{prefix}indices": m.indices.astype(np.int64),
        f"{prefix}data": m.data,
        f"{prefix}shape": np.asarray(m.shape, dtype=np.int64),
    }


def csr_from_state(prefix: str, state: dict[str, np.ndarray]) -> sp.csr_array:
    """The csr written by :func:`csr_state`."""
    shape = tuple(int(s) for s in state[f"{prefix}shape"])
    return sp.csr_array(
        (state[f"{prefix}data"], state[f"{prefix}indices"], state[f"{prefix}indptr"]),
        shape=shape,
    )


def item_item_scores(model: Any, users: np.ndarray, items: np.ndarray | None,
                     weights: np.ndarray | sp.csr_array) -> np.ndarray:
    """``x_u @ W`` for item-to-item models (EASE, ItemKNN): each user's train history row
    times the item-item matrix, restricted to ``items`` when given.

    Parameters
    ----------
    model : fitted model with ``X_`` (csr, (n_users, n_items)) and ``n_items_``
    users : ndarray of int, shape (U,)
        Cold users (``>= X_.shape[0]``) have an empty history: all-zero scores.
    items : ndarray of int, shape (C,), optional
    weights : ndarray or csr, shape (n_items, n_items)

    Returns
    -------
    ndarray of float32, shape (U, n_items) or (U, C)
    """
    owner = type(model).__name__
    u = check_users(users, owner)
    it = check_items(items, model.n_items_, owner)
    h = history_rows(model.X_, u)  # (U, I) sparse
    w = weights if it is None else weights[:, it]  # (I, C)
    out = h @ w
    return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)
