"""Ensembles of click models: a weighted average of probabilities, or stacking.

- ``average``: ``p = Σ_m w_m p_m / Σ_m w_m`` (``weights`` given, else equal);
- ``stacking``: a logistic regression on the members' logits, fitted on held-out rows (valid
  when given, else the last ``holdout`` share of a shuffled train, with the members refitted
  on the rest), so the combiner never sees predictions on the members' own training rows.

Members are any registered click models, created by name with ``member_params``; each is
saved under its index in ``arrays.npz`` (no pickle).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy.special import expit, logit

from streamrec.data.ctr import CTRData, FeatureSchema
from streamrec.models.base import as_generator
from streamrec.models.ctr.base import CTRModel
from streamrec.models.zoo import create, get_class, register

__all__ = ["EnsembleCTR"]

METHODS = ("average", "stacking")
_EPS = 1e-6


@register("ensemble", kind="ctr")
class EnsembleCTR(CTRModel):
    """Several click models combined.

    Parameters
    ----------
    members : sequence of str
        Registry names of click models (``kind="ctr"``).
    method : {"average", "stacking"}
    weights : sequence of float, optional
        Weights of ``average`` (default equal).
    member_params : dict, optional
        Hyperparameters per member name, e.g. ``{"mlp": {"epochs": 20}}``.
    holdout : float
        Share of train held out for stacking when no valid data is given.
    C : float
        Inverse L2 strength of the stacking logistic regression.
    """

    stochastic = True

    def __init__(self, members: tuple[str, ...] = ("logistic", "mlp", "gbdt"),
                 method: str = "average", weights: tuple[float, ...] | None = None,
                 member_params: dict[str, dict[str, Any]] | None = None, holdout: float = 0.2,
                 C: float = 1.0) -> None:
        self._set_params(locals())
        self.members = tuple(members)
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        # lists (JSON's arrays, e.g. after load) become tuples, as the members' own params
        self.member_params = {m: {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in kw.items()}
                              for m, kw in (member_params or {}).items()}

    def _validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if "ensemble" in self.members:
            raise ValueError("an ensemble cannot contain an ensemble")
        for name in self.members:  # fails early on unknown names
            get_class(name, "ctr")
        if self.weights is not None and (len(self.weights) != len(self.members)
                                         or min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ValueError(f"weights must be {len(self.members)} non-negative numbers with a "
                             "positive sum")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must lie in (0, 1), got {self.holdout}")

    def _fit_members(self, train: CTRData, valid: CTRData | None,
                     gen: np.random.Generator) -> list[CTRModel]:
        out = []
        for name in self.members:
            model = create(name, kind="ctr", **self.member_params.get(name, {}))
            out.append(model.fit(train, valid=valid, rng=int(gen.integers(2**31 - 1))))
        return out

    def _member_logits(self, data: CTRData) -> np.ndarray:
        p = np.stack([m.predict_proba(data) for m in self.models_], axis=1)  # (N, M)
        return logit(np.clip(p.astype(np.float64), _EPS, 1 - _EPS))

    def fit(self, train: CTRData, *, valid: CTRData | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        self._validate()
        self._check_train(train)
        gen = as_generator(rng)
        self.schema_ = train.schema
        if self.method == "average":
            self.models_ = self._fit_members(train, valid, gen)
            w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights)
            self.coef_, self.intercept_ = w / w.sum(), 0.0
            return self
        from sklearn.linear_model import LogisticRegression

        if valid is not None and valid.labels is not None and len(np.unique(valid.labels)) == 2:
            self.models_ = self._fit_members(train, valid, gen)
            held = valid
        else:
            order = gen.permutation(len(train))
            cut = int(round(len(train) * (1 - self.holdout)))
            self.models_ = self._fit_members(train.take(np.sort(order[:cut])), None, gen)
            held = train.take(np.sort(order[cut:]))
        clf = LogisticRegression(C=self.C, max_iter=1000)
        clf.fit(self._member_logits(held), held.require_labels("stacking").astype(np.int64))
        self.coef_, self.intercept_ = clf.coef_.reshape(-1), float(clf.intercept_[0])
        return self

    def predict_proba(self, data: CTRData) -> np.ndarray:
        self._check_data(data)
        if self.method == "average":
            p = np.stack([m.predict_proba(data) for m in self.models_], axis=1)  # (N, M)
            return (p.astype(np.float64) @ self.coef_).astype(np.float32)
        return expit(self._member_logits(data) @ self.coef_ + self.intercept_).astype(np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {"schema": self.schema_.to_array(), "coef": self.coef_,
                                        "intercept": np.array([self.intercept_])}
        for j, m in enumerate(self.models_):
            state.update({f"m{j}.{k}": v for k, v in m._get_state().items()})
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.schema_ = FeatureSchema.from_array(state["schema"])
        self.coef_, self.intercept_ = state["coef"], float(state["intercept"][0])
        self.models_ = []
        for j, name in enumerate(self.members):
            m = create(name, kind="ctr", **self.member_params.get(name, {}))
            prefix = f"m{j}."
            m._set_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
            self.models_.append(m)
