"""Evaluation metrics as pure, vectorised functions, below the models layer (models stop
early on them; :mod:`streamrec.eval` reports them).

Three families:

* **Top-K ranking** (per user). :func:`hit_matrix` turns ranked item lists and the ground
  truth into a boolean hit matrix; :func:`precision`, :func:`recall`, :func:`ndcg`,
  :func:`average_precision` (MAP@K), :func:`mrr` and :func:`hit_rate` reduce it to one
  float64 value per user.
* **Beyond accuracy**: :func:`coverage` (a scalar), :func:`novelty`,
  :func:`intra_list_diversity` and :func:`average_popularity` (per user).
* **Rating / CTR** (scalars over all predictions): :func:`rmse`, :func:`mae`,
  :func:`squared_errors`, :func:`auc`, :func:`log_loss`, :func:`average_precision_score`
  and :func:`calibration` (reliability-curve data and expected calibration error).

Conventions for the ranking metrics (those of RecBole, so numbers compare with its tables):

* ``hits[u, r]`` is True when the item at rank ``r`` (0-based) of user ``u`` is relevant.
* ``precision@k`` divides by ``k`` even when fewer than ``k`` items were ranked.
* ``recall@k`` divides by the number of relevant items (all of them, including items the
  model cannot rank, such as items unseen at training time).
* ``ndcg@k`` uses binary gains and the discount ``1 / log2(rank + 1)`` (rank 1-based); the
  ideal DCG puts ``min(n_relevant, k)`` hits at the top.
* ``map@k`` is the sum of precision@i at every hit ``i <= k`` divided by
  ``min(n_relevant, k)``.
* Users with no relevant item get ``nan`` from the metrics that take ``n_relevant``.
"""

from streamrec.metrics.beyond import (
    average_popularity,
    coverage,
    intra_list_diversity,
    novelty,
)
from streamrec.metrics.predictions import (
    Calibration,
    auc,
    average_precision_score,
    calibration,
    log_loss,
    mae,
    rmse,
    squared_errors,
)
from streamrec.metrics.ranking import (
    RANKING_METRICS,
    average_precision,
    hit_matrix,
    hit_rate,
    hits_from_keys,
    metrics_from_hits,
    mrr,
    ndcg,
    precision,
    recall,
    truth_keys,
)

__all__ = [
    "RANKING_METRICS",
    "Calibration",
    "auc",
    "average_popularity",
    "average_precision",
    "average_precision_score",
    "calibration",
    "coverage",
    "hit_matrix",
    "hit_rate",
    "hits_from_keys",
    "intra_list_diversity",
    "log_loss",
    "mae",
    "metrics_from_hits",
    "mrr",
    "ndcg",
    "novelty",
    "precision",
    "recall",
    "rmse",
    "squared_errors",
    "truth_keys",
]
