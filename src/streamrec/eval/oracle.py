"""The Bayes-optimal next-item ranking of a synthetic session world (the "oracle" row).

A :class:`~streamrec.data.synthetic.sessions.SessionWorld` knows the exact distribution of
every next item given the generator's hidden state (the session's behaviour, preferences,
comparison set and current category). Ranking the catalogue by that distribution maximises
every expected top-K hit metric: no model can beat it on average, so its metrics are the
physical limit of next-item prediction on that world.

:func:`oracle_next_item` evaluates that ranking on exactly the examples of
:func:`~streamrec.eval.protocol.evaluate_next_item` (same rows, same order), over the same
catalogue (the split's train items) with the same tie-break
(:func:`~streamrec.retrieval.topk.topk`: lower item index first), so its per-example values
pair with every model's in the report's paired tests and confidence intervals::

    world = generate_sessions(cfg, seed)
    split = case_study(world.dataset)
    res = oracle_next_item(world, split)       # EvalResult, one row per test example
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from streamrec import metrics as M
from streamrec.eval.protocol import EvalResult
from streamrec.metrics.ranking import RANKING_METRICS, metrics_from_hits
from streamrec.retrieval.topk import topk

if TYPE_CHECKING:
    from streamrec.data.interactions import Interactions
    from streamrec.data.splits import Split
    from streamrec.data.synthetic.sessions import SessionWorld

__all__ = ["oracle_next_item", "world_rows"]



def world_rows(world: SessionWorld, user_ids: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Rows of ``world.dataset.interactions`` of events given by (external user id, time).

    Within a session timestamps strictly increase, so (session, timestamp) names one event
    whatever cleaning or re-encoding happened to the rows since the world was generated.

    Parameters
    ----------
    world : SessionWorld
    user_ids : ndarray, shape (n,)
        External user (session) ids.
    timestamps : ndarray of int, shape (n,)
        Event times (seconds).

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ValueError
        When an event is not in the world (the data was not generated from it).
    """
    inter = world.dataset.interactions
    w_users = inter.users.astype(np.int64)
    w_ts = inter.timestamps.astype(np.int64)
    t0 = int(w_ts.min()) if len(w_ts) else 0
    span = (int(w_ts.max()) - t0 + 1) if len(w_ts) else 1
    if world.dataset.n_users * span >= 2**62:
        raise ValueError("world_rows: the world's time span is too long to key events by "
                         "(session, timestamp) in int64")
    keys = w_users * span + (w_ts - t0)  # (N,) unique: times increase within a session
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    u_idx, found = world.dataset.user_vocab.lookup(np.asarray(user_ids))
    ts = np.asarray(timestamps, dtype=np.int64)
    found &= (ts >= t0) & (ts < t0 + span)
    q = np.where(found, u_idx.astype(np.int64) * span + (ts - t0), -1)
    if len(keys):
        pos = np.minimum(np.searchsorted(sorted_keys, q), len(keys) - 1)
        found &= sorted_keys[pos] == q
    else:
        pos = np.zeros(len(q), dtype=np.int64)
        found[:] = False
    if not found.all():
        bad = int(np.flatnonzero(~found)[0])
        raise ValueError(
            f"oracle: {int((~found).sum()):,} event(s) are not in the session world, e.g. user "
            f"{np.asarray(user_ids)[bad]!r} at {ts[bad]}; the oracle needs the split of the "
            "synthetic-sessions data generated with the same options and seed")
    return order[pos].astype(np.int64)


def oracle_next_item(
    world: SessionWorld,
    split: Split,
    *,
    part: str = "test",
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = RANKING_METRICS,
    batch_size: int = 2048,
    min_prefix: int = 1,
) -> EvalResult:
    """Metrics of the generator's Bayes-optimal ranking on every next-item example.

    Parameters
    ----------
    world : SessionWorld
        The world ``split`` was made from (its dataset, possibly cleaned and re-encoded:
        events are matched by session id and timestamp).
    split : Split
        A session split (``case_study`` / ``session_temporal``); the catalogue ranked is
        its train items (``split.item_vocab.ids[:split.train.n_items]``), as for a model
        fitted on train.
    part : {"test", "valid"}
        Which held-out part's sessions to evaluate.
    ks, metrics :
        As in :func:`~streamrec.eval.protocol.evaluate_next_item`.
    batch_size : int
        Examples ranked at once (memory ``batch_size * n_items`` float32); no effect on
        results.
    min_prefix : int
        Shortest prefix that predicts (1: every item after a session's first).

    Returns
    -------
    EvalResult
        One row per (prefix, next item) example in (session, position) order, exactly the
        rows of ``evaluate_next_item(model, getattr(split, part), ...)``: ``users`` the
        session (split user index) of each row, ``per_user`` the example's metrics;
        ``aggregate`` holds ``coverage@k``.
    """
    sessions: Interactions = getattr(split, part)
    ks_t = tuple(sorted({int(k) for k in ks}))
    if not ks_t or ks_t[0] < 1:
        raise ValueError(f"oracle: ks must be positive integers, got {tuple(ks)}")
    unknown = [m for m in metrics if m not in RANKING_METRICS]
    if unknown:
        raise ValueError(f"oracle: unknown metrics {unknown}; known: {list(RANKING_METRICS)}")
    if int(batch_size) < 1:
        raise ValueError(f"oracle: batch_size must be >= 1, got {batch_size}")
    # the examples of next_item_examples: rows at position >= min_prefix of each session,
    # sessions by user index, events by (timestamp, row)
    order = sessions.chronological_order()
    users = sessions.users[order].astype(np.int64)
    counts = np.bincount(users, minlength=sessions.n_users)
    begins = np.repeat(np.cumsum(counts) - counts, counts)
    rows = order[np.flatnonzero(np.arange(len(order)) - begins >= min_prefix)]  # (N,)
    owners = sessions.users[rows].astype(np.int64)
    targets = sessions.items[rows].astype(np.int64)
    w_rows = world_rows(world, split.user_vocab.ids[owners], sessions.timestamps[rows])
    n_items = int(split.train.n_items)
    item_ids = split.item_vocab.ids[:n_items]
    w_items = np.asarray(world.dataset.item_vocab.ids[world.dataset.interactions.items[w_rows]])
    s_items = np.asarray(split.item_vocab.ids[targets])
    if w_items.dtype.kind != s_items.dtype.kind:
        w_items, s_items = w_items.astype(str), s_items.astype(str)
    if not np.array_equal(w_items, s_items):
        raise ValueError("oracle: the split's items differ from the session world's at the same "
                         "events; the split was not made from this world")

    k_max = min(ks_t[-1], n_items)
    ranked = np.full((len(rows), k_max), -1, dtype=np.int64)
    bs = int(batch_size)
    for lo in range(0, len(rows), bs):
        probs = world.next_item_probs(w_rows[lo:lo + bs], item_ids=item_ids)  # (B, I)
        ranked[lo:lo + bs], _ = topk(probs, k_max)
    hits = ranked == targets[:, None]  # (N, k_max): one relevant item per row
    n_rel = np.ones(len(rows), dtype=np.int64)
    per_user = metrics_from_hits(hits, n_rel, ks_t, metrics)
    aggregate = {f"coverage@{k}": M.coverage(ranked[:, :k], n_items) for k in ks_t}
    return EvalResult(users=owners, per_user=per_user, aggregate=aggregate)
