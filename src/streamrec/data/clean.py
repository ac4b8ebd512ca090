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

The steps live in :mod:`~streamrec.data.clean_rows` (duplicates, bots),
:mod:`~streamrec.data.clean_impossible`, :mod:`~streamrec.data.clean_fill` (imputation,
completion) and :mod:`~streamrec.data.clean_filters` (threshold, event types, k-core); this
module runs them and re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import polars as pl

from streamrec.data.clean_common import (
    COMPLETION,
    DURATION,
    INPUT_ROW,
    ROW,
    StepOutput,
    StepReport,
    skip,
    tagged,
)
from streamrec.data.clean_fill import add_completion_ratio, impute_missing
from streamrec.data.clean_filters import apply_rating_threshold, k_core, keep_event_types
from streamrec.data.clean_impossible import fix_impossible
from streamrec.data.clean_rows import drop_bots, drop_duplicates
from streamrec.data.dataset import RawData

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


def _empty_like(events: pl.DataFrame) -> pl.DataFrame:
    return tagged(events.clear(), "", "")


def _finish_removed(parts: Sequence[pl.DataFrame], template: pl.DataFrame) -> pl.DataFrame:
    """Concatenate removed rows; ``input_row``, ``step``, ``reason`` first."""
    frames = [p for p in parts if p.height] or [_empty_like(template)]
    out = pl.concat(frames, how="diagonal_relaxed")
    out = out.rename({ROW: INPUT_ROW}) if INPUT_ROW not in out.columns else out.drop(ROW)
    lead = [c for c in (INPUT_ROW, "step", "reason") if c in out.columns]
    return out.select(*lead, *[c for c in out.columns if c not in lead])


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
    if ROW in events.columns:
        raise ValueError(f"event frame has a reserved column {ROW!r}; rename it")
    ev = events.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    steps: list[StepReport] = []
    quarantine: list[pl.DataFrame] = []
    filtered: list[pl.DataFrame] = []

    def run(out: StepOutput, sink: list[pl.DataFrame]) -> pl.DataFrame:
        new, rep, removed = out
        steps.append(rep)
        sink.append(removed)
        return new

    ev = run(drop_duplicates(ev) if cfg.dedupe
             else skip("drop_duplicates", ev, "switched off"), quarantine)
    ev = run(drop_bots(ev, max_events_per_minute=cfg.bot_events_per_minute,
                       ignore_events=cfg.bot_ignore_events,
                       timestamps_are_seconds=cfg.timestamps_are_seconds)
             if cfg.bot_events_per_minute is not None
             else skip("drop_bots", ev, "switched off"), quarantine)
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
             else skip("add_completion_ratio", ev, "switched off"), filtered)
    ev = run(apply_rating_threshold(ev, cfg.rating_threshold)
             if cfg.rating_threshold is not None
             else skip("apply_rating_threshold", ev, "switched off"), filtered)
    ev = run(keep_event_types(ev, cfg.keep_events) if cfg.keep_events is not None
             else skip("keep_event_types", ev, "switched off"), filtered)
    ev = run(k_core(ev, cfg.k_core, k_items=cfg.k_core_items, count=cfg.k_core_count)
             if cfg.k_core is not None or cfg.k_core_items is not None
             else skip("k_core", ev, "switched off"), filtered)
    return CleanResult(
        events=ev.drop(ROW),
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
