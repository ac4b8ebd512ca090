"""The click-prediction case study report: logistic regression against an MLP, with the
generator's true probability as the ceiling.

:func:`case_study_report` trains the case study's models on the 20-feature click data
(:func:`streamrec.data.synthetic.clicks.generate_clicks`, split 70/15/15 at random with seed
42, :func:`streamrec.eval.ctr.ctr_split`) and writes into a directory:

- ``report.md`` with five sections: (a) LR vs MLP on test (AUC, LogLoss, AP, ECE, each model's
  share of the LR → oracle AUC gap, DeLong's test of MLP against LR); (b) an architecture
  search over hidden-layer widths (train / valid / test AUC, epochs run, parameters: the
  train − test gap shows over-fitting); (c) learning-rate sensitivity (a fixed number of
  epochs, no early stopping, so the curves are comparable); (d) error analysis of the best
  model on valid AUC at threshold 0.5 and at the threshold maximising F1 on valid; (e)
  calibration (reliability curves and ECE);
- ``architecture.png``, ``learning_rates.png``, ``errors.png``, ``calibration.png``;
- ``ctr_report.json`` with every number of the report.

Everything is measured on the run: if the MLP does not beat logistic regression the report
says so. With several seeds the tables show mean ± std over seeds (logistic regression is
deterministic: one fit).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.data.ctr import CTRData, CTRSplit
from streamrec.eval.ctr import ctr_metrics, ctr_split
from streamrec.eval.ctr_report_render import (
    architecture_png,
    calibration_png,
    errors_png,
    hidden_name,
    lr_png,
    markdown,
)
from streamrec.eval.significance import delong_test, mean_std
from streamrec.metrics import auc, calibration

__all__ = ["DEFAULT_HIDDEN", "DEFAULT_HIDDEN_GRID", "DEFAULT_LRS", "case_study_report",
           "confusion", "f1_threshold", "gap_share"]

#: the case study's MLP: three hidden layers
DEFAULT_HIDDEN: tuple[int, ...] = (128, 64, 32)
DEFAULT_HIDDEN_GRID: tuple[tuple[int, ...], ...] = ((32,), (64, 32), (128, 64, 32),
                                                    (256, 128, 64, 32))
DEFAULT_LRS: tuple[float, ...] = (0.1, 0.01, 0.001, 0.0001)
#: the MLP's training settings besides ``hidden`` and ``epochs`` (the case study's)
MLP_LR = 1e-3
MLP_PATIENCE = 5
MLP_BATCH = 256
CAL_BINS = 10

Progress = Callable[..., None]


# ---------------------------------------------------------------------------- numbers
def confusion(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    """Confusion counts and rates of the decision ``probs >= threshold``.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (N,)
    probs : ndarray of float, shape (N,)
    threshold : float

    Returns
    -------
    dict
        ``threshold``, ``tp``, ``fp``, ``tn``, ``fn`` (ints), ``fpr`` = FP / (FP + TN),
        ``fnr`` = FN / (FN + TP), ``precision``, ``recall``, ``f1``, ``accuracy``
        (nan where a denominator is 0).
    """
    y = np.asarray(labels).reshape(-1) == 1
    pred = np.asarray(probs).reshape(-1) >= threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())

    def ratio(a: int, b: int) -> float:
        return a / b if b else math.nan

    return {"threshold": float(threshold), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "fpr": ratio(fp, fp + tn), "fnr": ratio(fn, fn + tp),
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn), "accuracy": ratio(tp + tn, len(y))}


def f1_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The threshold ``t`` (one of ``probs``) whose decision ``probs >= t`` maximises F1.

    Vectorised: predictions sorted once, true positives counted cumulatively; tied
    probabilities are decided together.

    Parameters
    ----------
    labels : ndarray of {0, 1}, shape (N,)
    probs : ndarray of float, shape (N,)

    Returns
    -------
    float
    """
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if len(p) == 0 or y.sum() == 0:
        raise ValueError("f1_threshold needs at least one positive label")
    order = np.argsort(-p, kind="stable")
    ps, tp = p[order], np.cumsum(y[order])  # (N,): positives among the top k + 1
    last = np.r_[ps[1:] != ps[:-1], True]  # the end of each group of tied probabilities
    predicted = np.arange(1, len(p) + 1, dtype=np.float64)
    f1 = 2.0 * tp / (predicted + y.sum())  # 2TP / (2TP + FP + FN) = 2TP / (predicted + P)
    f1 = np.where(last, f1, -1.0)
    return float(ps[int(np.argmax(f1))])


def gap_share(model_auc: float, lr_auc: float, oracle_auc: float) -> float:
    """A model's share of the AUC gap from logistic regression to the oracle:
    ``(model − LR) / (oracle − LR)`` (0 = no better than LR, 1 = as good as the truth; nan
    when the oracle is no better than LR)."""
    gap = oracle_auc - lr_auc
    return (model_auc - lr_auc) / gap if gap > 0 else math.nan


def _agg(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Mean, std (ddof 1; 0 for one value) and the values over seeds."""
    v = np.asarray(values, dtype=np.float64)
    m, s = mean_std(v)
    return {"mean": m, "std": s, "values": v.tolist()}


def _jsonable(x: Any) -> Any:
    """``x`` with numpy scalars and arrays as Python values and non-finite floats as None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ---------------------------------------------------------------------------- fits
@dataclass
class _Fit:
    """One fitted model's predictions and training record."""

    train: np.ndarray  # (N_train,) probabilities
    valid: np.ndarray  # (N_valid,)
    test: np.ndarray  # (N_test,)
    losses: list[float]
    valid_curve: list[tuple[int, float]]
    best_epoch: int
    params: int
    seconds: float


def _fit(name: str, params: dict[str, Any], split: CTRSplit, seed: int) -> _Fit:
    """Fit ``name`` with ``params`` on train (valid for early stopping) and predict all three
    parts."""
    from streamrec.models.zoo import create

    model = create(name, kind="ctr", **params)
    start = time.perf_counter()
    model.fit(split.train, valid=split.valid, rng=np.random.default_rng(seed))
    secs = time.perf_counter() - start
    hist = getattr(model, "history_", None)
    module = getattr(model, "module_", None)
    n_params = (sum(int(p.numel()) for p in module.parameters()) if module is not None
                else int(np.size(getattr(model, "coef_", ()))) + 1)
    return _Fit(model.predict_proba(split.train).astype(np.float64),
                model.predict_proba(split.valid).astype(np.float64),
                model.predict_proba(split.test).astype(np.float64),
                list(hist.losses) if hist is not None else [],
                [(int(e), float(v)) for e, v in hist.valid] if hist is not None else [],
                int(hist.best_epoch) if hist is not None else 0, n_params, secs)


def _mlp_params(hidden: Sequence[int], epochs: int, lr: float = MLP_LR,
                patience: int = MLP_PATIENCE) -> dict[str, Any]:
    return {"hidden": tuple(hidden), "lr": lr, "epochs": epochs, "patience": patience,
            "batch_size": MLP_BATCH}


def _auc_summary(fits: list[_Fit], split: CTRSplit) -> dict[str, Any]:
    """Train / valid / test AUC, epochs run, parameters and fit seconds over seeds."""
    parts = (("train", split.train), ("valid", split.valid), ("test", split.test))
    out: dict[str, Any] = {
        f"{part}_auc": _agg([auc(d.require_labels(f"{part} AUC"), getattr(f, part)) for f in fits])
        for part, d in parts}
    out["gap_train_test"] = _agg([a - b for a, b in zip(out["train_auc"]["values"],
                                                        out["test_auc"]["values"], strict=True)])
    out["epochs_run"] = _agg([len(f.losses) for f in fits])
    out["best_epoch"] = _agg([f.best_epoch for f in fits])
    out["params"] = fits[0].params
    out["fit_seconds"] = _agg([f.seconds for f in fits])
    return out


# ---------------------------------------------------------------------------- the report
def _data_summary(data: CTRData, split: CTRSplit, name: str) -> dict[str, Any]:
    return {"name": name, "n": len(data), "positive_rate": data.positive_rate,
            "train": len(split.train), "valid": len(split.valid), "test": len(split.test),
            "split": "random 70/15/15, seed 42"}


def _figures(doc: dict[str, Any], y_test: np.ndarray, best_test: np.ndarray,
             out: Path) -> dict[str, Path]:
    """The report's four PNGs."""
    return {"architecture": architecture_png(doc["architecture"], doc["architecture_logistic"],
                                             doc["models"], out / "architecture.png"),
            "learning_rates": lr_png(doc["learning_rates"], out / "learning_rates.png"),
            "errors": errors_png(y_test, best_test, doc["errors"], out / "errors.png"),
            "calibration": calibration_png(doc["calibration"], out / "calibration.png")}


def case_study_report(out_dir: str | Path, *, data: CTRData | None = None,
                      seeds: Sequence[int] = (0,), epochs: int = 50,
                      hidden_grid: Sequence[Sequence[int]] = DEFAULT_HIDDEN_GRID,
                      lrs: Sequence[float] = DEFAULT_LRS, lr_epochs: int = 30,
                      data_name: str = "synthetic-clicks",
                      progress: Progress | None = None) -> dict[str, Path]:
    """Train the click-prediction case study's models and write its report.

    Parameters
    ----------
    out_dir : str or Path
        Created if needed; receives ``report.md``, ``ctr_report.json`` and four PNGs.
    data : CTRData, optional
        Impressions with labels (and ``truth`` for the oracle row); default
        ``generate_clicks()`` (20,000 samples, seed 42). Split 70/15/15 at random, seed 42.
    seeds : sequence of int
        Seeds of the MLP fits (every table shows mean ± std over them).
    epochs : int
        Maximum epochs of the MLP fits (early stopping on valid AUC, patience 5).
    hidden_grid, lrs : sequences
        Hidden-layer widths of the architecture search; learning rates of the sweep.
    lr_epochs : int
        Epochs of every learning-rate fit (no early stopping: comparable curves).
    data_name : str
        How the report names the data.
    progress : callable, optional
        ``progress(done, total, description)`` after every fit.

    Returns
    -------
    dict of str to Path
        ``report``, ``json``, ``architecture``, ``learning_rates``, ``errors``,
        ``calibration``.
    """
    if not seeds:
        raise ValueError("case_study_report needs at least one seed")
    if not hidden_grid or not lrs:
        raise ValueError("case_study_report needs at least one architecture and one lr")
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        from streamrec.data.synthetic.clicks import generate_clicks

        data = generate_clicks()
    seeds = tuple(int(s) for s in seeds)
    grid = [tuple(int(h) for h in hid) for hid in hidden_grid]
    reuse = DEFAULT_HIDDEN in grid  # the default MLP's fits are that architecture's fits
    run = _Run(ctr_split(data, "random"), seeds, progress,
               total=1 + len(seeds) * (1 + len(grid) - int(reuse) + len(lrs)))
    if progress is not None:
        progress(0, run.total, "fitting logistic regression")
    lr_fit, mlp_fits, models, delong = _compare(run, epochs)
    arch, lr_ref = _architectures(run, grid, epochs, lr_fit, mlp_fits)
    sweep = _lr_sweep(run, lrs, lr_epochs)
    errors, best = _error_analysis(run, models, lr_fit, mlp_fits)
    cal = _calibrations(run, lr_fit, mlp_fits)
    doc: dict[str, Any] = {
        "data": _data_summary(data, run.split, data_name),
        "config": {"seeds": list(seeds), "epochs": epochs, "mlp_hidden": list(DEFAULT_HIDDEN),
                   "mlp_lr": MLP_LR, "mlp_patience": MLP_PATIENCE, "batch_size": MLP_BATCH,
                   "hidden_grid": [list(h) for h in grid], "lrs": [float(v) for v in lrs],
                   "lr_epochs": lr_epochs, "calibration_bins": CAL_BINS},
        "models": models,
        "mlp_beats_logistic": bool(models["mlp"]["auc"]["mean"]
                                   > models["logistic"]["auc"]["mean"]),
        "delong_mlp_vs_logistic": delong,
        "architecture": arch, "architecture_logistic": lr_ref,
        "learning_rates": sweep,
        "errors": errors,
        "calibration": cal,
        "wall_seconds": time.perf_counter() - start,
    }
    paths = _figures(doc, run.y_test, best.test, out)
    doc["wall_seconds"] = time.perf_counter() - start
    paths["json"] = out / "ctr_report.json"
    paths["json"].write_text(json.dumps(_jsonable(doc), indent=2))
    paths["report"] = out / "report.md"
    paths["report"].write_text(markdown(_jsonable(doc)))
    return paths


@dataclass
class _Run:
    """What the sections of one report share: the split, its labels, the seeds, progress."""

    split: CTRSplit
    seeds: tuple[int, ...]
    progress: Progress | None
    total: int
    done: int = 0

    @property
    def y_valid(self) -> np.ndarray:
        return self.split.valid.require_labels("valid")

    @property
    def y_test(self) -> np.ndarray:
        return self.split.test.require_labels("test")

    def step(self, what: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, what)


def _compare(run: _Run, epochs: int) -> tuple[_Fit, list[_Fit], dict[str, Any], list[dict]]:
    """(a) Logistic regression against the default MLP (one fit per seed) and the oracle:
    test metrics, gap shares, DeLong's test per seed."""
    split, y_test, y_valid = run.split, run.y_test, run.y_valid
    lr_fit = _fit("logistic", {}, split, 0)
    run.step("fitted logistic regression")
    mlp_fits: list[_Fit] = []
    for seed in run.seeds:
        mlp_fits.append(_fit("mlp", _mlp_params(DEFAULT_HIDDEN, epochs), split, seed))
        run.step(f"fitted MLP {hidden_name(DEFAULT_HIDDEN)}, seed {seed}")
    lr_m = ctr_metrics(y_test, lr_fit.test)
    mlp_m = [ctr_metrics(y_test, f.test) for f in mlp_fits]
    models: dict[str, dict[str, Any]] = {
        "logistic": {k: _agg([v]) for k, v in lr_m.items()},
        "mlp": {k: _agg([m[k] for m in mlp_m]) for k in lr_m},
    }
    models["logistic"]["valid_auc"] = _agg([auc(y_valid, lr_fit.valid)])
    models["mlp"]["valid_auc"] = _agg([auc(y_valid, f.valid) for f in mlp_fits])
    oracle_auc = math.nan
    if split.test.truth is not None:
        models["oracle"] = {k: _agg([v]) for k, v in ctr_metrics(y_test, split.test.truth).items()}
        oracle_auc = models["oracle"]["auc"]["mean"]
    lr_auc = lr_m["auc"]
    models["logistic"]["gap_share"] = _agg([0.0])
    models["mlp"]["gap_share"] = _agg([gap_share(m["auc"], lr_auc, oracle_auc) for m in mlp_m])
    if "oracle" in models:
        models["oracle"]["gap_share"] = _agg([1.0])
    delong = []
    for seed, f in zip(run.seeds, mlp_fits, strict=True):
        d = delong_test(y_test, f.test, lr_fit.test)
        delong.append({"seed": seed, "auc_mlp": d.auc_a, "auc_logistic": d.auc_b, "z": d.z,
                       "p_value": d.p_value, "se": d.se})
    return lr_fit, mlp_fits, models, delong


def _architectures(run: _Run, grid: list[tuple[int, ...]], epochs: int, lr_fit: _Fit,
                   mlp_fits: list[_Fit]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(b) The MLP with each hidden-layer configuration (the default one reuses the fits of
    (a)), and logistic regression's row for reference."""
    arch: list[dict[str, Any]] = []
    for hidden in grid:
        if hidden == DEFAULT_HIDDEN:
            fits = mlp_fits
        else:
            fits = []
            for seed in run.seeds:
                fits.append(_fit("mlp", _mlp_params(hidden, epochs), run.split, seed))
                run.step(f"fitted architecture {hidden_name(hidden)}, seed {seed}")
        arch.append({"hidden": list(hidden), **_auc_summary(fits, run.split)})
    lr_ref = {**_auc_summary([lr_fit], run.split), "hidden": "logistic",
              "epochs_run": _agg([math.nan]), "best_epoch": _agg([math.nan])}  # no epochs
    return arch, lr_ref


def _lr_sweep(run: _Run, lrs: Sequence[float], lr_epochs: int) -> list[dict[str, Any]]:
    """(c) The default MLP for exactly ``lr_epochs`` epochs at each learning rate (no early
    stopping, so that the curves compare)."""
    sweep: list[dict[str, Any]] = []
    for lr in lrs:
        fits = []
        for seed in run.seeds:
            fits.append(_fit("mlp", _mlp_params(DEFAULT_HIDDEN, lr_epochs, lr=lr, patience=0),
                             run.split, seed))
            run.step(f"fitted learning rate {lr:g}, seed {seed}")
        curves = np.asarray([[v for _, v in f.valid_curve] for f in fits])  # (S, E)
        losses = np.asarray([f.losses for f in fits])  # (S, E)
        sweep.append({
            "lr": float(lr), "epochs": lr_epochs,
            "final_valid_auc": _agg(curves[:, -1]),
            "best_valid_auc": _agg(curves.max(axis=1)),
            "best_epoch": _agg([f.best_epoch for f in fits]),
            "test_auc": _agg([auc(run.y_test, f.test) for f in fits]),
            "final_loss": _agg(losses[:, -1]),
            "loss_curve": losses.mean(axis=0).tolist(),
            "valid_curve": curves.mean(axis=0).tolist(),
        })
    return sweep


def _error_analysis(run: _Run, models: dict[str, Any], lr_fit: _Fit,
                    mlp_fits: list[_Fit]) -> tuple[dict[str, Any], _Fit]:
    """(d) Confusion at 0.5 and at the F1-best threshold on valid, of the better model on
    valid AUC (the MLP's first seed); the analysis and that model's fit."""
    y_valid, y_test = run.y_valid, run.y_test
    mlp_better_valid = models["mlp"]["valid_auc"]["mean"] > models["logistic"]["valid_auc"]["mean"]
    best = mlp_fits[0] if mlp_better_valid else lr_fit
    t_f1 = f1_threshold(y_valid, best.valid)
    errors = {"model": "mlp" if mlp_better_valid else "logistic",
              "seed": run.seeds[0] if mlp_better_valid else None,
              "test": [{"name": "0.5", **confusion(y_test, best.test, 0.5)},
                       {"name": "max F1 on valid", **confusion(y_test, best.test, t_f1)}],
              "valid_f1_at_threshold": confusion(y_valid, best.valid, t_f1)["f1"],
              "test_positive_rate": float(y_test.mean())}
    return errors, best


def _calibrations(run: _Run, lr_fit: _Fit, mlp_fits: list[_Fit]) -> dict[str, Any]:
    """(e) Reliability curves and ECE on test of both models (and the oracle)."""
    cal_models = {"logistic": lr_fit.test, "mlp": mlp_fits[0].test}
    if run.split.test.truth is not None:
        cal_models["oracle"] = run.split.test.truth
    cal = {}
    for name, p in cal_models.items():
        c = calibration(run.y_test, p, CAL_BINS)
        cal[name] = {"ece": c.ece, "edges": c.edges, "mean_predicted": c.mean_predicted,
                     "observed": c.observed, "counts": c.counts}
    return cal
