"""Benchmark reports: results.json, per-user arrays, report.md and a PNG bar chart.

Every leaderboard shows, per model: the mean ± std of each metric over seeds, a 95%
bootstrap confidence interval over users (per-user values averaged over seeds), and paired
t-test and Wilcoxon signed-rank p-values against the best StreamRec model on the main
metric. Peer rows (RecBole) carry their means only: they have no per-user values, so they
get no interval and no test.

On synthetic session worlds the benchmark adds an ``oracle`` row (system ``generator``): the
Bayes-optimal ranking by the generator's exact next-item distribution, on the same test
examples (:func:`streamrec.eval.oracle.oracle_next_item`). It is never "the best StreamRec
model" of the paired tests; the leaderboards add a column ``hit@10 / oracle`` (each model's
share of the attainable hit rate) and report.md paired tests of every model against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.eval.benchmark import SESSION_PROTOCOLS, BenchmarkResult, Run
from streamrec.eval.protocol import EvalResult
from streamrec.eval.significance import (
    bootstrap_ci,
    delong_test,
    mean_std,
    paired_ttest,
    wilcoxon,
)

#: ``Run.system`` of the generator's Bayes-optimal ranking (the ``oracle`` row)
ORACLE_SYSTEM = "generator"


@dataclass
class Line:
    """One leaderboard line: a (model, system) over its seeds."""

    model: str
    system: str
    seeds: int
    mean: dict[str, float]
    std: dict[str, float]
    ci: tuple[float, float] | None
    p_ttest: float | None
    p_wilcoxon: float | None
    fit_seconds: float
    per_user: np.ndarray | None  # main metric, averaged over seeds, shape (U,)
    p_delong: float | None = None  # click models: DeLong's test of AUC against the best


def group_runs(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs by (model, system), in first-seen order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.model, r.system), []).append(r)
    return groups


def seed_stats(rs: list[Run]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and std over ``rs`` (the seeds of one model) of every metric they report."""
    mean, std = {}, {}
    for k in sorted(set().union(*(r.metrics for r in rs))):
        vals = [r.metrics[k] for r in rs if k in r.metrics]
        mean[k], std[k] = mean_std(np.asarray(vals, dtype=np.float64))
    return mean, std


def leaderboard(runs: list[Run], metric: str = "ndcg@10", *, n_boot: int = 1000) -> list[Line]:
    """Group runs by (model, system), sort by ``metric`` (best first), add CIs and tests."""
    lines: list[Line] = []
    for (model, system), rs in group_runs(runs).items():
        mean, std = seed_stats(rs)
        per_user = None
        ci: tuple[float, float] | None = None
        with_pu = [r.result for r in rs if r.result is not None and metric in r.result.per_user]
        if with_pu:
            per_user = np.mean([res.per_user[metric] for res in with_pu], axis=0)
            bounds = bootstrap_ci(per_user, n_boot=n_boot, alpha=0.05, rng=0)
            ci = (float(bounds[0]), float(bounds[1]))
        lines.append(Line(model, system, len(rs), mean, std, ci, None, None,
                          float(np.mean([r.fit_seconds for r in rs])), per_user))
    lines.sort(key=lambda ln: -ln.mean.get(metric, -np.inf))
    best = best_streamrec(lines)
    top = best.per_user if best is not None else None
    if top is not None:
        for ln in lines:
            if ln.per_user is not None and ln is not best and len(ln.per_user) == len(top):
                ln.p_ttest = paired_ttest(top, ln.per_user).p_value
                ln.p_wilcoxon = wilcoxon(top, ln.per_user).p_value
    return lines


def best_streamrec(lines: list[Line]) -> Line | None:
    """The first StreamRec line with per-user values (``lines`` sorted best first): the
    reference of the paired tests (never a peer, never the oracle)."""
    return next((ln for ln in lines if ln.per_user is not None and ln.system == "streamrec"),
                None)


def oracle_line(lines: list[Line]) -> Line | None:
    """The generator's Bayes-optimal line (system :data:`ORACLE_SYSTEM`), if any."""
    return next((ln for ln in lines if ln.system == ORACLE_SYSTEM), None)


def ratio_key(ks: tuple[int, ...]) -> str:
    """The metric of the oracle-ratio column: ``hit@10``, or hit at the first cut-off."""
    return "hit@10" if 10 in ks else f"hit@{ks[0]}"


def fmt_ratio(ln: Line, oracle: Line | None, key: str) -> str:
    """``ln``'s mean ``key`` divided by the oracle's (``–`` when either is missing or 0)."""
    if oracle is None or key not in ln.mean or not oracle.mean.get(key):
        return "–"
    return f"{ln.mean[key] / oracle.mean[key]:.3f}"


def against(lines: list[Line], refs: tuple[str, ...]) -> list[tuple[str, str, float, float,
                                                                    float, float]]:
    """Paired tests of every StreamRec line against each reference model.

    A reference is a StreamRec model or ``"oracle"`` (the generator's line). Returns rows
    ``(model, reference, mean, reference mean, p t-test, p Wilcoxon)`` of the seed-averaged
    per-user main metric (lines without per-user values are skipped).
    """
    by_model = {ln.model: ln for ln in lines if ln.system == "streamrec" and ln.per_user is not None}
    references = {**{ln.model: ln for ln in lines
                     if ln.system == ORACLE_SYSTEM and ln.per_user is not None}, **by_model}
    rows = []
    for ref in refs:
        r = references.get(ref)
        base = r.per_user if r is not None else None
        if base is None:
            continue
        for ln in by_model.values():
            mine = ln.per_user
            if ln is not r and mine is not None and len(mine) == len(base):
                rows.append((ln.model, ref, float(mine.mean()), float(base.mean()),
                             paired_ttest(mine, base).p_value, wilcoxon(mine, base).p_value))
    return rows


def fmt_mean(ln: Line, k: str) -> str:
    """``mean ± std`` over seeds (the mean alone for one seed; ``–`` when absent)."""
    if k not in ln.mean:
        return "–"
    return f"{ln.mean[k]:.4f} ± {ln.std[k]:.4f}" if ln.seeds > 1 else f"{ln.mean[k]:.4f}"


def fmt_p(p: float | None) -> str:
    """A p-value for a table (``–`` when there is no test)."""
    if p is None:
        return "–"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


def fmt_ci(ln: Line) -> str:
    """``[low, high]`` of the bootstrap CI (``–`` without per-user values)."""
    return f"[{ln.ci[0]:.4f}, {ln.ci[1]:.4f}]" if ln.ci else "–"


def markdown(result: BenchmarkResult, lines: list[Line], metric: str,
             columns: tuple[str, ...]) -> str:
    """The report.md text."""
    cfg = result.config
    best = best_streamrec(lines)
    oracle = oracle_line(lines)
    rkey = ratio_key(cfg.ks)
    if result.protocol in SESSION_PROTOCOLS:
        how = ("Next-item protocol: every prefix of each held-out session ranks every item "
               "known at training time; the relevant item is the one that follows. ")
        unit = "(prefix, next item) examples"
    else:
        how = ("Full ranking over every item known at training time; relevant = all held-out "
               "interactions; test excludes each user's train and valid items. ")
        unit = "users"
    out = [
        f"# Benchmark: {result.data or 'data'} · {result.protocol}",
        "",
        f"Split rows: train {result.split_counts['train']:,} / valid "
        f"{result.split_counts['valid']:,} / test {result.split_counts['test']:,}. " + how
        + "Hyperparameters "
        + ("tuned on valid only (train fit, train items excluded), " if cfg.tune
           else "at defaults (and --params), ")
        + f"then fitted on {cfg.refit}; stochastic models over {cfg.seeds} seed(s).",
        "",
        f"Leaderboard by {metric} (mean ± std over seeds; 95% CI: bootstrap over {unit} of the "
        f"seed-averaged per-{'example' if unit != 'users' else 'user'} {metric}; p: paired "
        "tests against the best StreamRec model"
        + (f", **{best.model}**" if best else "") + ").",
        "",
    ]
    if oracle is not None:
        out += [f"**oracle** ({ORACLE_SYSTEM}): the Bayes-optimal ranking by the generator's "
                "exact next-item distribution (it knows each session's hidden behaviour, "
                "preferences and current category), on the same test examples and catalogue; "
                f"no model can beat it on average. `{rkey} / oracle` = a model's {rkey} divided "
                f"by the oracle's ({fmt_mean(oracle, rkey)}).", ""]
    ratio_head = [f"{rkey} / oracle"] if oracle is not None else []
    head = ["model", "system", "seeds", *columns, *ratio_head, f"95% CI {metric}", "p t-test",
            "p Wilcoxon", "fit s"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for ln in lines:
        ratio = [fmt_ratio(ln, oracle, rkey)] if oracle is not None else []
        cells = [ln.model, ln.system, str(ln.seeds), *(fmt_mean(ln, c) for c in columns),
                 *ratio, fmt_ci(ln), fmt_p(ln.p_ttest), fmt_p(ln.p_wilcoxon),
                 f"{ln.fit_seconds:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    refs = cfg.against + (("oracle",) if oracle is not None and oracle.per_user is not None
                          and "oracle" not in cfg.against else ())
    if refs:
        out += ["", f"## Paired tests against {', '.join(refs)} ({metric}, per user, "
                "seed-averaged)", "",
                "| model | against | model mean | reference mean | difference | p t-test | "
                "p Wilcoxon |", "|---|---|---|---|---|---|---|"]
        for model, ref, m, r, pt, pw in against(lines, refs):
            out.append(f"| {model} | {ref} | {m:.4f} | {r:.4f} | {m - r:+.4f} | {fmt_p(pt)} | "
                       f"{fmt_p(pw)} |")
    out += config_sections(result)
    return "\n".join(out)


def config_sections(result: BenchmarkResult) -> list[str]:
    """The report.md sections shared by ranking and click reports: fixed hyperparameters,
    tuning, the leaderboard chart and training curves."""
    cfg, out = result.config, []
    if cfg.params:
        out += ["", "## Fixed hyperparameters (--params)", "", "| model | hyperparameters |",
                "|---|---|"]
        out += [f"| {m} | `{json.dumps(p)}` |" for m, p in cfg.params.items()]
    if cfg.grids:
        out += ["", "## Search grids (--grid, instead of the declared ones)", "",
                "| model | grid |", "|---|---|"]
        out += [f"| {m} | `{json.dumps(g)}` |" for m, g in cfg.grids.items()]
    if result.trials:
        tune_metric = "auc" if result.task == "ctr" else cfg.tune_metric
        over = (f", mean over seeds 0–{cfg.tune_seeds - 1} for stochastic models"
                if cfg.tune_seeds > 1 else "")
        out += ["", "## Tuning (valid " + tune_metric + over + ")", "",
                "| model | trials | chosen hyperparameters | best valid |", "|---|---|---|---|"]
        for model, params in result.chosen.items():
            tr = [t for t in result.trials if t.model == model]
            if tr:
                out.append(f"| {model} | {len(tr)} | `{json.dumps(params)}` | "
                           f"{max(t.valid for t in tr):.4f} |")
    out += ["", "![leaderboard](leaderboard.png)", ""]
    if any(r.training and r.training["valid"] for r in result.runs):
        what = "AUC" if result.task == "ctr" else "NDCG@10"
        out += ["## Training curves", "",
                f"Valid {what} (the early-stopping metric of the torch models) against wall "
                "time since the start of each fit (training and validation), one line per "
                "seed.", "",
                "![training curves](training.png)", ""]
    return out


# ---------------------------------------------------------------------------- click models
def _probs(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    res = run.result
    if res is None or "prob" not in res.per_user:
        return None
    return res.per_user["label"], res.per_user["prob"]


def _delong_p(a: list[Run], b: list[Run]) -> float | None:
    """The largest DeLong p-value over matching seeds of ``a`` and ``b`` (a model with one fit
    is compared with every seed of the other): the conservative reading of several seeds."""
    ps = []
    for ra in a:
        for rb in b:
            if len(a) > 1 and len(b) > 1 and ra.seed != rb.seed:
                continue
            pa, pb = _probs(ra), _probs(rb)
            if pa is not None and pb is not None and len(pa[0]) == len(pb[0]):
                ps.append(delong_test(pa[0], pa[1], pb[1]).p_value)
    return max(ps) if ps else None


def ctr_leaderboard(runs: list[Run], metric: str = "auc") -> list[Line]:
    """Lines of click models by test AUC (best first), with each line's 95% DeLong interval
    of AUC (its first seed) and DeLong's test against the best StreamRec model."""
    groups = group_runs(runs)
    lines: list[Line] = []
    for (model, system), rs in groups.items():
        mean, std = seed_stats(rs)
        ci = None
        first = _probs(rs[0])
        if first is not None and 0 < first[0].sum() < len(first[0]) - 1:
            c = delong_test(first[0], first[1], first[1]).ci_a
            ci = (float(c[0]), float(c[1]))
        lines.append(Line(model, system, len(rs), mean, std, ci, None, None,
                          float(np.mean([r.fit_seconds for r in rs])), None))
    sign = 1.0 if metric in ("auc", "ap") else -1.0  # logloss, ece: lower is better
    lines.sort(key=lambda ln: -sign * ln.mean.get(metric, -sign * np.inf))
    best = next((ln for ln in lines if ln.system == "streamrec"), None)
    if best is not None:
        for ln in lines:
            if ln is not best:
                ln.p_delong = _delong_p(groups[(best.model, best.system)],
                                        groups[(ln.model, ln.system)])
    return lines


def ctr_markdown(result: BenchmarkResult, lines: list[Line], metric: str = "auc") -> str:
    """report.md of a click-prediction benchmark."""
    cfg = result.config
    best = next((ln for ln in lines if ln.system == "streamrec"), None)
    oracle = oracle_line(lines)
    base = next((ln for ln in lines if ln.model == "logistic" and ln.system == "streamrec"), None)
    gap = oracle is not None and base is not None and oracle.mean["auc"] > base.mean["auc"]
    c = result.split_counts
    out = [f"# Click prediction: {result.data or 'data'} · {result.protocol}", "",
           f"Impressions: train {c['train']:,} / valid {c['valid']:,} / test {c['test']:,}. "
           "Metrics on test: AUC, LogLoss, AP (average precision) and ECE (expected "
           "calibration error, 10 bins). Hyperparameters "
           + ("tuned on valid AUC, " if cfg.tune else "at defaults (and --params), ")
           + f"early stopping on valid AUC; stochastic models over {cfg.seeds} seed(s).", "",
           f"Leaderboard by {metric} (mean ± std over seeds; 95% CI: DeLong interval of the "
           "first seed's AUC; p: DeLong's test of correlated AUCs against the best StreamRec "
           "model" + (f", **{best.model}**" if best else "") + ", the largest p over seeds).",
           ""]
    if oracle is not None:
        out += [f"**oracle** ({ORACLE_SYSTEM}): the generator's true click probability of "
                "each test impression — the best AUC any model can expect on these labels."
                + (" `share of gap` = (AUC − AUC of logistic) / (oracle AUC − AUC of "
                   "logistic): how much of what logistic regression misses a model recovers."
                   if gap else ""), ""]
    head = ["model", "system", "seeds", "auc", "logloss", "ap", "ece",
            *(["share of gap"] if gap else []), "95% CI auc", "p DeLong", "fit s"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ln in lines:
        share = []
        if gap:
            assert oracle is not None and base is not None
            share = [f"{(ln.mean['auc'] - base.mean['auc']) / (oracle.mean['auc'] - base.mean['auc']):.3f}"]
        cells = [ln.model, ln.system, str(ln.seeds), *(fmt_mean(ln, k) for k in
                                                        ("auc", "logloss", "ap", "ece")),
                 *share, fmt_ci(ln), fmt_p(ln.p_delong), f"{ln.fit_seconds:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    refs = [r for r in cfg.against if any(ln.model == r for ln in lines)]
    if refs:
        out += ["", f"## DeLong tests against {', '.join(refs)}", "",
                "| model | against | model auc | reference auc | difference | p DeLong |",
                "|---|---|---|---|---|---|"]
        runs_of: dict[str, list[Run]] = {}
        for r in result.runs:
            runs_of.setdefault(r.model, []).append(r)
        by_model = {ln.model: ln for ln in lines}
        for ref in refs:
            for ln in lines:
                if ln.model != ref:
                    m, rm = ln.mean["auc"], by_model[ref].mean["auc"]
                    out.append(f"| {ln.model} | {ref} | {m:.4f} | {rm:.4f} | {m - rm:+.4f} | "
                               f"{fmt_p(_delong_p(runs_of[ln.model], runs_of[ref]))} |")
    out += config_sections(result)
    return "\n".join(out)


def training_chart(runs: list[Run], path: Path, title: str,
                   ylabel: str = "valid NDCG@10") -> Path | None:
    """Valid metric (NDCG@10; AUC for click models) against wall time, one line per
    (model, seed) fit (PNG).

    None (and no file) when no run recorded a validation curve.
    """
    curves = [r for r in runs if r.training is not None and r.training["valid"]]
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r.model for r in curves})
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in curves:
        pts = np.asarray((r.training or {})["valid"], dtype=np.float64)  # (epoch, value, s)
        ax.plot(pts[:, 2] / 60, pts[:, 1], color=colors[r.model], lw=1.2, alpha=0.8,
                marker=".", ms=3, label=r.model if r.seed == min(
                    x.seed for x in curves if x.model == r.model) else None)
    ax.set_xlabel("wall time since start of fit (minutes)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bar_chart(lines: list[Line], metric: str, path: Path, title: str) -> Path:
    """A horizontal bar chart of ``metric`` with CI whiskers (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [ln for ln in lines if metric in ln.mean][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(shown) + 1.5))
    vals = [ln.mean[metric] for ln in shown]
    lo = [ln.mean[metric] - ln.ci[0] if ln.ci else np.nan for ln in shown]  # nan: no whisker
    hi = [ln.ci[1] - ln.mean[metric] if ln.ci else np.nan for ln in shown]
    colors = ["#4C72B0" if ln.system == "streamrec" else
              "#8C8C8C" if ln.system == ORACLE_SYSTEM else "#DD8452" for ln in shown]
    labels = [ln.model if ln.system == "streamrec" else f"{ln.model} ({ln.system})" for ln in shown]
    ax.barh(labels, vals, xerr=[lo, hi], color=colors, capsize=3)
    ends = [v + (0.0 if np.isnan(h) else h) for v, h in zip(vals, hi, strict=True)]
    for y, (v, end) in enumerate(zip(vals, ends, strict=True)):  # label past the CI whisker
        ax.text(end, y, f"  {v:.4f}", va="center", fontsize=8)
    ax.set_xlabel(f"{metric} (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, max(ends + [1e-9]) * 1.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def load_runs(out_dir: str | Path) -> list[Run]:
    """The StreamRec test runs of an earlier report in ``out_dir`` (results.json with its
    per_user.npz), for ``run_benchmark(done=...)``; [] when there is none.

    Peer and oracle rows are left out (they are recomputed), as are runs whose per-user
    values are missing (they could not join the paired tests).
    """
    out = Path(out_dir)
    results, arrays_path = out / "results.json", out / "per_user.npz"
    if not results.exists() or not arrays_path.exists():
        return []
    rows = json.loads(results.read_text())
    runs: list[Run] = []
    with np.load(arrays_path) as arrays:
        for row in rows:
            key = f"{row['model']}/{row['seed']}/"
            if row["system"] != "streamrec" or key + "users" not in arrays:
                continue
            per_user = {name[len(key):]: arrays[name] for name in arrays.files
                        if name.startswith(key) and name != key + "users"}
            if any(k.startswith("sampled_") for k in per_user):
                continue  # sampled evaluations are never reused for full-ranking ones
            res = EvalResult(arrays[key + "users"], per_user)
            runs.append(Run(row["model"], row["system"], row["params"], int(row["seed"]),
                            row["protocol"], dict(row["metrics"]), float(row["fit_seconds"]),
                            float(row.get("eval_seconds", 0.0)), res, row.get("training"),
                            row.get("refit", "train")))
    return runs


def write_report(result: BenchmarkResult, out_dir: str | Path, *, metric: str = "ndcg@10",
                 columns: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Write results.json, per_user.npz, report.md, leaderboard.png (and training.png when
    torch models recorded validation curves) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k0 = result.config.ks[0]
    columns = columns or (f"ndcg@{k0}", f"recall@{k0}", f"precision@{k0}", f"map@{k0}",
                          f"mrr@{k0}", f"hit@{k0}", f"ndcg@{result.config.ks[-1]}")
    ctr = result.task == "ctr"
    if ctr and metric not in ("auc", "logloss", "ap", "ece"):
        metric = "auc"
    lines = ctr_leaderboard(result.runs, metric) if ctr else leaderboard(result.runs, metric)
    paths = {"results": out / "results.json", "per_user": out / "per_user.npz",
             "report": out / "report.md", "chart": out / "leaderboard.png"}
    paths["results"].write_text(json.dumps(result.rows(), indent=2))
    arrays: dict[str, Any] = {}
    for r in result.runs:
        if r.result is not None:
            arrays[f"{r.model}/{r.seed}/users"] = r.result.users
            label = "sampled_" if r.result.sampled else ""  # sampled values say so everywhere
            for k, v in r.result.per_user.items():
                arrays[f"{r.model}/{r.seed}/{label}{k}"] = v
    np.savez_compressed(paths["per_user"], **arrays)
    paths["report"].write_text(ctr_markdown(result, lines, metric) if ctr
                               else markdown(result, lines, metric, columns))
    bar_chart(lines, metric, paths["chart"], f"{result.data} · {result.protocol}")
    curves = training_chart(result.runs, out / "training.png",
                            f"{result.data} · {result.protocol} · training",
                            "valid AUC" if ctr else "valid NDCG@10")
    if curves is not None:
        paths["training"] = curves
    return paths
