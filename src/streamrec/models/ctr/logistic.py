"""Logistic regression click model: standardised dense features and one-hot categorical
codes, fitted by scikit-learn (L-BFGS, L2), predicted with numpy (no sklearn at serving).

The baseline every deep click model has to beat: it sees each feature's main effect only,
so interactions (x0·x1), curvature (x2²) and periodic effects (sin(π·x3)) are invisible to it.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from streamrec.data.ctr import CTRData, FeatureSchema
from streamrec.features.encoders import one_hot
from streamrec.models.base import as_generator
from streamrec.models.ctr.base import CTRModel
from streamrec.models.zoo import register

__all__ = ["LogisticCTR"]


@register("logistic", kind="ctr")
class LogisticCTR(CTRModel):
    """L2-regularised logistic regression on standardised dense + one-hot categorical features.

    Parameters
    ----------
    C : float
        Inverse regularisation strength (scikit-learn's ``C``).
    max_iter : int
        L-BFGS iterations at most.
    """

    search_space = {"C": [0.01, 0.1, 1.0, 10.0]}

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self._set_params(locals())

    def _design(self, data: CTRData) -> sp.csr_array:
        z = (data.dense.astype(np.float64) - self.mean_) / self.scale_  # (N, D)
        parts = [sp.csr_array(z)]
        if data.schema.n_categorical:
            parts.append(sp.csr_array(one_hot(data.categorical, self.schema_.cardinalities)))
        return sp.hstack(parts, format="csr")

    def fit(self, train: CTRData, *, valid: CTRData | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        y = self._check_train(train)
        as_generator(rng)  # deterministic: L-BFGS from zeros
        self.schema_ = train.schema
        x = train.dense.astype(np.float64)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        clf = SkLogisticRegression(C=self.C, max_iter=self.max_iter, solver="lbfgs")
        clf.fit(self._design(train), y.astype(np.int64))
        self.coef_ = clf.coef_.reshape(-1).astype(np.float64)
        self.intercept_ = float(clf.intercept_[0])
        return self

    def decision_function(self, data: CTRData) -> np.ndarray:
        """Logits, shape (N,) float64 (numpy only)."""
        self._check_data(data)
        d = self.schema_.n_dense
        z = (data.dense.astype(np.float64) - self.mean_) / self.scale_  # (N, D)
        out = z @ self.coef_[:d] + self.intercept_
        if self.schema_.n_categorical:
            out += self.coef_[d:][data.categorical + self.schema_.offsets].sum(axis=1)
        return out

    def predict_proba(self, data: CTRData) -> np.ndarray:
        return expit(self.decision_function(data)).astype(np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"schema": self.schema_.to_array(), "mean": self.mean_, "scale": self.scale_,
                "coef": self.coef_, "intercept": np.array([self.intercept_])}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.schema_ = FeatureSchema.from_array(state["schema"])
        self.mean_, self.scale_ = state["mean"], state["scale"]
        self.coef_, self.intercept_ = state["coef"], float(state["intercept"][0])
