"""``streamrec report``: case-study reports (markdown and PNG charts)."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streamrec.cli._ui import console, fail, kv_table, progress_bar

report_app = typer.Typer(
    help="Case-study reports: train the models, measure them, write report.md with PNG charts "
    "and a JSON file with every number.",
    no_args_is_help=True,
)

DEFAULT_DATA = "synthetic-clicks"


def _floats(text: str, what: str) -> tuple[float, ...]:
    """``"0.1,0.01"`` as floats; a clear error otherwise."""
    try:
        out = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ValueError(f"{what}: expected comma-separated numbers, got {text!r}") from exc
    if not out or any(v <= 0 for v in out):
        raise ValueError(f"{what}: expected positive numbers, got {text!r}")
    return out


def _hidden(text: str) -> tuple[tuple[int, ...], ...]:
    """``"32,64-32"`` as ((32,), (64, 32)): architectures by commas, layers by dashes."""
    try:
        out = tuple(tuple(int(w) for w in arch.split("-")) for arch in text.split(",")
                    if arch.strip())
    except ValueError as exc:
        raise ValueError(f"--hidden: expected architectures like 32,64-32,128-64-32, got "
                         f"{text!r}") from exc
    if not out or any(w < 1 for arch in out for w in arch):
        raise ValueError(f"--hidden: layer widths must be positive integers, got {text!r}")
    return out


def _reflow(doc: str | None) -> str:
    """A docstring as ``--help`` text: paragraphs kept, the source's line breaks joined (rich
    would keep them and wrap each line again in a narrow terminal)."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(" ".join(par.split()) for par in paragraphs)


def ctr(
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory for report.md, "
                                      "ctr_report.json and the PNG charts")],
    data: Annotated[str, typer.Option(
        "--data", "-d", help="synthetic-clicks[:n=N,seed=S] (the case study's generator: "
        "20 features, a known nonlinear click model, its true probability as the oracle)")
    ] = DEFAULT_DATA,
    seeds: Annotated[int, typer.Option(
        help="MLP fits per configuration (seeds 0..N-1); tables show mean ± std")] = 1,
    epochs: Annotated[int, typer.Option(
        help="maximum MLP epochs (early stopping on valid AUC, patience 5)")] = 50,
    lr_epochs: Annotated[int, typer.Option(
        "--lr-epochs", help="epochs of every learning-rate fit (no early stopping)")] = 30,
    lrs: Annotated[str, typer.Option(
        help="learning rates of the sensitivity sweep, comma-separated")] = "0.1,0.01,0.001,0.0001",
    hidden: Annotated[str, typer.Option(
        help="architectures of the search: comma-separated, layer widths joined by '-'")
    ] = "32,64-32,128-64-32,256-128-64-32",
) -> None:
    """The click-prediction case study: logistic regression vs an MLP on 20 features.

    Splits the impressions 70/15/15 at random (seed 42) and writes OUT/report.md with (a) LR
    vs MLP on test (AUC, LogLoss, AP, ECE, the generator's true probability as the oracle,
    each model's share of the LR → oracle AUC gap, DeLong's test), (b) an architecture search
    (train/valid/test AUC: over-fitting), (c) learning-rate sensitivity (loss and valid AUC
    curves), (d) error analysis at threshold 0.5 and at the F1-optimal threshold, (e)
    calibration; the charts architecture.png, learning_rates.png, errors.png,
    calibration.png; and every number in OUT/ctr_report.json.

    Example: streamrec report ctr --out runs/ctr-case-study

    Example: streamrec report ctr --data synthetic-clicks:n=5000,seed=1 --seeds 3 --out runs/c
    """
    from streamrec.data.spec import SpecError, click_config_from_options, parse_spec
    from streamrec.data.synthetic.clicks import generate_clicks
    from streamrec.eval.ctr_report import case_study_report

    try:
        spec = parse_spec(data)
        if spec.kind != "synthetic-clicks":
            raise SpecError(f"report ctr reads synthetic-clicks[:n=N,seed=S] data only for now "
                            f"(its oracle is the generator's true click probability), got "
                            f"{data!r}")
        if seeds < 1 or epochs < 1 or lr_epochs < 1:
            raise ValueError("--seeds, --epochs and --lr-epochs must be >= 1")
        lr_grid = _floats(lrs, "--lrs")
        grid = _hidden(hidden)
        clicks = generate_clicks(click_config_from_options(spec.options))
    except (SpecError, ValueError) as exc:
        fail(str(exc))

    start = time.perf_counter()
    with progress_bar("fitting") as cb:
        paths = case_study_report(out, data=clicks, seeds=tuple(range(seeds)), epochs=epochs,
                                  hidden_grid=grid, lrs=lr_grid, lr_epochs=lr_epochs,
                                  data_name=data,
                                  progress=lambda d, t, what: cb(d, t, description=what))
    doc = json.loads(paths["json"].read_text())
    console.print(_summary_table(doc, data))
    rows: list[tuple[str, object]] = [("wall time (s)", time.perf_counter() - start)]
    rows += [(name, str(path)) for name, path in paths.items()]
    console.print(kv_table("written", rows))


report_app.command(name="ctr", help=_reflow(ctr.__doc__))(ctr)


def _summary_table(doc: dict, data: str) -> Table:
    """LR vs MLP vs oracle on test (mean ± std over seeds where there are several)."""
    table = Table(title=f"click prediction on test ({escape(data)}, "
                  f"{doc['data']['test']:,} impressions)", title_justify="left")
    table.add_column("model", style="cyan")
    for col in ("AUC", "LogLoss", "AP", "ECE", "gap share", "DeLong p vs LR"):
        table.add_column(col, justify="right")
    ps = [r["p_value"] for r in doc["delong_mlp_vs_logistic"]]
    for name, m in doc["models"].items():
        p = "–" if name != "mlp" else (f"{max(ps):.2g}" if max(ps) >= 1e-4 else "<1e-4")
        table.add_row(name, *(_cell(m[k]) for k in ("auc", "logloss", "ap", "ece")),
                      _cell(m["gap_share"], 3), p)
    return table


def _cell(a: dict, digits: int = 4) -> str:
    if a["mean"] is None:
        return "–"
    if len(a["values"]) > 1:
        return f"{a['mean']:.{digits}f} ± {a['std']:.{digits}f}"
    return f"{a['mean']:.{digits}f}"
