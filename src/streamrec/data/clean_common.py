"""What the cleaning steps of :mod:`streamrec.data.clean` share: the column names they add,
:class:`StepReport`, and helpers for removed rows, timestamps and side-table lookups (for
the step modules; users import from :mod:`streamrec.data.clean`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from streamrec.data.dataset import ITEM, TIME

__all__ = [
    "COMPLETION",
    "DURATION",
    "INPUT_ROW",
    "ROW",
    "StepOutput",
    "StepReport",
    "length_expr",
    "seconds_expr",
    "side_lookup",
    "skip",
    "split_rows",
    "tagged",
    "time_is_seconds",
    "value_counts",
]

log = logging.getLogger("streamrec.data.clean")

#: Watch time in seconds (Float32), null for events that are not plays.
DURATION = "duration"
#: Watch time / item length, clipped to [0, 1] (Float32), added by
#: :func:`~streamrec.data.clean.add_completion_ratio`.
COMPLETION = "completion"
#: Column of the quarantine / filtered frames: 0-based row of the frame given to
#: :func:`~streamrec.data.clean.clean`.
INPUT_ROW = "input_row"

# private row-number column carried through the steps inside clean(); never part of a
# duplicate comparison and dropped from the cleaned events
ROW = "__streamrec_clean_row"
# timestamps whose median is below this (1973-03-03) look like ordinals, not epoch seconds
_SECONDS_MIN = 100_000_000
# ... and above this (year 5138) like milliseconds
_SECONDS_MAX = 100_000_000_000
_LENGTH_COLUMNS = ("length_seconds", "length_minutes")


@dataclass
class StepReport:
    """What one cleaning step did.

    Attributes
    ----------
    step : str
        Step name (the function name).
    rows_before, rows_after : int
        Event rows going in and out. :func:`~streamrec.data.clean.impute_missing` never
        touches events: alone it counts side-table rows (users + items); inside
        :func:`~streamrec.data.clean.clean` the event rows.
    removed : int
        Rows removed (``rows_before - rows_after``).
    changed : int
        Rows whose values were modified or gained a value (clipped, imputed, completion).
    reason : str
        One line on what was done, or ``"skipped: <why>"``.
    details : dict
        Step-specific counts (per reason, per column, iterations, ...).
    skipped : bool
        True when the step did not run (switched off, or its columns are absent).
    """

    step: str
    rows_before: int
    rows_after: int
    removed: int
    changed: int
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


#: what every step returns: (kept events, report, removed rows with ``reason`` and ``step``)
StepOutput = tuple[pl.DataFrame, StepReport, pl.DataFrame]


def tagged(rows: pl.DataFrame, step: str, reason: str | pl.Expr | pl.Series) -> pl.DataFrame:
    """``rows`` with ``reason`` and ``step`` columns appended."""
    reason_expr = pl.lit(reason, dtype=pl.String) if isinstance(reason, str) else reason
    return rows.with_columns(reason_expr.cast(pl.String).alias("reason"),
                             pl.lit(step, dtype=pl.String).alias("step"))


def skip(step: str, events: pl.DataFrame, why: str) -> StepOutput:
    n = events.height
    log.info("clean: %s skipped: %s", step, why)
    rep = StepReport(step, n, n, 0, 0, f"skipped: {why}", {}, skipped=True)
    return events, rep, tagged(events.clear(), step, "")


def split_rows(events: pl.DataFrame, remove: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept rows, removed rows) for a boolean mask (nulls count as False)."""
    remove = remove.fill_null(False)
    return events.filter(~remove), events.filter(remove)


def value_counts(frame: pl.DataFrame, col: str) -> dict[str, int]:
    """Value counts of ``col`` as a dict, largest first."""
    if not frame.height:
        return {}
    vc = frame.group_by(col).len().sort(["len", col], descending=[True, False])
    return dict(zip(vc[col].to_list(), vc["len"].to_list(), strict=True))


def seconds_expr(col: str, dtype: pl.DataType) -> pl.Expr | None:
    """``col`` as Int64 epoch seconds (numbers are taken as seconds), or None if impossible."""
    if dtype.is_temporal() and dtype != pl.Duration and dtype != pl.Time:
        return pl.col(col).dt.epoch("s")
    if dtype.is_numeric():
        return pl.col(col).cast(pl.Float64).floor().cast(pl.Int64)
    return None


def time_is_seconds(events: pl.DataFrame, override: bool | None) -> tuple[bool, str]:
    """Whether ``timestamp`` holds epoch seconds, and why not when it does not."""
    if TIME not in events.columns:
        return False, "no timestamp column"
    dtype = events.schema[TIME]
    expr = seconds_expr(TIME, dtype)
    if expr is None:
        return False, f"timestamp column has type {dtype}, not seconds"
    if override is not None:
        return override, "timestamps are not seconds (config)"
    med = events.select(expr.median()).item()
    if med is None:
        return False, "timestamp column is all null"
    if dtype.is_temporal():
        return True, ""
    if med < _SECONDS_MIN:
        return False, f"timestamps look ordinal (median {med:.0f} < {_SECONDS_MIN:.0e})"
    if med >= _SECONDS_MAX:
        return False, f"timestamps look like milliseconds (median {med:.3g})"
    return True, ""


def side_lookup(events: pl.DataFrame, table: pl.DataFrame, key: str,
                 exprs: dict[str, pl.Expr]) -> pl.DataFrame:
    """``events`` with columns ``exprs`` (evaluated on ``table``) looked up by ``key``.

    The side table is reduced to one row per key (the first); its key is cast to the
    events' key type. Event order is kept.
    """
    side = table.select(pl.col(key).cast(events.schema[key], strict=False),
                        *[e.alias(name) for name, e in exprs.items()])
    side = side.filter(pl.col(key).is_not_null()).unique(subset=key, keep="first",
                                                         maintain_order=True)
    return events.join(side, on=key, how="left", maintain_order="left")


def length_expr(items: pl.DataFrame | None, *, honour_missing_flag: bool) -> pl.Expr | None:
    """Item length in seconds (Float64) from ``length_seconds`` or ``length_minutes``."""
    if items is None or ITEM not in items.columns:
        return None
    for col in _LENGTH_COLUMNS:
        if col in items.columns and items.schema[col].is_numeric():
            expr = pl.col(col).cast(pl.Float64) * (60.0 if col == "length_minutes" else 1.0)
            flag = f"{col}_missing"
            if honour_missing_flag and flag in items.columns:
                expr = pl.when(pl.col(flag)).then(None).otherwise(expr)
            return expr
    return None
