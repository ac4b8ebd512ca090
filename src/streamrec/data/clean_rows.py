"""Cleaning steps that remove whole rows as data errors: exact duplicates and bot users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from streamrec.data.clean_common import (
    ROW,
    StepOutput,
    StepReport,
    log,
    seconds_expr,
    skip,
    split_rows,
    tagged,
    time_is_seconds,
)
from streamrec.data.dataset import EVENT, TIME, USER

__all__ = ["drop_bots", "drop_duplicates"]


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
    cols = list(subset) if subset is not None else [c for c in events.columns if c != ROW]
    if not cols:
        return skip(step, events, "no columns")
    n = events.height
    dup = events.select(~pl.struct(cols).is_first_distinct()).to_series()
    kept, gone = split_rows(events, dup)
    distinct = gone.select(pl.struct(cols).n_unique()).item() if gone.height else 0
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"exact duplicate rows ({len(cols)} columns equal)",
                     {"duplicate_rows": gone.height, "duplicated_rows_distinct": distinct})
    log.info("clean: %s removed %d rows", step, gone.height)
    return kept, rep, tagged(gone, step, "exact duplicate")


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
        return skip(step, events, "no user_id column")
    ok, why = time_is_seconds(events, timestamps_are_seconds)
    if not ok:
        return skip(step, events, why)
    n = events.height
    k = int(np.floor(max_events_per_minute)) + 1
    ts = seconds_expr(TIME, events.schema[TIME])
    assert ts is not None  # time_is_seconds checked the type
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
    kept, gone = split_rows(events, is_bot)
    peaks = _peak_rates(sub.join(bots, on=USER, how="semi"), limit=100)
    details = {"bot_users": bots.height, "bot_rows": gone.height, "events_in_60s_to_flag": k,
               "counted_rows": sub.height, "ignored_events": list(ignore_events),
               "peak_events_per_minute": peaks}
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"{bots.height} bot user(s) above {max_events_per_minute:g} events/min",
                     details)
    log.info("clean: %s removed %d users, %d rows", step, bots.height, gone.height)
    return kept, rep, tagged(gone, step, reason)


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
