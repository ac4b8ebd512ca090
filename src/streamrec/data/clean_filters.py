"""Modelling filters (not data errors): rating threshold, event types, k-core. Their rows go
to :attr:`~streamrec.data.clean.CleanResult.filtered`, not to the quarantine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from streamrec.data.clean_common import (
    StepOutput,
    StepReport,
    log,
    skip,
    split_rows,
    tagged,
    value_counts,
)
from streamrec.data.dataset import EVENT, ITEM, USER, VALUE

__all__ = ["apply_rating_threshold", "k_core", "keep_event_types"]


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
        return skip(step, events, "no value column")
    n = events.height
    keep = events.select((pl.col(VALUE) >= threshold).fill_null(False)).to_series()
    kept, gone = split_rows(events, ~keep)
    reason = (pl.when(pl.col(VALUE).is_null()).then(pl.lit("null value"))
              .otherwise(pl.lit(f"below rating threshold {threshold:g}")))
    gone = tagged(gone, step, reason)
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"kept value >= {threshold:g}", {"removed_by_reason": value_counts(gone, "reason")})
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
        return skip(step, events, "no event column")
    keep = list(keep)
    present = set(events[EVENT].cast(pl.String).unique().drop_nulls().to_list())
    if not present & set(keep):
        raise ValueError(f"keep_events={keep}: none of these event types occur "
                         f"(event types present: {sorted(present)})")
    n = events.height
    mask = events.select(pl.col(EVENT).cast(pl.String).is_in(keep).fill_null(False)).to_series()
    kept, gone = split_rows(events, ~mask)
    gone = tagged(gone, step, pl.lit("event type not kept: ") + pl.col(EVENT).cast(pl.String))
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"kept event types {', '.join(keep)}",
                     {"removed_by_reason": value_counts(gone, "reason")})
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
        return skip(step, events, "no k given")
    for col in (USER, ITEM):
        if col not in events.columns:
            return skip(step, events, f"no {col} column")
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
    kept, gone = split_rows(events, pl.Series(~alive))
    reason = f"outside the k-core (users >= {ku}, items >= {ki} {count})"
    details = {"iterations": iterations, "k_users": ku, "k_items": ki, "count": count,
               "users_before": int(np.count_nonzero(np.bincount(u, minlength=nu))),
               "users_after": int(np.count_nonzero(uc)),
               "items_before": int(np.count_nonzero(np.bincount(i, minlength=ni))),
               "items_after": int(np.count_nonzero(ic))}
    rep = StepReport(step, n, kept.height, gone.height, 0,
                     f"{ku}-core users / {ki}-core items ({iterations} iteration(s))", details)
    log.info("clean: %s removed %d rows in %d iterations", step, gone.height, iterations)
    return kept, rep, tagged(gone, step, reason)
