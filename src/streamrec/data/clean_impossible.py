"""The cleaning step for impossible values: quarantined, or clipped where a clip is sound."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from streamrec.data.clean_common import (
    DURATION,
    StepOutput,
    StepReport,
    length_expr,
    log,
    seconds_expr,
    side_lookup,
    split_rows,
    tagged,
    time_is_seconds,
    value_counts,
)
from streamrec.data.dataset import ITEM, TIME, USER, VALUE

__all__ = ["fix_impossible"]


def fix_impossible(
    events: pl.DataFrame,
    items: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
    *,
    mode: Literal["clip", "quarantine"] = "quarantine",
    max_duration_ratio: float = 1.0,
    rating_range: tuple[float, float] | None = None,
    release_column: str | None = "release_ts",
    signup_column: str | None = "signup_ts",
    timestamps_are_seconds: bool | None = None,
) -> StepOutput:
    """Quarantine (or clip) rows with impossible values.

    Checks, in priority order (a row gets the first reason that applies):

    ==============================  ====================  =====================
    fault                           needs                 with ``mode="clip"``
    ==============================  ====================  =====================
    null user_id / item_id          --                    quarantined
    null / negative timestamp       timestamp             quarantined
    event before item release       items[release_column] quarantined
    event before user signup        users[signup_column]  quarantined
    non-finite duration or value    duration / value      quarantined
    negative duration               duration              set to 0
    duration > ratio x item length  items length_seconds  set to ratio x length
                                    (or length_minutes)
    value outside rating_range      rating_range          clipped into range
    ==============================  ====================  =====================

    Release/signup checks need timestamps in epoch seconds (see :class:`CleanConfig`).

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
    items, users : pl.DataFrame, optional
        Side tables keyed by ``item_id`` / ``user_id``.
    mode : {"clip", "quarantine"}
    max_duration_ratio : float
    rating_range : (float, float), optional
        Inclusive.
    release_column, signup_column : str, optional
        Side-table columns (epoch seconds or datetimes).
    timestamps_are_seconds : bool, optional

    Returns
    -------
    events : pl.DataFrame, shape (n - r, c)
        ``changed`` in the report counts clipped rows.
    report : StepReport
        ``details``: ``removed_by_reason``, ``clipped_by_field``, ``checks`` (run),
        ``not_checked`` (check -> why).
    removed : pl.DataFrame, shape (r, c + 2)
    """
    step = "fix_impossible"
    chk = _Checks()
    _id_and_time_checks(chk, events, items, users, release_column=release_column,
                        signup_column=signup_column, timestamps_are_seconds=timestamps_are_seconds)
    _value_checks(chk, events, items, max_duration_ratio=max_duration_ratio,
                  rating_range=rating_range)
    work = _with_side_columns(events, items, users, chk)
    rules = chk.fatal + chk.clippable if mode == "quarantine" else chk.fatal
    work = work.with_columns(_first_reason(rules).alias("__reason"))
    kept, gone = split_rows(work, work["__reason"].is_not_null())
    clipped: dict[str, int] = {}
    changed = 0
    if mode == "clip" and kept.height:
        kept, clipped, changed = _clip(kept, events.schema, chk, rating_range)
    cols = events.columns
    by_reason = value_counts(gone, "__reason")
    gone = tagged(gone.select(cols), step, gone["__reason"])
    kept = kept.select(cols)
    parts = [f"{v} {k}" for k, v in by_reason.items()] + [
        f"{v} clipped ({k})" for k, v in clipped.items() if v]
    rep = StepReport(step, events.height, kept.height, gone.height, changed,
                     "; ".join(parts) if parts else "no impossible values",
                     {"removed_by_reason": by_reason, "clipped_by_field": clipped,
                      "mode": mode, "checks": chk.checks, "not_checked": chk.not_checked})
    log.info("clean: %s removed %d rows, clipped %d", step, gone.height, changed)
    return kept, rep, gone


def _with_side_columns(events: pl.DataFrame, items: pl.DataFrame | None,
                       users: pl.DataFrame | None, chk: _Checks) -> pl.DataFrame:
    """``events`` with the item and user columns the checks compare against."""
    if chk.item_side:
        assert items is not None  # a check only looks up a table it found
        events = side_lookup(events, items, ITEM, chk.item_side)
    if chk.user_side:
        assert users is not None
        events = side_lookup(events, users, USER, chk.user_side)
    return events


@dataclass
class _Checks:
    """The checks :func:`fix_impossible` runs on one frame, in priority order per list."""

    checks: list[str] = field(default_factory=list)  # labels of the checks run, in order
    not_checked: dict[str, str] = field(default_factory=dict)  # check -> why not
    fatal: list[tuple[pl.Expr, str]] = field(default_factory=list)  # always removed
    clippable: list[tuple[pl.Expr, str]] = field(default_factory=list)  # removed or clipped
    item_side: dict[str, pl.Expr] = field(default_factory=dict)  # columns looked up per item
    user_side: dict[str, pl.Expr] = field(default_factory=dict)  # ... and per user
    dur_max: pl.Expr | None = None  # the longest possible duration, when items have lengths

    def add(self, rules: list[tuple[pl.Expr, str]], cond: pl.Expr, label: str) -> None:
        rules.append((cond, label))
        self.checks.append(label)


def _id_and_time_checks(chk: _Checks, events: pl.DataFrame, items: pl.DataFrame | None,
                        users: pl.DataFrame | None, *, release_column: str | None,
                        signup_column: str | None, timestamps_are_seconds: bool | None,
                        ) -> None:
    """Null ids, null or negative timestamps, events before the item's release or the
    user's signup (all fatal)."""
    cols = events.columns
    for key in (USER, ITEM):
        if key in cols:
            chk.add(chk.fatal, pl.col(key).is_null(), f"null {key}")
    if TIME not in cols:
        chk.not_checked["timestamp"] = "no timestamp column"
        return
    ts = seconds_expr(TIME, events.schema[TIME])
    chk.add(chk.fatal, pl.col(TIME).is_null(), "null timestamp")
    if ts is not None:
        chk.add(chk.fatal, ts < 0, "negative timestamp")
    seconds, why = time_is_seconds(events, timestamps_are_seconds)
    for table, key, col, what, dest in (
        (items, ITEM, release_column, "item release", chk.item_side),
        (users, USER, signup_column, "user signup", chk.user_side),
    ):
        label = f"event before {what}"
        if col is None:
            chk.not_checked[label] = "switched off"
        elif table is None or col not in table.columns or key not in table.columns:
            chk.not_checked[label] = f"no {col!r} column"
        elif not seconds:
            chk.not_checked[label] = why
        elif (side := seconds_expr(col, table.schema[col])) is None:
            chk.not_checked[label] = f"{col!r} has type {table.schema[col]}"
        else:
            alias = f"__{key}_{col}"
            dest[alias] = side
            assert ts is not None  # time_is_seconds said the timestamps are seconds
            chk.add(chk.fatal, ts < pl.col(alias), label)


def _value_checks(chk: _Checks, events: pl.DataFrame, items: pl.DataFrame | None, *,
                  max_duration_ratio: float, rating_range: tuple[float, float] | None,
                  ) -> None:
    """Non-finite durations and values (fatal); negative or too long durations and values
    outside the rating range (clippable)."""
    cols = events.columns
    if DURATION in cols:
        dur = pl.col(DURATION)
        if events.schema[DURATION].is_float():
            chk.add(chk.fatal, dur.is_nan() | dur.is_infinite(), "non-finite duration")
        chk.add(chk.clippable, dur < 0, "negative duration")
        length = length_expr(items, honour_missing_flag=True)
        if length is None:
            chk.not_checked["duration longer than item"] = ("no items length_seconds/"
                                                            "length_minutes")
        else:
            chk.item_side["__len"] = length
            chk.dur_max = pl.col("__len") * max_duration_ratio
            chk.add(chk.clippable, dur > chk.dur_max,
                    f"duration longer than {max_duration_ratio:g} x item length")
    else:
        chk.not_checked["duration"] = "no duration column"
    if VALUE in cols and events.schema[VALUE].is_float():
        chk.add(chk.fatal, pl.col(VALUE).is_infinite() | pl.col(VALUE).is_nan(),
                "non-finite value")
    if rating_range is not None:
        lo, hi = float(rating_range[0]), float(rating_range[1])
        if VALUE in cols:
            chk.add(chk.clippable, ~pl.col(VALUE).is_between(lo, hi),
                    f"value outside rating range [{lo:g}, {hi:g}]")
        else:
            chk.not_checked["rating range"] = "no value column"


def _first_reason(rules: list[tuple[pl.Expr, str]]) -> pl.Expr:
    """The label of the first rule a row breaks (null: none)."""
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, label in reversed(rules):
        reason = pl.when(cond.fill_null(False)).then(pl.lit(label)).otherwise(reason)
    return reason


def _clip(kept: pl.DataFrame, schema: pl.Schema, chk: _Checks,
          rating_range: tuple[float, float] | None) -> tuple[pl.DataFrame, dict[str, int], int]:
    """Clip the clippable faults of the kept rows; returns the rows, the rows hit per check
    and the rows changed."""
    clipped: dict[str, int] = {}
    any_hit = np.zeros(kept.height, dtype=bool)
    for cond, label in chk.clippable:
        hit = kept.select(cond.fill_null(False)).to_series().to_numpy()
        clipped[label] = int(hit.sum())
        any_hit |= hit
    fixes = []
    if DURATION in schema:
        d = pl.col(DURATION).clip(lower_bound=0.0)
        if chk.dur_max is not None:
            d = pl.when(chk.dur_max.is_not_null() & (d > chk.dur_max)).then(chk.dur_max
                                                                              ).otherwise(d)
        fixes.append(d.cast(schema[DURATION]).alias(DURATION))
    if rating_range is not None and VALUE in schema:
        lo, hi = float(rating_range[0]), float(rating_range[1])
        fixes.append(pl.col(VALUE).clip(lo, hi).cast(schema[VALUE]).alias(VALUE))
    if fixes:
        kept = kept.with_columns(fixes)
    return kept, clipped, int(any_hit.sum())
