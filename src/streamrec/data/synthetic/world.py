"""The synthetic StreamRec world: the embedded default data of the project.

A seeded, vectorised simulation of a video-streaming service:

* **items** — categories with Zipf-sized shares, Zipf popularity inside each category,
  latent quality and style, a length, a creator, a release time (a share of the catalogue is
  released during the window and is never shown before), and a ``title`` and ``description``
  drawn from per-category vocabularies (so TF-IDF embeddings carry category signal);
* **users** — Dirichlet taste over categories, latent style, subscription tier, platform,
  country, sign-up time (some sign up during the window) and a heavy-tailed (lognormal)
  activity level; a few are bots;
* **sessions** — explorer / deep-dive / comparison behaviours (probabilities 0.3/0.5/0.2)
  whose per-step probability of switching the browsed category is 0.40/0.15/0.50 (explorers
  jump anywhere, deep-divers mostly stay, comparison sessions alternate among two or three
  similar categories);
* **slates** — per step, ``slate_size`` impressions from a popularity/taste-mixing
  "production recommender" with exploration, then a nonlinear cascade click model (taste x
  category affinity, style match, quality with an affinity interaction, position bias by
  platform, freshness, a per-session mood), plays with a watch ``duration`` (completion
  depends on affinity, quality and length), skips (plays shorter than 10% of the item) and
  likes;
* **time** — Int64 seconds from ``start_ts`` (2026-01-01 UTC), weekly seasonality, a
  time-of-day profile per platform (more daytime viewing at weekends);
* **churn** — engagement decays on days when the user's click rate is below
  ``churn_ctr_ref``; below ``churn_floor`` the user never returns;
* **anomalies** at known rates, counted exactly in ``world.json``: exact duplicate rows,
  nulls in ``users.country``/``users.platform``/``items.length_seconds``, negative play
  durations and bot users that emit hundreds of clicks per minute.

Events (``events.parquet``)
---------------------------
``event_id`` Int64 (unique, except for the injected exact duplicates), ``user_id`` Int64,
``item_id`` Int64, ``session_id`` Int64, ``timestamp`` Int64 (s), ``event`` String
(impression, click, play, skip, like), ``value`` Float32 (the completion ratio
``duration / length`` for play; 1.0 for the other events; it is not changed by the injected
negative durations), ``duration`` Float32 seconds (null unless play/skip), ``position``
Int16 (1-based slot in the slate; impressions and clicks only, else null), ``platform``
String. Rows are ordered by (user, timestamp); ids follow that order.

Truth
-----
``world.json`` holds the configuration and exact counts; ``truth/sessions.parquet`` the
behaviour, number of steps (slates; clicks for a ``bot`` burst) and number of category
switches of every session (the labels are not in the event log, as in real data);
``truth/users.parquet`` whether a user is a bot, has churned (and on which 0-based day) and
their impression/click/play counts. Times of day are UTC (the platform profiles treat UTC as
the viewers' local time).

Determinism
-----------
Static user attributes come from ``SeedSequence(seed, spawn_key=(1, block))`` per fixed block
of ``block_users`` users; every draw of the simulation is a counter-based hash of (seed, user,
day, session, step, slot, purpose). A user's history therefore never depends on the other
users simulated alongside, and the output is identical for any ``chunk_users`` (which is
rounded up to a multiple of ``block_users``). Changing ``block_users`` changes the world.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from streamrec.data.synthetic._world_catalog import DAY, Catalog, make_catalog
from streamrec.data.synthetic._world_config import WorldConfig
from streamrec.data.synthetic._world_sim import BEHAVIOURS, EVENT_NAMES, ChunkResult, simulate_chunk
from streamrec.data.synthetic._world_users import make_users

__all__ = ["BEHAVIOURS", "EVENT_NAMES", "World", "WorldConfig", "generate_world", "write_world"]

_ITEM_STREAM = 3
_EVENTS_ROW_GROUP = 1_000_000


@dataclass
class World:
    """A generated world in memory.

    Attributes
    ----------
    events : pl.DataFrame
        The event log (columns: see the module docstring), ordered by (user, timestamp).
    users : pl.DataFrame
        user_id, tier, platform, country, signup_ts, activity, top_category.
    items : pl.DataFrame
        item_id, title, description, category, creator_id, length_seconds, release_ts.
    truth : dict
        What ``world.json`` holds: ``config``, ``rows`` and ``truth`` (exact counts).
    sessions : pl.DataFrame
        Truth per session: session_id, user_id, behaviour, platform, start_ts, n_steps,
        n_switches.
    user_truth : pl.DataFrame
        Truth per user: user_id, is_bot, churned, churn_day, sessions, impressions, clicks,
        plays.
    """

    events: pl.DataFrame
    users: pl.DataFrame
    items: pl.DataFrame
    truth: dict
    sessions: pl.DataFrame = field(default_factory=pl.DataFrame)
    user_truth: pl.DataFrame = field(default_factory=pl.DataFrame)


def _catalog(config: WorldConfig) -> Catalog:
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_ITEM_STREAM,)))
    return make_catalog(config, rng)


def _chunks(
    config: WorldConfig, catalog: Catalog, progress: Callable[[int, int], None] | None
) -> Iterator[tuple[pa.Table, ChunkResult]]:
    """(users table, simulated chunk) for consecutive user chunks."""
    step = config.effective_chunk_users
    bounds = [(lo, min(lo + step, config.n_users)) for lo in range(0, config.n_users, step)]
    total = len(bounds) * config.n_days
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    ev_off = ses_off = 0
    for lo, hi in bounds:
        users = make_users(config, catalog, lo, hi)
        res = simulate_chunk(config, catalog, users, event_offset=ev_off, session_offset=ses_off,
                             on_day=tick)
        ev_off = int(res.events["event_id"][-1].as_py()) if res.events.num_rows else ev_off
        ses_off += res.sessions.num_rows
        yield users.table(), res


class _Totals:
    """Sums of the per-chunk counts into the ``truth`` of world.json."""

    def __init__(self, config: WorldConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.c: dict = {}

    def add(self, counts: dict) -> None:
        for k, v in counts.items():
            if isinstance(v, dict):
                sub = self.c.setdefault(k, {})
                for kk, vv in v.items():
                    sub[kk] = sub.get(kk, 0) + vv
            elif isinstance(v, list):
                self.c.setdefault(k, []).extend(v)
            else:
                self.c[k] = self.c.get(k, 0) + v

    def info(self) -> dict:
        c, cfg = self.c, self.config
        switch_rate = {b: (c["switches"][b] / c["switch_steps"][b] if c["switch_steps"][b] else None)
                       for b in BEHAVIOURS[:3]}
        truth = {
            "rows": c["rows"],
            "users": cfg.n_users,
            "items": cfg.n_items,
            "sessions": c["sessions"],
            "events": c["events"],
            "behaviours": c["behaviours"],
            "switch_rate": switch_rate,
            "churned_users": c["churned_users"],
            "bot_users": c["bot_users"],
            "bot_user_ids": c["bot_user_ids"],
            "time_start": cfg.start_ts,
            "time_end": cfg.start_ts + cfg.n_days * DAY,
            "anomalies": {
                "duplicate_rows": c["duplicate_rows"],
                "negative_durations": c["negative_durations"],
                "null_country": c["null_country"],
                "null_platform": c["null_platform"],
                "null_length_seconds": self.catalog.null_length,
                "bot_users": c["bot_users"],
                "bot_users_active": c["bot_users_active"],
                "bot_events": c["bot_events"],
            },
        }
        return {"config": cfg.to_dict(), "rows": c["rows"], "truth": truth}


def generate_world(
    config: WorldConfig, *, progress: Callable[[int, int], None] | None = None
) -> World:
    """Generate a world in memory.

    Parameters
    ----------
    config : WorldConfig
    progress : callable(done, total), optional
        Called once per simulated (chunk, day).

    Returns
    -------
    World
        ``events`` has ``truth["rows"]`` rows; the frames are identical to what
        :func:`write_world` writes for the same config.
    """
    catalog = _catalog(config)
    totals = _Totals(config, catalog)
    ev, us, ses, ut = [], [], [], []
    for users, res in _chunks(config, catalog, progress):
        totals.add(res.counts)
        ev.append(res.events)
        us.append(users)
        ses.append(res.sessions)
        ut.append(res.user_truth)
    return World(
        events=_frame(ev),
        users=_frame(us),
        items=catalog.frame,
        truth=totals.info(),
        sessions=_frame(ses),
        user_truth=_frame(ut),
    )


def _frame(tables: list[pa.Table]) -> pl.DataFrame:
    frame = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(frame, pl.DataFrame)  # a Table always converts to a frame
    return frame


def write_world(
    config: WorldConfig, out_dir: str | Path, *, progress: Callable[[int, int], None] | None = None
) -> dict:
    """Generate a world and stream it to Parquet, one user chunk at a time.

    Writes ``out_dir/events.parquet`` (row groups of at most 1M rows, at least one per
    chunk), ``users.parquet``, ``items.parquet``, ``truth/sessions.parquet``,
    ``truth/users.parquet`` and ``world.json``. Peak memory is bounded by one chunk
    (``chunk_users`` users), not by the size of the world.

    Parameters
    ----------
    config : WorldConfig
    out_dir : str or Path
        Created when missing; existing files of the same names are replaced.
    progress : callable(done, total), optional
        Called once per simulated (chunk, day).

    Returns
    -------
    dict
        The content of ``world.json``: ``config``, ``rows``, ``truth`` (exact counts:
        events by type, sessions, behaviours, switch rates, churned users, bot ids and
        ``anomalies`` by kind) and ``files``.
    """
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    catalog = _catalog(config)
    totals = _Totals(config, catalog)
    catalog.frame.write_parquet(out / "items.parquet")
    writers: dict[str, pq.ParquetWriter] = {}
    paths = {"events": out / "events.parquet", "users": out / "users.parquet",
             "sessions": out / "truth" / "sessions.parquet",
             "user_truth": out / "truth" / "users.parquet"}

    def write(tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            if name not in writers:
                writers[name] = pq.ParquetWriter(paths[name], table.schema, compression="zstd")
            writers[name].write_table(table, row_group_size=_EVENTS_ROW_GROUP)

    # one writer thread: chunk k is compressed and written while chunk k + 1 is simulated
    # (at most two chunks in memory)
    pending: Future | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            for users, res in _chunks(config, catalog, progress):
                totals.add(res.counts)
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, {"events": res.events, "users": users,
                                              "sessions": res.sessions,
                                              "user_truth": res.user_truth})
            if pending is not None:
                pending.result()
    finally:
        for w in writers.values():
            w.close()
    info = totals.info()
    info["files"] = {k: str(p.relative_to(out)) for k, p in paths.items()} | {
        "items": "items.parquet"}
    (out / "world.json").write_text(json.dumps(info, indent=2))
    return info
