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
from streamrec.eval.report import fmt_p
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


def _agg(values: Sequence[float]) -> dict[str, Any]:
    """Mean, std (ddof 1; 0 for one value) and the values over seeds."""
    v = np.asarray(values, dtype=np.float64)
    m, s = mean_std(v)
    return {"mean": m, "std": s, "values": v.tolist()}


def _fmt(a: dict[str, Any], digits: int = 4) -> str:
    """``mean ± std`` over seeds, or the mean alone for one seed."""
    if a["mean"] is None or not np.isfinite(a["mean"]):
        return "–"
    if len(a["values"]) > 1:
        return f"{a['mean']:.{digits}f} ± {a['std']:.{digits}f}"
    return f"{a['mean']:.{digits}f}"


def _p_clause(p: float) -> str:
    """``p = 0.0123`` or ``p < 1e-4``."""
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.4f}"


def _hidden_name(hidden: Sequence[int]) -> str:
    return "[" + ", ".join(str(h) for h in hidden) + "]"


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
    from streamrec.models.registry import create

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
    out: dict[str, Any] = {f"{part}_auc": _agg([auc(d.labels, getattr(f, part)) for f in fits])
                           for part, d in parts}
    out["gap_train_test"] = _agg([a - b for a, b in zip(out["train_auc"]["values"],
                                                        out["test_auc"]["values"], strict=True)])
    out["epochs_run"] = _agg([len(f.losses) for f in fits])
    out["best_epoch"] = _agg([f.best_epoch for f in fits])
    out["params"] = fits[0].params
    out["fit_seconds"] = _agg([f.seconds for f in fits])
    return out


# ---------------------------------------------------------------------------- the report
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
    hidden_grid : sequence of sequence of int
        Hidden-layer widths of the architecture search.
    lrs : sequence of float
        Learning rates of the sensitivity sweep.
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
    split = ctr_split(data, "random")
    y_valid = split.valid.require_labels("valid")
    y_test = split.test.require_labels("test")
    seeds = tuple(int(s) for s in seeds)
    grid = [tuple(int(h) for h in hid) for hid in hidden_grid]
    reuse = DEFAULT_HIDDEN in grid  # the default MLP's fits are that architecture's fits
    total = 1 + len(seeds) * (1 + len(grid) - int(reuse) + len(lrs))
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    if progress is not None:
        progress(0, total, "fitting logistic regression")
    # (a) LR vs MLP vs oracle ---------------------------------------------------------
    lr_fit = _fit("logistic", {}, split, 0)
    step("fitted logistic regression")
    mlp_fits: list[_Fit] = []
    for seed in seeds:  # a loop over seeds
        mlp_fits.append(_fit("mlp", _mlp_params(DEFAULT_HIDDEN, epochs), split, seed))
        step(f"fitted MLP {_hidden_name(DEFAULT_HIDDEN)}, seed {seed}")
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
    for seed, f in zip(seeds, mlp_fits, strict=True):  # a loop over seeds
        d = delong_test(y_test, f.test, lr_fit.test)
        delong.append({"seed": seed, "auc_mlp": d.auc_a, "auc_logistic": d.auc_b, "z": d.z,
                       "p_value": d.p_value, "se": d.se})

    # (b) architecture search ---------------------------------------------------------
    arch: list[dict[str, Any]] = []
    for hidden in grid:  # a loop over architectures
        if hidden == DEFAULT_HIDDEN:
            fits = mlp_fits
        else:
            fits = []
            for seed in seeds:  # a loop over seeds
                fits.append(_fit("mlp", _mlp_params(hidden, epochs), split, seed))
                step(f"fitted architecture {_hidden_name(hidden)}, seed {seed}")
        arch.append({"hidden": list(hidden), **_auc_summary(fits, split)})
    lr_ref = {**_auc_summary([lr_fit], split), "hidden": "logistic",
              "epochs_run": _agg([math.nan]), "best_epoch": _agg([math.nan])}  # no epochs

    # (c) learning-rate sensitivity ---------------------------------------------------
    sweep: list[dict[str, Any]] = []
    for lr in lrs:  # a loop over learning rates
        fits = []
        for seed in seeds:  # a loop over seeds
            fits.append(_fit("mlp", _mlp_params(DEFAULT_HIDDEN, lr_epochs, lr=lr, patience=0),
                             split, seed))
            step(f"fitted learning rate {lr:g}, seed {seed}")
        curves = np.asarray([[v for _, v in f.valid_curve] for f in fits])  # (S, E)
        losses = np.asarray([f.losses for f in fits])  # (S, E)
        sweep.append({
            "lr": float(lr), "epochs": lr_epochs,
            "final_valid_auc": _agg(curves[:, -1]),
            "best_valid_auc": _agg(curves.max(axis=1)),
            "best_epoch": _agg([f.best_epoch for f in fits]),
            "test_auc": _agg([auc(y_test, f.test) for f in fits]),
            "final_loss": _agg(losses[:, -1]),
            "loss_curve": losses.mean(axis=0).tolist(),
            "valid_curve": curves.mean(axis=0).tolist(),
        })

    # (d) error analysis of the best model on valid AUC (first seed) --------------------
    mlp_better_valid = models["mlp"]["valid_auc"]["mean"] > models["logistic"]["valid_auc"]["mean"]
    best_name = "mlp" if mlp_better_valid else "logistic"
    best = mlp_fits[0] if mlp_better_valid else lr_fit
    t_f1 = f1_threshold(y_valid, best.valid)
    errors = {"model": best_name, "seed": seeds[0] if mlp_better_valid else None,
              "test": [{"name": "0.5", **confusion(y_test, best.test, 0.5)},
                       {"name": "max F1 on valid", **confusion(y_test, best.test, t_f1)}],
              "valid_f1_at_threshold": confusion(y_valid, best.valid, t_f1)["f1"],
              "test_positive_rate": float(y_test.mean())}

    # (e) calibration -------------------------------------------------------------------
    cal_models = {"logistic": lr_fit.test, "mlp": mlp_fits[0].test}
    if split.test.truth is not None:
        cal_models["oracle"] = split.test.truth
    cal = {}
    for name, p in cal_models.items():  # a loop over calibrated models
        c = calibration(y_test, p, CAL_BINS)
        cal[name] = {"ece": c.ece, "edges": c.edges, "mean_predicted": c.mean_predicted,
                     "observed": c.observed, "counts": c.counts}

    doc = {
        "data": {"name": data_name, "n": len(data), "positive_rate": data.positive_rate,
                 "train": len(split.train), "valid": len(split.valid), "test": len(split.test),
                 "split": "random 70/15/15, seed 42"},
        "config": {"seeds": list(seeds), "epochs": epochs, "mlp_hidden": list(DEFAULT_HIDDEN),
                   "mlp_lr": MLP_LR, "mlp_patience": MLP_PATIENCE, "batch_size": MLP_BATCH,
                   "hidden_grid": [list(h) for h in grid], "lrs": [float(v) for v in lrs],
                   "lr_epochs": lr_epochs, "calibration_bins": CAL_BINS},
        "models": models,
        "mlp_beats_logistic": bool(models["mlp"]["auc"]["mean"] > lr_auc),
        "delong_mlp_vs_logistic": delong,
        "architecture": arch, "architecture_logistic": lr_ref,
        "learning_rates": sweep,
        "errors": errors,
        "calibration": cal,
        "wall_seconds": time.perf_counter() - start,
    }
    paths = {"architecture": _architecture_png(arch, lr_ref, models, out / "architecture.png"),
             "learning_rates": _lr_png(sweep, out / "learning_rates.png"),
             "errors": _errors_png(y_test, best.test, errors, out / "errors.png"),
             "calibration": _calibration_png(cal, out / "calibration.png")}
    doc["wall_seconds"] = time.perf_counter() - start
    paths["json"] = out / "ctr_report.json"
    paths["json"].write_text(json.dumps(_jsonable(doc), indent=2))
    paths["report"] = out / "report.md"
    paths["report"].write_text(_markdown(_jsonable(doc)))
    return paths


# ---------------------------------------------------------------------------- markdown
def _markdown(doc: dict[str, Any]) -> str:
    """report.md of a :func:`case_study_report` document (its JSON form)."""
    d, cfg, models = doc["data"], doc["config"], doc["models"]
    n_seeds = len(cfg["seeds"])
    epoch_digits = 1 if n_seeds > 1 else 0
    seeds_note = (f"mean ± std over {n_seeds} seeds ({', '.join(map(str, cfg['seeds']))}) of "
                  "the MLP fits; logistic regression is deterministic (one fit)"
                  if n_seeds > 1 else f"one seed ({cfg['seeds'][0]})")
    out = ["# Click prediction case study: logistic regression vs MLP", "",
           f"Data: `{d['name']}`, {d['n']:,} impressions, click rate {d['positive_rate']:.3f}; "
           f"{d['split']}: {d['train']:,} train / {d['valid']:,} valid / {d['test']:,} test. "
           f"Numbers on test unless said otherwise; {seeds_note}. "
           f"Wall time {doc['wall_seconds']:.0f} s.", ""]

    # (a)
    lr_auc, mlp_auc = models["logistic"]["auc"]["mean"], models["mlp"]["auc"]["mean"]
    out += ["## (a) Logistic regression vs MLP", "",
            f"MLP: hidden {_hidden_name(cfg['mlp_hidden'])}, Adam lr {cfg['mlp_lr']:g}, batch "
            f"{cfg['batch_size']}, at most {cfg['epochs']} epochs with early stopping on valid "
            f"AUC (patience {cfg['mlp_patience']}, best weights restored). Logistic regression: "
            "L2 (C = 1) on the standardised features. **oracle** = the generator's true click "
            "probability: the best any model can do on average. *Gap share* = "
            "(AUC − AUC_LR) / (AUC_oracle − AUC_LR).", "",
            "| model | AUC | LogLoss | AP | ECE | gap share |", "|---|---|---|---|---|---|"]
    for name in ("logistic", "mlp", "oracle"):  # a loop over table rows
        if name in models:
            m = models[name]
            out.append(f"| {name} | {_fmt(m['auc'])} | {_fmt(m['logloss'])} | {_fmt(m['ap'])} | "
                       f"{_fmt(m['ece'])} | {_fmt(m['gap_share'], 3)} |")
    ps = [r["p_value"] for r in doc["delong_mlp_vs_logistic"]]
    p_worst = max(ps)
    p_text = (f"DeLong {_p_clause(p_worst)}" if n_seeds == 1 else
              f"DeLong p per seed {', '.join(fmt_p(p) for p in ps)}; the largest: "
              f"{_p_clause(p_worst)}")
    diff = mlp_auc - lr_auc
    if doc["mlp_beats_logistic"] and p_worst < 0.05:
        verdict = (f"The MLP beats logistic regression by {diff:+.4f} AUC ({p_text}, "
                   "significant at 5%)")
    elif doc["mlp_beats_logistic"]:
        verdict = (f"The MLP's AUC is higher than logistic regression's by {diff:+.4f}, but the "
                   f"difference is not significant at 5% ({p_text})")
    else:
        verdict = (f"The MLP does **not** beat logistic regression: {diff:+.4f} AUC ({p_text})")
    if "oracle" in models:
        share = models["mlp"]["gap_share"]["mean"]
        share_txt = f"{share:.0%}" if share is not None else "–"
        verdict += (f"; it closes {share_txt} of the gap to the oracle's "
                    f"{models['oracle']['auc']['mean']:.4f}")
    out += ["", verdict + ".", ""]

    # (b)
    out += ["## (b) Architecture search", "",
            "The MLP with each hidden-layer configuration, the other settings as in (a) (the "
            f"{_hidden_name(cfg['mlp_hidden'])} row reuses the fits of (a)). "
            "*gap* = train AUC − test AUC (over-fitting); *epochs* = epochs run before early "
            "stopping; *best* = the epoch whose weights were kept.", "",
            "| hidden | params | train AUC | valid AUC | test AUC | gap | epochs | best |",
            "|---|---|---|---|---|---|---|---|"]
    for row in doc["architecture"] + [doc["architecture_logistic"]]:  # a loop over configs
        name = (_hidden_name(row["hidden"]) if isinstance(row["hidden"], list)
                else "logistic (reference)")
        out.append(f"| {name} | {row['params']:,} | {_fmt(row['train_auc'])} | "
                   f"{_fmt(row['valid_auc'])} | {_fmt(row['test_auc'])} | "
                   f"{_fmt(row['gap_train_test'])} | {_fmt(row['epochs_run'], epoch_digits)} | "
                   f"{_fmt(row['best_epoch'], epoch_digits)} |")
    best_arch = max(doc["architecture"], key=lambda r: r["valid_auc"]["mean"])
    widest_gap = max(doc["architecture"], key=lambda r: r["gap_train_test"]["mean"])
    out += ["", f"Best on valid: {_hidden_name(best_arch['hidden'])} (valid AUC "
            f"{_fmt(best_arch['valid_auc'])}, test {_fmt(best_arch['test_auc'])}). Largest "
            f"train − test gap: {_hidden_name(widest_gap['hidden'])} "
            f"({_fmt(widest_gap['gap_train_test'])}).", "",
            "![architecture](architecture.png)", ""]

    # (c)
    out += ["## (c) Learning-rate sensitivity", "",
            f"The default MLP trained for exactly {cfg['lr_epochs']} epochs at each learning "
            "rate, **without early stopping** (patience 0) so that the curves are comparable; "
            "valid AUC is measured after every epoch and the best epoch's weights are restored "
            "before testing (so *test AUC* is at *best epoch*).", "",
            "| lr | final train loss | final valid AUC | best valid AUC | best epoch | test AUC |",
            "|---|---|---|---|---|---|"]
    for row in doc["learning_rates"]:  # a loop over learning rates
        out.append(f"| {row['lr']:g} | {_fmt(row['final_loss'])} | "
                   f"{_fmt(row['final_valid_auc'])} | {_fmt(row['best_valid_auc'])} | "
                   f"{_fmt(row['best_epoch'], epoch_digits)} | {_fmt(row['test_auc'])} |")
    best_lr = max(doc["learning_rates"], key=lambda r: r["best_valid_auc"]["mean"])
    worst_lr = min(doc["learning_rates"], key=lambda r: r["best_valid_auc"]["mean"])
    worst = (f"; worst: {worst_lr['lr']:g} ({_fmt(worst_lr['best_valid_auc'])})"
             if len(doc["learning_rates"]) > 1 else "")
    out += ["", f"Best learning rate on valid: {best_lr['lr']:g} (best valid AUC "
            f"{_fmt(best_lr['best_valid_auc'])}){worst}.", "",
            "![learning rates](learning_rates.png)", ""]

    # (d)
    err = doc["errors"]
    who = f"the MLP (seed {err['seed']})" if err["model"] == "mlp" else "logistic regression"
    out += ["## (d) Error analysis", "",
            f"The best model on valid AUC: {who}. A click is predicted when the probability is "
            "at least the threshold: 0.5, and the threshold maximising F1 on valid "
            f"(F1 on valid {err['valid_f1_at_threshold']:.4f}). Counts on test (click rate "
            f"{err['test_positive_rate']:.3f}); FPR = FP / (FP + TN), FNR = FN / (FN + TP).", "",
            "| threshold | TP | FP | TN | FN | FPR | FNR | precision | recall | F1 | accuracy |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]

    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.4f}"

    for r in err["test"]:  # a loop over thresholds
        out.append(f"| {r['name']} ({r['threshold']:.4f}) | {r['tp']:,} | {r['fp']:,} | "
                   f"{r['tn']:,} | {r['fn']:,} | {num(r['fpr'])} | {num(r['fnr'])} | "
                   f"{num(r['precision'])} | {num(r['recall'])} | {num(r['f1'])} | "
                   f"{num(r['accuracy'])} |")
    out += ["", "The histograms show the predicted probabilities of correct and wrong "
            "predictions, clicks and non-clicks apart, at both thresholds.", "",
            "![errors](errors.png)", ""]

    # (e)
    cal = doc["calibration"]
    out += ["## (e) Calibration", "",
            f"Reliability on test: {cfg['calibration_bins']} equal-width bins of predicted "
            "probability; ECE = Σ_b n_b / n · |observed_b − predicted_b|"
            + (" (MLP of the first seed)" if n_seeds > 1 else "") + ".", "",
            "| model | ECE |", "|---|---|"]
    for name, c in cal.items():  # a loop over models
        out.append(f"| {name} | {c['ece']:.4f} |")
    better = min((n for n in cal if n != "oracle"), key=lambda n: cal[n]["ece"])
    floor = (f" The oracle's probabilities are exact, so its ECE "
             f"({cal['oracle']['ece']:.4f}) is the sampling noise of ECE on "
             f"{d['test']:,} test impressions: ECE differences of that order are within noise."
             if "oracle" in cal else "")
    out += ["", f"Better calibrated of the two models: {better}.{floor}", "",
            "![calibration](calibration.png)", "",
            "All numbers are in `ctr_report.json`."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- figures
def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _architecture_png(arch: list[dict[str, Any]], lr_ref: dict[str, Any],
                      models: dict[str, Any], path: Path) -> Path:
    """Train / valid / test AUC per architecture (error bars: std over seeds), with the
    logistic regression and oracle test AUC as reference lines."""
    fig, axes = _figure(1, 1, (7.5, 4.2))
    ax = axes[0, 0]
    x = np.arange(len(arch))
    for part, color, marker in (("train", "C3", "o"), ("valid", "C1", "s"),
                                ("test", "C0", "D")):  # a loop over the three parts
        mean = np.array([r[f"{part}_auc"]["mean"] for r in arch])
        std = np.array([r[f"{part}_auc"]["std"] for r in arch])
        ax.errorbar(x, mean, yerr=std, color=color, marker=marker, capsize=3,
                    label=f"{part} AUC")
    ax.axhline(lr_ref["test_auc"]["mean"], color="0.4", ls="--", lw=1,
               label="logistic regression, test")
    if "oracle" in models:
        ax.axhline(models["oracle"]["auc"]["mean"], color="k", ls=":", lw=1,
                   label="oracle, test")
    ax.set_xticks(x, [f"{_hidden_name(r['hidden'])}\n{r['params']:,} params" for r in arch],
                  fontsize=8)
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("AUC")
    ax.set_title("MLP architecture search: train − test gap = over-fitting", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, format="png")
    return path


def _lr_png(sweep: list[dict[str, Any]], path: Path) -> Path:
    """Training loss (log scale) and valid AUC per epoch, one line per learning rate."""
    fig, axes = _figure(1, 2, (11, 4.2))
    loss_ax, auc_ax = axes[0]
    for j, row in enumerate(sweep):  # a loop over learning rates
        epochs = np.arange(1, len(row["loss_curve"]) + 1)
        label = f"lr {row['lr']:g}"
        loss_ax.plot(epochs, row["loss_curve"], color=f"C{j % 10}", marker=".", label=label)
        auc_ax.plot(np.arange(1, len(row["valid_curve"]) + 1), row["valid_curve"],
                    color=f"C{j % 10}", marker=".", label=label)
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("mean training loss (BCE, log scale)")
    loss_ax.set_title("training loss", fontsize=10)
    auc_ax.set_xlabel("epoch")
    auc_ax.set_ylabel("valid AUC")
    auc_ax.set_title("valid AUC (no early stopping)", fontsize=10)
    for ax in (loss_ax, auc_ax):  # a loop over the two panels
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.savefig(path, format="png")
    return path


def _errors_png(labels: np.ndarray, probs: np.ndarray, errors: dict[str, Any],
                path: Path) -> Path:
    """Histograms of predicted probabilities of correct and wrong predictions: one row per
    threshold, one column per true label."""
    rows = errors["test"]
    fig, axes = _figure(len(rows), 2, (10, 3.2 * len(rows)))
    y = np.asarray(labels).reshape(-1) == 1
    bins = np.linspace(0.0, 1.0, 41)
    for i, r in enumerate(rows):  # a loop over thresholds
        pred = probs >= r["threshold"]
        for j, (truth, name) in enumerate(((True, "clicks (y = 1)"),
                                           (False, "non-clicks (y = 0)"))):  # a loop over labels
            ax = axes[i, j]
            sel = y == truth
            right = sel & (pred == truth)
            ax.hist(probs[right], bins=bins, color="C2", alpha=0.7,
                    label=f"correct ({int(right.sum()):,})")
            ax.hist(probs[sel & ~right], bins=bins, color="C3", alpha=0.7,
                    label=f"wrong ({int((sel & ~right).sum()):,})")
            ax.axvline(r["threshold"], color="k", ls="--", lw=1)
            ax.set_title(f"{name}, threshold {r['name']} = {r['threshold']:.3f}", fontsize=9)
            ax.set_xlabel("predicted click probability")
            ax.set_ylabel("test impressions")
            ax.legend(fontsize=8)
    fig.suptitle(f"errors of {errors['model']} on test", fontsize=10)
    fig.savefig(path, format="png")
    return path


def _calibration_png(cal: dict[str, dict[str, Any]], path: Path) -> Path:
    """Reliability curves (observed click rate against mean predicted probability per bin)
    with the diagonal, and the predictions per bin below."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 6.5), dpi=110, layout="constrained")
    curve_ax, count_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    curve_ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="perfect calibration")
    edges = np.asarray(next(iter(cal.values()))["edges"], dtype=np.float64)
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    k = len(cal)
    for j, (name, c) in enumerate(cal.items()):  # a loop over models
        mp = np.asarray(c["mean_predicted"], dtype=np.float64)
        ob = np.asarray(c["observed"], dtype=np.float64)
        ok = np.isfinite(mp) & np.isfinite(ob)
        style = {"ls": ":", "color": "k"} if name == "oracle" else {"color": f"C{j}"}
        curve_ax.plot(mp[ok], ob[ok], marker="o", ms=4, label=f"{name} (ECE {c['ece']:.4f})",
                      **style)
        count_ax.bar(centres - width / 2 + width * (j + 0.5) / k, c["counts"], width=width / k,
                     color=style["color"], alpha=0.8 if name != "oracle" else 0.4, label=name)
    curve_ax.set_ylabel("observed click rate")
    curve_ax.set_title("reliability on test", fontsize=10)
    curve_ax.set_xlim(0, 1)
    curve_ax.set_ylim(-0.02, 1.02)
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(fontsize=8)
    count_ax.set_yscale("log")
    count_ax.set_xlabel("predicted click probability (bin)")
    count_ax.set_ylabel("predictions per bin")
    count_ax.grid(alpha=0.3)
    fig.savefig(path, format="png")
    return path
