"""Cleaning steps that fill or add values: side-table imputation and the completion ratio."""

from __future__ import annotations

from typing import Any, Literal

import polars as pl

from streamrec.data.clean_common import (
    COMPLETION,
    DURATION,
    StepOutput,
    StepReport,
    length_expr,
    log,
    side_lookup,
    skip,
    tagged,
)
from streamrec.data.dataset import ITEM, USER

__all__ = ["add_completion_ratio", "impute_missing"]


def _mode_value(s: pl.Series) -> Any:
    """Most frequent non-null value (ties: the smallest)."""
    vc = s.drop_nulls().value_counts()
    if not vc.height:
        return None
    name = s.name
    return vc.sort(["count", name], descending=[True, False])[name][0]


def _impute_table(table: pl.DataFrame, key: str, categorical: str
                  ) -> tuple[pl.DataFrame, dict[str, Any], int]:
    """Fill the nulls of one side table; returns (table, per-column details, rows changed)."""
    details: dict[str, Any] = {}
    fills: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    flag_names: list[str] = []
    for col, dtype in table.schema.items():
        if col == key or col.endswith("_missing"):
            continue
        nulls = table[col].null_count()
        if not nulls:
            continue
        s = table[col]
        fill: Any = None
        how = ""
        expr: pl.Expr | None = None
        if dtype.is_numeric() or (dtype.is_temporal() and dtype != pl.Time):
            fill = s.median()
            how = "median"
            if fill is not None:
                lit = pl.lit(fill)
                if dtype.is_integer():
                    fill = round(float(fill))
                    lit = pl.lit(fill)
                expr = pl.col(col).fill_null(lit.cast(dtype))
        elif dtype in (pl.String, pl.Categorical) and categorical == "unknown":
            fill, how = "unknown", "unknown"
            expr = pl.col(col).fill_null(pl.lit("unknown").cast(dtype))
        elif dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum):
            fill, how = _mode_value(s), "mode"
            if fill is not None:
                expr = pl.col(col).fill_null(pl.lit(fill).cast(dtype))
        elif isinstance(dtype, pl.List):
            fill, how = [], "empty list"
            expr = pl.col(col).fill_null(pl.lit([], dtype=dtype))
        else:
            details[col] = {"nulls": nulls, "filled": 0, "note": f"type {dtype} not imputed"}
            continue
        if expr is None:
            details[col] = {"nulls": nulls, "filled": 0, "note": "all null; left as is"}
            continue
        fills.append(expr)
        flag = f"{col}_missing"
        was = pl.col(col).is_null()
        flags.append((was | pl.col(flag).fill_null(False)) if flag in table.columns else was)
        flag_names.append(flag)
        details[col] = {"nulls": nulls, "filled": nulls, "with": how,
                        "value": fill if isinstance(fill, int | float | str | bool) else str(fill)}
    if not fills:
        return table, details, 0
    changed = int(table.select(pl.any_horizontal(flags)).to_series().sum())
    out = table.with_columns(
        *[f.alias(name) for f, name in zip(flags, flag_names, strict=True)]).with_columns(fills)
    return out, details, changed


def impute_missing(
    users: pl.DataFrame | None = None,
    items: pl.DataFrame | None = None,
    *,
    categorical: Literal["mode", "unknown"] = "mode",
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, StepReport]:
    """Fill nulls of the user and item tables and flag them.

    For every column (but the key) with nulls: numbers and datetimes get the median
    (rounded for integers), strings/categoricals the mode or ``"unknown"``, booleans and
    enums the mode, lists an empty list; a boolean ``<col>_missing`` column marks the
    filled rows. Event columns are never imputed (a null duration means "not a play").

    Parameters
    ----------
    users, items : pl.DataFrame, optional
        Side tables keyed by ``user_id`` / ``item_id``.
    categorical : {"mode", "unknown"}

    Returns
    -------
    users, items : pl.DataFrame or None
        Same rows; filled columns plus flag columns.
    report : StepReport
        ``changed`` = side-table rows with at least one filled cell; ``details``:
        ``{"users": {col: {"nulls", "filled", "with", "value"}}, "items": {...}}``.
    """
    step = "impute_missing"
    tables = {"users": (users, USER), "items": (items, ITEM)}
    present = {name: (t, key) for name, (t, key) in tables.items() if t is not None}
    rows = sum(t.height for t, _ in present.values())
    if not present:
        rep = StepReport(step, 0, 0, 0, 0, "skipped: no user or item table", {}, skipped=True)
        return users, items, rep
    out: dict[str, pl.DataFrame | None] = {"users": users, "items": items}
    details: dict[str, Any] = {}
    changed = 0
    for name, (table, key) in present.items():
        assert table is not None
        out[name], details[name], c = _impute_table(table, key, categorical)
        changed += c
    cells = sum(d["filled"] for t in details.values() for d in t.values())
    why = (f"{cells} missing value(s) filled in "
           + ", ".join(f"{name}.{col}" for name, t in details.items() for col, d in t.items()
                       if d["filled"])) if cells else "no missing values"
    rep = StepReport(step, rows, rows, 0, changed, why, details)
    log.info("clean: %s filled %d cells", step, cells)
    return out["users"], out["items"], rep


def add_completion_ratio(events: pl.DataFrame, items: pl.DataFrame | None) -> StepOutput:
    """Add ``completion = clip(duration / item length in seconds, 0, 1)`` (Float32).

    Null where ``duration`` is null, where the item has no (or a non-positive) length, and
    where the length was imputed (``length_seconds_missing`` is true): an imputed length
    would make up a completion. Replaces an existing ``completion`` column.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
        Needs ``duration`` and ``item_id``.
    items : pl.DataFrame, optional
        Needs ``item_id`` and ``length_seconds`` or ``length_minutes``.

    Returns
    -------
    events : pl.DataFrame, shape (n, c + 1)
    report : StepReport
        ``changed`` = rows with a completion; ``details``: ``with_completion``,
        ``null_duration``, ``unknown_length``, ``capped_at_1``.
    removed : pl.DataFrame, shape (0, c + 2)
    """
    step = "add_completion_ratio"
    if DURATION not in events.columns:
        return skip(step, events, "no duration column")
    if ITEM not in events.columns:
        return skip(step, events, "no item_id column")
    length = length_expr(items, honour_missing_flag=True)
    if length is None:
        return skip(step, events, "no item table with length_seconds or length_minutes")
    assert items is not None
    n = events.height
    base = events.drop(COMPLETION) if COMPLETION in events.columns else events
    work = side_lookup(base, items, ITEM, {"__len": length})
    dur, ln = pl.col(DURATION).cast(pl.Float64), pl.col("__len")
    ratio = dur / ln
    comp = (pl.when(dur.is_not_null() & ln.is_not_null() & (ln > 0))
            .then(ratio.clip(0.0, 1.0)).otherwise(None).cast(pl.Float32))
    stats = work.select(
        comp.is_not_null().sum().alias("with_completion"),
        dur.is_null().sum().alias("null_duration"),
        (dur.is_not_null() & ~(ln > 0).fill_null(False)).sum().alias("unknown_length"),
        (dur.is_not_null() & (ln > 0) & (ratio > 1.0)).sum().alias("capped_at_1"),
    ).row(0, named=True)
    out = work.with_columns(comp.alias(COMPLETION)).drop("__len")
    details = {k: int(v) for k, v in stats.items()}
    rep = StepReport(step, n, n, 0, details["with_completion"],
                     f"completion for {details['with_completion']} row(s) with a duration",
                     details)
    return out, rep, tagged(events.clear(), step, "")
