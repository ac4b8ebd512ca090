"""The day-by-day simulation of one chunk of users (vectorised over users, sessions, slates).

One simulated day, for every eligible user of the chunk at once:

1. sessions: Poisson(activity x weekday factor x engagement); each session gets a behaviour
   (explorer / deep-dive / comparison), a platform, a mood and a number of steps;
2. steps: a context category per step follows a per-behaviour switching chain (one
   iteration per step *position*, at most ``max_steps``, vectorised over sessions);
3. slates: ``slate_size`` items per step from the "production recommender" (context row,
   taste row, global popular, uniform exploration), de-duplicated and ranked by popularity;
4. clicks: a nonlinear cascade click model; a click leads to a play (or a skip when the
   watch is short) with a duration, and maybe a like;
5. time: steps and sessions are laid out back to back (sessions never overlap), starting at
   a platform-dependent time of day;
6. churn: each user's engagement decays when the day's click rate is below
   ``churn_ctr_ref`` and users whose engagement falls under ``churn_floor`` stop for good.

Bots emit bursts of hundreds of clicks per minute on random items. Each numbered part is one
function below; :mod:`~streamrec.data.synthetic._world_finish` turns the chunk's columns into
tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from streamrec.data.synthetic import _world_rng as R
from streamrec.data.synthetic._world_catalog import DAY, Catalog
from streamrec.data.synthetic._world_finish import (
    BEHAVIOURS,
    CLICK,
    EVENT_NAMES,
    IMPRESSION,
    LIKE,
    PLAY,
    SKIP,
    ChunkResult,
    finish_chunk,
)
from streamrec.data.synthetic._world_users import PLATFORMS, UserChunk

if TYPE_CHECKING:
    from collections.abc import Callable

    from streamrec.data.synthetic._world_config import WorldConfig

__all__ = ["BEHAVIOURS", "EVENT_NAMES", "ChunkResult", "simulate_chunk"]

_DOMAIN_EVENTS = 2

#: hourly weights of session starts per platform (tv, mobile, web, tablet), weekdays
_HOURS = np.array([
    [1, .5, .3, .2, .2, .2, .4, .8, 1, 1, 1, 1.2, 1.5, 1.5, 1.5, 1.8, 2.2, 3, 4.5, 6, 7, 6.5, 4.5, 2.5],
    [1, .5, .3, .2, .2, .4, 1.2, 3, 3.5, 2, 1.8, 2, 3, 2.5, 2, 2.2, 2.8, 3.5, 3.5, 3.5, 3.8, 3.8, 3, 2],
    [.5, .3, .2, .2, .2, .3, .6, 1.2, 2, 3, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3, 2.5, 2, 2, 2, 1.8, 1.2, .8],
    [.8, .4, .2, .2, .2, .3, .6, 1.2, 1.5, 1.5, 1.5, 1.5, 1.8, 1.8, 1.8, 2, 2.5, 3, 3.5, 4.5, 5, 4.5, 3, 1.5],
])
#: weekends: more daytime viewing
_WEEKEND = _HOURS * np.where((np.arange(24) >= 9) & (np.arange(24) <= 17), 1.8, 1.0)
_HOUR_CDF = np.stack([np.cumsum(h, axis=1) / h.sum(axis=1, keepdims=True)
                      for h in (_HOURS, _WEEKEND)])  # (2, 4, 24)
#: sessions-per-day factor, Monday .. Sunday
_WEEKDAY = np.array([1.0, 0.95, 0.95, 1.0, 1.15, 1.35, 1.3])
_FIRST_WEEKDAY = 3  # 2026-01-01 (the default start) is a Thursday

# click / watch model constants
_STEPS_MEAN = np.array([1.25, 1.0, 1.0])  # x steps_per_session, per behaviour
_SLOT_CUM = np.array([0.45, 0.7, 0.9, 1.0])  # context row, taste row, popular, explore
_TASTE_KNOWN = 0.5  # the production recommender's taste estimate: this much of the truth
_B0, _W_TASTE, _W_STYLE, _W_CTX, _W_Q, _W_INT, _W_FRESH = -3.0, 0.9, 0.8, 1.0, 2.0, 1.5, 0.5
_POS_BIAS = np.array([0.6, 0.35, 0.3, 0.4])  # per platform, x log1p(position)
_MOOD_SD = 0.5
_SKIP_RATIO = 0.1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Day:
    """Column buffers of one chunk, appended day by day."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "user", "item", "sess", "ts", "event", "value", "duration", "position", "platform")}

    def add(self, user: np.ndarray, item: np.ndarray, sess: np.ndarray, ts: np.ndarray,
            event: int, value: np.ndarray | float, duration: np.ndarray | None,
            position: np.ndarray | None, platform: np.ndarray) -> None:
        n = len(user)
        c = self.cols
        c["user"].append(user.astype(np.int32))
        c["item"].append(item.astype(np.int32))
        c["sess"].append(sess.astype(np.int64))
        c["ts"].append(ts.astype(np.int64))
        c["event"].append(np.full(n, event, dtype=np.int8))
        c["value"].append(np.broadcast_to(np.asarray(value, dtype=np.float32), (n,)).copy())
        c["duration"].append(np.full(n, np.nan, dtype=np.float32) if duration is None
                             else duration.astype(np.float32))
        c["position"].append(np.full(n, -1, dtype=np.int16) if position is None
                             else position.astype(np.int16))
        c["platform"].append(platform.astype(np.int8))

    def concat(self) -> dict[str, np.ndarray]:
        empty = {"user": np.int32, "item": np.int32, "sess": np.int64, "ts": np.int64,
                 "event": np.int8, "value": np.float32, "duration": np.float32,
                 "position": np.int16, "platform": np.int8}
        return {k: (np.concatenate(v) if v else np.zeros(0, dtype=empty[k]))
                for k, v in self.cols.items()}


@dataclass
class _Chunk:
    """One chunk of users: what is fixed for the simulation and the state carried from day
    to day (engagement, churn, when each user is next free, running totals, the buffers)."""

    cfg: WorldConfig
    cat: Catalog
    users: UserChunk
    ukey: np.ndarray  # one random key per user of the chunk
    taste: np.ndarray  # (n, n_categories) float64
    p_beh: np.ndarray  # cumulative behaviour probabilities
    p_switch: np.ndarray  # context switch probability per behaviour
    mean_steps: np.ndarray  # per behaviour
    alive: np.ndarray
    engage: np.ndarray
    sat: np.ndarray  # remembered click rate
    churn_day: np.ndarray
    busy_until: np.ndarray  # end of each user's last session (sessions never overlap)
    st_sessions: np.ndarray
    st_imps: np.ndarray
    st_clicks: np.ndarray
    st_plays: np.ndarray
    buf: _Day = field(default_factory=_Day)
    sess_cols: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in (
        "user", "behaviour", "platform", "start", "steps", "switches")})
    n_sess_total: int = 0

    @classmethod
    def start(cls, cfg: WorldConfig, cat: Catalog, users: UserChunk) -> _Chunk:
        n = users.n
        p_beh = np.cumsum([cfg.p_explorer, cfg.p_deep_dive, cfg.p_comparison])
        p_beh /= p_beh[-1]
        return cls(
            cfg=cfg, cat=cat, users=users,
            ukey=R.derive(R.root_key(cfg.seed, _DOMAIN_EVENTS), np.arange(users.lo, users.hi)),
            taste=users.taste.astype(np.float64), p_beh=p_beh,
            p_switch=np.array([cfg.switch_explorer, cfg.switch_deep_dive,
                               cfg.switch_comparison]),
            mean_steps=_STEPS_MEAN * cfg.steps_per_session,
            alive=np.ones(n, dtype=bool), engage=np.ones(n),
            sat=np.full(n, cfg.churn_ctr_ref), churn_day=np.full(n, -1, dtype=np.int64),
            busy_until=np.full(n, cfg.start_ts, dtype=np.int64),
            st_sessions=np.zeros(n, dtype=np.int64), st_imps=np.zeros(n, dtype=np.int64),
            st_clicks=np.zeros(n, dtype=np.int64), st_plays=np.zeros(n, dtype=np.int64))

    def add_sessions(self, **cols: np.ndarray) -> None:
        for key, val in cols.items():
            self.sess_cols[key].append(val)


@dataclass(frozen=True)
class _DayInfo:
    """Day ``d`` of the window: its start, weekday and the items on offer."""

    d: int
    day0: int  # unix s
    dow: int  # 0 = Monday
    cdf: np.ndarray  # popularity CDF over the released items, grouped by category
    released: np.ndarray  # item rows released by this day
    c_lo: np.ndarray  # CDF value where each category's items start ...
    c_hi: np.ndarray  # ... and end

    @property
    def weekend(self) -> int:
        return int(self.dow >= 5)

    @property
    def n_rel(self) -> int:
        return len(self.released)


@dataclass
class _Sessions:
    """The day's sessions (S,): who, behaviour, platform, mood and number of steps."""

    user: np.ndarray
    key: np.ndarray
    per_user: np.ndarray  # sessions of each eligible user, in user order
    behaviour: np.ndarray
    platform: np.ndarray
    mood: np.ndarray
    steps: np.ndarray

    @property
    def n(self) -> int:
        return len(self.user)


@dataclass
class _Steps:
    """The day's steps (T,), grouped by session: the session, key, user and context
    category of each step, and the number of context switches of each session (S,)."""

    sess: np.ndarray
    key: np.ndarray
    user: np.ndarray
    ctx: np.ndarray
    switches: np.ndarray

    @property
    def n(self) -> int:
        return len(self.sess)


@dataclass
class _Slates:
    """The slate shown at each step: (T * K,) slot arrays and (T, K) items in rank order."""

    slot_pos: np.ndarray
    key: np.ndarray
    step_of: np.ndarray
    item: np.ndarray
    icat: np.ndarray


@dataclass
class _Clicks:
    """The click of each step that has one (C,) and what followed it."""

    step: np.ndarray
    pos: np.ndarray  # 0-based slot
    item: np.ndarray
    key: np.ndarray
    comp: np.ndarray  # watched share
    duration: np.ndarray
    skip: np.ndarray
    like: np.ndarray


def simulate_chunk(
    cfg: WorldConfig,
    cat: Catalog,
    users: UserChunk,
    *,
    event_offset: int,
    session_offset: int,
    on_day: Callable[[], None] | None = None,
) -> ChunkResult:
    """Simulate every day of the window for the users of one chunk.

    Parameters
    ----------
    cfg : WorldConfig
    cat : Catalog
    users : UserChunk
        The users ``[users.lo, users.hi)``.
    event_offset, session_offset : int
        Events/sessions written by the previous chunks (ids continue after them).
    on_day : callable, optional
        Called once per simulated day (progress).
    """
    ch = _Chunk.start(cfg, cat, users)
    for d in range(cfg.n_days):
        day = _day_info(cfg, cat, d)
        if day.n_rel:
            _simulate_day(ch, day)
        if on_day is not None:
            on_day()
    ev = ch.buf.concat()
    sess = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64))
            for k, v in ch.sess_cols.items()}
    t0 = cfg.start_ts
    return finish_chunk(cfg, users, ch.ukey, ev, sess, event_offset, session_offset, t0,
                        t0 + cfg.n_days * DAY,
                        dict(churn_day=ch.churn_day, sessions=ch.st_sessions,
                             impressions=ch.st_imps, clicks=ch.st_clicks, plays=ch.st_plays))


def _day_info(cfg: WorldConfig, cat: Catalog, d: int) -> _DayInfo:
    cdf, released = cat.day_cdf(d, cfg.fresh_boost)
    cum0 = np.concatenate([[0.0], cdf])
    return _DayInfo(d=d, day0=cfg.start_ts + d * DAY, dow=(_FIRST_WEEKDAY + d) % 7, cdf=cdf,
                    released=released, c_lo=cum0[cat.cat_lo], c_hi=cum0[cat.cat_hi])


def _simulate_day(ch: _Chunk, day: _DayInfo) -> None:
    ses = _sessions(ch, day)
    stp = _steps(ch, ses)
    sl = _slates(ch, day, stp)
    clk = _clicks(ch, day, ses, stp, sl)
    step_ts, browse = _lay_out(ch, day, ses, stp, clk)
    _record(ch, ses, stp, sl, clk, step_ts, browse)
    _bots(ch, day)
    _churn(ch, day, ses, stp, clk)


def _sessions(ch: _Chunk, day: _DayInfo) -> _Sessions:
    """1. Poisson sessions of the eligible humans, each with its behaviour, platform, mood
    and number of steps."""
    cfg, users = ch.cfg, ch.users
    elig = np.flatnonzero(ch.alive & ~users.is_bot & (users.signup_day < day.d))
    kud = R.derive(ch.ukey[elig], day.d)
    lam = users.activity[elig] * _WEEKDAY[day.dow] * ch.engage[elig]
    ns = R.poisson(lam, R.uniform(kud, R.ST_SESSIONS), cfg.max_sessions_per_day)
    s_user = np.repeat(elig, ns)
    s_key = R.derive(np.repeat(kud, ns), R.rank_in_group(ns))
    beh = np.minimum(np.searchsorted(ch.p_beh, R.uniform(s_key, R.ST_BEHAVIOUR), side="right"), 2)
    u_pl = R.uniform(s_key, R.ST_PLATFORM)
    plat = np.where(u_pl < 0.8, users.platform[s_user],
                    np.minimum(((u_pl - 0.8) / 0.2 * len(PLATFORMS)).astype(np.int64), 3))
    mood = R.normal(s_key, R.ST_MOOD) * _MOOD_SD
    nst = 1 + R.geometric(ch.mean_steps[beh] - 1.0, R.uniform(s_key, R.ST_STEPS))
    nst = np.minimum(nst, cfg.max_steps)
    return _Sessions(user=s_user, key=s_key, per_user=ns, behaviour=beh, platform=plat,
                     mood=mood, steps=nst)


def _steps(ch: _Chunk, ses: _Sessions) -> _Steps:
    """2. The steps of every session and the context category each one browses."""
    nst = ses.steps
    t_sess = np.repeat(np.arange(ses.n), nst)
    t_key = R.derive(ses.key[t_sess], R.rank_in_group(nst))
    t_user = ses.user[t_sess]
    ctx, switches = _context_chain(ch, ses, t_key, t_user)
    return _Steps(sess=t_sess, key=t_key, user=t_user, ctx=ctx, switches=switches)


def _context_chain(ch: _Chunk, ses: _Sessions, t_key: np.ndarray, t_user: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The context category of each step (T,) and the switches per session (S,): the first
    step's from the user's taste, each later one switching by the session's behaviour
    (deep dive: by taste; explorer: by taste or to any other category; comparison: among a
    few similar categories)."""
    cat, taste, n_cat = ch.cat, ch.taste, ch.cfg.n_categories
    nst, beh, s_key = ses.steps, ses.behaviour, ses.key
    first = R.group_starts(nst)
    ctx = np.empty(len(t_key), dtype=np.int64)
    c0 = R.categorical_rows(taste[ses.user], R.uniform(s_key, R.ST_CTX0))
    ctx[first] = c0
    members = np.stack([c0, cat.cat_similar[c0, 0], cat.cat_similar[c0, 1]], axis=1)
    n_members = 2 + (R.uniform(s_key, R.ST_CMP_SIZE) < 0.5)
    member = np.zeros(ses.n, dtype=np.int64)
    switches = np.zeros(ses.n, dtype=np.int64)
    u_sw = R.uniform(t_key, R.ST_SWITCH)
    u_to = R.uniform(t_key, R.ST_SWITCH_TO)
    u_mix = R.uniform(t_key, R.ST_EXPLORE_MIX)
    for t in range(1, int(nst.max(initial=1))):
        s_sel = np.flatnonzero(nst > t)
        rows = first[s_sel] + t
        prev = ctx[rows - 1]
        b = beh[s_sel]
        new = prev.copy()
        sw = u_sw[rows] < ch.p_switch[b]
        by_taste = sw & ((b == 1) | ((b == 0) & (u_mix[rows] < 0.5)))
        if by_taste.any():  # a taste-weighted jump to another category
            w = taste[t_user[rows[by_taste]]]
            w[np.arange(len(w)), prev[by_taste]] = 0.0
            new[by_taste] = R.categorical_rows(w, u_to[rows[by_taste]])
        uni = sw & (b == 0) & (u_mix[rows] >= 0.5)  # explorer: any other category
        new[uni] = (prev[uni] + 1 + np.floor(u_to[rows[uni]] * (n_cat - 1)).astype(np.int64)) % n_cat
        cmp_ = sw & (b == 2)  # comparison: another of its few similar categories
        if cmp_.any():
            sc = s_sel[cmp_]
            k = n_members[sc]
            nxt = (member[sc] + 1 + np.floor(u_to[rows[cmp_]] * (k - 1)).astype(np.int64)) % k
            member[sc] = nxt
            new[cmp_] = members[sc, nxt]
        ctx[rows] = new
        switches[s_sel] += new != prev
    return ctx, switches


def _slates(ch: _Chunk, day: _DayInfo, stp: _Steps) -> _Slates:
    """3. ``slate_size`` items per step from the production recommender's four kinds of
    slot, de-duplicated, ranked by popularity."""
    cat, k_slate, n_t = ch.cat, ch.cfg.slate_size, stp.n
    slot_pos = np.tile(np.arange(k_slate), n_t)
    sk = R.derive(np.repeat(stp.key, k_slate), slot_pos)
    kind = np.searchsorted(_SLOT_CUM, R.uniform(sk, R.ST_SLOT_KIND), side="right")
    kind = np.minimum(kind, 3)
    step_of = np.repeat(np.arange(n_t), k_slate)
    slot_cat = stp.ctx[step_of]
    tk = kind == 1
    if tk.any():
        est = _TASTE_KNOWN * ch.taste[stp.user[step_of[tk]]] + (1 - _TASTE_KNOWN) * cat.cat_prob
        slot_cat[tk] = R.categorical_rows(est, R.uniform(sk[tk], R.ST_SLOT_CAT))
    u_item = R.uniform(sk, R.ST_SLOT_ITEM)
    cdf, c_lo, c_hi = day.cdf, day.c_lo, day.c_hi
    x = np.where(kind == 2, u_item * cdf[-1],
                 c_lo[slot_cat] + u_item * (c_hi[slot_cat] - c_lo[slot_cat]))
    pos = np.minimum(np.searchsorted(cdf, x, side="right"), len(cdf) - 1)
    item = cat.by_cat[pos]
    ex = kind == 3
    item[ex] = day.released[np.minimum((u_item[ex] * day.n_rel).astype(np.int64), day.n_rel - 1)]
    item = _dedupe_slates(item.reshape(n_t, k_slate), sk.reshape(n_t, k_slate), day)
    # the production ranker: popularity, the browsed row first, some noise
    gumbel = -np.log(-np.log(R.uniform(sk, R.ST_SLOT_RANK))).reshape(n_t, k_slate)
    icat = cat.category[item]
    score = np.log(cat.popularity[item]) + 1.5 * (icat == stp.ctx[:, None]) + gumbel
    rank = np.argsort(-score, axis=1, kind="stable")
    return _Slates(slot_pos=slot_pos, key=sk, step_of=step_of,
                   item=np.take_along_axis(item, rank, axis=1),
                   icat=np.take_along_axis(icat, rank, axis=1))


def _dedupe_slates(item: np.ndarray, keys: np.ndarray, day: _DayInfo) -> np.ndarray:
    """(T, K) slates with the repeats of an item inside a slate replaced by exploration
    items (in place)."""
    order = np.argsort(item, axis=1, kind="stable")
    srt = np.take_along_axis(item, order, axis=1)
    dup_sorted = np.zeros_like(srt, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    if dup.any():
        u_d = R.uniform(keys[dup], R.ST_DEDUP)
        item[dup] = day.released[np.minimum((u_d * day.n_rel).astype(np.int64), day.n_rel - 1)]
    return item


def _clicks(ch: _Chunk, day: _DayInfo, ses: _Sessions, stp: _Steps, sl: _Slates) -> _Clicks:
    """4. The cascade click model (the first clicked slot of a step), then the watch: its
    completion and duration, a skip when it is short, maybe a like."""
    cat, users, k_slate, n_cat = ch.cat, ch.users, ch.cfg.slate_size, ch.cfg.n_categories
    tu_rep = np.repeat(stp.user, k_slate)
    flat_item = sl.item.ravel()
    flat_cat = sl.icat.ravel()
    rel = ch.taste[tu_rep, flat_cat] * n_cat
    sdot = np.einsum("ij,ij->i", users.style[tu_rep], cat.style[flat_item]) * np.sqrt(
        ch.cfg.style_dim)
    aff = _W_TASTE * np.log(rel + 0.05) + _W_STYLE * sdot
    q = cat.quality[flat_item] - 0.5
    fresh = np.exp(-np.maximum(day.d - cat.available_day[flat_item], 0) / 7.0)
    t_plat = ses.platform[stp.sess]
    step_of = sl.step_of
    logit = (_B0 + aff + _W_CTX * (flat_cat == stp.ctx[step_of]) + _W_Q * q
             + _W_INT * q * np.maximum(aff, 0.0) + _W_FRESH * fresh
             + ses.mood[stp.sess][step_of] - _POS_BIAS[t_plat][step_of] * np.log1p(sl.slot_pos))
    clicked = (R.uniform(sl.key, R.ST_CLICK) < _sigmoid(logit)).reshape(stp.n, k_slate)
    has = clicked.any(axis=1)
    cpos = np.argmax(clicked, axis=1)
    cstep = np.flatnonzero(has)
    cslot = cstep * k_slate + cpos[cstep]
    c_item = flat_item[cslot]
    c_aff = aff[cslot]
    c_q = q[cslot]
    length = cat.length[c_item].astype(np.float64)
    c_key = stp.key[cstep]
    comp = _sigmoid(-1.6 + 0.8 * c_aff + 2.5 * c_q - 0.35 * np.log(length / 1200.0)
                    + 1.3 * R.normal(c_key, R.ST_COMPLETION))
    duration = np.minimum(np.maximum(np.round(comp * length), 1.0), length)
    skip = comp < _SKIP_RATIO
    p_like = _sigmoid(-5.3 + 3.0 * comp + 3.0 * c_q + 0.5 * c_aff)
    like = ~skip & (R.uniform(c_key, R.ST_LIKE) < p_like)
    return _Clicks(step=cstep, pos=cpos[cstep], item=c_item, key=c_key, comp=comp,
                   duration=duration, skip=skip, like=like)


def _lay_out(ch: _Chunk, day: _DayInfo, ses: _Sessions, stp: _Steps, clk: _Clicks,
             ) -> tuple[np.ndarray, np.ndarray]:
    """5. Start times: steps back to back inside a session, a user's sessions back to back
    from a platform-dependent time of day (after the user's previous session). Returns the
    start of every step (T,) and the seconds from each slate to its click (C,); moves
    ``busy_until`` and records the sessions."""
    # browsing before a click takes longer the lower the clicked slot
    browse = np.ceil(3.0 + R.exponential(clk.key, R.ST_BROWSE, 4.0) * (1 + clk.pos))
    step_len = np.ceil(20.0 + R.exponential(stp.key, R.ST_GAP_STEP, 25.0))
    step_len[clk.step] = browse + 1.0 + clk.duration + 10.0 + np.ceil(
        R.exponential(clk.key, R.ST_GAP_STEP, 20.0))
    step_len = step_len.astype(np.int64)
    nst, s_key, s_user = ses.steps, ses.key, ses.user
    t_off = R.exclusive_cumsum_in_group(step_len, nst)
    s_len = np.bincount(stp.sess, weights=step_len, minlength=ses.n).astype(np.int64)
    gap = (600.0 + R.exponential(s_key, R.ST_GAP_SESS, 7200.0)).astype(np.int64)
    ud_n = ses.per_user[ses.per_user > 0]
    ud_first = R.group_starts(ud_n)
    hour_cdf = _HOUR_CDF[day.weekend][ses.platform[ud_first]]
    hour = (hour_cdf < R.uniform(s_key[ud_first], R.ST_TOD_HOUR)[:, None]).sum(axis=1)
    tod = np.minimum(hour, 23) * 3600 + (R.uniform(s_key[ud_first], R.ST_TOD_SEC) * 3600).astype(np.int64)
    start0 = np.maximum(day.day0 + tod, ch.busy_until[s_user[ud_first]] + 600)
    s_start = np.repeat(start0, ud_n) + R.exclusive_cumsum_in_group(s_len + gap, ud_n)
    s_end = s_start + s_len
    last = ud_first + ud_n - 1
    ch.busy_until[s_user[last]] = s_end[last]
    ch.add_sessions(user=s_user, behaviour=ses.behaviour, platform=ses.platform, start=s_start,
                    steps=nst, switches=stp.switches)
    return s_start[stp.sess] + t_off, browse


def _record(ch: _Chunk, ses: _Sessions, stp: _Steps, sl: _Slates, clk: _Clicks,
            step_ts: np.ndarray, browse: np.ndarray) -> None:
    """The day's events: impressions (when logged), clicks, then a play or a skip, and the
    likes after the watch."""
    k_slate = ch.cfg.slate_size
    s_id = ch.n_sess_total + np.arange(ses.n, dtype=np.int64)
    t_plat = ses.platform[stp.sess]
    if ch.cfg.log_impressions:
        ch.buf.add(np.repeat(stp.user, k_slate), sl.item.ravel(), s_id[stp.sess][sl.step_of],
                   np.repeat(step_ts, k_slate), IMPRESSION, 1.0, None, sl.slot_pos + 1,
                   t_plat[sl.step_of])
    cstep, duration, skip, like = clk.step, clk.duration, clk.skip, clk.like
    c_user, c_sess, c_plat = stp.user[cstep], s_id[stp.sess[cstep]], t_plat[cstep]
    c_ts = step_ts[cstep] + browse.astype(np.int64)
    c_item = clk.item
    ch.buf.add(c_user, c_item, c_sess, c_ts, CLICK, 1.0, None, clk.pos + 1, c_plat)
    play = ~skip
    ch.buf.add(c_user[play], c_item[play], c_sess[play], c_ts[play] + 1, PLAY,
               clk.comp[play].astype(np.float32), duration[play], None, c_plat[play])
    ch.buf.add(c_user[skip], c_item[skip], c_sess[skip], c_ts[skip] + 1, SKIP, 1.0,
               duration[skip], None, c_plat[skip])
    ch.buf.add(c_user[like], c_item[like], c_sess[like],
               c_ts[like] + 1 + duration[like].astype(np.int64), LIKE, 1.0, None, None,
               c_plat[like])
    ch.n_sess_total += ses.n


def _bots(ch: _Chunk, day: _DayInfo) -> None:
    """Bursts of clicks on random released items by the bots that burst today."""
    cfg, users = ch.cfg, ch.users
    bots = np.flatnonzero(users.is_bot)
    b_alive = bots[users.signup_day[bots] < day.d]
    if not len(b_alive):
        return
    kb = R.derive(ch.ukey[b_alive], day.d)
    burst = R.uniform(kb, R.ST_BOT_BURST) < cfg.bot_burst_prob
    b_users, kb = b_alive[burst], kb[burst]
    size = (cfg.bot_burst_min + R.uniform(kb, R.ST_BOT_SIZE)
            * (cfg.bot_burst_max - cfg.bot_burst_min + 1)).astype(np.int64)
    rate = cfg.bot_clicks_per_minute * (0.6 + 0.8 * R.uniform(kb, R.ST_BOT_RATE))
    b_start = day.day0 + (R.uniform(kb, R.ST_BOT_START) * (DAY - 3600)).astype(np.int64)
    b_start = np.maximum(b_start, ch.busy_until[b_users] + 60)
    j = R.rank_in_group(size)
    e_key = R.derive(np.repeat(kb, size), j)
    b_ts = np.repeat(b_start, size) + np.floor(j * 60.0 / np.repeat(rate, size)).astype(np.int64)
    b_item = day.released[np.minimum((R.uniform(e_key, R.ST_BOT_ITEM) * day.n_rel).astype(np.int64),
                                     day.n_rel - 1)]
    b_sid = ch.n_sess_total + np.arange(len(b_users), dtype=np.int64)
    ch.buf.add(np.repeat(b_users, size), b_item, np.repeat(b_sid, size), b_ts, CLICK, 1.0,
               None, None, np.full(int(size.sum()), 2, dtype=np.int8))
    ch.busy_until[b_users] = b_start + np.ceil(size * 60.0 / rate).astype(np.int64)
    ch.add_sessions(user=b_users, behaviour=np.full(len(b_users), 3),
                    platform=np.full(len(b_users), 2), start=b_start, steps=size,
                    switches=np.zeros(len(b_users), np.int64))
    ch.n_sess_total += len(b_users)


def _churn(ch: _Chunk, day: _DayInfo, ses: _Sessions, stp: _Steps, clk: _Clicks) -> None:
    """6. Running totals, and the engagement of every user shown a slate today: it decays
    while the remembered click rate is below ``churn_ctr_ref``; under ``churn_floor`` the
    user is gone for good."""
    cfg, n = ch.cfg, ch.users.n
    c_user = stp.user[clk.step]
    imps = np.bincount(stp.user, minlength=n) * cfg.slate_size
    clicks = np.bincount(c_user, minlength=n)
    ch.st_sessions += np.bincount(ses.user, minlength=n)
    ch.st_imps += imps
    ch.st_clicks += clicks
    ch.st_plays += np.bincount(c_user[~clk.skip], minlength=n)
    act = np.flatnonzero(imps > 0)
    ctr = clicks[act] / imps[act]
    sat, engage = ch.sat, ch.engage
    sat[act] = (1 - cfg.churn_memory) * sat[act] + cfg.churn_memory * ctr
    rel_gap = (sat[act] - cfg.churn_ctr_ref) / cfg.churn_ctr_ref
    engage[act] = np.minimum(1.0, engage[act] * np.exp(
        cfg.churn_strength * np.where(rel_gap < 0, np.maximum(rel_gap, -1.0), 0.3 * rel_gap)))
    gone = act[ch.alive[act] & (engage[act] < cfg.churn_floor)]
    ch.alive[gone] = False
    ch.churn_day[gone] = day.d
