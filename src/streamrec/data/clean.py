"""Cleaning of the canonical event frame and its side tables, before encoding.

Every step takes and returns polars frames, reports what it did in a :class:`StepReport`
(rows before/after, removed, changed, why) and hands back the rows it removed, so nothing
is ever dropped silently. :func:`clean` runs the steps in a fixed order::

    dedupe -> bots -> impossible -> impute -> completion -> threshold -> k-core

and skips (and reports as skipped, with the reason) steps that are switched off or whose
columns are absent.

Two kinds of removal are kept apart:

* **data errors** (exact duplicates, bot users, impossible values) go to
  :attr:`CleanResult.quarantine`, one row per removed event with ``reason`` and ``step``;
* **modelling filters** (rating threshold, k-core) are not errors: their rows go to
  :attr:`CleanResult.filtered` (same layout), so they are still accounted for but do not
  show up as bad data in a quarantine file.

Both frames carry ``input_row``: the 0-based position of the row in the frame given to
:func:`clean`, so a removed row can be traced back to its source.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from streamrec.data.dataset import EVENT, ITEM, TIME, USER, VALUE, RawData

__all__ = [
    "COMPLETION",
    "DURATION",
    "INPUT_ROW",
    "CleanConfig",
    "CleanResult",
    "StepReport",
    "add_completion_ratio",
    "apply_rating_threshold",
    "clean",
    "clean_raw",
    "drop_bots",
    "drop_duplicates",
    "fix_impossible",
    "impute_missing",
    "keep_event_types",
    "k_core",
]

log = logging.getLogger(__name__)

#: Watch time in seconds (Float32), null for events that are not plays.
DURATION = "duration"
#: Watch time / item length, clipped to [0, 1] (Float32), added by :func:`add_completion_ratio`.
COMPLETION = "completion"
#: Column of the quarantine / filtered frames: 0-based row of the frame given to :func:`clean`.
INPUT_ROW = "input_row"

# private row-number column carried through the steps inside clean(); never part of a
# duplicate comparison and dropped from the cleaned events
_ROW = "__streamrec_clean_row"
# timestamps whose median is below this (1973-03-03) look like ordinals, not epoch seconds
_SECONDS_MIN = 100_000_000
# ... and above this (year 5138) like milliseconds
_SECONDS_MAX = 100_000_000_000
_LENGTH_COLUMNS = ("length_seconds", "length_minutes")


# ---------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class CleanConfig:
    """What :func:`clean` does. Defaults suit a raw streaming log.

    Attributes
    ----------
    dedupe : bool
        Remove exact duplicate event rows (every column equal), keeping the first.
    bot_events_per_minute : float or None
        A user whose peak rate exceeds this many events in any 60-second window is a bot;
        all of their rows are removed. None switches the step off.
    bot_ignore_events : tuple of str
        Event types that do not count towards the rate (impressions are shown, not done,
        and arrive a slate at a time). The bot's rows of these types are removed too.
    impossible : {"clip", "quarantine"}
        What to do with clippable impossible values (negative or too long durations,
        values outside ``rating_range``). Rows whose fault cannot be clipped (null ids,
        null/negative timestamps, events before release/signup, NaN) are always quarantined.
    max_duration_ratio : float
        A duration above ``max_duration_ratio * item length`` is impossible.
    rating_range : (float, float) or None
        Inclusive range of valid values; None disables the check.
    release_column : str or None
        Item column (epoch seconds or a datetime) before which the item cannot be watched;
        events earlier than it are impossible. Ignored when the column is absent.
    signup_column : str or None
        User column (epoch seconds or a datetime) before which the user has no events.
    impute_missing : bool
        Fill nulls of the user/item tables (numeric: median, else ``impute_categorical``)
        and add a boolean ``<col>_missing`` flag per filled column.
    impute_categorical : {"mode", "unknown"}
        Fill for string/categorical columns: the most frequent value or the literal
        ``"unknown"`` (enums and booleans always use the mode).
    completion_ratio : bool
        Add ``completion = clip(duration / item length, 0, 1)``.
    rating_threshold : float or None
        Keep rows with ``value >= rating_threshold`` (explicit ratings -> implicit positives).
    keep_events : tuple of str or None
        Keep only these event types (e.g. ``("play", "like")``: impressions and skips are
        not positive feedback). Applied before the k-core.
    k_core : int or None
        Iterative k-core: every remaining user and item has at least ``k_core`` interactions.
    k_core_items : int or None
        Separate minimum for items (defaults to ``k_core``).
    k_core_count : {"pairs", "rows"}
        What an interaction is for the k-core: distinct (user, item) pairs (graph degree) or
        event rows.
    timestamps_are_seconds : bool or None
        Whether ``timestamp`` is epoch seconds (needed by the bot and release/signup checks);
        None guesses from the median (ordinals and milliseconds are told apart).
    """

    dedupe: bool = True
    bot_events_per_minute: float | None = 30.0
    bot_ignore_events: tuple[str, ...] = ("impression",)
    impossible: Literal["clip", "quarantine"] = "quarantine"
    max_duration_ratio: float = 1.0
    rating_range: tuple[float, float] | None = None
    release_column: str | None = "release_ts"
    signup_column: str | None = "signup_ts"
    impute_missing: bool = True
    impute_categorical: Literal["mode", "unknown"] = "mode"
    completion_ratio: bool = True
    rating_threshold: float | None = None
    keep_events: tuple[str, ...] | None = None
    k_core: int | None = None
    k_core_items: int | None = None
    k_core_count: Literal["pairs", "rows"] = "pairs"
    timestamps_are_seconds: bool | None = None

    def __post_init__(self) -> None:
        if self.bot_events_per_minute is not None and not self.bot_events_per_minute > 0:
            raise ValueError(f"bot_events_per_minute must be > 0 (got {self.bot_events_per_minute})")
        if self.impossible not in ("clip", "quarantine"):
            raise ValueError(f"impossible must be 'clip' or 'quarantine' (got {self.impossible!r})")
        if not self.max_duration_ratio > 0:
            raise ValueError(f"max_duration_ratio must be > 0 (got {self.max_duration_ratio})")
        if self.rating_range is not None and not self.rating_range[0] <= self.rating_range[1]:
            raise ValueError(f"rating_range must be (low, high) with low <= high "
                             f"(got {self.rating_range})")
        if self.impute_categorical not in ("mode", "unknown"):
            raise ValueError("impute_categorical must be 'mode' or 'unknown' "
                             f"(got {self.impute_categorical!r})")
        for name in ("k_core", "k_core_items"):
            k = getattr(self, name)
            if k is not None and k < 1:
                raise ValueError(f"{name} must be >= 1 (got {k})")
        if self.k_core_count not in ("pairs", "rows"):
            raise ValueError(f"k_core_count must be 'pairs' or 'rows' (got {self.k_core_count!r})")


@dataclass
class StepReport:
    """What one cleaning step did.

    Attributes
    ----------
    step : str
        Step name (the function name).
    rows_before, rows_after : int
        Event rows going in and out. :func:`impute_missing` never touches events: alone it
        counts side-table rows (users + items); inside :func:`clean` the event rows.
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


@dataclass
class CleanResult:
    """Output of :func:`clean`.

    Attributes
    ----------
    events : pl.DataFrame
        Cleaned events (original column order, plus ``completion`` when added).
    users, items : pl.DataFrame or None
        Side tables after imputation (with ``<col>_missing`` flag columns).
    steps : list of StepReport
        One per step, in the order run (skipped steps included).
    quarantine : pl.DataFrame
        Every event row removed as a data error: ``input_row``, ``step``, ``reason``, then
        the event columns.
    filtered : pl.DataFrame
        Rows removed by modelling filters (rating threshold, k-core), same layout.
    """

    events: pl.DataFrame
    users: pl.DataFrame | None
    items: pl.DataFrame | None
    steps: list[StepReport]
    quarantine: pl.DataFrame
    filtered: pl.DataFrame = field(default_factory=pl.DataFrame)

    def summary(self) -> pl.DataFrame:
        """One row per step: step, rows_before, rows_after, removed, changed, skipped, reason."""
        return pl.DataFrame(
            {
                "step": [s.step for s in self.steps],
                "rows_before": [s.rows_before for s in self.steps],
                "rows_after": [s.rows_after for s in self.steps],
                "removed": [s.removed for s in self.steps],
                "changed": [s.changed for s in self.steps],
                "skipped": [s.skipped for s in self.steps],
                "reason": [s.reason for s in self.steps],
            },
            schema={"step": pl.String, "rows_before": pl.Int64, "rows_after": pl.Int64,
                    "removed": pl.Int64, "changed": pl.Int64, "skipped": pl.Boolean,
                    "reason": pl.String},
        )

    def step(self, name: str) -> StepReport:
        """The report of step ``name`` (e.g. ``"drop_bots"``)."""
        for s in self.steps:
            if s.step == name:
                return s
        raise KeyError(f"no step {name!r}; steps: {[s.step for s in self.steps]}")


StepOutput = tuple[pl.DataFrame, StepReport, pl.DataFrame]


# -------------------------------------------------------------------------------- helpers
def _tagged(rows: pl.DataFrame, step: str, reason: str | pl.Expr) -> pl.DataFrame:
    """``rows`` with ``reason`` and ``step`` columns appended."""
    reason_expr = pl.lit(reason, dtype=pl.String) if isinstance(reason, str) else reason
    return rows.with_columns(reason_expr.cast(pl.String).alias("reason"),
                             pl.lit(step, dtype=pl.String).alias("step"))


def _skip(step: str, events: pl.DataFrame, why: str) -> StepOutput:
    n = events.height
    log.info("clean: %s skipped: %s", step, why)
    rep = StepReport(step, n, n, 0, 0, f"skipped: {why}", {}, skipped=True)
    return events, rep, _tagged(events.clear(), step, "")


def _split(events: pl.DataFrame, remove: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept rows, removed rows) for a boolean mask (nulls count as False)."""
    remove = remove.fill_null(False)
    return events.filter(~remove), events.filter(remove)


def _counts(frame: pl.DataFrame, col: str) -> dict[str, int]:
    """Value counts of ``col`` as a dict, largest first."""
    if not frame.height:
        return {}
    vc = frame.group_by(col).len().sort(["len", col], descending=[True, False])
    return dict(zip(vc[col].to_list(), vc["len"].to_list(), strict=True))


def _seconds_expr(col: str, dtype: pl.DataType) -> pl.Expr | None:
    """``col`` as Int64 epoch seconds (numbers are taken as seconds), or None if impossible."""
    if dtype.is_temporal() and dtype != pl.Duration and dtype != pl.Time:
        return pl.col(col).dt.epoch("s")
    if dtype.is_numeric():
        return pl.col(col).cast(pl.Float64).floor().cast(pl.Int64)
    return None


def _time_is_seconds(events: pl.DataFrame, override: bool | None) -> tuple[bool, str]:
    """Whether ``timestamp`` holds epoch seconds, and why not when it does not."""
    if TIME not in events.columns:
        return False, "no timestamp column"
    dtype = events.schema[TIME]
    expr = _seconds_expr(TIME, dtype)
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


def _side_lookup(events: pl.DataFrame, table: pl.DataFrame, key: str,
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


def _length_expr(items: pl.DataFrame | None, *, honour_missing_flag: bool) -> pl.Expr | None:
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


def _empty_like(events: pl.DataFrame) -> pl.DataFrame:
    return _tagged(events.clear(), "", "")


def _finish_removed(parts: Sequence[pl.DataFrame], template: pl.DataFrame) -> pl.DataFrame:
    """Concatenate removed rows; ``input_row``, ``step``, ``reason`` first."""
    frames = [p for p in parts if p.height] or [_empty_like(template)]
    out = pl.concat(frames, how="diagonal_relaxed")
    out = out.rename({_ROW: INPUT_ROW}) if INPUT_ROW not in out.columns else out.drop(_ROW)
    lead = [c for c in (INPUT_ROW, "step", "reason") if c in out.columns]
    return out.select(*lead, *[c for c in out.columns if c not in lead])


# ---------------------------------------------------------------------------------- steps
def drop_duplicates(events: pl.DataFrame, *, subset: Sequence[str] | None = None) -> StepOutput:
    """Remove exact duplicate event rows, keeping the first occurrence.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
        Event frame.
    subset : sequence of str, optional
        Columns that must be equal; default every column.

    Returns
    -------
    events : pl.DataFrame, shape (n - r, c)
        First occurrences, in input order.
    report : StepReport
        ``details``: ``duplicate_rows`` and ``duplicated_rows_distinct`` (how many distinct
        rows had copies).
    removed : pl.DataFrame, shape (r, c + 2)
        The later copies, with ``reason`` and ``step``.
    """
    step = "drop_duplicates"
    cols = list(subset) if subset is not None else [c for c in events.columns if c != _ROW]
    if not cols:
        return _skip(step, events, "no columns")
    n = events.height
    dup = events.select(~pl.struct(cols).is_first_distinct()).to_series()
    kept, gone = _split(events, dup)
    distinct = gone.select(pl.struct(cols).n_unique()).item() if gone.height else 0
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"exact duplicate rows ({len(cols)} columns equal)",
                     {"duplicate_rows": gone.height, "duplicated_rows_distinct": distinct})
    log.info("clean: %s removed %d rows", step, gone.height)
    return kept, rep, _tagged(gone, step, "exact duplicate")


def drop_bots(
    events: pl.DataFrame,
    *,
    max_events_per_minute: float = 30.0,
    ignore_events: Sequence[str] = ("impression",),
    timestamps_are_seconds: bool | None = None,
) -> StepOutput:
    """Remove every row of users whose peak event rate exceeds ``max_events_per_minute``.

    A user's peak rate is the largest number of their events in any 60-second window
    ``[t, t + 60)`` (a sliding window, so bursts across a minute boundary count in full).
    With ``K = floor(max_events_per_minute) + 1`` the user is a bot iff, in their events
    sorted by time, some event is followed by its ``(K-1)``-th successor less than 60 s
    later: one sort and one shift, no per-user loop.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
        Needs ``user_id`` and ``timestamp`` (epoch seconds).
    max_events_per_minute : float
        Threshold; a user is a bot when their peak exceeds it.
    ignore_events : sequence of str
        Event types (``event`` column) not counted towards the rate.
    timestamps_are_seconds : bool, optional
        Override the guess from the median timestamp; the step is skipped when the
        timestamps are not seconds (an ordinal has no rate).

    Returns
    -------
    events : pl.DataFrame, shape (n - r, c)
    report : StepReport
        ``details``: ``bot_users``, ``bot_rows``, ``events_in_60s_to_flag`` (K),
        ``peak_events_per_minute`` (of each bot, by user id, at most 100 listed).
    removed : pl.DataFrame, shape (r, c + 2)
    """
    step = "drop_bots"
    if USER not in events.columns:
        return _skip(step, events, "no user_id column")
    ok, why = _time_is_seconds(events, timestamps_are_seconds)
    if not ok:
        return _skip(step, events, why)
    n = events.height
    k = int(np.floor(max_events_per_minute)) + 1
    ts = _seconds_expr(TIME, events.schema[TIME])
    assert ts is not None  # _time_is_seconds checked the type
    counted = pl.col(TIME).is_not_null()
    if EVENT in events.columns and ignore_events:
        counted &= ~pl.col(EVENT).cast(pl.String).is_in(list(ignore_events)).fill_null(False)
    sub = (events.lazy().filter(counted).select(USER, ts.alias("t"))
           .sort([USER, "t"]).with_columns(
               ((pl.col(USER) == pl.col(USER).shift(-(k - 1)))
                & (pl.col("t").shift(-(k - 1)) - pl.col("t") < 60)).alias("burst"))
           .collect())
    bots = sub.filter(pl.col("burst")).select(USER).unique(maintain_order=True)
    reason = f"bot user: more than {max_events_per_minute:g} events in 60 s"
    is_bot = events.select(pl.col(USER).is_in(bots[USER].implode())).to_series()
    kept, gone = _split(events, is_bot)
    peaks = _peak_rates(sub.join(bots, on=USER, how="semi"), limit=100)
    details = {"bot_users": bots.height, "bot_rows": gone.height, "events_in_60s_to_flag": k,
               "counted_rows": sub.height, "ignored_events": list(ignore_events),
               "peak_events_per_minute": peaks}
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"{bots.height} bot user(s) above {max_events_per_minute:g} events/min",
                     details)
    log.info("clean: %s removed %d users, %d rows", step, bots.height, gone.height)
    return kept, rep, _tagged(gone, step, reason)


def _peak_rates(rows: pl.DataFrame, *, limit: int) -> dict[Any, int]:
    """Peak events in a 60 s window per user, for rows (``user_id``, ``t``) sorted by both."""
    if not rows.height:
        return {}
    first_users = rows.select(pl.col(USER).unique(maintain_order=True).head(limit))
    rows = rows.join(first_users, on=USER, how="semi", maintain_order="left")
    code = rows.select(pl.col(USER).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    t = rows["t"].to_numpy()
    t = t - t.min()
    stride = int(t.max()) + 61
    if (int(code.max()) + 1) * stride >= 2**62:  # absurd time span: no exact peak
        return {}
    key = code * stride + t  # sorted, since rows are sorted by (user, t)
    in_window = np.searchsorted(key, key + 60, side="left") - np.arange(len(key))
    peak = pl.DataFrame({USER: rows[USER], "peak": in_window}).group_by(
        USER, maintain_order=True).agg(pl.col("peak").max())
    return dict(zip(peak[USER].to_list(), peak["peak"].to_list(), strict=True))


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
    n = events.height
    cols = events.columns
    checks: list[str] = []
    not_checked: dict[str, str] = {}
    fatal: list[tuple[pl.Expr, str]] = []  # (condition, reason): always removed
    clippable: list[tuple[pl.Expr, str]] = []  # removed in quarantine mode, clipped otherwise
    helpers: dict[str, pl.Expr] = {}  # item-side lookups
    uhelpers: dict[str, pl.Expr] = {}  # user-side lookups

    for key in (USER, ITEM):
        if key in cols:
            fatal.append((pl.col(key).is_null(), f"null {key}"))
            checks.append(f"null {key}")
    if TIME in cols:
        ts = _seconds_expr(TIME, events.schema[TIME])
        fatal.append((pl.col(TIME).is_null(), "null timestamp"))
        checks.append("null timestamp")
        if ts is not None:
            fatal.append((ts < 0, "negative timestamp"))
            checks.append("negative timestamp")
        seconds, why = _time_is_seconds(events, timestamps_are_seconds)
        for table, key, col, what, dest in (
            (items, ITEM, release_column, "item release", helpers),
            (users, USER, signup_column, "user signup", uhelpers),
        ):
            label = f"event before {what}"
            if col is None:
                not_checked[label] = "switched off"
            elif table is None or col not in table.columns or key not in table.columns:
                not_checked[label] = f"no {col!r} column"
            elif not seconds:
                not_checked[label] = why
            elif (side := _seconds_expr(col, table.schema[col])) is None:
                not_checked[label] = f"{col!r} has type {table.schema[col]}"
            else:
                alias = f"__{key}_{col}"
                dest[alias] = side
                assert ts is not None
                fatal.append((ts < pl.col(alias), label))
                checks.append(label)
    else:
        not_checked["timestamp"] = "no timestamp column"

    dur_max: pl.Expr | None = None
    if DURATION in cols:
        dur = pl.col(DURATION)
        if events.schema[DURATION].is_float():
            fatal.append((dur.is_nan() | dur.is_infinite(), "non-finite duration"))
            checks.append("non-finite duration")
        clippable.append((dur < 0, "negative duration"))
        checks.append("negative duration")
        length = _length_expr(items, honour_missing_flag=True)
        if length is None:
            not_checked["duration longer than item"] = "no items length_seconds/length_minutes"
        else:
            helpers["__len"] = length
            dur_max = pl.col("__len") * max_duration_ratio
            label = f"duration longer than {max_duration_ratio:g} x item length"
            clippable.append((dur > dur_max, label))
            checks.append(label)
    else:
        not_checked["duration"] = "no duration column"
    if VALUE in cols and events.schema[VALUE].is_float():
        fatal.append((pl.col(VALUE).is_infinite() | pl.col(VALUE).is_nan(), "non-finite value"))
        checks.append("non-finite value")
    if rating_range is not None:
        lo, hi = float(rating_range[0]), float(rating_range[1])
        if VALUE in cols:
            label = f"value outside rating range [{lo:g}, {hi:g}]"
            clippable.append((~pl.col(VALUE).is_between(lo, hi), label))
            checks.append(label)
        else:
            not_checked["rating range"] = "no value column"

    work = events
    if helpers:
        assert items is not None
        work = _side_lookup(work, items, ITEM, helpers)
    if uhelpers:
        assert users is not None
        work = _side_lookup(work, users, USER, uhelpers)
    rules = fatal + clippable if mode == "quarantine" else fatal
    reason_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, label in reversed(rules):
        reason_expr = pl.when(cond.fill_null(False)).then(pl.lit(label)).otherwise(reason_expr)
    work = work.with_columns(reason_expr.alias("__reason"))
    bad = work["__reason"].is_not_null()
    kept, gone = _split(work, bad)

    clipped: dict[str, int] = {}
    changed = 0
    if mode == "clip" and kept.height:
        any_hit = np.zeros(kept.height, dtype=bool)
        for cond, label in clippable:
            hit = kept.select(cond.fill_null(False)).to_series().to_numpy()
            clipped[label] = int(hit.sum())
            any_hit |= hit
        changed = int(any_hit.sum())
        fixes = []
        if DURATION in cols:
            d = pl.col(DURATION).clip(lower_bound=0.0)
            if dur_max is not None:
                d = pl.when(dur_max.is_not_null() & (d > dur_max)).then(dur_max).otherwise(d)
            fixes.append(d.cast(events.schema[DURATION]).alias(DURATION))
        if rating_range is not None and VALUE in cols:
            fixes.append(pl.col(VALUE).clip(lo, hi).cast(events.schema[VALUE]).alias(VALUE))
        if fixes:
            kept = kept.with_columns(fixes)

    by_reason = _counts(gone, "__reason")
    gone = _tagged(gone.select(cols), step, gone["__reason"])
    kept = kept.select(cols)
    parts = [f"{v} {k}" for k, v in by_reason.items()] + [
        f"{v} clipped ({k})" for k, v in clipped.items() if v]
    rep = StepReport(step, n, kept.height, gone.height, changed,
                     "; ".join(parts) if parts else "no impossible values",
                     {"removed_by_reason": by_reason, "clipped_by_field": clipped,
                      "mode": mode, "checks": checks, "not_checked": not_checked})
    log.info("clean: %s removed %d rows, clipped %d", step, gone.height, changed)
    return kept, rep, gone


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
    present = {k: v for k, v in tables.items() if v[0] is not None}
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
        return _skip(step, events, "no duration column")
    if ITEM not in events.columns:
        return _skip(step, events, "no item_id column")
    length = _length_expr(items, honour_missing_flag=True)
    if length is None:
        return _skip(step, events, "no item table with length_seconds or length_minutes")
    assert items is not None
    n = events.height
    base = events.drop(COMPLETION) if COMPLETION in events.columns else events
    work = _side_lookup(base, items, ITEM, {"__len": length})
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
    return out, rep, _tagged(events.clear(), step, "")


def apply_rating_threshold(events: pl.DataFrame, threshold: float) -> StepOutput:
    """Keep rows with ``value >= threshold`` (explicit ratings -> implicit positives).

    A modelling filter, not a data error: :func:`clean` puts its rows in
    :attr:`CleanResult.filtered`, not in the quarantine. Rows with a null value are removed
    too (reason ``"null value"``).

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
    threshold : float

    Returns
    -------
    events : pl.DataFrame, shape (n - r, c)
    report : StepReport
    removed : pl.DataFrame, shape (r, c + 2)
    """
    step = "apply_rating_threshold"
    if VALUE not in events.columns:
        return _skip(step, events, "no value column")
    n = events.height
    keep = events.select((pl.col(VALUE) >= threshold).fill_null(False)).to_series()
    kept, gone = _split(events, ~keep)
    reason = (pl.when(pl.col(VALUE).is_null()).then(pl.lit("null value"))
              .otherwise(pl.lit(f"below rating threshold {threshold:g}")))
    gone = _tagged(gone, step, reason)
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"kept value >= {threshold:g}", {"removed_by_reason": _counts(gone, "reason")})
    log.info("clean: %s removed %d rows", step, gone.height)
    return kept, rep, gone


def keep_event_types(events: pl.DataFrame, keep: Sequence[str]) -> StepOutput:
    """Keep rows whose ``event`` is one of ``keep`` (e.g. plays and likes as positives).

    A modelling filter: :func:`clean` puts its rows in :attr:`CleanResult.filtered`.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
    keep : sequence of str

    Returns
    -------
    events : pl.DataFrame, shape (n - r, c)
    report : StepReport
    removed : pl.DataFrame, shape (r, c + 2)
    """
    step = "keep_event_types"
    if EVENT not in events.columns:
        return _skip(step, events, "no event column")
    keep = list(keep)
    present = set(events[EVENT].cast(pl.String).unique().drop_nulls().to_list())
    if not present & set(keep):
        raise ValueError(f"keep_events={keep}: none of these event types occur "
                         f"(event types present: {sorted(present)})")
    n = events.height
    mask = events.select(pl.col(EVENT).cast(pl.String).is_in(keep).fill_null(False)).to_series()
    kept, gone = _split(events, ~mask)
    gone = _tagged(gone, step, pl.lit("event type not kept: ") + pl.col(EVENT).cast(pl.String))
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"kept event types {', '.join(keep)}",
                     {"removed_by_reason": _counts(gone, "reason")})
    log.info("clean: %s removed %d rows", step, gone.height)
    return kept, rep, gone


def k_core(
    events: pl.DataFrame,
    k: int | None,
    *,
    k_items: int | None = None,
    count: Literal["pairs", "rows"] = "pairs",
) -> StepOutput:
    """Iterative k-core: drop users and items with too few interactions until stable.

    Each iteration counts interactions per user and item over the surviving rows
    (``np.bincount`` over dense codes: vectorised) and drops rows whose user has fewer
    than ``k`` or whose item has fewer than ``k_items``; removing items can push users
    below ``k`` again, so it repeats until nothing changes.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
    k : int or None
        Minimum per user (None: no user minimum).
    k_items : int, optional
        Minimum per item; defaults to ``k``.
    count : {"pairs", "rows"}
        Count distinct (user, item) pairs (graph degree: repeated plays of one item count
        once) or event rows.

    Returns
    -------
    events : pl.DataFrame, shape (n - r, c)
    report : StepReport
        ``details``: ``iterations``, ``users_before/after``, ``items_before/after``.
    removed : pl.DataFrame, shape (r, c + 2)
    """
    step = "k_core"
    ku = int(k) if k is not None else 1
    ki = int(k_items) if k_items is not None else ku
    if k is None and k_items is None:
        return _skip(step, events, "no k given")
    for col in (USER, ITEM):
        if col not in events.columns:
            return _skip(step, events, f"no {col} column")
    n = events.height
    codes = events.select(
        pl.col(USER).rank("dense").fill_null(0).cast(pl.Int64).alias("u"),
        pl.col(ITEM).rank("dense").fill_null(0).cast(pl.Int64).alias("i"),
    )
    if count == "pairs":
        counted = codes.select(pl.struct("u", "i").is_first_distinct()).to_series().to_numpy()
    else:
        counted = np.ones(n, dtype=bool)
    u, i = codes["u"].to_numpy(), codes["i"].to_numpy()
    nu, ni = (int(u.max()) + 1, int(i.max()) + 1) if n else (1, 1)
    alive = np.ones(n, dtype=bool)
    iterations = 0
    while True:
        iterations += 1
        w = alive & counted
        uc = np.bincount(u[w], minlength=nu)
        ic = np.bincount(i[w], minlength=ni)
        nxt = alive & (uc[u] >= ku) & (ic[i] >= ki)
        if nxt.sum() == alive.sum():
            break
        alive = nxt
    kept, gone = _split(events, pl.Series(~alive))
    reason = f"outside the k-core (users >= {ku}, items >= {ki} {count})"
    details = {"iterations": iterations, "k_users": ku, "k_items": ki, "count": count,
               "users_before": int(np.count_nonzero(np.bincount(u, minlength=nu))),
               "users_after": int(np.count_nonzero(uc)),
               "items_before": int(np.count_nonzero(np.bincount(i, minlength=ni))),
               "items_after": int(np.count_nonzero(ic))}
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"{ku}-core users / {ki}-core items ({iterations} iteration(s))", details)
    log.info("clean: %s removed %d rows in %d iterations", step, gone.height, iterations)
    return kept, rep, _tagged(gone, step, reason)


# -------------------------------------------------------------------------------- driver
def clean(
    events: pl.DataFrame,
    users: pl.DataFrame | None = None,
    items: pl.DataFrame | None = None,
    config: CleanConfig | None = None,
) -> CleanResult:
    """Run the cleaning steps in order: dedupe, bots, impossible, impute, completion,
    threshold, event types, k-core.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, c)
        Canonical event frame (``user_id``, ``item_id``, ``timestamp``, ``value``, optional
        ``event``, ``duration``, extras).
    users, items : pl.DataFrame, optional
        Side tables keyed by ``user_id`` / ``item_id``.
    config : CleanConfig, optional
        Defaults to ``CleanConfig()``.

    Returns
    -------
    CleanResult
        Cleaned frames, one :class:`StepReport` per step (8, skipped ones included), the
        quarantined data errors and the filtered rows, each with ``input_row`` (0-based
        position in ``events``), ``step`` and ``reason``.
    """
    cfg = config if config is not None else CleanConfig()
    if _ROW in events.columns:
        raise ValueError(f"event frame has a reserved column {_ROW!r}; rename it")
    ev = events.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    steps: list[StepReport] = []
    quarantine: list[pl.DataFrame] = []
    filtered: list[pl.DataFrame] = []

    def run(out: StepOutput, sink: list[pl.DataFrame]) -> pl.DataFrame:
        new, rep, removed = out
        steps.append(rep)
        sink.append(removed)
        return new

    ev = run(drop_duplicates(ev) if cfg.dedupe
             else _skip("drop_duplicates", ev, "switched off"), quarantine)
    ev = run(drop_bots(ev, max_events_per_minute=cfg.bot_events_per_minute,
                       ignore_events=cfg.bot_ignore_events,
                       timestamps_are_seconds=cfg.timestamps_are_seconds)
             if cfg.bot_events_per_minute is not None
             else _skip("drop_bots", ev, "switched off"), quarantine)
    ev = run(fix_impossible(ev, items, users, mode=cfg.impossible,
                            max_duration_ratio=cfg.max_duration_ratio,
                            rating_range=cfg.rating_range, release_column=cfg.release_column,
                            signup_column=cfg.signup_column,
                            timestamps_are_seconds=cfg.timestamps_are_seconds), quarantine)
    if cfg.impute_missing:
        users, items, rep = impute_missing(users, items, categorical=cfg.impute_categorical)
        rep = replace(rep, rows_before=ev.height, rows_after=ev.height)
    else:
        rep = StepReport("impute_missing", ev.height, ev.height, 0, 0, "skipped: switched off",
                         {}, skipped=True)
    steps.append(rep)
    ev = run(add_completion_ratio(ev, items) if cfg.completion_ratio
             else _skip("add_completion_ratio", ev, "switched off"), filtered)
    ev = run(apply_rating_threshold(ev, cfg.rating_threshold)
             if cfg.rating_threshold is not None
             else _skip("apply_rating_threshold", ev, "switched off"), filtered)
    ev = run(keep_event_types(ev, cfg.keep_events) if cfg.keep_events is not None
             else _skip("keep_event_types", ev, "switched off"), filtered)
    ev = run(k_core(ev, cfg.k_core, k_items=cfg.k_core_items, count=cfg.k_core_count)
             if cfg.k_core is not None or cfg.k_core_items is not None
             else _skip("k_core", ev, "switched off"), filtered)
    return CleanResult(
        events=ev.drop(_ROW),
        users=users,
        items=items,
        steps=steps,
        quarantine=_finish_removed(quarantine, ev),
        filtered=_finish_removed(filtered, ev),
    )


def clean_raw(raw: RawData, config: CleanConfig | None = None) -> tuple[RawData, CleanResult]:
    """:func:`clean` on a :class:`RawData`; returns the cleaned copy and the result.

    The copy keeps ``name``, ``bad_rows`` (the reader's rejects) and ``files``.
    """
    result = clean(raw.events, raw.users, raw.items, config)
    out = RawData(events=result.events, users=result.users, items=result.items,
                  name=raw.name, bad_rows=raw.bad_rows, files=list(raw.files))
    return out, result
