"""``streamrec quickstart``: the main job on a generated world, end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from streamrec.cli._tables import leaderboard_table, print_cleaning, split_table
from streamrec.cli._ui import console, kv_table, progress_bar

if TYPE_CHECKING:
    from streamrec.serve.registry import ModelVersion


def quickstart(
    workdir: Annotated[Path, typer.Option(help="where data, splits and reports go")] = Path("streamrec-quickstart"),
    users: Annotated[int, typer.Option(help="synthetic users")] = 6_000,
    items: Annotated[int, typer.Option(help="synthetic items")] = 2_500,
    days: Annotated[int, typer.Option(help="synthetic days")] = 45,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    serving: Annotated[bool, typer.Option(help="also train and register the serving models "
                                          "in WORKDIR/registry")] = True,
    ranker: Annotated[str, typer.Option(help="CTR model of the serving ranker")] = "gbdt",
) -> None:
    """The main job on the embedded default: generate a synthetic StreamRec world, read it
    back (quarantining malformed rows), clean it, keep plays and likes as positives, split
    it (temporal_global), train the baselines (pop, itemknn, ease, ials, bpr) and print the
    leaderboard (full ranking on test). Then train the serving models on the whole log
    (iALS retrieval + faiss index + co-visitation + content projector, the CTR ranker on the
    20 StreamRec features, a GRU4Rec session model, the online feature state) and register
    them in WORKDIR/registry: `streamrec serve --registry WORKDIR/registry` serves them."""
    from streamrec.quickstart import run_quickstart
    from streamrec.serve.bundle import BuildConfig

    start = time.perf_counter()
    cfg = BuildConfig(ranker=ranker, ranker_params={"n_jobs": 1} if ranker == "gbdt" else {})
    with progress_bar("generating synthetic world") as cb:
        res = run_quickstart(workdir, users=users, items=items, days=days, seed=seed, progress=cb,
                             stage_progress=lambda what, done, total: cb(done, total, what),
                             serving=serving, serving_config=cfg,
                             serving_progress=lambda what: cb(0, 1, what))
    print_cleaning(res.prepared)
    console.print(_anomaly_table(res.anomaly_rows()))
    console.print(split_table(res.split, f"temporal_global split -> {res.split_dir}"))
    if res.benchmark is not None:
        console.print(leaderboard_table(res.benchmark, "ndcg@10", "synthetic, temporal_global, "
                                        "defaults, warm users"))
        console.print(f"report: {res.report['report']}  chart: {res.report['chart']}")
    if res.registered:
        console.print(_registered_table(res.registered))
        console.print(f"serve it: streamrec serve --registry {res.registry}")
    console.print(kv_table("quickstart", [
        ("workdir", str(workdir)), ("events generated", res.world_info.get("rows", "")),
        ("interactions after cleaning", len(res.prepared.dataset)),
        ("users", res.prepared.dataset.n_users), ("items", res.prepared.dataset.n_items),
        ("seconds", round(time.perf_counter() - start, 1)),
    ]))


def _registered_table(registered: dict[str, ModelVersion]) -> Table:
    t = Table(title="registered serving models (alias: production)", title_justify="left")
    for col in ("entry", "version", "model", "metrics"):
        t.add_column(col)
    for name, mv in registered.items():
        info = mv.model_info()
        metrics = mv.manifest.get("metrics") or {}
        shown = ", ".join([f"{k} {v:.4f}" for k, v in metrics.items()
                           if k.startswith(("test_auc", "test_logloss", "ndcg", "recall"))][:3])
        t.add_row(name, mv.version, info.get("registry_name") or "-", shown)
    return t


def _anomaly_table(rows: list[tuple[str, int, int, str]]) -> Table:
    t = Table(title="injected anomalies (generator truth) vs found", title_justify="left")
    for col in ("anomaly", "injected", "found", "", "by"):
        t.add_column(col, justify="right" if col in ("injected", "found") else "left")
    for name, injected, found, by in rows:
        ok = "[green]✓[/]" if injected == found else "[red]✗[/]"
        t.add_row(name, f"{injected:,}", f"{found:,}", ok, by)
    return t
