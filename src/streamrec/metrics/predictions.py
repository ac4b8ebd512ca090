"""Metrics of predictions over all pairs: ratings (RMSE, MAE) and click probabilities
(AUC, log loss, average precision, calibration)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from streamrec.metrics.ranking import _safe_div

__all__ = [
    "Calibration",
    "auc",
    "average_precision_score",
    "calibration",
    "log_loss",
    "mae",
    "rmse",
    "squared_errors",
]


# ---------------------------------------------------------------------------- rating
def _pair(y: np.ndarray, yhat: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y, dtype=np.float64).ravel()
    b = np.asarray(yhat, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{name}: {a.size} targets but {b.size} predictions")
    if a.size == 0:
        raise ValueError(f"{name}: no predictions")
    return a, b


def squared_errors(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Per-prediction squared errors ``(y - yhat)**2``, shape (n,) float64."""
    a, b = _pair(y, yhat, "squared_errors")
    return (a - b) ** 2


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared error of ``yhat`` (n,) against ``y`` (n,)."""
    return float(np.sqrt(squared_errors(y, yhat).mean()))


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error of ``yhat`` (n,) against ``y`` (n,)."""
    a, b = _pair(y, yhat, "mae")
    return float(np.abs(a - b).mean())


# ---------------------------------------------------------------------------- CTR
def _binary(labels: np.ndarray, other: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    y, s = _pair(labels, other, name)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name}: labels must be 0/1")
    return y, s


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; tied scores get averaged ranks).

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    scores : ndarray of float, shape (n,)

    Returns
    -------
    float
        ``nan`` when only one class is present.
    """
    y, s = _binary(labels, scores, "auc")
    pos = y == 1.0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy; probabilities are clipped to ``[eps, 1 - eps]``.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    probs : ndarray of float, shape (n,)
        Predicted probability of label 1.
    eps : float

    Returns
    -------
    float
    """
    y, p = _binary(labels, probs, "log_loss")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)).mean())


def average_precision_score(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum (scikit-learn's definition).

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, highest first.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    scores : ndarray of float, shape (n,)

    Returns
    -------
    float
        ``nan`` when there is no positive label.
    """
    y, s = _binary(labels, scores, "average_precision_score")
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    tps = np.cumsum(y)
    if tps[-1] == 0:
        return float("nan")
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last index of each threshold
    tp = tps[last]
    prec = tp / (last + 1.0)
    rec = tp / tps[-1]
    return float(np.sum(np.diff(rec, prepend=0.0) * prec))


@dataclass(frozen=True)
class Calibration:
    """Reliability-curve data of predicted probabilities.

    Attributes
    ----------
    ece : float
        Expected calibration error: ``sum_b counts[b] / n * |observed[b] - mean_predicted[b]|``.
    edges : ndarray of float64, shape (n_bins + 1,)
        Bin edges over ``[0, 1]``; bin ``b`` is ``[edges[b], edges[b + 1])``, the last closed.
    mean_predicted : ndarray of float64, shape (n_bins,)
        Mean predicted probability per bin (``nan`` for empty bins).
    observed : ndarray of float64, shape (n_bins,)
        Fraction of positive labels per bin (``nan`` for empty bins).
    counts : ndarray of int64, shape (n_bins,)
        Predictions per bin.
    """

    ece: float
    edges: np.ndarray
    mean_predicted: np.ndarray
    observed: np.ndarray
    counts: np.ndarray


def calibration(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> Calibration:
    """Bin predictions into ``n_bins`` equal-width bins and compare with observed rates.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (n,)
    probs : ndarray of float in [0, 1], shape (n,)
    n_bins : int

    Returns
    -------
    Calibration
    """
    if n_bins < 1:
        raise ValueError(f"calibration: n_bins must be >= 1, got {n_bins}")
    y, p = _binary(labels, probs, "calibration")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("calibration: probabilities must lie in [0, 1]")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(b, minlength=n_bins).astype(np.int64)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y, minlength=n_bins)
    c = counts.astype(np.float64)
    mean_p, obs = _safe_div(sum_p, c), _safe_div(sum_y, c)
    gap = np.where(counts > 0, np.abs(np.nan_to_num(obs) - np.nan_to_num(mean_p)), 0.0)
    ece = float((c * gap).sum() / c.sum())
    return Calibration(ece, np.linspace(0.0, 1.0, n_bins + 1), mean_p, obs, counts)
