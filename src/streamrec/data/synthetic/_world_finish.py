"""The end of one simulated chunk: cut at the window end, order by (user, time), assign
event and session ids, inject the anomalies, and build the Arrow tables and exact counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamrec.data.synthetic import _world_rng as R
from streamrec.data.synthetic._world_catalog import DAY
from streamrec.data.synthetic._world_users import PLATFORMS, UserChunk

if TYPE_CHECKING:
    from streamrec.data.synthetic._world_config import WorldConfig

__all__ = ["BEHAVIOURS", "EVENT_NAMES", "ChunkResult", "finish_chunk"]

EVENT_NAMES = ("impression", "click", "play", "skip", "like")
IMPRESSION, CLICK, PLAY, SKIP, LIKE = range(5)
BEHAVIOURS = ("explorer", "deep_dive", "comparison", "bot")


@dataclass
class ChunkResult:
    """What one chunk of users contributes to the world.

    Attributes
    ----------
    events : pa.Table
        Sorted by (user, timestamp), ids assigned, anomalies injected.
    sessions : pa.Table
        Truth per session: session_id, user_id, behaviour, platform, start_ts, n_steps,
        n_switches.
    user_truth : pa.Table
        Truth per user: user_id, is_bot, churned, churn_day, sessions, impressions, clicks,
        plays.
    counts : dict
        Exact counts (rows, events by type, anomalies, behaviours, switches ...).
    """

    events: pa.Table
    sessions: pa.Table
    user_truth: pa.Table
    counts: dict[str, Any]


def finish_chunk(cfg: WorldConfig, users: UserChunk, ukey: np.ndarray,
                 ev: dict[str, np.ndarray], sess: dict[str, np.ndarray], event_offset: int,
                 session_offset: int, t0: int, t_end: int, stats: dict[str, np.ndarray],
                 ) -> ChunkResult:
    """The chunk's tables from its event and session columns (chunk-local user rows) and
    per-user statistics; ids continue after ``event_offset`` / ``session_offset``."""
    s_order, s_gid = _session_ids(sess, t_end, session_offset)
    cols = _ordered_events(cfg, ev, t0, t_end, event_offset)
    cols, dup = _inject_anomalies(cfg, users, ukey, cols)
    churned = stats["churn_day"] >= 0
    return ChunkResult(events=_events_table(users, cols, s_gid),
                       sessions=_sessions_table(users, sess, s_order, s_gid),
                       user_truth=_user_truth_table(users, stats),
                       counts=_counts(users, cols, sess, s_order, dup, churned))


def _session_ids(sess: dict[str, np.ndarray], t_end: int, session_offset: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The sessions started inside the window ordered by (user, start), and the global id
    of every session (-1: cut). Independent of the chunk size."""
    s_idx = np.flatnonzero(sess["start"] < t_end)
    s_order = s_idx[np.lexsort((sess["start"][s_idx], sess["user"][s_idx]))]
    s_gid = np.full(len(sess["start"]), -1, dtype=np.int64)
    s_gid[s_order] = session_offset + 1 + np.arange(len(s_order))
    return s_order, s_gid


def _ordered_events(cfg: WorldConfig, ev: dict[str, np.ndarray], t0: int, t_end: int,
                    event_offset: int) -> dict[str, np.ndarray]:
    """The events inside the window, sorted by (user, time), with their ``event_id``."""
    span = np.int64(cfg.n_days * DAY)
    idx = np.flatnonzero(ev["ts"] < t_end)
    key = ev["user"][idx].astype(np.int64) * span + (ev["ts"][idx] - t0)
    idx = idx[np.argsort(key, kind="stable")]
    cols = {k: v[idx] for k, v in ev.items()}
    cols["event_id"] = event_offset + 1 + np.arange(len(idx), dtype=np.int64)
    return cols


def _inject_anomalies(cfg: WorldConfig, users: UserChunk, ukey: np.ndarray,
                      cols: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Negative play durations and duplicated rows, keyed by (user, row rank inside the
    user) so that they do not depend on the chunk size; returns the rows and which of the
    original rows were duplicated."""
    m = len(cols["event_id"])
    per_user = np.bincount(cols["user"], minlength=users.n)
    r_key = R.derive(ukey[cols["user"]], R.rank_in_group(per_user))
    in_block0 = (users.lo + cols["user"]) < cfg.block_users
    is_play = cols["event"] == PLAY
    u_neg = R.uniform(r_key, R.ST_NEGATIVE)
    neg = is_play & (u_neg < cfg.negative_duration_rate)
    u_dup = R.uniform(r_key, R.ST_DUPLICATE)
    dup = u_dup < cfg.duplicate_rate
    if cfg.guarantee_anomalies and users.lo == 0:  # at least one of each in the first block
        for mask, u, rate, elig in ((neg, u_neg, cfg.negative_duration_rate, is_play & in_block0),
                                    (dup, u_dup, cfg.duplicate_rate, in_block0)):
            if rate > 0 and elig.any():
                cand = np.flatnonzero(elig)
                mask[cand[np.argmin(u[cand])]] = True
    cols["duration"][neg] *= -1.0
    take = np.repeat(np.arange(m), 1 + dup.astype(np.int64))
    return {k: v[take] for k, v in cols.items()}, dup


def _events_table(users: UserChunk, cols: dict[str, np.ndarray], s_gid: np.ndarray,
                  ) -> pa.Table:
    null_dur = np.isnan(cols["duration"])
    null_pos = cols["position"] < 0
    return pa.table({
        "event_id": pa.array(cols["event_id"]),
        "user_id": pa.array(users.lo + 1 + cols["user"].astype(np.int64)),
        "item_id": pa.array(cols["item"].astype(np.int64) + 1),
        "session_id": pa.array(s_gid[cols["sess"]]),
        "timestamp": pa.array(cols["ts"]),
        "event": _dict_strings(cols["event"], EVENT_NAMES),
        "value": pa.array(cols["value"]),
        "duration": pa.array(cols["duration"], mask=null_dur),
        "position": pa.array(cols["position"], mask=null_pos),
        "platform": _dict_strings(cols["platform"], PLATFORMS),
    })


def _sessions_table(users: UserChunk, sess: dict[str, np.ndarray], s_order: np.ndarray,
                    s_gid: np.ndarray) -> pa.Table:
    return pa.table({
        "session_id": pa.array(s_gid[s_order]),
        "user_id": pa.array(users.lo + 1 + sess["user"][s_order].astype(np.int64)),
        "behaviour": _dict_strings(sess["behaviour"][s_order], BEHAVIOURS),
        "platform": _dict_strings(sess["platform"][s_order], PLATFORMS),
        "start_ts": pa.array(sess["start"][s_order].astype(np.int64)),
        "n_steps": pa.array(sess["steps"][s_order].astype(np.int32)),
        "n_switches": pa.array(sess["switches"][s_order].astype(np.int32)),
    })


def _user_truth_table(users: UserChunk, stats: dict[str, np.ndarray]) -> pa.Table:
    churned = stats["churn_day"] >= 0
    return pa.table({
        "user_id": pa.array(np.arange(users.lo + 1, users.hi + 1, dtype=np.int64)),
        "is_bot": pa.array(users.is_bot),
        "churned": pa.array(churned),
        "churn_day": pa.array(stats["churn_day"].astype(np.int32), mask=~churned),
        "sessions": pa.array(stats["sessions"]),
        "impressions": pa.array(stats["impressions"]),
        "clicks": pa.array(stats["clicks"]),
        "plays": pa.array(stats["plays"]),
    })


def _counts(users: UserChunk, cols: dict[str, np.ndarray], sess: dict[str, np.ndarray],
            s_order: np.ndarray, dup: np.ndarray, churned: np.ndarray) -> dict[str, Any]:
    sb = sess["behaviour"][s_order]
    is_bot_row = users.is_bot[cols["user"]]
    n_beh = np.bincount(sb, minlength=4)
    sw_num = np.bincount(sb, weights=sess["switches"][s_order], minlength=4)
    sw_den = np.bincount(sb, weights=np.maximum(sess["steps"][s_order] - 1, 0), minlength=4)
    return {
        "rows": len(cols["event_id"]),
        "events": dict(zip(EVENT_NAMES, np.bincount(cols["event"], minlength=5).tolist(), strict=True)),
        "sessions": len(s_order),
        "behaviours": dict(zip(BEHAVIOURS, n_beh.tolist(), strict=True)),
        "switch_steps": dict(zip(BEHAVIOURS[:3], sw_den[:3].astype(int).tolist(), strict=True)),
        "switches": dict(zip(BEHAVIOURS[:3], sw_num[:3].astype(int).tolist(), strict=True)),
        "churned_users": int(churned.sum()),
        "duplicate_rows": int(dup.sum()),
        "negative_durations": int((cols["duration"] < 0).sum()),
        "null_country": int(users.null_country.sum()),
        "null_platform": int(users.null_platform.sum()),
        "bot_users": int(users.is_bot.sum()),
        "bot_events": int(is_bot_row.sum()),
        # a bot that signed up late may never burst: it has no rows for cleaning to find
        "bot_users_active": int(np.unique(cols["user"][is_bot_row]).size),
        "bot_user_ids": (users.lo + 1 + np.flatnonzero(users.is_bot)).tolist(),
    }


def _dict_strings(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    """Arrow string array from small integer codes (no per-row Python objects)."""
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                         pa.array(list(names), pa.string()))
    return pc.cast(arr, pa.string())
