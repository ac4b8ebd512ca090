"""Online state of the 20 StreamRec features: running counters updated from the event stream.

Offline, :func:`streamrec.features.streamrec.streamrec_features` computes every feature of an
impression from the events strictly before it. The service cannot rescan the log per
request, so :class:`FeatureState` keeps the *same* sums as running counters (per user, item,
creator and user x category), updated by :meth:`FeatureState.apply` on each batch of events
and read by :meth:`FeatureState.features` for one user and a slate of candidate items at
time ``now``. The formulas are the offline ones (same :class:`FeatureConfig` priors), so a
model trained on offline features sees the same inputs online; ``tests/serve/test_features.py``
checks the two agree on a synthetic world.

Two deliberate differences, both documented where they apply:

* ``item_trending_score`` counts plays in hourly buckets: the windows are the last 24 and
  168 *hours* (the current partial hour included) instead of ``[t - 1 d, t)`` to the second.
* Sessions and days are counted when an event's session / UTC day differs from the user's
  previous event (events of a user arrive in time order); offline counts distinct values,
  which is the same when a user's sessions do not interleave.

Also kept per user: the last clicked items (the DIN ``history``), the last positive items
(plays, likes, clicks: the live session, seen-item filtering and vector fold-in) and the
base set of items consumed before the state was built.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from streamrec.features.streamrec import DAY, FEATURES, FeatureConfig
from streamrec.serve.feature_formulas import (
    NO_TIME,
    SlateCounters,
    SlateFeatures,
    UserCounters,
    feature_array,
    slate_features,
)
from streamrec.serve.ids import IdIndex

__all__ = ["EVENT_TYPES", "POSITIVE_EVENTS", "FeatureState"]

#: event types the service accepts, in code order
EVENT_TYPES: tuple[str, ...] = ("impression", "click", "play", "like", "skip", "progress")
#: events that mean the user engaged with the item (history, seen items, fold-in)
POSITIVE_EVENTS: tuple[str, ...] = ("play", "like", "click")
_IMP, _CLICK, _PLAY = 0, 1, 2
_POSITIVE_CODES = np.array([EVENT_TYPES.index(e) for e in POSITIVE_EVENTS])
HOUR = 3600
#: hourly play buckets kept per item (the long trending window plus the current hour)
N_HOURS = 7 * 24 + 1
_NO_TIME = NO_TIME
_USER_COUNTERS = ("n_ev", "n_sess", "n_days", "gap_sum", "n_play", "s_nlogn")
_ITEM_COUNTERS = ("imp", "click", "play", "comp")


def _fill_value(name: str) -> float | int:
    """The value of a fresh row of the state array ``name``."""
    if name in ("recent", "clicked"):
        return -1
    if name.endswith(("_last_t", "_last_session", "_signup", "_release")):
        return _NO_TIME
    return np.nan if name == "i_length" else 0


def _add(arr: np.ndarray, idx: np.ndarray, weights: np.ndarray | None = None) -> None:
    """``arr[idx] += weights`` with repeated indices summed (cost O(len(idx)), not O(len(arr)))."""
    if not len(idx):
        return
    uniq, inv = np.unique(idx, return_inverse=True)
    w = None if weights is None else np.asarray(weights, np.float64)
    arr[uniq] += np.bincount(inv, w, len(uniq)).astype(arr.dtype)


def _xlogx(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x * np.log(np.maximum(x, 1.0)), 0.0)


class FeatureState:
    """Running counters behind the 20 StreamRec features, plus user histories.

    Build it with :meth:`from_tables` (static user/item attributes) and feed events with
    :meth:`apply`; :meth:`features` reads a slate. Thread-safe: one writer (the event
    consumer) and many readers (requests) share a lock around each batch / read.

    Parameters
    ----------
    config : FeatureConfig
        Priors and windows, the ones the ranker's training features used.
    recent_len, click_len : int
        Lengths of the per-user positive-item and click histories.
    """

    # the float64 counters named in _USER_COUNTERS / _ITEM_COUNTERS (set by _alloc_*)
    u_n_ev: np.ndarray
    u_n_sess: np.ndarray
    u_n_days: np.ndarray
    u_gap_sum: np.ndarray
    u_n_play: np.ndarray
    u_s_nlogn: np.ndarray
    i_imp: np.ndarray
    i_click: np.ndarray
    i_play: np.ndarray
    i_comp: np.ndarray

    def __init__(self, config: FeatureConfig | None = None, *, recent_len: int = 50,
                 click_len: int = 20) -> None:
        self.config = config or FeatureConfig()
        self.recent_len = recent_len
        self.click_len = click_len
        self.lock = threading.RLock()
        self.users = IdIndex(name="user")
        self.items = IdIndex(name="item")
        self.categories: list[str] = []  # code j + 1 -> category name (0 = unknown)
        self.tiers: list[str | None] = [None]  # code -> tier (0 = unknown)
        self.platforms: list[str | None] = [None]
        self.creators = IdIndex(name="creator")
        self.hour_ = -1
        self.base_seen = sp.csr_array((0, 0), dtype=np.float32)
        self.n_applied = 0
        self._trend_snapshot: tuple[int, np.ndarray] | None = None
        self._alloc_users(0)
        self._alloc_items(0)
        self.creator_imp = np.zeros(1, np.float64)
        self.creator_click = np.zeros(1, np.float64)

    # ------------------------------------------------------------------ allocation
    def _alloc_users(self, n: int) -> None:
        k = len(self.categories) + 1
        for name in _USER_COUNTERS:
            setattr(self, f"u_{name}", np.zeros(n, np.float64))
        self.u_last_t = np.full(n, _NO_TIME, np.int64)
        self.u_last_session = np.full(n, _NO_TIME, np.int64)
        self.u_tier = np.zeros(n, np.int16)
        self.u_platform = np.zeros(n, np.int16)
        self.u_signup = np.full(n, _NO_TIME, np.int64)
        self.uc = np.zeros((n, k, 3), np.float32)  # impressions, clicks, plays per category
        self.recent = np.full((n, self.recent_len), -1, np.int32)
        self.clicked = np.full((n, self.click_len), -1, np.int32)

    def _alloc_items(self, n: int) -> None:
        for name in _ITEM_COUNTERS:
            setattr(self, f"i_{name}", np.zeros(n, np.float64))
        self.i_cat = np.zeros(n, np.int16)
        self.i_creator = np.zeros(n, np.int32)
        self.i_length = np.full(n, np.nan, np.float64)
        self.i_release = np.full(n, _NO_TIME, np.int64)
        self.i_hours = np.zeros((n, N_HOURS), np.float32)

    def _grow(self, names: list[str], n: int) -> None:
        """Extend every per-row array in ``names`` to ``n`` rows (amortised)."""
        cur = len(getattr(self, names[0]))
        if n <= cur:
            return
        size = max(n, 2 * cur, 256)
        for name in names:
            old = getattr(self, name)
            new = np.full((size, *old.shape[1:]), _fill_value(name), old.dtype)
            new[:cur] = old
            setattr(self, name, new)

    def _user_arrays(self) -> list[str]:
        return [*(f"u_{n}" for n in _USER_COUNTERS), "u_last_t", "u_last_session", "u_tier",
                "u_platform", "u_signup", "uc", "recent", "clicked"]

    def _item_arrays(self) -> list[str]:
        return [*(f"i_{n}" for n in _ITEM_COUNTERS), "i_cat", "i_creator", "i_length",
                "i_release", "i_hours"]

    def _ensure(self) -> None:
        self._grow(self._user_arrays(), len(self.users))
        self._grow(self._item_arrays(), len(self.items))
        nc = len(self.creators) + 1
        if len(self.creator_imp) < nc:
            size = max(nc, 2 * len(self.creator_imp))
            self.creator_imp = np.pad(self.creator_imp, (0, size - len(self.creator_imp)))
            self.creator_click = np.pad(self.creator_click, (0, size - len(self.creator_click)))

    # ------------------------------------------------------------------ static tables
    @classmethod
    def from_tables(cls, users: pl.DataFrame, items: pl.DataFrame, *,
                    config: FeatureConfig | None = None, recent_len: int = 50,
                    click_len: int = 20) -> FeatureState:
        """An empty state over the users/items tables (user_id, tier, platform, signup_ts;
        item_id, category, creator_id, length_seconds, release_ts). Categories are coded
        as offline (dense rank of the category name, 1..K)."""
        state = cls(config, recent_len=recent_len, click_len=click_len)
        cats = items["category"].cast(pl.String).drop_nulls().unique().sort().to_list()
        state.categories = cats
        state._alloc_users(0)
        state.upsert_items(items)
        state.upsert_users(users)
        return state

    def _codes(self, values: pl.Series, levels: list[str | None]) -> np.ndarray:
        """Codes of string values in ``levels`` (extended with new values; null -> 0)."""
        vals = values.cast(pl.String)
        for v in vals.drop_nulls().unique().sort().to_list():
            if v not in levels:
                levels.append(v)
        mapping = pl.DataFrame({"v": levels[1:], "c": np.arange(1, len(levels), dtype=np.int16)},
                               schema={"v": pl.String, "c": pl.Int16})
        coded = pl.DataFrame({"v": vals}).join(mapping, on="v", how="left", maintain_order="left")
        return coded["c"].fill_null(0).to_numpy().astype(np.int16)

    def upsert_users(self, users: pl.DataFrame) -> np.ndarray:
        """Add or update users' static attributes; returns their rows."""
        with self.lock:
            rows = self.users.add(users["user_id"].to_numpy())
            self._ensure()
            if "tier" in users.columns:
                self.u_tier[rows] = self._codes(users["tier"], self.tiers)
            if "platform" in users.columns:
                self.u_platform[rows] = self._codes(users["platform"], self.platforms)
            if "signup_ts" in users.columns:
                s = users["signup_ts"].cast(pl.Int64)
                self.u_signup[rows] = s.fill_null(_NO_TIME).to_numpy()
            return rows

    def upsert_items(self, items: pl.DataFrame) -> np.ndarray:
        """Add or update items' static attributes; returns their rows. A category unseen
        when the state was built gets code 0 (the ranker's unknown), as offline."""
        with self.lock:
            rows = self.items.add(items["item_id"].to_numpy())
            self._ensure()
            cat_map = pl.DataFrame({"category": self.categories,
                                    "c": np.arange(1, len(self.categories) + 1, dtype=np.int16)},
                                   schema={"category": pl.String, "c": pl.Int16})
            coded = (items.select(pl.col("category").cast(pl.String))
                     .join(cat_map, on="category", how="left", maintain_order="left"))
            self.i_cat[rows] = coded["c"].fill_null(0).to_numpy()
            creator = items["creator_id"]
            known = creator.is_not_null().to_numpy()
            codes = np.zeros(len(rows), np.int32)
            if known.any():
                codes[known] = self.creators.add(creator.drop_nulls().to_numpy()) + 1
            self.i_creator[rows] = codes
            self.i_length[rows] = items["length_seconds"].cast(pl.Float64).fill_null(
                np.nan).to_numpy()
            self.i_release[rows] = items["release_ts"].cast(pl.Int64).fill_null(
                _NO_TIME).to_numpy()
            self._ensure()
            return rows

    @property
    def n_categories(self) -> int:
        return max(len(self.categories), 1)

    # ------------------------------------------------------------------ events
    def apply(self, events: pl.DataFrame) -> int:
        """Fold a batch of events into the counters; returns the number applied.

        Parameters
        ----------
        events : polars DataFrame
            user_id, item_id, timestamp (s), event (one of :data:`EVENT_TYPES`; others are
            ignored), session_id (nullable), value (nullable; the completion ratio of a
            play). Users never seen get a row (no static attributes); events of items the
            state does not know are ignored (the service rejects them before the queue).
        """
        if events.height == 0:
            return 0
        ev_code = events["event"].cast(pl.String).replace_strict(
            {e: i for i, e in enumerate(EVENT_TYPES)}, default=-1,
            return_dtype=pl.Int64).to_numpy()
        items = self.items.lookup(events["item_id"].to_numpy())
        ok = (ev_code >= 0) & (items >= 0)
        if not ok.any():
            return 0
        # every column is read before the first write: a bad batch changes nothing
        n = int(ok.sum())
        user_ids = events["user_id"].cast(pl.Int64).to_numpy()[ok]
        ts = events["timestamp"].cast(pl.Int64).to_numpy()[ok]
        sess = events["session_id"].cast(pl.Int64).fill_null(-1).to_numpy()[ok] \
            if "session_id" in events.columns else np.full(n, -1, np.int64)
        value = events["value"].cast(pl.Float64).fill_null(np.nan).to_numpy()[ok] \
            if "value" in events.columns else np.full(n, np.nan)
        with self.lock:
            users = self.users.add(user_ids)
            self._ensure()
            self._apply(users, items[ok], ts, sess, ev_code[ok], value)
            self.n_applied += n
        return n

    def _apply(self, u: np.ndarray, i: np.ndarray, t: np.ndarray, s: np.ndarray,
               code: np.ndarray, value: np.ndarray) -> None:
        order = np.lexsort((t, u))  # by user, then time (stable)
        u, i, t, s, code, value = u[order], i[order], t[order], s[order], code[order], value[order]
        is_imp = code == _IMP
        is_click = code == _CLICK
        is_play = code == _PLAY
        comp = np.where(is_play, np.nan_to_num(value), 0.0)
        _add(self.i_imp, i, is_imp)
        _add(self.i_click, i, is_click)
        _add(self.i_play, i, is_play)
        _add(self.i_comp, i, comp)
        cr = self.i_creator[i]
        known_cr = cr > 0
        _add(self.creator_imp, cr[known_cr], is_imp[known_cr])
        _add(self.creator_click, cr[known_cr], is_click[known_cr])
        self._add_plays(i[is_play], t[is_play])
        # --- users: sequential quantities against each user's previous event
        first = np.ones(len(u), bool)
        first[1:] = u[1:] != u[:-1]
        prev_t = np.empty_like(t)
        prev_t[1:] = t[:-1]
        prev_t[first] = self.u_last_t[u[first]]
        prev_s = np.empty_like(s)
        prev_s[1:] = s[:-1]
        prev_s[first] = self.u_last_session[u[first]]
        has_prev = prev_t != _NO_TIME
        new_session = ~has_prev | (s != prev_s)
        new_day = ~has_prev | (t // DAY != np.where(has_prev, prev_t, 0) // DAY)
        gap = np.where(~new_session, t - prev_t, 0).astype(np.float64)
        _add(self.u_n_ev, u)
        _add(self.u_n_sess, u, new_session)
        _add(self.u_n_days, u, new_day)
        _add(self.u_gap_sum, u, gap)
        last = np.ones(len(u), bool)
        last[:-1] = u[1:] != u[:-1]
        self.u_last_t[u[last]] = np.maximum(t[last], self.u_last_t[u[last]])
        self.u_last_session[u[last]] = s[last]
        # --- user x category (entropy sums telescoped per (user, category) group)
        cat = self.i_cat[i].astype(np.int64)
        plays_before = self.uc[u[is_play], cat[is_play], 2].astype(np.float64)
        k = self.uc.shape[1]
        pair = u[is_play] * k + cat[is_play]
        if len(pair):
            uniq, idx, cnt = np.unique(pair, return_index=True, return_counts=True)
            m0 = plays_before[idx]
            delta = _xlogx(m0 + cnt) - _xlogx(m0)
            _add(self.u_s_nlogn, uniq // k, delta)
        _add(self.u_n_play, u, is_play)
        flat = self.uc.reshape(-1, 3)  # a view: (user * k + category, counter)
        keys = u * k + cat
        for j, mask in enumerate((is_imp, is_click, is_play)):  # three counters
            _add(flat[:, j], keys[mask])
        # --- histories (rows sorted by user, time)
        pos = np.isin(code, _POSITIVE_CODES)
        _push(self.recent, u[pos], i[pos])
        hist_code = EVENT_TYPES.index(self.config.history_event)
        _push(self.clicked, u[code == hist_code], i[code == hist_code])

    def _add_plays(self, items: np.ndarray, ts: np.ndarray) -> None:
        """Count plays in hourly buckets (older than the kept window: dropped)."""
        if not len(ts):
            return
        hours = ts // HOUR
        self._advance(int(hours.max()))
        keep = hours > self.hour_ - N_HOURS
        np.add.at(self.i_hours, (items[keep], hours[keep] % N_HOURS), 1.0)

    def _advance(self, hour: int) -> None:
        if hour <= self.hour_:
            return
        if self.hour_ < 0 or hour - self.hour_ >= N_HOURS:
            self.i_hours[:] = 0.0
        else:
            self.i_hours[:, np.arange(self.hour_ + 1, hour + 1) % N_HOURS] = 0.0
        self.hour_ = hour

    def set_base_seen(self, seen: sp.csr_array) -> None:
        """Items each user consumed before the state went live, (n_users, n_items) csr."""
        seen = sp.csr_array(seen, dtype=np.float32, copy=True)
        seen.sum_duplicates()  # canonical: each row's items sorted and unique (see seen())
        with self.lock:
            self.base_seen = seen

    # ------------------------------------------------------------------ reads
    def seen(self, user_row: int) -> np.ndarray:
        """Item rows the user already consumed (base set + live history), shape (n,)."""
        if user_row < 0:
            return np.zeros(0, np.int64)
        base = np.zeros(0, np.int64)
        if user_row < self.base_seen.shape[0]:
            ptr = self.base_seen.indptr
            base = self.base_seen.indices[ptr[user_row]: ptr[user_row + 1]].astype(np.int64)
        live = self.recent[user_row]
        live = live[live >= 0]
        if not len(live):  # csr indices: already sorted and unique
            return base
        return np.union1d(base, live.astype(np.int64))

    def history(self, user_row: int, *, clicks: bool = False) -> np.ndarray:
        """The user's last positive (or clicked) item rows, oldest first."""
        if user_row < 0 or user_row >= len(self.users):
            return np.zeros(0, np.int64)
        h = (self.clicked if clicks else self.recent)[user_row]
        return h[h >= 0].astype(np.int64)

    def _windows(self, items: np.ndarray | slice, now: int) -> tuple[np.ndarray, np.ndarray]:
        """Plays of ``items`` in the last 24 and 168 hours at ``now``, (C,) each.

        Two products of the hourly buckets with 0/1 weights over the ring's columns (BLAS,
        no copy of the buckets: about 20 ms for every item of a 200K catalogue instead of
        115-190 ms for gathering the columns); counts are whole numbers, exact in float32
        up to 2**24 plays of an item in a window."""
        cfg = self.config
        hn = now // HOUR
        n_short, n_long = cfg.trending_short // HOUR, cfg.trending_long // HOUR
        hours = np.arange(hn - n_long + 1, hn + 1)
        kept = hours[(hours <= self.hour_) & (hours > self.hour_ - N_HOURS)]
        weights = np.zeros((N_HOURS, 2), np.float32)  # columns: short window, long window
        weights[kept[kept > hn - n_short] % N_HOURS, 0] = 1.0
        weights[kept % N_HOURS, 1] = 1.0
        counts = self.i_hours[items] @ weights  # (C, 2)
        return counts[:, 0].astype(np.float64), counts[:, 1].astype(np.float64)

    def _trending(self, short: np.ndarray, long: np.ndarray) -> np.ndarray:
        cfg = self.config
        return np.log((short + 1.0) / (long * cfg.trending_short / cfg.trending_long + 1.0))

    def trending(self, items: np.ndarray, now: int) -> np.ndarray:
        """``log((plays in 24 h + 1) / (plays in 168 h * 24 / 168 + 1))`` at ``now``, (C,).

        Read from the snapshot of :meth:`refresh_trending` when it is for the same hour and
        covers the items (the service refreshes it about once a second, so it lags the
        counters by at most that), else computed from the hourly buckets."""
        snap = self._trend_snapshot
        if snap is not None and snap[0] == now // HOUR and len(items) and items.max() < len(
                snap[1]):
            return snap[1][items]
        return self._trending(*self._windows(items, now))

    def refresh_trending(self, now: int) -> np.ndarray:
        """Snapshot ``item_trending_score`` of every item for ``now``'s hour; returns the
        plays of each item in the last 168 hours (the service's popularity), (n_items,)."""
        with self.lock:
            short, long = self._windows(slice(0, len(self.items)), now)
            self._trend_snapshot = (now // HOUR, self._trending(short, long))
        return long

    def feature_arrays(self, user_row: int, items: np.ndarray, now: int, *,
                       platform: str | None = None, collaborative: np.ndarray | None = None,
                       ) -> SlateFeatures:
        """The 20 features of (user, each item) at time ``now``, as arrays (the fast path of
        the service; :meth:`features` is the same as a polars frame).

        Parameters
        ----------
        user_row : int
            -1 for a user the state has never seen (every count 0, attributes unknown).
        items : ndarray of int, shape (C,)
            Item rows.
        now : int
            Request time (s).
        platform : str, optional
            The request's platform (else the user's).
        collaborative : ndarray, shape (C,), optional
            ``collaborative_score`` (0 when not given).

        Returns
        -------
        dict
            Each numeric feature -> float64 (C,) (NaN where unknown), the two categorical
            features -> str or None, ``"history"`` -> the user's clicked item rows (oldest
            first).
        """
        items = np.asarray(items, dtype=np.int64)
        with self.lock:
            counters = self._slate_counters(user_row, items, now)
        return slate_features(counters, self.config, now, n_categories=self.n_categories,
                              platform=platform, collaborative=collaborative)

    def _slate_counters(self, user_row: int, items: np.ndarray, now: int) -> SlateCounters:
        """The counters behind the features of one user and a slate (under the lock)."""
        known = 0 <= user_row < len(self.users)
        r = user_row if known else 0
        cat = self.i_cat[items].astype(np.int64)
        cr = self.i_creator[items]
        if known:
            user = UserCounters(
                n_ev=float(self.u_n_ev[r]), n_sess=float(self.u_n_sess[r]),
                n_days=float(self.u_n_days[r]), gap_sum=float(self.u_gap_sum[r]),
                n_play=float(self.u_n_play[r]), s_nlogn=float(self.u_s_nlogn[r]),
                last_t=int(self.u_last_t[r]), signup=int(self.u_signup[r]),
                tier=self.tiers[int(self.u_tier[r])],
                platform=self.platforms[int(self.u_platform[r])])
            uc = self.uc[r, cat].astype(np.float64)
            hist = self.history(user_row, clicks=True)
        else:
            user = UserCounters()
            uc = np.zeros((len(items), 3), np.float64)
            hist = np.zeros(0, np.int64)
        return SlateCounters(
            user=user, user_category=uc, imp=self.i_imp[items], click=self.i_click[items],
            play=self.i_play[items], comp=self.i_comp[items], creator=cr,
            creator_imp=self.creator_imp[cr], creator_click=self.creator_click[cr],
            length=self.i_length[items], release=self.i_release[items],
            trending=self.trending(items, now), history=hist)

    def features(self, user_row: int, items: np.ndarray, now: int, *,
                 platform: str | None = None, collaborative: np.ndarray | None = None,
                 item_ids: np.ndarray | None = None, user_id: int | None = None,
                 ) -> pl.DataFrame:
        """:meth:`feature_arrays` as the polars frame of
        :func:`~streamrec.features.streamrec.streamrec_features` (C rows: [user_id,
        item_id,] the 20 :data:`FEATURES`, ``history`` as item ids)."""
        arrays = self.feature_arrays(user_row, items, now, platform=platform,
                                     collaborative=collaborative)
        c = len(items)
        cols = {name: ([arrays[name]] * c if name in ("user_subscription_tier", "user_platform")
                       else arrays[name]) for name in FEATURES}
        frame = pl.DataFrame(
            cols, schema={name: (pl.String if name in ("user_subscription_tier", "user_platform")
                                 else pl.Float64) for name in FEATURES},
            nan_to_null=True)
        hist_ids = self.items.ids[feature_array(arrays, "history")].tolist()
        extra = [pl.Series("history", [hist_ids] * c, dtype=pl.List(pl.Int64))]
        if item_ids is not None:
            extra.insert(0, pl.Series("item_id", np.asarray(item_ids, np.int64)))
        if user_id is not None:
            extra.insert(0, pl.Series("user_id", np.full(c, user_id, np.int64)))
        return frame.with_columns(extra).select(
            [s.name for s in extra if s.name != "history"] + list(FEATURES) + ["history"])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the state to ``path`` (``state.npz`` + ``state.json``; no pickle)."""
        import json

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with self.lock:
            nu, ni = len(self.users), len(self.items)
            arrays = {name: getattr(self, name)[:nu] for name in self._user_arrays()}
            arrays |= {name: getattr(self, name)[:ni] for name in self._item_arrays()}
            arrays |= {"user_ids": self.users.ids, "item_ids": self.items.ids,
                       "creator_ids": self.creators.ids,
                       "creator_imp": self.creator_imp[: len(self.creators) + 1],
                       "creator_click": self.creator_click[: len(self.creators) + 1],
                       "seen_indptr": self.base_seen.indptr,
                       "seen_indices": self.base_seen.indices,
                       "seen_shape": np.array(self.base_seen.shape, np.int64)}
            np.savez(path / "state.npz", **arrays)
            meta = {"config": asdict(self.config), "recent_len": self.recent_len,
                    "click_len": self.click_len, "categories": self.categories,
                    "tiers": self.tiers, "platforms": self.platforms, "hour": self.hour_,
                    "n_applied": self.n_applied}
            (path / "state.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> FeatureState:
        """Read a state written by :meth:`save`."""
        import json

        path = Path(path)
        meta = json.loads((path / "state.json").read_text())
        state = cls(FeatureConfig(**meta["config"]), recent_len=meta["recent_len"],
                    click_len=meta["click_len"])
        state.categories = meta["categories"]
        state.tiers, state.platforms = meta["tiers"], meta["platforms"]
        state.hour_, state.n_applied = meta["hour"], meta["n_applied"]
        with np.load(path / "state.npz", allow_pickle=False) as z:
            state.users = IdIndex(z["user_ids"], name="user")
            state.items = IdIndex(z["item_ids"], name="item")
            state.creators = IdIndex(z["creator_ids"], name="creator")
            for name in [*state._user_arrays(), *state._item_arrays()]:
                setattr(state, name, z[name].copy())
            state.creator_imp, state.creator_click = z["creator_imp"].copy(), z[
                "creator_click"].copy()
            shape = tuple(int(x) for x in z["seen_shape"])
            state.base_seen = sp.csr_array(
                (np.ones(len(z["seen_indices"]), np.float32), z["seen_indices"],
                 z["seen_indptr"]), shape=shape)
            state.base_seen.sum_duplicates()
        state._ensure()
        return state


def _push(hist: np.ndarray, rows: np.ndarray, items: np.ndarray) -> None:
    """Append ``items`` to the right-aligned histories ``hist[rows]`` (-1 padded on the
    left, oldest first), keeping the last ``hist.shape[1]``; rows sorted, time order kept."""
    if not len(rows):
        return
    length = hist.shape[1]
    uniq, start, counts = np.unique(rows, return_index=True, return_counts=True)
    m = int(min(counts.max(), length))
    group = np.repeat(np.arange(len(uniq)), counts)
    within = np.arange(len(rows)) - np.repeat(start, counts)
    col = m - (counts[group] - within)  # the newest item at column m - 1
    keep = col >= 0
    new = np.full((len(uniq), m), -1, hist.dtype)
    new[group[keep], col[keep]] = items[keep]
    comb = np.concatenate([hist[uniq], new], axis=1)
    order = np.argsort(comb >= 0, axis=1, kind="stable")  # padding first, items in order
    hist[uniq] = np.take_along_axis(comb, order, axis=1)[:, -length:]
