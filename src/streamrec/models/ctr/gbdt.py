"""Gradient-boosted trees for click prediction (LightGBM, the optional extra ``[gbdt]``).

Dense features go in as numbers and categorical codes as LightGBM categorical features
(code 0, unknown, is one more category). Early stopping on the valid log loss when valid is
given. The booster is saved as LightGBM's own text model inside ``arrays.npz`` (uint8 bytes):
no pickle.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from streamrec.data.ctr import CTRData, FeatureSchema
from streamrec.models.base import as_generator
from streamrec.models.ctr.base import CTRModel
from streamrec.models.zoo import register

__all__ = ["GBDTClassifier"]


def _lightgbm() -> Any:
    try:
        import lightgbm
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the gbdt model needs LightGBM: pip install 'streamrec[gbdt]' (or lightgbm>=4)"
        ) from None
    return lightgbm


@register("gbdt", kind="ctr")
class GBDTClassifier(CTRModel):
    """LightGBM binary classifier on dense features and categorical codes.

    Parameters
    ----------
    n_estimators : int
        Boosting rounds at most (early stopping on valid picks fewer).
    learning_rate : float
    num_leaves : int
    min_child_samples : int
    subsample, colsample : float
        Row (bagging, every round) and feature fractions.
    reg_lambda : float
        L2 on leaf values.
    patience : int
        Rounds without valid improvement before stopping (0: no early stopping).
    n_jobs : int
        Threads (0: LightGBM's default).
    """

    stochastic = True
    search_space = {"num_leaves": [15, 31, 63], "learning_rate": [0.03, 0.1],
                    "min_child_samples": [20, 100]}

    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.05,
                 num_leaves: int = 31, min_child_samples: int = 20, subsample: float = 0.8,
                 colsample: float = 0.8, reg_lambda: float = 1.0, patience: int = 50,
                 n_jobs: int = 0) -> None:
        self._set_params(locals())

    def _params(self, seed: int) -> dict[str, Any]:
        return {"objective": "binary", "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "bagging_fraction": self.subsample, "bagging_freq": 1 if self.subsample < 1 else 0,
                "feature_fraction": self.colsample, "lambda_l2": self.reg_lambda,
                "seed": seed, "deterministic": True, "force_row_wise": True,
                "num_threads": self.n_jobs, "verbosity": -1}

    def _dataset(self, lgb: Any, data: CTRData, reference: Any = None) -> Any:
        s = data.schema
        return lgb.Dataset(data.matrix(), label=data.labels, feature_name=list(s.names),
                           categorical_feature=list(s.categorical), reference=reference,
                           free_raw_data=True)

    def fit(self, train: CTRData, *, valid: CTRData | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        self._check_train(train)
        lgb = _lightgbm()
        seed = int(as_generator(rng).integers(2**31 - 1))
        self.schema_ = train.schema
        dtrain = self._dataset(lgb, train)
        callbacks, valid_sets = [], []
        if valid is not None and valid.labels is not None and self.patience > 0:
            valid_sets = [self._dataset(lgb, valid, reference=dtrain)]
            callbacks.append(lgb.early_stopping(self.patience, verbose=False))
        self.booster_ = lgb.train(self._params(seed), dtrain, num_boost_round=self.n_estimators,
                                  valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.num_trees())
        return self

    def predict_proba(self, data: CTRData) -> np.ndarray:
        self._check_data(data)
        # a loaded booster forgets its thread count: pass it (small serving batches are
        # slower with every core's OpenMP start-up than on one thread)
        threads = {"num_threads": self.n_jobs} if self.n_jobs > 0 else {}
        p = self.booster_.predict(data.matrix(), num_iteration=self.best_iteration_, **threads)
        return np.asarray(p, dtype=np.float32)

    def _get_state(self) -> dict[str, np.ndarray]:
        text = self.booster_.model_to_string(num_iteration=self.best_iteration_)
        return {"schema": self.schema_.to_array(),
                "booster": np.frombuffer(text.encode(), dtype=np.uint8).copy(),
                "best_iteration": np.array([self.best_iteration_])}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        lgb = _lightgbm()
        self.schema_ = FeatureSchema.from_array(state["schema"])
        self.booster_ = lgb.Booster(model_str=np.asarray(state["booster"]).tobytes().decode())
        self.best_iteration_ = int(state["best_iteration"][0])
