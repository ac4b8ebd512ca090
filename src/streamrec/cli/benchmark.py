"""``streamrec benchmark``: the options, the progress display and the tables; the checks
and the runs are :mod:`streamrec.eval.run_benchmark`'s."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streamrec.cli._data import DataOptions, Protocol, ProtocolOpt, data_options, prepare_data
from streamrec.cli._tables import leaderboard_table
from streamrec.cli._ui import console, err_console, fail, kv_table, progress_bar, spinner

if TYPE_CHECKING:
    from streamrec.eval.run_benchmark import BenchmarkOutcome, Hooks


Task = StrEnum("Task", ["auto", "ranking", "ctr"])
Refit = StrEnum("Refit", [("train", "train"), ("train_valid", "train+valid")])
Peer = StrEnum("Peer", ["recbole"])


OutOpt = Annotated[Path, typer.Option("--out", "-o", help="output directory for the report")]
ModelsOpt = Annotated[str, typer.Option(
    help="comma-separated model names (see `streamrec models`)")]
SeedsOpt = Annotated[int, typer.Option(help="test fits per stochastic model")]
TuneOpt = Annotated[bool, typer.Option(
    "--tune/--no-tune", help="search each model's declared grid on valid only")]
MaxTrialsOpt = Annotated[int, typer.Option(help="tuning points per model at most")]
TuneSeedsOpt = Annotated[int, typer.Option(
    min=1, help="fits per tuning point of a stochastic model (seeds 0..N-1); the point "
    "with the best mean valid metric wins (less luck in the pick, N times the cost)")]
ParamsOpt = Annotated[str | None, typer.Option(
    help='fixed hyperparameters per model as JSON, e.g. \'{"neumf": {"epochs": 20}}\'; '
    "with --tune they override the searched values")]
GridOpt = Annotated[str | None, typer.Option(
    help='search grids per model as JSON, replacing the declared ones with --tune, e.g. '
    '\'{"multvae": {"lr": [3e-4, 1e-3], "total_anneal_steps": [2000, 20000]}}\'')]
MetricOpt = Annotated[str, typer.Option(help="tuning and leaderboard metric")]
AgainstOpt = Annotated[str | None, typer.Option(
    help="reference models, comma-separated (e.g. ease,ials): report.md adds paired "
    "tests of every model against each")]
RefitOpt = Annotated[Refit, typer.Option(
    help="data of the test fits after tuning: train (as RecBole does, like for like with "
    "the peers) or train+valid (more, more recent data)")]
PeersOpt = Annotated[list[Peer] | None, typer.Option(
    "--peers", help="also run these systems on the same split files (needs a venv with "
    "RecBole in $STREAMREC_PEERS_VENV and its runner script in $STREAMREC_PEERS_DIR)")]
PeerModelsOpt = Annotated[str | None, typer.Option(
    help="models to run through the peers (default: those of --models they have)")]
TaskOpt = Annotated[Task, typer.Option(
    help="ranking (top-k over the catalogue) or ctr (click prediction: AUC, LogLoss, AP "
    "per impression); auto: ctr for --data synthetic-clicks or models that exist only as "
    "click models (logistic, fm, wide_deep, deepfm, dcn_v2, xdeepfm, din, gbdt, ...)")]
ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--no-resume", help="reuse the test fits already in OUT/results.json that "
    "this command would repeat (same model, seed, protocol, hyperparameters and test "
    "users): an interrupted benchmark continues, and --seeds can grow later. Results "
    "are saved after every test fit either way")]


@data_options(filters=True, quarantine=False)
def benchmark(
    out: OutOpt,
    protocol: ProtocolOpt = Protocol.temporal_user,
    models: ModelsOpt = "pop,itemknn,ease,ials,bpr",
    seeds: SeedsOpt = 3,
    tune: TuneOpt = False,
    max_trials: MaxTrialsOpt = 24,
    tune_seeds: TuneSeedsOpt = 1,
    params: ParamsOpt = None,
    grid: GridOpt = None,
    metric: MetricOpt = "ndcg@10",
    against: AgainstOpt = None,
    refit: RefitOpt = Refit.train,
    peers: PeersOpt = None,
    peer_models: PeerModelsOpt = None,
    task: TaskOpt = Task.auto,
    resume: ResumeOpt = False,
    *,
    opts: DataOptions,
) -> None:
    """Tune on valid, fit over seeds, evaluate on test with full ranking, and write
    OUT/results.json, OUT/report.md (mean ± std, 95% CI, paired tests against the best)
    and OUT/leaderboard.png.

    On synthetic-sessions data with the case_study or session_temporal protocol, an
    "oracle" row (system "generator") is added: the Bayes-optimal ranking by the generator's
    exact next-item distribution on the same test examples, with a "hit@10 / oracle" column.

    Click prediction (--task ctr, protocols random / temporal): rows carry auc, logloss, ap
    and ece; report.md adds DeLong tests of AUC, and on synthetic-clicks the generator's true
    probability as an "oracle" row.

    Example: streamrec benchmark --data recbole:path/to/ml-100k --protocol
    temporal_user --models pop,itemknn,ease,ials,bpr --seeds 3 --tune --out runs/ml100k

    Example: streamrec benchmark --data synthetic-clicks --protocol random --models
    logistic,mlp --seeds 1 --out runs/clicks"""
    from streamrec.eval.run_benchmark import (
        BenchmarkInputError,
        plan_benchmark,
        run_click,
        run_ranking,
    )

    try:
        plan = plan_benchmark(opts.spec, protocol.value, models, task=task.value, seeds=seeds,
                              tune=tune, max_trials=max_trials, tune_seeds=tune_seeds,
                              params=params, grid=grid, metric=metric, against=against,
                              refit=refit.value)
        if plan.ctr:
            outcome = run_click(plan, out, resume=resume, hooks=_hooks())
        else:
            dataset = prepare_data(opts, out / "quarantine.csv").dataset
            outcome = run_ranking(plan, dataset, out, resume=resume,
                                  peers=[p.value for p in peers or []], peer_models=peer_models,
                                  hooks=_hooks())
    except BenchmarkInputError as exc:
        fail(str(exc))
    if plan.ctr:
        console.print(_click_table(outcome, f"{opts.spec} · {protocol.value}"))
    else:
        console.print(leaderboard_table(outcome.result, outcome.metric,
                                        f"{opts.spec} · {protocol.value}"))
    console.print(kv_table("written", [(k, str(v)) for k, v in outcome.paths.items()]))


def _hooks() -> Hooks:
    from streamrec.eval.run_benchmark import Hooks

    def warn(what: str, why: str) -> None:
        err_console.print(f"[yellow]{escape(what)}:[/] {escape(why)}", soft_wrap=True)

    return Hooks(progress=progress_bar, step=spinner, note=console.print, warn=warn)


def _click_table(outcome: BenchmarkOutcome, title: str) -> Table:
    from streamrec.eval.report import ctr_leaderboard, fmt_ci, fmt_mean, fmt_p

    t = Table(title=f"click prediction · {title} · test {outcome.n_test:,} impressions",
              title_justify="left")
    for c in ("model", "system", "auc", "logloss", "ap", "ece", "95% CI auc", "p DeLong", "fit s"):
        t.add_column(c, justify="left" if c in ("model", "system") else "right")
    for ln in ctr_leaderboard(outcome.result.runs, outcome.metric):
        t.add_row(ln.model, ln.system, *(fmt_mean(ln, k) for k in ("auc", "logloss", "ap", "ece")),
                  fmt_ci(ln), fmt_p(ln.p_delong), f"{ln.fit_seconds:.2f}")
    return t
