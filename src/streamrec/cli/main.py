"""The ``streamrec`` command line (typer).

Every command has ``--help``. Data is named by a SPEC (see ``streamrec data --help``).
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from streamrec import __version__
from streamrec.cli._ui import console, err_console, kv_table, progress_bar, spinner

SPEC_HELP = (
    "Data SPEC: synthetic[:users=N,items=M,days=D,seed=S] | "
    "synthetic-sessions[:users=N,items=M,seed=S] | movielens:DIR | recbole:DIR | "
    "sasrec:FILE | events:FILE_OR_DIR[?user=COL&item=COL&time=COL&value=COL]"
)

app = typer.Typer(
    name="streamrec",
    help="StreamRec: an end-to-end deep-learning recommender system for content streaming.\n\n"
    "Start with `streamrec quickstart`, which generates a synthetic StreamRec world, cleans "
    "it, splits it and prints a summary.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
data_app = typer.Typer(
    help="Generate, ingest, describe and split data.\n\n" + SPEC_HELP,
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
from streamrec.cli.features import features_app  # noqa: E402  (light: typer and rich only)

app.add_typer(features_app, name="features")
from streamrec.cli.report import report_app  # noqa: E402  (light: typer and rich only)

app.add_typer(report_app, name="report")
from streamrec.cli.registry import registry_app  # noqa: E402  (light: typer and rich only)

app.add_typer(registry_app, name="registry")
from streamrec.cli.serve import demo, serve  # noqa: E402  (light: typer and rich only)

app.command(name="serve")(serve)
app.command(name="demo")(demo)


class BadRows(StrEnum):
    error = "error"
    quarantine = "quarantine"


class Protocol(StrEnum):
    temporal_global = "temporal_global"
    temporal_user = "temporal_user"
    leave_last_out = "leave_last_out"
    random_user = "random_user"
    case_study = "case_study"
    session_temporal = "session_temporal"
    random = "random"  # click prediction: impressions shuffled (seed 42)
    temporal = "temporal"  # click prediction: oldest impressions train, newest test


class Task(StrEnum):
    auto = "auto"
    ranking = "ranking"
    ctr = "ctr"


class SplitFormat(StrEnum):
    parquet = "parquet"
    recbole = "recbole"


class Cold(StrEnum):
    keep = "keep"
    drop = "drop"


class Impossible(StrEnum):
    clip = "clip"
    quarantine = "quarantine"


# ------------------------------------------------------------------------------ options
DataOpt = Annotated[str, typer.Option("--data", "-d", help=SPEC_HELP)]
UserCol = Annotated[str | None, typer.Option("--user-col", help="events logs: user id column")]
ItemCol = Annotated[str | None, typer.Option("--item-col", help="events logs: item id column")]
TimeCol = Annotated[str | None, typer.Option(
    "--time-col", help="events logs: time column (epoch s/ms, ISO dates, or a rank)")]
ValueCol = Annotated[str | None, typer.Option("--value-col", help="events logs: rating/value column")]
EventCol = Annotated[str | None, typer.Option("--event-col", help="events logs: event-type column")]
OnBadRows = Annotated[BadRows, typer.Option(
    "--on-bad-rows", help="error: stop at the first malformed row (file, line, field); "
    "quarantine: set malformed rows aside in the quarantine file and go on")]
QuarantineOpt = Annotated[Path | None, typer.Option(
    "--quarantine", help="where to write rows set aside (CSV); default: next to the output, "
    "or ./quarantine/NAME.csv")]
CleanOpt = Annotated[bool, typer.Option(
    "--clean/--no-clean", help="run data.clean (duplicates, bots, impossible values, "
    "imputation, completion ratio)")]
KCore = Annotated[int | None, typer.Option("--k-core", help="keep users and items with >= K events")]
RatingThreshold = Annotated[float | None, typer.Option(
    "--rating-threshold", help="keep only interactions with value >= T (implicit feedback)")]
BotRate = Annotated[float, typer.Option(
    "--bot-rate", help="cleaning: users above this many events per minute are bots")]
EventsOpt = Annotated[str | None, typer.Option(
    "--events", help="keep only these event types, comma-separated (e.g. play,like: "
    "impressions and skips are not positive feedback)")]
ImpossibleOpt = Annotated[Impossible, typer.Option(
    "--impossible", help="cleaning: clip impossible values or quarantine their rows")]


def _columns(user: str | None, item: str | None, time_: str | None, value: str | None,
             event: str | None) -> dict[str, str | None]:
    return {"user": user, "item": item, "time": time_, "value": value, "event": event}


def _clean_config(enabled: bool, k_core: int | None, threshold: float | None,
                  bot_rate: float, impossible: Impossible, events: str | None = None):
    from streamrec.data.clean import CleanConfig

    keep = tuple(e.strip() for e in events.split(",") if e.strip()) if events else None
    if not enabled:
        if k_core is not None or threshold is not None or keep is not None:
            # filters that are modelling choices still apply without the data-error steps
            return CleanConfig(dedupe=False, bot_events_per_minute=None, impute_missing=False,
                               completion_ratio=False, impossible=impossible.value,
                               k_core=k_core, rating_threshold=threshold, keep_events=keep)
        return None
    return CleanConfig(bot_events_per_minute=bot_rate, impossible=impossible.value,
                       k_core=k_core, rating_threshold=threshold, keep_events=keep)


def _prepare(spec: str, columns: dict, on_bad_rows: BadRows, clean_cfg, quarantine: Path | None,
             default_quarantine: Path | None):
    """Read/clean/encode with a progress display; write the quarantine; exit 2 on bad input."""
    from streamrec.data.errors import DataFormatError
    from streamrec.data.pipeline import prepare
    from streamrec.data.spec import SpecError, parse_spec

    try:
        parsed = parse_spec(spec)
        if parsed.kind in ("synthetic", "synthetic-sessions"):
            with progress_bar("generating synthetic world") as cb:
                prep = prepare(parsed, on_bad_rows=on_bad_rows.value, columns=columns,
                               clean=clean_cfg, progress=cb)
        else:
            with spinner(f"reading {parsed}"):
                prep = prepare(parsed, on_bad_rows=on_bad_rows.value, columns=columns, clean=clean_cfg)
    except (DataFormatError, SpecError, FileNotFoundError, ValueError, KeyError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from exc
    target = quarantine or default_quarantine or Path("quarantine") / f"{prep.dataset.name}.csv"
    written = prep.write_quarantine(target)
    if written is not None:
        err_console.print(f"[yellow]{len(prep.quarantine()):,} row(s) set aside -> {written}[/]")
    return prep


def _print_cleaning(prep) -> None:
    from rich.table import Table

    bad = prep.raw.bad_rows.summary()
    if bad:
        console.print(kv_table("rows rejected while reading", list(bad.items())))
    if prep.cleaning is not None:
        t = Table(title="cleaning", title_justify="left")
        for col in ("step", "rows before", "removed", "changed", "why"):
            t.add_column(col, justify="right" if col not in ("step", "why") else "left")
        for s in prep.cleaning.steps:
            t.add_row(s.step, f"{s.rows_before:,}", f"{s.removed:,}", f"{s.changed:,}", s.reason)
        console.print(t)


# ------------------------------------------------------------------------------ commands
@app.command()
def version() -> None:
    """Print the StreamRec version."""
    console.print(__version__)


@data_app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")],
    users: Annotated[int, typer.Option(help="number of users")] = 5_000,
    items: Annotated[int, typer.Option(help="number of items")] = 2_000,
    days: Annotated[int, typer.Option(help="days of activity")] = 60,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same world)")] = 0,
    chunk_users: Annotated[int | None, typer.Option(
        help="users simulated per chunk (bounds memory; default: the generator's)")] = None,
) -> None:
    """Generate a synthetic StreamRec world: events.parquet, users.parquet, items.parquet
    and world.json (the configuration and the exact counts of injected anomalies)."""
    from streamrec.data.synthetic.world import WorldConfig, write_world

    kwargs = {"n_users": users, "n_items": items, "n_days": days, "seed": seed}
    if chunk_users is not None:
        kwargs["chunk_users"] = chunk_users
    try:
        cfg = WorldConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from exc
    start = time.perf_counter()
    with progress_bar("generating synthetic world") as cb:
        info = write_world(cfg, out, progress=cb)
    rows = [("output", str(out)), ("seconds", round(time.perf_counter() - start, 2))]
    rows += [(k, v) for k, v in info.get("truth", info).items() if not isinstance(v, dict | list)]
    console.print(kv_table("synthetic world", rows))


@data_app.command()
def describe(
    data: DataOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    on_bad_rows: OnBadRows = BadRows.error,
    quarantine: QuarantineOpt = None,
    clean: CleanOpt = False,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    time_col: TimeCol = None,
    value_col: ValueCol = None,
    event_col: EventCol = None,
) -> None:
    """Print the size and shape of a dataset: interactions, users, items, density,
    events per user and item, time range, event types and side features."""
    cfg = _clean_config(clean, None, None, 30.0, Impossible.quarantine)
    prep = _prepare(data, _columns(user_col, item_col, time_col, value_col, event_col),
                    on_bad_rows, cfg, quarantine, None)
    info = prep.dataset.describe()
    info["rejected_rows"] = prep.raw.bad_rows.count
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    console.print(kv_table(f"dataset {info['name']}", [(k, _when(k, v)) for k, v in info.items()]))
    _print_cleaning(prep)


def _when(key: str, value: object) -> object:
    """Epoch-second times as UTC dates (ranks and row orders stay numbers)."""
    if key in ("time_min", "time_max") and isinstance(value, int) and value > 100_000_000:
        from datetime import UTC, datetime

        return f"{datetime.fromtimestamp(value, UTC):%Y-%m-%d %H:%M:%S} UTC ({value})"
    return value


@data_app.command()
def ingest(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory (parquet)")],
    on_bad_rows: OnBadRows = BadRows.error,
    quarantine: QuarantineOpt = None,
    clean: CleanOpt = True,
    k_core: KCore = None,
    rating_threshold: RatingThreshold = None,
    events: EventsOpt = None,
    bot_rate: BotRate = 30.0,
    impossible: ImpossibleOpt = Impossible.quarantine,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    time_col: TimeCol = None,
    value_col: ValueCol = None,
    event_col: EventCol = None,
) -> None:
    """Read a source, clean it, and write events/users/items parquet files in the canonical
    schema (plus quarantine.csv with every row set aside and why)."""
    cfg = _clean_config(clean, k_core, rating_threshold, bot_rate, impossible, events)
    prep = _prepare(data, _columns(user_col, item_col, time_col, value_col, event_col),
                    on_bad_rows, cfg, quarantine, out / "quarantine.csv")
    prep.dataset.save(out)
    _print_cleaning(prep)
    d = prep.dataset.describe()
    console.print(kv_table(f"ingested -> {out}", [(k, d[k]) for k in ("interactions", "users", "items")]))


@data_app.command()
def split(
    data: DataOpt,
    protocol: Annotated[Protocol, typer.Option("--protocol", "-p", help="split protocol")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")],
    fmt: Annotated[SplitFormat, typer.Option(
        "--format", help="parquet: OUT/{train,valid,test}.parquet; recbole: "
        "OUT/NAME/NAME.{train,valid,test}.inter for ../shared/peers/run_recbole.py")] = SplitFormat.parquet,
    name: Annotated[str | None, typer.Option(help="dataset name in recbole file names")] = None,
    cold: Annotated[Cold, typer.Option(
        help="valid/test users or items unseen in train: keep (count as misses) or drop")] = Cold.keep,
    train_frac: Annotated[float, typer.Option("--train", help="train fraction")] = 0.8,
    valid_frac: Annotated[float, typer.Option("--valid", help="valid fraction")] = 0.1,
    test_frac: Annotated[float, typer.Option("--test", help="test fraction")] = 0.1,
    seed: Annotated[int, typer.Option(help="seed for random_user")] = 0,
    on_bad_rows: OnBadRows = BadRows.error,
    quarantine: QuarantineOpt = None,
    clean: CleanOpt = False,
    k_core: KCore = None,
    rating_threshold: RatingThreshold = None,
    events: EventsOpt = None,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    time_col: TimeCol = None,
    value_col: ValueCol = None,
    event_col: EventCol = None,
) -> None:
    """Split a dataset into train/valid/test with vocabularies fitted on train only.

    temporal_user: per user, stable time order, first floor(0.8n) train, up to floor(0.9n)
    valid, rest test. temporal_global: one time cut. leave_last_out: last item test, the
    one before valid. random_user: per-user seeded random order, same rounding."""
    from streamrec.data.splits import make_split, write_split

    cfg = _clean_config(clean, k_core, rating_threshold, 30.0, Impossible.quarantine, events)
    prep = _prepare(data, _columns(user_col, item_col, time_col, value_col, event_col),
                    on_bad_rows, cfg, quarantine, out / "quarantine.csv")
    try:
        sp = make_split(prep.dataset, protocol.value, cold=cold.value, seed=seed,
                        ratios=(train_frac, valid_frac, test_frac))
    except ValueError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from exc
    paths = write_split(sp, out, name=name or _recbole_name(prep.dataset.name), fmt=fmt.value)
    _print_cleaning(prep)
    console.print(_split_table(sp, f"{protocol.value} split -> {paths[0].parent}"))


def _recbole_name(name: str) -> str:
    """RecBole treats some names (``ml-100k``) as its bundled examples and looks for them
    in its own package; underscores keep the split files found where they are written."""
    return name.replace("-", "_")


def _split_table(sp, title: str):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("part", "rows", "users", "items", "cold users", "cold items", "cold rows"):
        t.add_column(col, justify="right" if col != "part" else "left")
    for part in ("train", "valid", "test"):
        x = getattr(sp, part)
        t.add_row(part, f"{len(x):,}", f"{len(set(x.users.tolist())):,}", f"{len(set(x.items.tolist())):,}",
                  *(f"{sp.stats[k].get(part, 0):,}" for k in ("cold_users", "cold_items", "cold_rows")))
    return t


class Refit(StrEnum):
    train = "train"
    train_valid = "train+valid"


class Peer(StrEnum):
    recbole = "recbole"


@app.command()
def benchmark(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory for the report")],
    protocol: Annotated[Protocol, typer.Option("--protocol", "-p", help="split protocol")] = (
        Protocol.temporal_user),
    models: Annotated[str, typer.Option(
        help="comma-separated model names (see `streamrec models`)")] = "pop,itemknn,ease,ials,bpr",
    seeds: Annotated[int, typer.Option(help="test fits per stochastic model")] = 3,
    tune: Annotated[bool, typer.Option(
        "--tune/--no-tune", help="search each model's declared grid on valid only")] = False,
    max_trials: Annotated[int, typer.Option(help="tuning points per model at most")] = 24,
    tune_seeds: Annotated[int, typer.Option(
        min=1, help="fits per tuning point of a stochastic model (seeds 0..N-1); the point "
        "with the best mean valid metric wins (less luck in the pick, N times the cost)")] = 1,
    params: Annotated[str | None, typer.Option(
        help='fixed hyperparameters per model as JSON, e.g. \'{"neumf": {"epochs": 20}}\'; '
        "with --tune they override the searched values")] = None,
    grid: Annotated[str | None, typer.Option(
        help='search grids per model as JSON, replacing the declared ones with --tune, e.g. '
        '\'{"multvae": {"lr": [3e-4, 1e-3], "total_anneal_steps": [2000, 20000]}}\'')] = None,
    metric: Annotated[str, typer.Option(help="tuning and leaderboard metric")] = "ndcg@10",
    against: Annotated[str | None, typer.Option(
        help="reference models, comma-separated (e.g. ease,ials): report.md adds paired "
        "tests of every model against each")] = None,
    refit: Annotated[Refit, typer.Option(
        help="data of the test fits after tuning: train (as RecBole does, like for like with "
        "the peers) or train+valid (more, more recent data)")] = Refit.train,
    peers: Annotated[list[Peer] | None, typer.Option(
        "--peers", help="also run these systems on the same split files (needs the peers "
        "venv from ../shared/peers/setup.sh)")] = None,
    peer_models: Annotated[str | None, typer.Option(
        help="models to run through the peers (default: those of --models they have)")] = None,
    task: Annotated[Task, typer.Option(
        help="ranking (top-k over the catalogue) or ctr (click prediction: AUC, LogLoss, AP "
        "per impression); auto: ctr for --data synthetic-clicks or models that exist only as "
        "click models (logistic, fm, wide_deep, deepfm, dcn_v2, xdeepfm, din, gbdt, ...)")] = (
        Task.auto),
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", help="reuse the test fits already in OUT/results.json that "
        "this command would repeat (same model, seed, protocol, hyperparameters and test "
        "users): an interrupted benchmark continues, and --seeds can grow later. Results "
        "are saved after every test fit either way")] = False,
    on_bad_rows: OnBadRows = BadRows.error,
    clean: CleanOpt = False,
    k_core: KCore = None,
    rating_threshold: RatingThreshold = None,
    events: EventsOpt = None,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    time_col: TimeCol = None,
    value_col: ValueCol = None,
    event_col: EventCol = None,
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

    Example: streamrec benchmark --data recbole:../shared/data/ml-100k --protocol
    temporal_user --models pop,itemknn,ease,ials,bpr --seeds 3 --tune --out runs/ml100k

    Example: streamrec benchmark --data synthetic-clicks --protocol random --models
    logistic,mlp --seeds 1 --out runs/clicks"""
    from streamrec.data.spec import SpecError, parse_spec
    from streamrec.data.splits import make_split, write_split
    from streamrec.eval.benchmark import (
        RECBOLE_MODELS,
        SESSION_PROTOCOLS,
        BenchmarkConfig,
        run_benchmark,
        run_recbole_peer,
    )
    from streamrec.eval.ctr import CTR_PROTOCOLS, is_ctr_task
    from streamrec.eval.report import load_runs, write_report
    from streamrec.models.registry import available

    names = tuple(m.strip() for m in models.split(",") if m.strip())
    try:
        ctr = task == Task.ctr or (task == Task.auto and is_ctr_task(data, names))
    except SpecError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    kind = "ctr" if ctr else "ranking"
    unknown = [m for m in names if m not in available(kind)]
    if unknown:
        err_console.print(f"[bold red]error:[/] unknown model(s) {', '.join(unknown)} for "
                          f"{kind}; available: {', '.join(available(kind))}", soft_wrap=True)
        raise typer.Exit(2)
    if ctr != (protocol.value in CTR_PROTOCOLS):
        err_console.print(
            f"[bold red]error:[/] protocol {protocol.value} is for "
            f"{'ranking' if ctr else 'click prediction'}; "
            + (f"click models use --protocol {' or '.join(CTR_PROTOCOLS)}" if ctr else
               "ranking models use temporal_global, temporal_user, leave_last_out, random_user, "
               "case_study or session_temporal"), soft_wrap=True)
        raise typer.Exit(2)
    fixed = _model_params(params, names)
    grids = _model_grids(grid, names, kind)
    if grids and not tune:
        err_console.print("[bold red]error:[/] --grid is what --tune searches; add --tune "
                          "(or fix single values with --params)", soft_wrap=True)
        raise typer.Exit(2)
    refs = tuple(m.strip() for m in (against or "").split(",") if m.strip())
    if any(m not in names for m in refs):
        err_console.print(f"[bold red]error:[/] --against names models not in --models: "
                          f"{', '.join(m for m in refs if m not in names)}", soft_wrap=True)
        raise typer.Exit(2)
    if ctr:
        _ctr_benchmark(data, out, protocol.value, names, fixed, refs, seeds, tune, max_trials,
                       metric, resume, tune_seeds, grids)
        return
    cfg = _clean_config(clean, k_core, rating_threshold, 30.0, Impossible.quarantine, events)
    prep = _prepare(data, _columns(user_col, item_col, time_col, value_col, event_col),
                    on_bad_rows, cfg, None, out / "quarantine.csv")
    sp = make_split(prep.dataset, protocol.value)
    name = _recbole_name(prep.dataset.name)
    split_dir = out / "split"
    write_split(sp, split_dir, name=name, fmt="recbole")
    bcfg = BenchmarkConfig(models=names, seeds=seeds, tune=tune, tune_metric=metric,
                           max_trials=max_trials, refit=refit.value, params=fixed,
                           against=refs, tune_seeds=tune_seeds, grids=grids)
    done = load_runs(out) if resume else []
    if done:
        console.print(f"resuming: {len(done)} earlier test fit(s) in {out / 'results.json'}")
    with progress_bar("benchmark") as cb:
        result = run_benchmark(sp, bcfg, protocol=protocol.value, data=data,
                               item_categories=_item_categories(prep.dataset, sp),
                               progress=lambda what, done, total: cb(done, total, what),
                               dataset=prep.dataset, done=done,
                               on_run=lambda partial: write_report(partial, out, metric=metric))
    for peer in peers or []:
        todo = ([m.strip() for m in peer_models.split(",")] if peer_models
                else [m for m in names if m in RECBOLE_MODELS])
        # one run per RecBole model (bpr and bprmf are both RecBole's BPR)
        todo = list({RECBOLE_MODELS.get(m, m): m for m in reversed(todo)}.values())[::-1]
        for m in todo:  # a loop over peer models
            with spinner(f"{peer.value} {m}"):
                try:
                    result.runs.append(run_recbole_peer(split_dir, name, m, protocol.value))
                except (FileNotFoundError, RuntimeError) as exc:
                    err_console.print(f"[yellow]peer {peer.value} {m} skipped:[/] {escape(str(exc))}",
                                      soft_wrap=True)
    if protocol.value in SESSION_PROTOCOLS and parse_spec(data).kind == "synthetic-sessions":
        with spinner("oracle: the generator's Bayes-optimal ranking"):
            result.runs.append(_oracle_run(data, sp, bcfg, protocol.value))
    paths = write_report(result, out, metric=metric)
    console.print(_leaderboard_table(result, metric, f"{data} · {protocol.value}"))
    console.print(kv_table("written", [(k, str(v)) for k, v in paths.items()]))


def _ctr_benchmark(data: str, out: Path, protocol: str, names: tuple[str, ...], fixed: dict,
                   refs: tuple[str, ...], seeds: int, tune: bool, max_trials: int, metric: str,
                   resume: bool, tune_seeds: int = 1, grids: dict | None = None) -> None:
    """The click-prediction branch of ``benchmark``."""
    from streamrec.data.spec import SpecError
    from streamrec.eval.benchmark import BenchmarkConfig
    from streamrec.eval.ctr import load_ctr_split, run_ctr_benchmark
    from streamrec.eval.report import (
        ctr_leaderboard,
        fmt_ci,
        fmt_mean,
        fmt_p,
        load_runs,
        write_report,
    )

    metric = metric if metric in ("auc", "logloss", "ap", "ece") else "auc"
    with spinner(f"loading {data} (features fitted on train only)"):
        try:
            sp = load_ctr_split(data, protocol)
        except (SpecError, FileNotFoundError, ValueError) as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(2) from None
    bcfg = BenchmarkConfig(models=names, seeds=seeds, tune=tune, tune_metric="auc",
                           max_trials=max_trials, params=fixed, against=refs,
                           tune_seeds=tune_seeds, grids=grids or {})
    done = load_runs(out) if resume else []
    if done:
        console.print(f"resuming: {len(done)} earlier test fit(s) in {out / 'results.json'}")
    with progress_bar("benchmark") as cb:
        result = run_ctr_benchmark(sp, bcfg, protocol=protocol, data=data,
                                   progress=lambda what, d, total: cb(d, total, what),
                                   done=done,
                                   on_run=lambda partial: write_report(partial, out, metric=metric))
    paths = write_report(result, out, metric=metric)
    from rich.table import Table

    t = Table(title=f"click prediction · {data} · {protocol} · test {len(sp.test):,} impressions",
              title_justify="left")
    for c in ("model", "system", "auc", "logloss", "ap", "ece", "95% CI auc", "p DeLong", "fit s"):
        t.add_column(c, justify="left" if c in ("model", "system") else "right")
    for ln in ctr_leaderboard(result.runs, metric):
        t.add_row(ln.model, ln.system, *(fmt_mean(ln, k) for k in ("auc", "logloss", "ap", "ece")),
                  fmt_ci(ln), fmt_p(ln.p_delong), f"{ln.fit_seconds:.2f}")
    console.print(t)
    console.print(kv_table("written", [(k, str(v)) for k, v in paths.items()]))


def _oracle_run(data: str, sp, bcfg, protocol: str):
    """The ``oracle`` Run of a synthetic-sessions benchmark: the world regenerated from the
    SPEC's options (deterministic), ranked by its exact next-item distribution on ``sp.test``."""
    from streamrec.data.spec import parse_spec, session_config_from_options
    from streamrec.data.synthetic.sessions import generate_sessions
    from streamrec.eval.benchmark import Run
    from streamrec.eval.oracle import oracle_next_item
    from streamrec.eval.report import ORACLE_SYSTEM

    parsed = parse_spec(data)
    start = time.perf_counter()
    cfg, seed = session_config_from_options(parsed.options)
    world = generate_sessions(cfg, seed)
    generated = time.perf_counter()
    res = oracle_next_item(world, sp, ks=bcfg.ks, batch_size=bcfg.batch_size)
    return Run("oracle", ORACLE_SYSTEM, {"seed": seed, **parsed.options}, 0, protocol,
               res.means(), generated - start, time.perf_counter() - generated, res)


def _item_categories(dataset, sp):
    """Category code per train item index (first genre/category token), or None."""
    import numpy as np
    import polars as pl

    items = dataset.items
    col = next((c for c in ("category", "genres", "genre", "class") if items is not None
                and c in items.columns), None)
    if col is None:
        return None
    c = pl.col(col)
    if isinstance(items.schema[col], pl.List):  # token_seq columns arrive as lists
        c = c.list.first()
    first = items.select(pl.col("item_id"), c.cast(pl.String).str.split(by=" ").list.first()
                         .str.split("|").list.first().alias("cat"))
    ids = pl.DataFrame({"item_id": sp.item_vocab.decode(np.arange(sp.train.n_items))})
    ids = ids.with_columns(pl.col("item_id").cast(first.schema["item_id"]))
    cats = ids.join(first, on="item_id", how="left")["cat"].fill_null("?")
    return cats.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)


def _leaderboard_table(result, metric: str, title: str):
    from rich.table import Table

    from streamrec.eval.report import (
        fmt_ci,
        fmt_mean,
        fmt_p,
        fmt_ratio,
        leaderboard,
        oracle_line,
        ratio_key,
    )

    k0 = result.config.ks[0]
    cols = [metric, f"recall@{k0}", f"hit@{k0}", f"mrr@{k0}"]
    lines = leaderboard(result.runs, metric, n_boot=500)
    oracle = oracle_line(lines)
    rkey = ratio_key(result.config.ks)
    ratio_head = [f"{rkey} / oracle"] if oracle is not None else []
    t = Table(title=f"leaderboard · {title}", title_justify="left")
    for c in ("model", "system", *cols, *ratio_head, "95% CI", "p vs best", "fit s"):
        t.add_column(c, justify="left" if c in ("model", "system") else "right")
    for ln in lines:
        ratio = [fmt_ratio(ln, oracle, rkey)] if oracle is not None else []
        t.add_row(ln.model, ln.system, *(fmt_mean(ln, c) for c in cols), *ratio, fmt_ci(ln),
                  fmt_p(ln.p_ttest), f"{ln.fit_seconds:.2f}")
    return t


@app.command(name="models")
def list_models() -> None:
    """List the registered models (ranking, then click prediction: task "ctr") with their
    default hyperparameters and tuning grid."""
    from rich.table import Table

    from streamrec.models.registry import available, get_class

    t = Table(title="models", title_justify="left")
    for c in ("name", "task", "class", "defaults", "tuning grid"):
        t.add_column(c)
    for kind in ("ranking", "ctr"):  # a loop over the two kinds
        for n in available(kind):
            cls = get_class(n, kind)
            t.add_row(n, kind, cls.__name__, fmt_params(cls().get_params()),
                      fmt_params(getattr(cls, "search_space", {})))
    console.print(t)


def _model_params(text: str | None, names: tuple[str, ...],
                  option: str = "--params") -> dict[str, dict]:
    """``--params`` (or ``option``) JSON -> {model: {param: value}}, checked against the
    chosen models."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        err_console.print(f"[bold red]error:[/] {option} is not valid JSON: {exc}")
        raise typer.Exit(2) from exc
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        err_console.print(f"[bold red]error:[/] {option} must map model names to objects, e.g. "
                          '\'{"neumf": {"epochs": 20}}\'', soft_wrap=True)
        raise typer.Exit(2)
    extra = sorted(set(value) - set(names))
    if extra:
        err_console.print(f"[bold red]error:[/] {option} names models not in --models: "
                          f"{', '.join(extra)}", soft_wrap=True)
        raise typer.Exit(2)
    return value


def _model_grids(text: str | None, names: tuple[str, ...], kind: str) -> dict[str, dict]:
    """``--grid`` JSON -> {model: {param: [values]}}: models among ``names``, parameters
    their constructors take, every value list non-empty."""
    from streamrec.models.registry import create

    grids = _model_params(text, names, option="--grid")
    for model, grid in grids.items():
        known = create(model, kind).get_params()
        unknown = sorted(set(grid) - set(known))
        if unknown:
            err_console.print(f"[bold red]error:[/] --grid: {model} has no parameter(s) "
                              f"{', '.join(unknown)}; it takes {', '.join(sorted(known))}",
                              soft_wrap=True)
            raise typer.Exit(2)
        bad = [k for k, v in grid.items() if not isinstance(v, list) or not v]
        if bad:
            err_console.print(f"[bold red]error:[/] --grid: {model}'s {', '.join(bad)} must be "
                              'non-empty lists of values, e.g. {"lr": [0.001, 0.003]}',
                              soft_wrap=True)
            raise typer.Exit(2)
    return grids


def fmt_params(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


@app.command()
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

    start = time.perf_counter()
    with progress_bar("generating synthetic world") as cb:
        from streamrec.serve.bundle import BuildConfig

        cfg = BuildConfig(ranker=ranker, ranker_params={"n_jobs": 1} if ranker == "gbdt" else {})
        res = run_quickstart(workdir, users=users, items=items, days=days, seed=seed, progress=cb,
                             stage_progress=lambda what, done, total: cb(done, total, what),
                             serving=serving, serving_config=cfg,
                             serving_progress=lambda what: cb(0, 1, what))
    _print_cleaning(res.prepared)
    console.print(_anomaly_table(res.anomaly_rows()))
    console.print(_split_table(res.split, f"temporal_global split -> {res.split_dir}"))
    if res.benchmark is not None:
        console.print(_leaderboard_table(res.benchmark, "ndcg@10", "synthetic, temporal_global, "
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


def _registered_table(registered):
    from rich.table import Table

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


def _anomaly_table(rows):
    from rich.table import Table

    t = Table(title="injected anomalies (generator truth) vs found", title_justify="left")
    for col in ("anomaly", "injected", "found", "", "by"):
        t.add_column(col, justify="right" if col in ("injected", "found") else "left")
    for name, injected, found, by in rows:
        ok = "[green]✓[/]" if injected == found else "[red]✗[/]"
        t.add_row(name, f"{injected:,}", f"{found:,}", ok, by)
    return t


# ------------------------------------------------------------------------------ plots
plot_app = typer.Typer(help="Plots of fitted models.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command(name="embeddings")
def plot_embeddings(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write")],
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="a model saved with model.save(DIR), fitted on the train part of "
        "--data split by --protocol")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="instead of --model-dir: fit this model (e.g. two_tower, bprmf, "
        "ials) on the train part now, early stopping on valid")] = None,
    params: Annotated[str | None, typer.Option(
        help='with --model: hyperparameters as JSON, e.g. \'{"factors": 32, "epochs": 20}\'')
    ] = None,
    protocol: Annotated[Protocol, typer.Option("--protocol", "-p", help="split protocol")] = (
        Protocol.temporal_user),
    color_by: Annotated[str | None, typer.Option(
        "--color-by", help="item column to colour by (default: genres/class/category; the "
        "first token of multi-genre items)")] = None,
    max_items: Annotated[int, typer.Option(help="plot a random sample of at most this many "
                                           "items (t-SNE is quadratic)")] = 3000,
    seed: Annotated[int, typer.Option(help="seed of the fit, the sample and t-SNE")] = 0,
    on_bad_rows: OnBadRows = BadRows.error,
    clean: CleanOpt = False,
) -> None:
    """Draw a model's item embeddings in 2-D: PCA and t-SNE side by side in one PNG,
    coloured by genre/category.

    Give either --model-dir (a saved model; --data and --protocol must reproduce the split it
    was trained on, so that item indices map to the right items) or --model NAME to fit one
    now. Works for models with item vectors: two_tower, bprmf, ials, mf...

    Example: streamrec plot embeddings --data recbole:../shared/data/ml-100k --model two_tower
    --params '{"epochs": 30}' --out items.png"""
    import numpy as np

    from streamrec.data.splits import make_split
    from streamrec.models.base import Recommender
    from streamrec.models.registry import create, get_class
    from streamrec.plots import item_embeddings, item_labels, plot_item_embeddings

    if (model_dir is None) == (model is None):
        err_console.print("[bold red]error:[/] give exactly one of --model-dir and --model")
        raise typer.Exit(2)
    cfg = _clean_config(clean, None, None, 30.0, Impossible.quarantine)
    prep = _prepare(data, {}, on_bad_rows, cfg, None, out.parent / "quarantine.csv")
    sp = make_split(prep.dataset, protocol.value)
    try:
        if model_dir is not None:
            fitted = Recommender.load(model_dir)
        else:
            kw = json.loads(params) if params else {}
            fitted = create(model, **kw)
            fit_kw = {}
            if getattr(get_class(model), "uses_side_features", False):
                from streamrec.features.side import side_features

                fit_kw["side"] = side_features(prep.dataset, sp)
            with spinner(f"fitting {model}"):
                fitted.fit(sp.train, valid=sp.valid, rng=np.random.default_rng(seed), **fit_kw)
        vectors = item_embeddings(fitted)
    except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from exc
    if len(vectors) != sp.n_items:
        err_console.print(f"[bold red]error:[/] the model has {len(vectors)} items but the "
                          f"{protocol.value} split of {data} has {sp.n_items} train items: "
                          "pass the --data/--protocol the model was trained on", soft_wrap=True)
        raise typer.Exit(2)
    labels = item_labels(prep.dataset, sp.item_vocab.ids[: sp.n_items], color_by)
    name = model or getattr(fitted, "name", "") or type(fitted).__name__
    with spinner("PCA and t-SNE"):
        path = plot_item_embeddings(vectors, labels, out, title=f"{name} · {prep.dataset.name}",
                                    max_items=max_items, seed=seed)
    console.print(kv_table("embedding plot", [("model", name), ("items", len(vectors)),
                                              ("dims", vectors.shape[1]), ("written", str(path))]))


#: the world ``plot attention`` trains on by default (small: seconds per epoch on 2 cores)
ATTENTION_DATA = "synthetic-sessions:users=3000,items=600"
#: the small lstm_attention ``plot attention`` trains when no --model-dir is given
ATTENTION_MODEL = {"embed": 32, "hidden": 64, "layers": 1, "max_len": 20, "lr": 1e-2,
                   "batch_size": 128}


@plot_app.command(name="attention")
def plot_attention_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write")],
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="a saved lstm_attention (model.save(DIR)) fitted on the train part "
        "of --data split by case_study (seed 0); default: train a small one now")] = None,
    data: Annotated[str, typer.Option(
        "--data", "-d", help=f"data SPEC of sessions (every user is a session; default "
        f"{ATTENTION_DATA}; see `streamrec data --help`)")] = ATTENTION_DATA,
    sessions: Annotated[int, typer.Option(
        "--sessions", "-n", help="test sessions shown (rows), about a third of each pattern")] = 8,
    epochs: Annotated[int, typer.Option(
        help="training epochs without --model-dir (early stopping on valid)")] = 8,
    seed: Annotated[int, typer.Option(help="seed of the fit and of the sessions shown")] = 0,
    on_bad_rows: OnBadRows = BadRows.error,
    clean: CleanOpt = False,
) -> None:
    """Draw the attention of an lstm_attention model over the items of test sessions: a
    heatmap PNG with one row per session and one column per position (the latest on the
    right), each cell annotated with its item's category.

    Every test session (case_study split, seed 0) is classified by its weights:
    recency-dominant (the latest item holds >= 50% of the weight), anchor-item (one earlier
    item, repeats summed, holds >= 35% and more than the latest), category-coherent (>= 80%
    on items of the latest item's category, spread over 2+ items with >= 10% each) or mixed.
    The figure shows a few sessions of each pattern; the shares of all test sessions are in
    its title and printed.

    Without --model-dir, trains a small lstm_attention (embed 32, hidden 64, 1 layer, the
    last 20 items, lr 0.01) on the case_study train part, with a progress bar; on the
    default --data (3,000 sessions, 600 items) that takes well under a minute on 2 CPU cores.

    Example: streamrec plot attention --out attention.png"""
    import numpy as np

    from streamrec.data.splits import make_split
    from streamrec.models.base import Recommender
    from streamrec.models.registry import create
    from streamrec.models.sequential.base import pad_sequences
    from streamrec.plots import (
        ATTENTION_PATTERNS,
        attention_patterns,
        category_codes,
        item_labels,
        pattern_shares,
        pick_attention_rows,
        plot_attention,
    )

    if sessions < 1:
        err_console.print("[bold red]error:[/] --sessions must be >= 1")
        raise typer.Exit(2)
    cfg = _clean_config(clean, None, None, 30.0, Impossible.quarantine)
    prep = _prepare(data, {}, on_bad_rows, cfg, None, out.parent / "quarantine.csv")
    try:
        sp = make_split(prep.dataset, "case_study")
        if model_dir is not None:
            model = Recommender.load(model_dir)
        else:
            model = create("lstm_attention", **ATTENTION_MODEL, epochs=epochs, progress=True)
            model.fit(sp.train, valid=sp.valid, rng=np.random.default_rng(seed))
    except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from exc
    if not hasattr(model, "attention"):
        err_console.print(f"[bold red]error:[/] {model_dir} holds a {type(model).__name__}, which "
                          "has no attention weights; save an lstm_attention model", soft_wrap=True)
        raise typer.Exit(2)
    n_items = int(model.n_items_)
    if n_items != sp.train.n_items:
        err_console.print(f"[bold red]error:[/] the model has {n_items} items but the case_study "
                          f"split of {data} has {sp.train.n_items} train items: pass the --data "
                          "the model was trained on", soft_wrap=True)
        raise typer.Exit(2)
    max_len = int(model.max_len)
    seqs, _ = sp.test.sequences(max_len, offset=1)  # (U, T) item + 1, 0 = padding
    hist = pad_sequences(seqs - 1, max_len, n_items)  # cold items dropped, latest last
    lengths = (hist >= 0).sum(axis=1)
    rows = np.flatnonzero(lengths > 0)
    if len(rows) == 0:
        err_console.print(f"[bold red]error:[/] the test part of {data} has no session with an "
                          "item known at training time", soft_wrap=True)
        raise typer.Exit(2)
    hist, lengths = hist[rows], lengths[rows]
    with spinner("attention weights"):
        weights = np.concatenate([model.attention(hist[lo:lo + 2048])  # (B, T) per batch
                                  for lo in range(0, len(hist), 2048)])
    labels = item_labels(prep.dataset, sp.item_vocab.ids[:n_items], top=n_items)
    names, codes = np.unique(labels, return_inverse=True)
    codes = np.where(labels == "?", -1, codes)
    cats = category_codes(codes, hist)
    kind, strength = attention_patterns(weights, hist, cats)
    shares = pattern_shares(kind)
    pick = pick_attention_rows(kind, strength, lengths, sessions, seed=seed)
    users = sp.user_vocab.ids[rows[pick]]
    row_labels = [f"{ATTENTION_PATTERNS[k]} · session {u}" for k, u in
                  zip(kind[pick].tolist(), users.tolist(), strict=True)]
    share_text = ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    name = getattr(model, "name", "") or type(model).__name__
    title = (f"{name}: attention of the last position · {prep.dataset.name} · "
             f"{len(rows):,} test sessions\n{share_text}")
    path = plot_attention(weights[pick], hist[pick], cats[pick], names, out,
                          row_labels=row_labels, title=title)
    console.print(_pattern_table(kind, shares, f"attention patterns of {len(rows):,} test "
                                 "sessions"))
    info: list[tuple[str, object]] = [
        ("model", str(model_dir) if model_dir is not None else f"{name} (trained now)")]
    history = getattr(model, "history_", None) if model_dir is None else None
    if history is not None:
        info += [("epochs", len(history.losses)), ("valid ndcg@10 (best)", history.best_value)]
    info += [("sessions shown", len(pick)), ("positions", int(lengths[pick].max())),
             ("written", str(path))]
    console.print(kv_table("attention plot", info))


def _pattern_table(kind, shares: dict[str, float], title: str):
    """Share and count of test sessions per attention pattern, with the rule of each."""
    import numpy as np
    from rich.table import Table

    rules = ("latest item >= 50% of the weight",
             "one earlier item (repeats summed) >= 35% and above the latest",
             ">= 80% on the latest item's category, 2+ items >= 10%",
             "none of the above")
    counts = np.bincount(kind, minlength=len(shares))
    t = Table(title=title, title_justify="left")
    for col in ("pattern", "share", "sessions", "rule"):
        t.add_column(col, justify="right" if col in ("share", "sessions") else "left")
    for i, (k, v) in enumerate(shares.items()):
        t.add_row(k, f"{v:.1%}", f"{int(counts[i]):,}", rules[i])
    return t


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
