"""The conformance suite every registered click model (:class:`~streamrec.models.ctr.base.CTRModel`)
passes, on :func:`tiny_ctr_data` in about a second per model::

    from streamrec.testing.ctr_conformance import check_ctr_model, ctr_conformance_params
    from streamrec.models import create

    check_ctr_model(lambda: create("deepfm", kind="ctr", **ctr_conformance_params("deepfm")),
                    name="deepfm")

Each failed check raises ``AssertionError`` naming the model and the check;
:func:`check_ctr_model` stops at the first, :class:`CTRSuite` runs the checks one at a time
(as ``tests/testing/test_conformance.py`` does). A model whose optional extra is missing (e.g.
``lightgbm``) raises its ``ImportError`` unchanged, so callers can skip it
(:func:`check_all_ctr` does).

A model that needs user histories declares ``requires_history = True`` (DIN); the suite then
expects ``fit`` on data without history to raise ``ValueError``, and prediction without
history to still work.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from streamrec.data.ctr import CTRData, CTRSplit, FeatureSchema, random_split
from streamrec.metrics import auc
from streamrec.models.ctr.base import CTRModel
from streamrec.models.zoo import available, create
from streamrec.testing._suite import Suite

__all__ = [
    "CTR_CHECKS",
    "CTR_CONFORMANCE_PARAMS",
    "CTRSuite",
    "check_all_ctr",
    "check_ctr_model",
    "ctr_checks",
    "ctr_conformance_params",
    "tiny_ctr_data",
]

_FAST = {"epochs": 5, "batch_size": 64, "lr": 0.01, "embed_dim": 4}
#: Small/fast hyperparameters per registry name (click models), so that every model runs in
#: about a second on :func:`tiny_ctr_data`. Models not listed run with their defaults.
CTR_CONFORMANCE_PARAMS: dict[str, dict[str, Any]] = {
    "fm": dict(_FAST),
    "mlp": {**_FAST, "hidden": (16,)},
    "wide_deep": {**_FAST, "hidden": (16,)},
    "deepfm": {**_FAST, "hidden": (16,)},
    "dcn_v2": {**_FAST, "hidden": (16,), "n_cross": 2},
    "xdeepfm": {**_FAST, "hidden": (16,), "cin_layers": (8, 8)},
    "din": {**_FAST, "hidden": (16,), "att_hidden": (8,)},
    "mf": {"epochs": 5, "batch_size": 64, "lr": 0.01, "dim": 4, "user_field": "segment",
           "item_field": "item"},
    "gbdt": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5, "patience": 10,
             "n_jobs": 1},
    "ensemble": {"members": ("logistic", "mlp"),
                 "member_params": {"mlp": {**_FAST, "hidden": (16,)}}},
}

_N_DENSE, _N_ITEMS, _N_GENRES, _HIST_LEN = 4, 30, 3, 8


def ctr_conformance_params(name: str) -> dict[str, Any]:
    """Hyperparameters for running click model ``name`` in the suite (default ``{}``)."""
    return dict(CTR_CONFORMANCE_PARAMS.get(name, {}))


def tiny_ctr_data(seed: int = 0, n: int = 400, with_history: bool = True) -> CTRSplit:
    """A small learnable click data set, split at random 70/15/15.

    4 dense features (standard normal); categorical fields ``item`` (30 items, codes 1-30, in
    3 genres), ``segment`` (4 codes + unknown 0) and ``device`` (3 codes); with history, each
    impression has the user's last 0-8 items (codes 1-30, right-aligned, 0 pads), mostly from
    the user's favourite genre. The true logit is
    ``1.2·x0 − 0.8·x1 + 0.5·x2·x3 + item effect + segment effect + 2·(share of the history in
    the candidate's genre − 1/3)``; labels are drawn from it (``truth`` holds it).

    Parameters
    ----------
    seed : int
    n : int
        Impressions in all.
    with_history : bool
        Include ``history`` and ``schema.item_field = "item"`` (else neither; labels are the
        same).

    Returns
    -------
    CTRSplit
    """
    gen = np.random.default_rng(seed)
    dense = gen.normal(size=(n, _N_DENSE)).astype(np.float32)  # (N, D)
    item = gen.integers(1, _N_ITEMS + 1, n)  # (N,)
    segment = gen.integers(0, 5, n)  # (N,)
    device = gen.integers(0, 3, n)  # (N,)
    genre = np.arange(_N_ITEMS + 1) % _N_GENRES  # (I + 1,) genre of each item code
    favourite = gen.integers(0, _N_GENRES, n)  # (N,)
    # history: an item of the favourite genre with probability 0.8, else any item
    in_fav = favourite[:, None] + _N_GENRES * gen.integers(0, _N_ITEMS // _N_GENRES,
                                                          (n, _HIST_LEN))  # (N, L) 0..29
    any_item = gen.integers(0, _N_ITEMS, (n, _HIST_LEN))  # (N, L)
    hist = np.where(gen.random((n, _HIST_LEN)) < 0.8, in_fav, any_item) + 1  # (N, L) 1..30
    length = gen.integers(0, _HIST_LEN + 1, n)  # (N,)
    hist[np.arange(_HIST_LEN)[None, :] < (_HIST_LEN - length)[:, None]] = 0  # left padding
    real = hist > 0
    same = (genre[hist] == genre[item][:, None]) & real  # (N, L)
    share = np.where(length > 0, same.sum(axis=1) / np.maximum(length, 1), 1.0 / _N_GENRES)
    item_effect = gen.normal(0.0, 1.0, _N_ITEMS + 1)
    segment_effect = np.array([0.0, 1.0, -1.0, 0.5, -0.5])
    logit = (1.2 * dense[:, 0] - 0.8 * dense[:, 1] + 0.5 * dense[:, 2] * dense[:, 3]
             + item_effect[item] + segment_effect[segment]
             + 2.0 * (share - 1.0 / _N_GENRES) - 0.3)
    truth = expit(logit)
    labels = (gen.random(n) < truth).astype(np.float32)
    schema = FeatureSchema(dense=tuple(f"x{j}" for j in range(_N_DENSE)),
                           categorical=("item", "segment", "device"),
                           cardinalities=(_N_ITEMS + 1, 5, 3),
                           n_history_items=_N_ITEMS + 1 if with_history else 0,
                           item_field="item" if with_history else None)
    data = CTRData(schema, dense, np.stack([item, segment, device], axis=1), labels=labels,
                   history=hist if with_history else None, truth=truth)
    return random_split(data, seed=seed)


def _as_json(params: dict[str, Any]) -> Any:
    return json.loads(json.dumps(params, default=str))


def _without_history(data: CTRData) -> CTRData:
    return replace(data, history=None,
                   schema=replace(data.schema, n_history_items=0, item_field=None))


# ---------------------------------------------------------------------------- checks
@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Tiny batches: extra threads only add overhead and contention (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CTRSuite(Suite):
    """The conformance checks of the click model built by ``factory``, on ``data``."""

    WHAT = "CTR conformance"
    # an ImportError passes through: a missing optional extra, for the caller to skip
    PASS_THROUGH = (AssertionError, ImportError)
    BASE = CTRModel
    CHECKS = {
        "predict before fit": "check_unfitted",
        "fit validates input": "check_validation",
        "fit": "check_fit",
        "predict_proba": "check_predictions",
        "learns": "check_learns",
        "rows independent": "check_rows",
        "save/load": "check_save_load",
        "other schema": "check_other_schema",
        "without history": "check_without_history",
        "same seed": "check_same_seed",
    }

    def __init__(self, factory: Callable[[], CTRModel], data: CTRSplit | None = None,
                 name: str = "") -> None:
        super().__init__(factory, name)
        self.split = tiny_ctr_data() if data is None else data
        self._probs: np.ndarray | None = None

    def applicable(self) -> list[str]:
        """Every check; ``same seed`` only for stochastic models."""
        stochastic = self.fresh().stochastic
        return [c for c in self.CHECKS if c != "same seed" or stochastic]

    def check(self, name: str) -> None:
        with _one_torch_thread():
            super().check(name)

    # ------------------------------------------------------------------ helpers
    def fit(self, model: CTRModel, train: CTRData | None = None) -> CTRModel:
        return model.fit(self.split.train if train is None else train, valid=self.split.valid,
                         rng=0)

    @property
    def probs(self) -> np.ndarray:
        """``predict_proba`` of the train impressions, checked once."""
        if self._probs is None:
            self._probs = self.guard("predict_proba",
                                     lambda: self.proba(self.fitted, self.split.train))
        return self._probs

    def proba(self, model: CTRModel, data: CTRData) -> np.ndarray:
        p = model.predict_proba(data)
        check = "predict_proba"
        self.expect(isinstance(p, np.ndarray), check, f"returned {type(p).__name__}")
        self.expect(p.shape == (len(data),), check,
                    f"shape {p.shape}, expected {(len(data),)}")
        self.expect(p.dtype == np.float32, check, f"dtype {p.dtype}, expected float32")
        self.expect(bool(np.isfinite(p).all()), check,
                    f"{int((~np.isfinite(p)).sum())} non-finite probabilities")
        self.expect(bool(((p >= 0) & (p <= 1)).all()), check,
                    f"probabilities outside [0, 1]: min {p.min()}, max {p.max()}")
        return p

    # ------------------------------------------------------------------ the checks
    def check_unfitted(self) -> None:
        try:
            self.fresh().predict_proba(self.split.test)
        except RuntimeError:
            return
        except Exception as exc:  # any other error type breaks the contract
            raise self.fail("predict before fit", f"raised {exc!r}, expected RuntimeError") from exc
        raise self.fail("predict before fit", "predict_proba before fit did not raise")

    def check_validation(self) -> None:
        try:
            self.fresh().fit(self.split.train.matrix(), rng=0)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        except Exception as exc:  # any other error means the input was not validated
            raise self.fail("fit validates input", f"fit(ndarray) raised {exc!r}, expected a "
                            "TypeError naming the expected input") from exc
        raise self.fail("fit validates input", "fit accepted an ndarray instead of CTRData")

    def check_fit(self) -> None:
        self.fitted  # noqa: B018  (fitting is the check: _fit_model)

    def check_predictions(self) -> None:
        self.probs  # noqa: B018  (predicting is the check: proba)

    def check_learns(self) -> None:
        # a constant (or label-blind) predictor has AUC 0.5: this needs a fitted signal
        value = auc(self.split.train.require_labels("learns"), self.probs)
        self.expect(value > 0.6, "learns", f"train AUC {value:.3f} <= 0.6 on the tiny "
                    "learnable data (a constant predictor scores 0.5)")

    def check_rows(self) -> None:
        rows = np.arange(len(self.split.train))[::3][::-1]
        part = self.fitted.predict_proba(self.split.train.take(rows))
        np.testing.assert_allclose(part, self.probs[rows], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{self.label}: a row's probability depends on the "
                                   "other rows predicted with it")

    def check_save_load(self) -> None:
        model, probs = self.fitted, self.probs
        with tempfile.TemporaryDirectory(prefix="streamrec-ctr-conformance-") as tmp:
            path = Path(tmp) / "model"
            model.save(path)
            loaded = type(model).load(path)
            also = CTRModel.load(path) if model.name else loaded
        self.expect(type(loaded) is type(model) and type(also) is type(model), "save/load",
                    f"load gave {type(loaded).__name__}/{type(also).__name__}")
        # compared as the manifest stores them (JSON: a tuple nested in a dict comes back as a
        # list, the same hyperparameter)
        before, after = _as_json(model.get_params()), _as_json(loaded.get_params())
        self.expect(after == before, "save/load",
                    f"hyperparameters changed: {after} != {before}")
        again = loaded.predict_proba(self.split.train)
        np.testing.assert_array_equal(again, probs, err_msg=f"{self.label}: the loaded "
                                      "model's probabilities differ from the saved model's")

    def check_other_schema(self) -> None:
        test = self.split.test
        s = test.schema
        other = CTRData(replace(s, dense=(*s.dense, "extra")),
                        np.concatenate([test.dense, np.zeros((len(test), 1), np.float32)], 1),
                        test.categorical, history=test.history)
        try:
            self.fitted.predict_proba(other)
        except ValueError:
            return
        except Exception as exc:  # another error type breaks the contract
            raise self.fail("other schema", f"raised {exc!r}, expected ValueError") from exc
        raise self.fail("other schema", "predict_proba accepted data with an extra dense field")

    def check_without_history(self) -> None:
        model, probs = self.fitted, self.probs
        train = self.split.train
        if train.history is None:
            return
        bare = _without_history(train)
        if model.requires_history:
            p = self.proba(model, replace(train, history=None))  # predicts as if empty
            self.expect(p.shape == probs.shape, "without history", "wrong shape")
            try:
                self.fresh().fit(bare, rng=0)
            except ValueError:
                return
            raise self.fail("without history", "fit on data without history did not raise "
                            "ValueError (the model declares requires_history)")
        other = self.fresh().fit(bare, valid=_without_history(self.split.valid), rng=0)
        self.proba(other, bare)
        # a model that ignores histories predicts the same with or without them
        np.testing.assert_allclose(model.predict_proba(replace(train, history=None)), probs,
                                   rtol=1e-5, atol=1e-6, err_msg=f"{self.label}: predictions "
                                   "change when the (unused) history is dropped")

    def check_same_seed(self) -> None:
        other = self.fit(self.fresh())
        np.testing.assert_array_equal(other.predict_proba(self.split.train), self.probs,
                                      err_msg=f"{self.label}: two fits with rng=0 give "
                                      "different probabilities")


#: every check name, in the order :func:`check_ctr_model` runs them
CTR_CHECKS: tuple[str, ...] = tuple(CTRSuite.CHECKS)


def ctr_checks(name: str) -> list[str]:
    """The conformance checks that apply to registered click model ``name``."""
    from streamrec.models.zoo import spec

    stochastic = spec(name, "ctr").stochastic
    return [c for c in CTR_CHECKS if c != "same seed" or stochastic]


def check_ctr_model(factory: Callable[[], CTRModel], *, name: str = "",
                    data: CTRSplit | None = None) -> None:
    """Run every conformance check on the click model built by ``factory``.

    Checks: predict before fit raises RuntimeError; fit rejects a non-``CTRData`` and returns
    ``self``; ``predict_proba`` gives (N,) float32 finite values in [0, 1]; train AUC > 0.6
    on the learnable tiny data; a row's probability does not depend on the other rows;
    ``save``/``load`` gives identical probabilities; data with another schema raises
    ValueError; without history it fits and predicts (``requires_history`` models: fit
    raises ValueError, prediction works); two fits with ``rng=0`` agree (stochastic models).
    Runs with one torch thread (restored afterwards): the data is tiny.

    Parameters
    ----------
    factory : callable () -> CTRModel
        Builds a fresh, unfitted model (called several times).
    name : str
        Label used in failure messages (default: the registry name).
    data : CTRSplit, optional
        Default :func:`tiny_ctr_data`.

    Raises
    ------
    AssertionError
        On the first failed check, naming the model and the check.
    ImportError
        When the model needs an optional extra that is not installed.
    """
    with _one_torch_thread():
        CTRSuite(factory, data, name).run_all()


def check_all_ctr(names: Iterable[str] | None = None) -> dict[str, str]:
    """Run :func:`check_ctr_model` on registered click models (default: all of them) with
    :func:`ctr_conformance_params`.

    Returns
    -------
    dict
        Models skipped because an optional extra is missing: name -> reason.

    Raises
    ------
    AssertionError
        Listing every model that failed and why.
    """
    data = tiny_ctr_data()
    failures: list[str] = []
    skipped: dict[str, str] = {}
    for name in available("ctr") if names is None else list(names):
        try:
            check_ctr_model(lambda n=name: create(n, kind="ctr", **ctr_conformance_params(n)),
                            name=name, data=data)
        except ImportError as exc:
            skipped[name] = f"needs an optional extra that is not installed: {exc}"
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # a crash is a failure of that model, reported with the rest
            failures.append(f"{name}: raised {exc!r}")
    if failures:
        raise AssertionError("CTR conformance failed for:\n" + "\n".join(failures))
    return skipped
