"""report.md and the figures of the click-prediction case study
(:func:`streamrec.eval.ctr_report.case_study_report`), from its JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.eval.report import fmt_p

__all__ = ["architecture_png", "calibration_png", "errors_png", "hidden_name", "lr_png",
           "markdown"]


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


def hidden_name(hidden: Sequence[int]) -> str:
    return "[" + ", ".join(str(h) for h in hidden) + "]"



def markdown(doc: dict[str, Any]) -> str:
    """report.md of a :func:`case_study_report` document (its JSON form)."""
    d, cfg = doc["data"], doc["config"]
    n_seeds = len(cfg["seeds"])
    seeds_note = (f"mean ± std over {n_seeds} seeds ({', '.join(map(str, cfg['seeds']))}) of "
                  "the MLP fits; logistic regression is deterministic (one fit)"
                  if n_seeds > 1 else f"one seed ({cfg['seeds'][0]})")
    out = ["# Click prediction case study: logistic regression vs MLP", "",
           f"Data: `{d['name']}`, {d['n']:,} impressions, click rate {d['positive_rate']:.3f}; "
           f"{d['split']}: {d['train']:,} train / {d['valid']:,} valid / {d['test']:,} test. "
           f"Numbers on test unless said otherwise; {seeds_note}. "
           f"Wall time {doc['wall_seconds']:.0f} s.", ""]
    for section in (_compare_md, _architecture_md, _learning_rates_md, _errors_md,
                    _calibration_md):
        out += section(doc)
    return "\n".join(out) + "\n"


def _compare_md(doc: dict[str, Any]) -> list[str]:
    """(a) Logistic regression vs MLP, with the verdict."""
    cfg = doc["config"]
    models = doc["models"]
    n_seeds = len(doc["config"]["seeds"])
    out: list[str] = []
    lr_auc, mlp_auc = models["logistic"]["auc"]["mean"], models["mlp"]["auc"]["mean"]
    out += ["## (a) Logistic regression vs MLP", "",
            f"MLP: hidden {hidden_name(cfg['mlp_hidden'])}, Adam lr {cfg['mlp_lr']:g}, batch "
            f"{cfg['batch_size']}, at most {cfg['epochs']} epochs with early stopping on valid "
            f"AUC (patience {cfg['mlp_patience']}, best weights restored). Logistic regression: "
            "L2 (C = 1) on the standardised features. **oracle** = the generator's true click "
            "probability: the best any model can do on average. *Gap share* = "
            "(AUC − AUC_LR) / (AUC_oracle − AUC_LR).", "",
            "| model | AUC | LogLoss | AP | ECE | gap share |", "|---|---|---|---|---|---|"]
    for name in ("logistic", "mlp", "oracle"):
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
    return out


def _architecture_md(doc: dict[str, Any]) -> list[str]:
    """(b) The architecture search table and its best and most over-fitted rows."""
    cfg = doc["config"]
    epoch_digits = 1 if len(doc["config"]["seeds"]) > 1 else 0
    out: list[str] = []
    out += ["## (b) Architecture search", "",
            "The MLP with each hidden-layer configuration, the other settings as in (a) (the "
            f"{hidden_name(cfg['mlp_hidden'])} row reuses the fits of (a)). "
            "*gap* = train AUC − test AUC (over-fitting); *epochs* = epochs run before early "
            "stopping; *best* = the epoch whose weights were kept.", "",
            "| hidden | params | train AUC | valid AUC | test AUC | gap | epochs | best |",
            "|---|---|---|---|---|---|---|---|"]
    for row in doc["architecture"] + [doc["architecture_logistic"]]:
        name = (hidden_name(row["hidden"]) if isinstance(row["hidden"], list)
                else "logistic (reference)")
        out.append(f"| {name} | {row['params']:,} | {_fmt(row['train_auc'])} | "
                   f"{_fmt(row['valid_auc'])} | {_fmt(row['test_auc'])} | "
                   f"{_fmt(row['gap_train_test'])} | {_fmt(row['epochs_run'], epoch_digits)} | "
                   f"{_fmt(row['best_epoch'], epoch_digits)} |")
    best_arch = max(doc["architecture"], key=lambda r: r["valid_auc"]["mean"])
    widest_gap = max(doc["architecture"], key=lambda r: r["gap_train_test"]["mean"])
    out += ["", f"Best on valid: {hidden_name(best_arch['hidden'])} (valid AUC "
            f"{_fmt(best_arch['valid_auc'])}, test {_fmt(best_arch['test_auc'])}). Largest "
            f"train − test gap: {hidden_name(widest_gap['hidden'])} "
            f"({_fmt(widest_gap['gap_train_test'])}).", "",
            "![architecture](architecture.png)", ""]
    return out


def _learning_rates_md(doc: dict[str, Any]) -> list[str]:
    """(c) The learning-rate sweep."""
    cfg = doc["config"]
    epoch_digits = 1 if len(doc["config"]["seeds"]) > 1 else 0
    out: list[str] = []
    out += ["## (c) Learning-rate sensitivity", "",
            f"The default MLP trained for exactly {cfg['lr_epochs']} epochs at each learning "
            "rate, **without early stopping** (patience 0) so that the curves are comparable; "
            "valid AUC is measured after every epoch and the best epoch's weights are restored "
            "before testing (so *test AUC* is at *best epoch*).", "",
            "| lr | final train loss | final valid AUC | best valid AUC | best epoch | test AUC |",
            "|---|---|---|---|---|---|"]
    for row in doc["learning_rates"]:
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
    return out


def _errors_md(doc: dict[str, Any]) -> list[str]:
    """(d) The confusion counts of the best model at both thresholds."""
    out: list[str] = []
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

    for r in err["test"]:
        out.append(f"| {r['name']} ({r['threshold']:.4f}) | {r['tp']:,} | {r['fp']:,} | "
                   f"{r['tn']:,} | {r['fn']:,} | {num(r['fpr'])} | {num(r['fnr'])} | "
                   f"{num(r['precision'])} | {num(r['recall'])} | {num(r['f1'])} | "
                   f"{num(r['accuracy'])} |")
    out += ["", "The histograms show the predicted probabilities of correct and wrong "
            "predictions, clicks and non-clicks apart, at both thresholds.", "",
            "![errors](errors.png)", ""]
    return out


def _calibration_md(doc: dict[str, Any]) -> list[str]:
    """(e) Calibration: ECE per model."""
    d = doc["data"]
    cfg = doc["config"]
    n_seeds = len(doc["config"]["seeds"])
    out: list[str] = []
    cal = doc["calibration"]
    out += ["## (e) Calibration", "",
            f"Reliability on test: {cfg['calibration_bins']} equal-width bins of predicted "
            "probability; ECE = Σ_b n_b / n · |observed_b − predicted_b|"
            + (" (MLP of the first seed)" if n_seeds > 1 else "") + ".", "",
            "| model | ECE |", "|---|---|"]
    for name, c in cal.items():
        out.append(f"| {name} | {c['ece']:.4f} |")
    better = min((n for n in cal if n != "oracle"), key=lambda n: cal[n]["ece"])
    floor = (f" The oracle's probabilities are exact, so its ECE "
             f"({cal['oracle']['ece']:.4f}) is the sampling noise of ECE on "
             f"{d['test']:,} test impressions: ECE differences of that order are within noise."
             if "oracle" in cal else "")
    out += ["", f"Better calibrated of the two models: {better}.{floor}", "",
            "![calibration](calibration.png)", "",
            "All numbers are in `ctr_report.json`."]
    return out


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def architecture_png(arch: list[dict[str, Any]], lr_ref: dict[str, Any],
                      models: dict[str, Any], path: Path) -> Path:
    """Train / valid / test AUC per architecture (error bars: std over seeds), with the
    logistic regression and oracle test AUC as reference lines."""
    fig, axes = _figure(1, 1, (7.5, 4.2))
    ax = axes[0, 0]
    x = np.arange(len(arch))
    for part, color, marker in (("train", "C3", "o"), ("valid", "C1", "s"),
                                ("test", "C0", "D")):
        mean = np.array([r[f"{part}_auc"]["mean"] for r in arch])
        std = np.array([r[f"{part}_auc"]["std"] for r in arch])
        ax.errorbar(x, mean, yerr=std, color=color, marker=marker, capsize=3,
                    label=f"{part} AUC")
    ax.axhline(lr_ref["test_auc"]["mean"], color="0.4", ls="--", lw=1,
               label="logistic regression, test")
    if "oracle" in models:
        ax.axhline(models["oracle"]["auc"]["mean"], color="k", ls=":", lw=1,
                   label="oracle, test")
    ax.set_xticks(x, [f"{hidden_name(r['hidden'])}\n{r['params']:,} params" for r in arch],
                  fontsize=8)
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("AUC")
    ax.set_title("MLP architecture search: train − test gap = over-fitting", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, format="png")
    return path


def lr_png(sweep: list[dict[str, Any]], path: Path) -> Path:
    """Training loss (log scale) and valid AUC per epoch, one line per learning rate."""
    fig, axes = _figure(1, 2, (11, 4.2))
    loss_ax, auc_ax = axes[0]
    for j, row in enumerate(sweep):
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
    for ax in (loss_ax, auc_ax):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.savefig(path, format="png")
    return path


def errors_png(labels: np.ndarray, probs: np.ndarray, errors: dict[str, Any],
                path: Path) -> Path:
    """Histograms of predicted probabilities of correct and wrong predictions: one row per
    threshold, one column per true label."""
    rows = errors["test"]
    fig, axes = _figure(len(rows), 2, (10, 3.2 * len(rows)))
    y = np.asarray(labels).reshape(-1) == 1
    bins = np.linspace(0.0, 1.0, 41)
    for i, r in enumerate(rows):
        pred = probs >= r["threshold"]
        for j, (truth, name) in enumerate(((True, "clicks (y = 1)"),
                                           (False, "non-clicks (y = 0)"))):
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


def calibration_png(cal: dict[str, dict[str, Any]], path: Path) -> Path:
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
    for j, (name, c) in enumerate(cal.items()):
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
