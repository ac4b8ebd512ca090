"""Feature selection: rank features by their mutual information with the click label.

:func:`rank_features` wraps scikit-learn's ``mutual_info_classif`` (k-nearest-neighbour
estimates for continuous features, counts for discrete ones); :func:`frame_matrix` turns the
columns of a polars frame into its input (strings -> discrete codes, nulls -> the median).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.feature_selection import mutual_info_classif

__all__ = ["frame_matrix", "rank_features"]


def rank_features(X: np.ndarray, y: np.ndarray, names: Sequence[str], *,
                  discrete_mask: np.ndarray | Sequence[bool] | None = None, seed: int = 0,
                  max_rows: int | None = None, n_neighbors: int = 3,
                  ) -> list[tuple[str, float]]:
    """Mutual information (nats) of each feature with the label, highest first.

    Parameters
    ----------
    X : ndarray, shape (N, F)
        Finite feature values (discrete features as integer codes).
    y : ndarray, shape (N,)
        Class labels (e.g. click 0/1).
    names : sequence of str, length F
    discrete_mask : array of bool, shape (F,), optional
        Which features are discrete (default: none).
    seed : int
        Seed of the estimator's noise and of the row sample.
    max_rows : int, optional
        Estimate on a uniform sample of at most this many rows (the estimator is
        O(N log N) per feature).
    n_neighbors : int
        Neighbours of the kNN estimate for continuous features.

    Returns
    -------
    list of (name, mi)
        Sorted by decreasing MI; ties keep the input order.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    names = [str(n) for n in names]
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError(f"X must have shape (N, {len(names)}) for {len(names)} names, "
                         f"got {X.shape}")
    if len(y) != X.shape[0]:
        raise ValueError(f"y has {len(y)} rows, X {X.shape[0]}")
    if X.shape[0] < n_neighbors + 2:
        raise ValueError(f"rank_features needs more than {n_neighbors + 1} rows, got {X.shape[0]}")
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"feature {names[c]!r}, row {r}: not finite (impute it first, e.g. "
                         "with frame_matrix)")
    mask = (np.zeros(len(names), bool) if discrete_mask is None
            else np.asarray(discrete_mask, dtype=bool).reshape(-1))
    if len(mask) != len(names):
        raise ValueError(f"discrete_mask has {len(mask)} entries for {len(names)} features")
    rng = np.random.default_rng(seed)
    if max_rows is not None and X.shape[0] > max_rows:
        rows = np.sort(rng.choice(X.shape[0], size=max_rows, replace=False))
        X, y = X[rows], y[rows]
    mi = mutual_info_classif(X, y, discrete_features=mask, n_neighbors=n_neighbors,
                             random_state=int(rng.integers(2**31 - 1)))
    order = np.argsort(-mi, kind="stable")
    return [(names[j], float(mi[j])) for j in order]


def frame_matrix(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The ``columns`` of ``frame`` as a finite float matrix for :func:`rank_features`.

    Strings, categoricals and booleans become discrete codes (dense ranks, 0 for null);
    numeric columns keep their values with nulls and non-finite values set to the column's
    median (0 when it has none).

    Returns
    -------
    X : ndarray of float64, shape (N, len(columns))
    discrete_mask : ndarray of bool, shape (len(columns),)
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame_matrix: missing column(s) {missing}")
    cols, discrete = [], []
    for col in columns:
        s = frame[col]
        if s.dtype.is_numeric():
            v = s.cast(pl.Float64).to_numpy().astype(np.float64)
            ok = np.isfinite(v)
            fill = float(np.median(v[ok])) if ok.any() else 0.0
            cols.append(np.where(ok, v, fill))
            discrete.append(False)
        else:
            codes = s.cast(pl.String).rank("dense").fill_null(0)
            cols.append(codes.to_numpy().astype(np.float64))
            discrete.append(True)
    X = np.stack(cols, axis=1) if cols else np.zeros((frame.height, 0))
    return X, np.asarray(discrete, dtype=bool)
