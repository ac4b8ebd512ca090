"""Offline evaluation: metrics (from :mod:`streamrec.metrics`), the full-ranking protocol
and significance tests.

The benchmark runner and report writer live in :mod:`streamrec.eval.benchmark` and
:mod:`streamrec.eval.report` (not imported here: they pull in the model registry).
"""

from streamrec.eval.protocol import RANKING_METRICS, EvalResult, evaluate
from streamrec.eval.significance import (
    ConfidenceInterval,
    PairedComparison,
    PairedTestResult,
    bootstrap_ci,
    compare,
    mean_std,
    paired_ttest,
    wilcoxon,
)
from streamrec.metrics import (
    Calibration,
    auc,
    average_popularity,
    average_precision,
    average_precision_score,
    calibration,
    coverage,
    hit_matrix,
    hit_rate,
    intra_list_diversity,
    log_loss,
    mae,
    mrr,
    ndcg,
    novelty,
    precision,
    recall,
    rmse,
    squared_errors,
)

__all__ = [
    "RANKING_METRICS",
    "Calibration",
    "ConfidenceInterval",
    "EvalResult",
    "PairedComparison",
    "PairedTestResult",
    "auc",
    "average_popularity",
    "average_precision",
    "average_precision_score",
    "bootstrap_ci",
    "calibration",
    "compare",
    "coverage",
    "evaluate",
    "hit_matrix",
    "hit_rate",
    "intra_list_diversity",
    "log_loss",
    "mae",
    "mean_std",
    "mrr",
    "ndcg",
    "novelty",
    "paired_ttest",
    "precision",
    "recall",
    "rmse",
    "squared_errors",
    "wilcoxon",
]
