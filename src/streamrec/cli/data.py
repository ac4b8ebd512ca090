"""``streamrec data``: generate, ingest, describe and split data."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from streamrec.cli._data import (
    SPEC_HELP,
    DataOptions,
    ProtocolOpt,
    data_options,
    prepare_data,
)
from streamrec.cli._tables import print_cleaning, split_table
from streamrec.cli._ui import console, fail, kv_table, progress_bar

data_app = typer.Typer(
    help="Generate, ingest, describe and split data.\n\n" + SPEC_HELP,
    no_args_is_help=True,
)


SplitFormat = StrEnum("SplitFormat", ["parquet", "recbole"])
Cold = StrEnum("Cold", ["keep", "drop"])


OutDir = Annotated[Path, typer.Option("--out", "-o", help="output directory")]


@data_app.command()
def generate(
    out: OutDir,
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
        fail(str(exc))
    start = time.perf_counter()
    with progress_bar("generating synthetic world") as cb:
        info = write_world(cfg, out, progress=cb)
    rows = [("output", str(out)), ("seconds", round(time.perf_counter() - start, 2))]
    rows += [(k, v) for k, v in info.get("truth", info).items() if not isinstance(v, dict | list)]
    console.print(kv_table("synthetic world", rows))


@data_app.command()
@data_options()
def describe(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    *,
    opts: DataOptions,
) -> None:
    """Print the size and shape of a dataset: interactions, users, items, density,
    events per user and item, time range, event types and side features."""
    prep = prepare_data(opts)
    info = prep.dataset.describe()
    info["rejected_rows"] = prep.raw.bad_rows.count
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    console.print(kv_table(f"dataset {info['name']}", [(k, _when(k, v)) for k, v in info.items()]))
    print_cleaning(prep)


def _when(key: str, value: object) -> object:
    """Epoch-second times as UTC dates (ranks and row orders stay numbers)."""
    if key in ("time_min", "time_max") and isinstance(value, int) and value > 100_000_000:
        from datetime import UTC, datetime

        return f"{datetime.fromtimestamp(value, UTC):%Y-%m-%d %H:%M:%S} UTC ({value})"
    return value


@data_app.command()
@data_options(clean=True, filters=True, cleaning=True)
def ingest(
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory (parquet)")],
    *,
    opts: DataOptions,
) -> None:
    """Read a source, clean it, and write events/users/items parquet files in the canonical
    schema (plus quarantine.csv with every row set aside and why)."""
    prep = prepare_data(opts, out / "quarantine.csv")
    prep.dataset.save(out)
    print_cleaning(prep)
    d = prep.dataset.describe()
    console.print(kv_table(f"ingested -> {out}", [(k, d[k]) for k in ("interactions", "users", "items")]))


@data_app.command()
@data_options(filters=True)
def split(
    protocol: ProtocolOpt,
    out: OutDir,
    fmt: Annotated[SplitFormat, typer.Option(
        "--format", help="parquet: OUT/{train,valid,test}.parquet; recbole: "
        "OUT/NAME/NAME.{train,valid,test}.inter (RecBole's atomic files)")] = SplitFormat.parquet,
    name: Annotated[str | None, typer.Option(help="dataset name in recbole file names")] = None,
    cold: Annotated[Cold, typer.Option(
        help="valid/test users or items unseen in train: keep (count as misses) or drop")] = Cold.keep,
    train_frac: Annotated[float, typer.Option("--train", help="train fraction")] = 0.8,
    valid_frac: Annotated[float, typer.Option("--valid", help="valid fraction")] = 0.1,
    test_frac: Annotated[float, typer.Option("--test", help="test fraction")] = 0.1,
    seed: Annotated[int, typer.Option(help="seed for random_user")] = 0,
    *,
    opts: DataOptions,
) -> None:
    """Split a dataset into train/valid/test with vocabularies fitted on train only.

    temporal_user: per user, stable time order, first floor(0.8n) train, up to floor(0.9n)
    valid, rest test. temporal_global: one time cut. leave_last_out: last item test, the
    one before valid. random_user: per-user seeded random order, same rounding."""
    from streamrec.data.splits import make_split, write_split
    from streamrec.eval.run_benchmark import recbole_name

    prep = prepare_data(opts, out / "quarantine.csv")
    try:
        sp = make_split(prep.dataset, protocol.value, cold=cold.value, seed=seed,
                        ratios=(train_frac, valid_frac, test_frac))
    except ValueError as exc:
        fail(str(exc))
    paths = write_split(sp, out, name=name or recbole_name(prep.dataset.name), fmt=fmt.value)
    print_cleaning(prep)
    console.print(split_table(sp, f"{protocol.value} split -> {paths[0].parent}"))
