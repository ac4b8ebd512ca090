"""The day-by-day simulation of one chunk of users (vectorised over users, sessions, slates).

One simulated day, for every eligible user of the chunk at once:

1. sessions: Poisson(activity x weekday factor x engagement); each session gets a behaviour
   (explorer / deep-dive / comparison), a platform, a mood and a number of steps;
2. steps: a context category per step follows a per-behaviour switching chain (a loop over
   the step *position*, at most ``max_steps`` iterations, vectorised over sessions);
3. slates: ``slate_size`` items per step from the "production recommender" (context row,
   taste row, global popular, uniform exploration), de-duplicated and ranked by popularity;
4. clicks: a nonlinear cascade click model; a click leads to a play (or a skip when the
   watch is short) with a duration, and maybe a like;
5. time: steps and sessions are laid out back to back (sessions never overlap), starting at
   a platform-dependent time of day;
6. churn: each user's engagement decays when the day's click rate is below
   ``churn_ctr_ref`` and users whose engagement falls under ``churn_floor`` stop for good.

Bots emit bursts of hundreds of clicks per minute on random items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamrec.data.synthetic import _world_rng as R
from streamrec.data.synthetic._world_catalog import DAY, Catalog
from streamrec.data.synthetic._world_users import PLATFORMS, UserChunk

if TYPE_CHECKING:
    from collections.abc import Callable

    from streamrec.data.synthetic.world import WorldConfig

EVENT_NAMES = ("impression", "click", "play", "skip", "like")
IMPRESSION, CLICK, PLAY, SKIP, LIKE = range(5)
BEHAVIOURS = ("explorer", "deep_dive", "comparison", "bot")
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
    counts: dict


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
    n, n_cat, k_slate = users.n, cfg.n_categories, cfg.slate_size
    t0, t_end = cfg.start_ts, cfg.start_ts + cfg.n_days * DAY
    ukey = R.derive(R.root_key(cfg.seed, _DOMAIN_EVENTS), np.arange(users.lo, users.hi))
    taste = users.taste.astype(np.float64)
    style_scale = np.sqrt(cfg.style_dim)
    p_beh = np.cumsum([cfg.p_explorer, cfg.p_deep_dive, cfg.p_comparison])
    p_beh /= p_beh[-1]
    p_switch = np.array([cfg.switch_explorer, cfg.switch_deep_dive, cfg.switch_comparison])
    mean_steps = _STEPS_MEAN * cfg.steps_per_session

    alive = np.ones(n, dtype=bool)
    engage = np.ones(n)
    sat = np.full(n, cfg.churn_ctr_ref)
    churn_day = np.full(n, -1, dtype=np.int64)
    busy_until = np.full(n, t0, dtype=np.int64)
    st_sessions, st_imps, st_clicks, st_plays = (np.zeros(n, dtype=np.int64) for _ in range(4))

    buf = _Day()
    sess_cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "user", "behaviour", "platform", "start", "steps", "switches")}
    n_sess_total = 0
    bots = np.flatnonzero(users.is_bot)
    humans = ~users.is_bot

    for d in range(cfg.n_days):
        day0 = t0 + d * DAY
        dow = (_FIRST_WEEKDAY + d) % 7
        weekend = int(dow >= 5)
        cdf, released = cat.day_cdf(d, cfg.fresh_boost)
        n_rel = len(released)
        cum0 = np.concatenate([[0.0], cdf])
        c_lo, c_hi = cum0[cat.cat_lo], cum0[cat.cat_hi]
        if n_rel == 0:
            if on_day is not None:
                on_day()
            continue

        # ---------------------------------------------------------------- sessions (S,)
        elig = np.flatnonzero(alive & humans & (users.signup_day < d))
        kud = R.derive(ukey[elig], d)
        lam = users.activity[elig] * _WEEKDAY[dow] * engage[elig]
        ns = R.poisson(lam, R.uniform(kud, R.ST_SESSIONS), cfg.max_sessions_per_day)
        s_user = np.repeat(elig, ns)
        s_key = R.derive(np.repeat(kud, ns), R.rank_in_group(ns))
        n_s = len(s_user)
        beh = np.minimum(np.searchsorted(p_beh, R.uniform(s_key, R.ST_BEHAVIOUR), side="right"), 2)
        u_pl = R.uniform(s_key, R.ST_PLATFORM)
        plat = np.where(u_pl < 0.8, users.platform[s_user],
                        np.minimum(((u_pl - 0.8) / 0.2 * len(PLATFORMS)).astype(np.int64), 3))
        mood = R.normal(s_key, R.ST_MOOD) * _MOOD_SD
        nst = 1 + R.geometric(mean_steps[beh] - 1.0, R.uniform(s_key, R.ST_STEPS))
        nst = np.minimum(nst, cfg.max_steps)

        # ---------------------------------------------------------------- steps (T,)
        t_sess = np.repeat(np.arange(n_s), nst)
        t_idx = R.rank_in_group(nst)
        t_key = R.derive(s_key[t_sess], t_idx)
        t_user = s_user[t_sess]
        n_t = len(t_sess)
        first = R.group_starts(nst)
        ctx = np.empty(n_t, dtype=np.int64)
        c0 = R.categorical_rows(taste[s_user], R.uniform(s_key, R.ST_CTX0))
        ctx[first] = c0
        members = np.stack([c0, cat.cat_similar[c0, 0], cat.cat_similar[c0, 1]], axis=1)
        n_members = 2 + (R.uniform(s_key, R.ST_CMP_SIZE) < 0.5)
        member = np.zeros(n_s, dtype=np.int64)
        switches = np.zeros(n_s, dtype=np.int64)
        u_sw = R.uniform(t_key, R.ST_SWITCH)
        u_to = R.uniform(t_key, R.ST_SWITCH_TO)
        u_mix = R.uniform(t_key, R.ST_EXPLORE_MIX)
        for t in range(1, int(nst.max(initial=1))):
            s_sel = np.flatnonzero(nst > t)
            rows = first[s_sel] + t
            prev = ctx[rows - 1]
            b = beh[s_sel]
            new = prev.copy()
            sw = u_sw[rows] < p_switch[b]
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

        # ---------------------------------------------------------------- slates (T, K)
        slot_pos = np.tile(np.arange(k_slate), n_t)
        sk = R.derive(np.repeat(t_key, k_slate), slot_pos)
        kind = np.searchsorted(_SLOT_CUM, R.uniform(sk, R.ST_SLOT_KIND), side="right")
        kind = np.minimum(kind, 3)
        step_of = np.repeat(np.arange(n_t), k_slate)
        slot_cat = ctx[step_of]
        tk = kind == 1
        if tk.any():
            est = _TASTE_KNOWN * taste[t_user[step_of[tk]]] + (1 - _TASTE_KNOWN) * cat.cat_prob
            slot_cat[tk] = R.categorical_rows(est, R.uniform(sk[tk], R.ST_SLOT_CAT))
        u_item = R.uniform(sk, R.ST_SLOT_ITEM)
        x = np.where(kind == 2, u_item * cdf[-1],
                     c_lo[slot_cat] + u_item * (c_hi[slot_cat] - c_lo[slot_cat]))
        pos = np.minimum(np.searchsorted(cdf, x, side="right"), len(cdf) - 1)
        item = cat.by_cat[pos]
        ex = kind == 3
        item[ex] = released[np.minimum((u_item[ex] * n_rel).astype(np.int64), n_rel - 1)]
        item = item.reshape(n_t, k_slate)
        # de-duplicate inside a slate (duplicates replaced by an exploration item)
        order = np.argsort(item, axis=1, kind="stable")
        srt = np.take_along_axis(item, order, axis=1)
        dup_sorted = np.zeros_like(srt, dtype=bool)
        dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
        dup = np.zeros_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        if dup.any():
            u_d = R.uniform(sk.reshape(n_t, k_slate)[dup], R.ST_DEDUP)
            item[dup] = released[np.minimum((u_d * n_rel).astype(np.int64), n_rel - 1)]
        # the production ranker: popularity, the browsed row first, some noise
        gumbel = -np.log(-np.log(R.uniform(sk, R.ST_SLOT_RANK))).reshape(n_t, k_slate)
        icat = cat.category[item]
        score = np.log(cat.popularity[item]) + 1.5 * (icat == ctx[:, None]) + gumbel
        rank = np.argsort(-score, axis=1, kind="stable")
        item = np.take_along_axis(item, rank, axis=1)
        icat = np.take_along_axis(icat, rank, axis=1)

        # ---------------------------------------------------------------- clicks (cascade)
        tu_rep = np.repeat(t_user, k_slate)
        flat_item = item.ravel()
        flat_cat = icat.ravel()
        rel = taste[tu_rep, flat_cat] * n_cat
        sdot = np.einsum("ij,ij->i", users.style[tu_rep], cat.style[flat_item]) * style_scale
        aff = _W_TASTE * np.log(rel + 0.05) + _W_STYLE * sdot
        q = cat.quality[flat_item] - 0.5
        fresh = np.exp(-np.maximum(d - cat.available_day[flat_item], 0) / 7.0)
        t_plat = plat[t_sess]
        logit = (_B0 + aff + _W_CTX * (flat_cat == ctx[step_of]) + _W_Q * q
                 + _W_INT * q * np.maximum(aff, 0.0) + _W_FRESH * fresh
                 + mood[t_sess][step_of] - _POS_BIAS[t_plat][step_of] * np.log1p(slot_pos))
        clicked = (R.uniform(sk, R.ST_CLICK) < _sigmoid(logit)).reshape(n_t, k_slate)
        has = clicked.any(axis=1)
        cpos = np.argmax(clicked, axis=1)
        cstep = np.flatnonzero(has)
        cslot = cstep * k_slate + cpos[cstep]
        c_item = flat_item[cslot]
        c_aff = aff[cslot]
        c_q = q[cslot]
        length = cat.length[c_item].astype(np.float64)
        c_key = t_key[cstep]
        comp = _sigmoid(-1.6 + 0.8 * c_aff + 2.5 * c_q - 0.35 * np.log(length / 1200.0)
                        + 1.3 * R.normal(c_key, R.ST_COMPLETION))
        duration = np.minimum(np.maximum(np.round(comp * length), 1.0), length)
        skip = comp < _SKIP_RATIO
        p_like = _sigmoid(-5.3 + 3.0 * comp + 3.0 * c_q + 0.5 * c_aff)
        like = ~skip & (R.uniform(c_key, R.ST_LIKE) < p_like)

        # ---------------------------------------------------------------- time layout
        browse = np.ceil(3.0 + R.exponential(c_key, R.ST_BROWSE, 4.0) * (1 + cpos[cstep]))
        step_len = np.ceil(20.0 + R.exponential(t_key, R.ST_GAP_STEP, 25.0))
        step_len[cstep] = browse + 1.0 + duration + 10.0 + np.ceil(
            R.exponential(c_key, R.ST_GAP_STEP, 20.0))
        step_len = step_len.astype(np.int64)
        t_off = R.exclusive_cumsum_in_group(step_len, nst)
        s_len = np.bincount(t_sess, weights=step_len, minlength=n_s).astype(np.int64)
        gap = (600.0 + R.exponential(s_key, R.ST_GAP_SESS, 7200.0)).astype(np.int64)
        ud_n = ns[ns > 0]
        ud_first = R.group_starts(ud_n)
        hour_cdf = _HOUR_CDF[weekend][plat[ud_first]]
        hour = (hour_cdf < R.uniform(s_key[ud_first], R.ST_TOD_HOUR)[:, None]).sum(axis=1)
        tod = np.minimum(hour, 23) * 3600 + (R.uniform(s_key[ud_first], R.ST_TOD_SEC) * 3600).astype(np.int64)
        start0 = np.maximum(day0 + tod, busy_until[s_user[ud_first]] + 600)
        s_start = np.repeat(start0, ud_n) + R.exclusive_cumsum_in_group(s_len + gap, ud_n)
        s_end = s_start + s_len
        last = ud_first + ud_n - 1
        busy_until[s_user[last]] = s_end[last]
        step_ts = s_start[t_sess] + t_off

        # ---------------------------------------------------------------- events of the day
        s_id = n_sess_total + np.arange(n_s, dtype=np.int64)
        if cfg.log_impressions:
            buf.add(tu_rep, flat_item, s_id[t_sess][step_of], np.repeat(step_ts, k_slate),
                    IMPRESSION, 1.0, None, slot_pos + 1, t_plat[step_of])
        c_user, c_sess, c_plat = t_user[cstep], s_id[t_sess[cstep]], t_plat[cstep]
        c_ts = step_ts[cstep] + browse.astype(np.int64)
        buf.add(c_user, c_item, c_sess, c_ts, CLICK, 1.0, None, cpos[cstep] + 1, c_plat)
        play = ~skip
        buf.add(c_user[play], c_item[play], c_sess[play], c_ts[play] + 1, PLAY,
                comp[play].astype(np.float32), duration[play], None, c_plat[play])
        buf.add(c_user[skip], c_item[skip], c_sess[skip], c_ts[skip] + 1, SKIP, 1.0,
                duration[skip], None, c_plat[skip])
        buf.add(c_user[like], c_item[like], c_sess[like],
                c_ts[like] + 1 + duration[like].astype(np.int64), LIKE, 1.0, None, None,
                c_plat[like])
        for key, val in (("user", s_user), ("behaviour", beh), ("platform", plat),
                         ("start", s_start), ("steps", nst), ("switches", switches)):
            sess_cols[key].append(val)
        n_sess_total += n_s

        # ---------------------------------------------------------------- bots
        b_alive = bots[users.signup_day[bots] < d]
        if len(b_alive):
            kb = R.derive(ukey[b_alive], d)
            burst = R.uniform(kb, R.ST_BOT_BURST) < cfg.bot_burst_prob
            b_users, kb = b_alive[burst], kb[burst]
            size = (cfg.bot_burst_min + R.uniform(kb, R.ST_BOT_SIZE)
                    * (cfg.bot_burst_max - cfg.bot_burst_min + 1)).astype(np.int64)
            rate = cfg.bot_clicks_per_minute * (0.6 + 0.8 * R.uniform(kb, R.ST_BOT_RATE))
            b_start = day0 + (R.uniform(kb, R.ST_BOT_START) * (DAY - 3600)).astype(np.int64)
            b_start = np.maximum(b_start, busy_until[b_users] + 60)
            j = R.rank_in_group(size)
            e_key = R.derive(np.repeat(kb, size), j)
            b_ts = np.repeat(b_start, size) + np.floor(j * 60.0 / np.repeat(rate, size)).astype(np.int64)
            b_item = released[np.minimum((R.uniform(e_key, R.ST_BOT_ITEM) * n_rel).astype(np.int64),
                                         n_rel - 1)]
            b_sid = n_sess_total + np.arange(len(b_users), dtype=np.int64)
            buf.add(np.repeat(b_users, size), b_item, np.repeat(b_sid, size), b_ts, CLICK, 1.0,
                    None, None, np.full(int(size.sum()), 2, dtype=np.int8))
            busy_until[b_users] = b_start + np.ceil(size * 60.0 / rate).astype(np.int64)
            for key, val in (("user", b_users), ("behaviour", np.full(len(b_users), 3)),
                             ("platform", np.full(len(b_users), 2)), ("start", b_start),
                             ("steps", size), ("switches", np.zeros(len(b_users), np.int64))):
                sess_cols[key].append(val)
            n_sess_total += len(b_users)

        # ---------------------------------------------------------------- churn
        imps = np.bincount(t_user, minlength=n) * k_slate
        clicks = np.bincount(c_user, minlength=n)
        st_sessions += np.bincount(s_user, minlength=n)
        st_imps += imps
        st_clicks += clicks
        st_plays += np.bincount(c_user[play], minlength=n)
        act = np.flatnonzero(imps > 0)
        ctr = clicks[act] / imps[act]
        sat[act] = (1 - cfg.churn_memory) * sat[act] + cfg.churn_memory * ctr
        rel_gap = (sat[act] - cfg.churn_ctr_ref) / cfg.churn_ctr_ref
        engage[act] = np.minimum(1.0, engage[act] * np.exp(
            cfg.churn_strength * np.where(rel_gap < 0, np.maximum(rel_gap, -1.0), 0.3 * rel_gap)))
        gone = act[alive[act] & (engage[act] < cfg.churn_floor)]
        alive[gone] = False
        churn_day[gone] = d
        if on_day is not None:
            on_day()

    ev = buf.concat()
    sess = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in sess_cols.items()}
    return _finish(cfg, users, ukey, ev, sess, event_offset, session_offset, t0, t_end,
                   dict(churn_day=churn_day, sessions=st_sessions, impressions=st_imps,
                        clicks=st_clicks, plays=st_plays))


def _finish(cfg: WorldConfig, users: UserChunk, ukey: np.ndarray, ev: dict[str, np.ndarray],
            sess: dict[str, np.ndarray], event_offset: int, session_offset: int, t0: int,
            t_end: int, stats: dict[str, np.ndarray]) -> ChunkResult:
    """Cut at the window end, sort by (user, time), assign ids, inject anomalies, to Arrow."""
    n = users.n
    keep = ev["ts"] < t_end
    s_keep = sess["start"] < t_end
    # session ids: by (user, start) — chunk-size independent
    s_idx = np.flatnonzero(s_keep)
    s_order = s_idx[np.lexsort((sess["start"][s_idx], sess["user"][s_idx]))]
    s_gid = np.full(len(sess["start"]), -1, dtype=np.int64)
    s_gid[s_order] = session_offset + 1 + np.arange(len(s_order))

    span = np.int64(cfg.n_days * DAY)
    idx = np.flatnonzero(keep)
    key = ev["user"][idx].astype(np.int64) * span + (ev["ts"][idx] - t0)
    idx = idx[np.argsort(key, kind="stable")]
    cols = {k: v[idx] for k, v in ev.items()}
    m = len(idx)
    cols["event_id"] = event_offset + 1 + np.arange(m, dtype=np.int64)

    # anomalies, keyed by (user, row rank inside the user): chunk-size independent
    per_user = np.bincount(cols["user"], minlength=n)
    r_key = R.derive(ukey[cols["user"]], R.rank_in_group(per_user))
    in_block0 = (users.lo + cols["user"]) < cfg.block_users
    is_play = cols["event"] == PLAY
    u_neg = R.uniform(r_key, R.ST_NEGATIVE)
    neg = is_play & (u_neg < cfg.negative_duration_rate)
    u_dup = R.uniform(r_key, R.ST_DUPLICATE)
    dup = u_dup < cfg.duplicate_rate
    if cfg.guarantee_anomalies and users.lo == 0:
        for mask, u, rate, elig in ((neg, u_neg, cfg.negative_duration_rate, is_play & in_block0),
                                    (dup, u_dup, cfg.duplicate_rate, in_block0)):
            if rate > 0 and elig.any():
                cand = np.flatnonzero(elig)
                mask[cand[np.argmin(u[cand])]] = True
    cols["duration"][neg] *= -1.0
    take = np.repeat(np.arange(m), 1 + dup.astype(np.int64))
    cols = {k: v[take] for k, v in cols.items()}

    user_id = users.lo + 1 + cols["user"].astype(np.int64)
    is_bot_row = users.is_bot[cols["user"]]
    null_dur = np.isnan(cols["duration"])
    null_pos = cols["position"] < 0
    events = pa.table({
        "event_id": pa.array(cols["event_id"]),
        "user_id": pa.array(user_id),
        "item_id": pa.array(cols["item"].astype(np.int64) + 1),
        "session_id": pa.array(s_gid[cols["sess"]]),
        "timestamp": pa.array(cols["ts"]),
        "event": _dict_strings(cols["event"], EVENT_NAMES),
        "value": pa.array(cols["value"]),
        "duration": pa.array(cols["duration"], mask=null_dur),
        "position": pa.array(cols["position"], mask=null_pos),
        "platform": _dict_strings(cols["platform"], PLATFORMS),
    })

    sb = sess["behaviour"][s_order]
    sessions = pa.table({
        "session_id": pa.array(s_gid[s_order]),
        "user_id": pa.array(users.lo + 1 + sess["user"][s_order].astype(np.int64)),
        "behaviour": _dict_strings(sb, BEHAVIOURS),
        "platform": _dict_strings(sess["platform"][s_order], PLATFORMS),
        "start_ts": pa.array(sess["start"][s_order].astype(np.int64)),
        "n_steps": pa.array(sess["steps"][s_order].astype(np.int32)),
        "n_switches": pa.array(sess["switches"][s_order].astype(np.int32)),
    })
    churned = stats["churn_day"] >= 0
    user_truth = pa.table({
        "user_id": pa.array(np.arange(users.lo + 1, users.hi + 1, dtype=np.int64)),
        "is_bot": pa.array(users.is_bot),
        "churned": pa.array(churned),
        "churn_day": pa.array(stats["churn_day"].astype(np.int32), mask=~churned),
        "sessions": pa.array(stats["sessions"]),
        "impressions": pa.array(stats["impressions"]),
        "clicks": pa.array(stats["clicks"]),
        "plays": pa.array(stats["plays"]),
    })

    n_beh = np.bincount(sb, minlength=4)
    sw_num = np.bincount(sb, weights=sess["switches"][s_order], minlength=4)
    sw_den = np.bincount(sb, weights=np.maximum(sess["steps"][s_order] - 1, 0), minlength=4)
    counts = {
        "rows": len(take),
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
    return ChunkResult(events=events, sessions=sessions, user_truth=user_truth, counts=counts)


def _dict_strings(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    """Arrow string array from small integer codes (no per-row Python objects)."""
    arr = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                         pa.array(list(names), pa.string()))
    return pc.cast(arr, pa.string())
