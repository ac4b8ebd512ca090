"""The 20 StreamRec click features, point-in-time correct, for every impression.

:func:`impressions_from_events` / :func:`impressions_from_world` turn an event log into one
row per impression with a click label; :func:`streamrec_features` computes the 20 features of
:data:`FEATURES` for each row from the events **strictly before** the impression's timestamp
(so the other impressions of the same slate, which share its timestamp, are not seen either);
:func:`streamrec_impressions` does both for a synthetic world. Encode the frame for CTR models
with :func:`streamrec_encoder` (a :class:`~streamrec.features.encoders.CTREncoder` fitted on
train rows only) and :func:`~streamrec.features.encoders.to_ctr_data`.

Conventions
-----------
* **Label.** A click is attributed to the *latest* impression of the same (user, item,
  session) at or before the click's time (polars ``join_asof``, backward); that impression is
  labelled 1, every other impression 0. An item impressed twice in a session and clicked after
  the second showing makes the second impression positive, not the first. Clicks without an
  impression (bots) label nothing.
* **Point in time.** Every count, rate and history uses the events with ``timestamp < t``
  (strictly) of the impression at ``t``. Static attributes (tier, sign-up time, release time,
  length, category, creator) are known in advance and read from the users/items tables; the
  impression's own platform is known at request time.
* **Collaborative score and its cutoff.** An implicit ALS model (the registry's ``ials``)
  is trained on the clicks with ``timestamp < mf_cutoff``, and only impressions with
  ``timestamp >= mf_cutoff`` are returned, so every MF training event is strictly before
  every impression it scores. By default ``mf_cutoff`` is the time ``mf_share`` (0.3) of the
  way from the first to the last impression (:func:`resolve_mf_cutoff`; it depends on the
  impressions only, never on later events). Pass ``mf_cutoff`` at or before the first
  impression to keep every row (the score is then 0: an empty model).
* **Smoothing.** Rates are additive-prior means, ``(hits + w * prior) / (trials + w)``, with
  fixed priors from :class:`FeatureConfig` (not fitted on the data, so no future leaks into a
  prior); a first impression gets the prior.

The features
------------
"Past" = the events with ``timestamp < t``; "w" a prior weight and "p" a prior of
:class:`FeatureConfig`; logs are natural.

==============================  =============================================================
user_activity_level             past events of the user / distinct (UTC) days with one
user_session_count              distinct sessions of the user with a past event
user_avg_session_length         minutes: sum over those sessions of (last - first past event)
                                / their number (the current session truncated at ``t``)
user_content_diversity          entropy (nats) of the categories of the user's past plays
user_recency                    log1p(seconds since the user's previous event), with none
                                log1p(seconds since sign-up)
user_subscription_tier          users.tier (String)
user_platform                   the impression's platform, else users.platform (String)
user_tenure_days                days since users.signup_ts (>= 0)
item_popularity                 log1p(past plays of the item, all users)
item_freshness                  days since items.release_ts (>= 0)
item_creator_reputation         (past clicks + w p) / (past impressions + w) over the
                                creator's items
item_length_minutes             items.length_seconds / 60 (null when unknown)
item_engagement_rate            (past clicks + w p) / (past impressions + w) of the item
item_completion_rate            (sum of past completions + w p_c) / (past plays + w)
item_trending_score             log((plays in [t - 1 d, t) + 1) / (plays in [t - 7 d, t) / 7 + 1))
category_match                  (user's past plays in the item's category + w_c / K)
                                / (user's past plays + w_c), K categories
time_of_day_sin, _cos           sin / cos of 2 pi (seconds since UTC midnight) / 86400
historical_ctr_user_category    (user's past clicks in the category + w_u p)
                                / (user's past impressions in the category + w_u)
collaborative_score             user . item factors of ials on clicks before ``mf_cutoff``
                                (0 for a user or item it never saw)
==============================  =============================================================

The events are used as given: deduplicate them (:func:`streamrec_impressions` does) and drop
bots first (``streamrec.data.clean``) if their clicks should not count.

Everything is vectorised: each keyed counter is a per-key running sum over events sorted by
(key, time), queried with ``numpy.searchsorted`` (see :class:`streamrec.features._timeline.Timeline`); no Python loop per
impression, user or item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from streamrec.features._timeline import TS_BITS, Timeline, int_keys, last_items, pair_keys
from streamrec.features.encoders import CTREncoder

if TYPE_CHECKING:
    from streamrec.data.synthetic.world import World

__all__ = [
    "CATEGORICAL_FEATURES",
    "DENSE_FEATURES",
    "FEATURES",
    "LOG_FEATURES",
    "FeatureConfig",
    "impressions_from_events",
    "impressions_from_world",
    "resolve_mf_cutoff",
    "streamrec_encoder",
    "streamrec_features",
    "streamrec_impressions",
]

#: the 20 StreamRec features, in output order
FEATURES: tuple[str, ...] = (
    "user_activity_level",
    "user_session_count",
    "user_avg_session_length",
    "user_content_diversity",
    "user_recency",
    "user_subscription_tier",
    "user_platform",
    "user_tenure_days",
    "item_popularity",
    "item_freshness",
    "item_creator_reputation",
    "item_length_minutes",
    "item_engagement_rate",
    "item_completion_rate",
    "item_trending_score",
    "category_match",
    "time_of_day_sin",
    "time_of_day_cos",
    "historical_ctr_user_category",
    "collaborative_score",
)
#: the two categorical (string) features
CATEGORICAL_FEATURES: tuple[str, ...] = ("user_subscription_tier", "user_platform")
#: the 18 numeric features
DENSE_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f not in CATEGORICAL_FEATURES)
#: heavy-tailed numeric features that :func:`streamrec_encoder` passes through ``log1p``
LOG_FEATURES: tuple[str, ...] = ("user_activity_level", "user_session_count",
                                 "user_avg_session_length", "user_tenure_days",
                                 "item_freshness", "item_length_minutes")

DAY = 86_400


@dataclass(frozen=True)
class FeatureConfig:
    """Fixed constants of the features (priors, windows, the MF model).

    Parameters
    ----------
    prior_ctr : float
        Prior click-through rate of the item, creator and user x category rates.
    prior_completion : float
        Prior mean completion ratio of a play.
    item_prior_weight : float
        Pseudo-impressions (pseudo-plays) of the item and creator rates.
    user_prior_weight : float
        Pseudo-impressions of ``historical_ctr_user_category``.
    category_prior_weight : float
        Pseudo-plays of ``category_match`` (spread evenly over the categories).
    trending_short, trending_long : int
        Windows (seconds) of ``item_trending_score``:
        ``log((plays_short + 1) / (plays_long * short / long + 1))``.
    mf_share : float
        Default ``mf_cutoff``: this share of the way from the first to the last impression.
    mf_factors, mf_iterations : int
    mf_regularization : float
        Hyperparameters of the ``ials`` model behind ``collaborative_score``.
    history_event : str
        The event type of the DIN history (the last clicked items by default).
    seed : int
        Seed of the MF fit.
    """

    prior_ctr: float = 0.1
    prior_completion: float = 0.5
    item_prior_weight: float = 20.0
    user_prior_weight: float = 5.0
    category_prior_weight: float = 1.0
    trending_short: int = DAY
    trending_long: int = 7 * DAY
    mf_share: float = 0.3
    mf_factors: int = 32
    mf_iterations: int = 10
    mf_regularization: float = 10.0
    history_event: str = "click"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.prior_ctr < 1.0 or not 0.0 < self.prior_completion <= 1.0:
            raise ValueError("FeatureConfig: prior_ctr must lie in (0, 1) and prior_completion "
                             "in (0, 1]")
        for name in ("item_prior_weight", "user_prior_weight", "category_prior_weight"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FeatureConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.trending_short < self.trending_long:
            raise ValueError("FeatureConfig: need 0 < trending_short < trending_long (seconds)")
        if not 0.0 <= self.mf_share < 1.0:
            raise ValueError(f"FeatureConfig.mf_share must lie in [0, 1), got {self.mf_share}")


# ---------------------------------------------------------------------------- impressions
def impressions_from_events(events: pl.DataFrame, *, dedupe: bool = True) -> pl.DataFrame:
    """One row per impression event with its click label (see the module docstring).

    Parameters
    ----------
    events : polars DataFrame
        Needs user_id, item_id, session_id, timestamp and event (``"impression"`` /
        ``"click"`` rows are used); event_id, platform and position are carried when present.
    dedupe : bool
        Drop exact duplicate rows first (same ``event_id`` when there is one).

    Returns
    -------
    polars DataFrame, shape (n_impressions, k)
        [event_id], user_id, item_id, session_id, timestamp, [platform], [position], label
        (Int8 0/1), sorted by (timestamp, user_id, position).
    """
    _require(events, ("user_id", "item_id", "session_id", "timestamp", "event"), "events")
    if dedupe:
        events = _dedupe(events)
    keys = ["user_id", "item_id", "session_id"]
    carry = [c for c in ("event_id", "platform", "position") if c in events.columns]
    imp = (events.filter(pl.col("event") == "impression")
           .select([*(["event_id"] if "event_id" in carry else []), *keys, "timestamp",
                    *[c for c in carry if c != "event_id"]])
           .with_row_index("__row"))
    clicks = (events.filter(pl.col("event") == "click").select([*keys, "timestamp"])
              .sort("timestamp"))
    # each click points at the latest impression of its (user, item, session) at or before it
    shown = imp.select([*keys, "timestamp", "__row"]).sort("timestamp")
    hit = clicks.join_asof(shown, on="timestamp", by=keys, strategy="backward",
                           check_sortedness=False)
    clicked = hit["__row"].drop_nulls().unique()
    order = ["timestamp", "user_id"] + (["position"] if "position" in imp.columns else [])
    return (imp.with_columns(label=pl.col("__row").is_in(clicked.implode()).cast(pl.Int8))
            .drop("__row").sort(order, maintain_order=True))


def impressions_from_world(world: World, *, dedupe: bool = True) -> pl.DataFrame:
    """:func:`impressions_from_events` of a synthetic world's event log."""
    return impressions_from_events(world.events, dedupe=dedupe)


def resolve_mf_cutoff(impressions: pl.DataFrame, share: float = 0.3) -> int:
    """The default ``mf_cutoff``: ``t_first + share * (t_last - t_first)`` over the
    impressions' timestamps (int seconds; depends on the impressions only)."""
    ts = impressions["timestamp"]
    if ts.len() == 0:
        raise ValueError("resolve_mf_cutoff: no impressions")
    lo, hi = int(ts.min()), int(ts.max())
    return lo + int(np.floor(share * (hi - lo)))


# ---------------------------------------------------------------------------- features
def streamrec_features(events: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                       impressions: pl.DataFrame, *, mf_cutoff: int | None = None,
                       history_len: int = 20, config: FeatureConfig | None = None,
                       ) -> pl.DataFrame:
    """The 20 features of :data:`FEATURES` for every impression at or after ``mf_cutoff``.

    Parameters
    ----------
    events : polars DataFrame
        The event log (user_id, item_id, session_id, timestamp, event, value); deduplicate it
        first (:func:`streamrec_impressions` does). Only rows strictly before an
        impression's timestamp enter its features, so later events may be present.
    users : polars DataFrame
        user_id (unique), tier, platform, signup_ts (s). Latent columns are ignored.
    items : polars DataFrame
        item_id (unique), category, creator_id, length_seconds, release_ts (s).
    impressions : polars DataFrame
        user_id, item_id, timestamp, [label], [platform], [session_id], [position]
        (e.g. from :func:`impressions_from_events`).
    mf_cutoff : int, optional
        Clicks before it train the MF model of ``collaborative_score``; only impressions at
        or after it are returned. Default: :func:`resolve_mf_cutoff` with
        ``config.mf_share``.
    history_len : int
        Length L of the ``history`` column (0: no history column).
    config : FeatureConfig, optional

    Returns
    -------
    polars DataFrame, shape (n, 24 or 25)
        user_id, item_id, timestamp, [label], [session_id], [position], the 20 features
        (Float64, but the two String categoricals), and ``history``: List[Int64] of the last
        ``history_len`` item ids of ``config.history_event`` events strictly before the
        impression, oldest first. Rows keep the order of ``impressions``. Nulls only where a
        source attribute is missing (sign-up time, release time, length, tier, platform).
    """
    cfg = config or FeatureConfig()
    _check_inputs(events, users, items, impressions, history_len)
    cutoff = resolve_mf_cutoff(impressions, cfg.mf_share) if mf_cutoff is None else int(mf_cutoff)
    imp = impressions.filter(pl.col("timestamp") >= cutoff)
    if imp.height == 0:
        raise ValueError(f"no impression at or after mf_cutoff={cutoff}; lower mf_cutoff")
    k = _Keyed.of(events, items, imp)
    out: dict[str, np.ndarray] = {}
    prev_t = _user_features(k, cfg, out)
    _item_features(k, cfg, out)
    angle = 2.0 * np.pi * (k.q["timestamp"].to_numpy().astype(np.int64) % DAY) / DAY
    out["time_of_day_sin"] = np.sin(angle)
    out["time_of_day_cos"] = np.cos(angle)
    # MF trained strictly before the cutoff
    out["collaborative_score"] = _collaborative(k.ev, imp, cutoff, cfg)

    frame = _static_features(imp, users, items, k.q_t + k.t0, prev_t, k.t0)
    frame = frame.with_columns(
        [pl.Series(name, np.asarray(out[name], dtype=np.float64)) for name in out])
    keep = [c for c in ("user_id", "item_id", "timestamp", "label", "session_id", "position")
            if c in imp.columns]
    cols = [*keep, *FEATURES]
    if history_len:
        hist = last_items(k.ev, k.ev_u, k.ev_t, k.q_u, k.q_t, history_len, cfg.history_event)
        frame = frame.with_columns(pl.Series("history", hist))
        cols.append("history")
    return frame.select(cols)


def streamrec_impressions(world: World, *, history_len: int = 20, mf_cutoff: int | None = None,
                          config: FeatureConfig | None = None) -> pl.DataFrame:
    """Impressions of ``world`` with their labels and the 20 features (one call).

    Deduplicates the event log, labels the impressions (:func:`impressions_from_events`) and
    computes :func:`streamrec_features` (rows at or after the MF cutoff only).

    Returns
    -------
    polars DataFrame
        See :func:`streamrec_features`.
    """
    events = _dedupe(world.events)
    imp = impressions_from_events(events, dedupe=False)
    return streamrec_features(events, world.users, world.items, imp, mf_cutoff=mf_cutoff,
                              history_len=history_len, config=config)


def streamrec_encoder(train: pl.DataFrame, *, ids: bool = True, user_hash_buckets: int = 4096,
                      bins: dict[str, int] | None = None, min_count: int = 1) -> CTREncoder:
    """A :class:`CTREncoder` for a :func:`streamrec_features` frame, fitted on ``train`` only.

    Dense: the 18 numeric features (:data:`LOG_FEATURES` through ``log1p``), standardised.
    Categorical: tier and platform; with ``ids`` also ``item_id`` (levels seen in train, the
    code space of the ``history`` column, ``schema.item_field``) and ``user_id`` hashed into
    ``user_hash_buckets`` buckets (unseen users get a stable bucket, not an unknown code).

    Parameters
    ----------
    train : polars DataFrame
        The train rows of a :func:`streamrec_features` frame.
    ids : bool
    user_hash_buckets : int
    bins : dict of str to int, optional
        Extra quantile-bucket fields ``<feature>_bucket`` (feature -> number of buckets).
    min_count : int
        Categorical levels seen fewer times in train map to the unknown code 0.
    """
    cats = list(CATEGORICAL_FEATURES)
    hashed: dict[str, int] = {}
    if ids:
        cats += ["item_id", "user_id"]
        hashed["user_id"] = user_hash_buckets
    has_history = "history" in train.columns
    return CTREncoder.fit(
        train, dense=DENSE_FEATURES, categorical=cats, log=LOG_FEATURES, bins=bins or {},
        hash_buckets=hashed, history="history" if has_history and ids else None,
        item_field="item_id" if ids else None, min_count=min_count)


# ---------------------------------------------------------------------------- internals
def _check_inputs(events: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                  impressions: pl.DataFrame, history_len: int) -> None:
    _require(events, ("user_id", "item_id", "session_id", "timestamp", "event", "value"),
             "events")
    _require(users, ("user_id", "tier", "platform", "signup_ts"), "users")
    _require(items, ("item_id", "category", "creator_id", "length_seconds", "release_ts"),
             "items")
    _require(impressions, ("user_id", "item_id", "timestamp"), "impressions")
    if history_len < 0:
        raise ValueError(f"history_len must be >= 0, got {history_len}")
    for name, frame, key in (("users", users, "user_id"), ("items", items, "item_id")):
        if frame[key].n_unique() != frame.height:
            raise ValueError(f"{name}.{key}: ids must be unique (deduplicate the table)")
    if impressions.height == 0:
        raise ValueError("streamrec_features: no impressions")


@dataclass(frozen=True)
class _Keyed:
    """The events (``ev``) and the impressions queried (``q``) as integer keys and times
    relative to ``t0``, with the events' kinds as 0/1 columns."""

    ev: pl.DataFrame
    q: pl.DataFrame
    t0: int
    n_categories: int
    ev_u: np.ndarray
    q_u: np.ndarray
    ev_i: np.ndarray
    q_i: np.ndarray
    ev_t: np.ndarray
    q_t: np.ndarray
    ev_uc: np.ndarray
    q_uc: np.ndarray
    is_imp: np.ndarray
    is_click: np.ndarray
    is_play: np.ndarray
    completion: np.ndarray

    @classmethod
    def of(cls, events: pl.DataFrame, items: pl.DataFrame, imp: pl.DataFrame) -> _Keyed:
        item_meta = _item_meta(items)
        n_categories = max(int(item_meta["__cat"].max() or 0), 1)
        ev = _event_frame(events, item_meta)
        q = (imp.select("user_id", "item_id", "timestamp")
             .join(item_meta, on="item_id", how="left", maintain_order="left")
             .with_columns(pl.col("__cat", "__creator").fill_null(0)))
        t0 = min(int(ev["timestamp"].min()), int(q["timestamp"].min())) if ev.height else int(
            q["timestamp"].min())
        if ev.height and int(ev["timestamp"].max()) - t0 >= 1 << TS_BITS:
            raise ValueError("events.timestamp: the window spans more than 2**34 s; are the "
                             "timestamps in seconds?")
        ev_u, q_u = int_keys(ev["user_id"], q["user_id"], "user_id")
        ev_i, q_i = int_keys(ev["item_id"], q["item_id"], "item_id")
        ev_cat = ev["__cat"].to_numpy().astype(np.int64)
        q_cat = q["__cat"].to_numpy().astype(np.int64)
        ev_uc, q_uc = pair_keys(ev_u, ev_cat, q_u, q_cat, n_categories + 1)
        is_play = ev["__play"].to_numpy().astype(np.float64)
        completion = np.where(is_play > 0, ev["value"].to_numpy().astype(np.float64), 0.0)
        return cls(ev, q, t0, n_categories, ev_u, q_u, ev_i, q_i,
                   ev["timestamp"].to_numpy().astype(np.int64) - t0,
                   q["timestamp"].to_numpy().astype(np.int64) - t0, ev_uc, q_uc,
                   ev["__imp"].to_numpy().astype(np.float64),
                   ev["__click"].to_numpy().astype(np.float64), is_play,
                   np.nan_to_num(completion))


def _user_features(k: _Keyed, cfg: FeatureConfig, out: dict[str, np.ndarray]) -> np.ndarray:
    """Activity, sessions, diversity and the user x category features into ``out``; the
    relative time of each query's previous event of the user (-1: none)."""
    tl_user = Timeline(k.ev_u, k.ev_t, _user_event_values(k.ev, k.ev_u, k.ev_uc))
    lo, hi, _ = tl_user.bounds(k.q_u, k.q_t)
    n_ev, n_sess, n_days, gap_sum, n_play, s_nlogn = tl_user.prefix(lo, hi).T
    out["user_activity_level"] = n_ev / np.maximum(n_days, 1.0)
    out["user_session_count"] = n_sess
    out["user_avg_session_length"] = gap_sum / np.maximum(n_sess, 1.0) / 60.0
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.log(np.maximum(n_play, 1.0)) - s_nlogn / np.maximum(n_play, 1.0)
    out["user_content_diversity"] = np.where(n_play > 0, np.maximum(entropy, 0.0), 0.0)
    tl_uc = Timeline(k.ev_uc, k.ev_t, np.stack([k.is_imp, k.is_click, k.is_play], axis=1))
    imp_uc, click_uc, play_uc = tl_uc.prefix(*tl_uc.bounds(k.q_uc, k.q_t)[:2]).T
    w_c = cfg.category_prior_weight
    out["category_match"] = (play_uc + w_c / k.n_categories) / (n_play + w_c)
    w_u = cfg.user_prior_weight
    out["historical_ctr_user_category"] = (click_uc + w_u * cfg.prior_ctr) / (imp_uc + w_u)
    return tl_user.last_time(lo, hi)


def _item_features(k: _Keyed, cfg: FeatureConfig, out: dict[str, np.ndarray]) -> None:
    """Popularity, engagement, completion, trend and the creator's reputation into ``out``."""
    tl_item = Timeline(k.ev_i, k.ev_t,
                       np.stack([k.is_imp, k.is_click, k.is_play, k.completion], axis=1))
    lo_i, hi_i, q_order = tl_item.bounds(k.q_i, k.q_t)
    imp_i, click_i, play_i, comp_i = tl_item.prefix(lo_i, hi_i).T
    w_i = cfg.item_prior_weight
    out["item_popularity"] = np.log1p(play_i)
    out["item_engagement_rate"] = (click_i + w_i * cfg.prior_ctr) / (imp_i + w_i)
    out["item_completion_rate"] = (comp_i + w_i * cfg.prior_completion) / (play_i + w_i)
    # plays in [t - window, t): all plays before t minus those before t - window
    hi_short = tl_item.upper(k.q_i, k.q_t - cfg.trending_short, q_order)
    hi_long = tl_item.upper(k.q_i, k.q_t - cfg.trending_long, q_order)
    short = play_i - tl_item.prefix(lo_i, hi_short)[:, 2]
    long = play_i - tl_item.prefix(lo_i, hi_long)[:, 2]
    ratio = cfg.trending_short / cfg.trending_long
    out["item_trending_score"] = np.log((short + 1.0) / (long * ratio + 1.0))
    ev_c, q_c = int_keys(k.ev["__creator"], k.q["__creator"], "creator_id")
    tl_creator = Timeline(ev_c, k.ev_t, np.stack([k.is_imp, k.is_click], axis=1))
    imp_c, click_c = tl_creator.prefix(*tl_creator.bounds(q_c, k.q_t)[:2]).T
    out["item_creator_reputation"] = np.where(
        q_c > 0, (click_c + w_i * cfg.prior_ctr) / (imp_c + w_i), cfg.prior_ctr)


def _require(frame: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; has {frame.columns}")


def _dedupe(events: pl.DataFrame) -> pl.DataFrame:
    """Exact duplicate rows removed (by ``event_id`` when present), order kept."""
    if "event_id" in events.columns:
        return events.unique(subset="event_id", keep="first", maintain_order=True)
    return events.unique(keep="first", maintain_order=True)


def _item_meta(items: pl.DataFrame) -> pl.DataFrame:
    """item_id, __cat (1..K, 0 = unknown), __creator (1..M, 0 = unknown)."""
    return items.select(
        "item_id",
        pl.col("category").cast(pl.String).rank("dense").fill_null(0).cast(pl.Int64)
        .alias("__cat"),
        pl.col("creator_id").rank("dense").fill_null(0).cast(pl.Int64).alias("__creator"),
    )


def _event_frame(events: pl.DataFrame, item_meta: pl.DataFrame) -> pl.DataFrame:
    """The events with their item's category/creator codes and 0/1 event-kind columns."""
    ev = events.select("user_id", "item_id", "session_id", "timestamp", "event",
                       pl.col("value").cast(pl.Float64))
    bad = ev.filter(pl.col("user_id").is_null() | pl.col("item_id").is_null()
                    | pl.col("timestamp").is_null())
    if bad.height:
        raise ValueError(f"events: {bad.height} row(s) with a null user_id, item_id or "
                         "timestamp; clean the log first (streamrec.data.clean)")
    return (ev.join(item_meta, on="item_id", how="left", maintain_order="left")
            .with_columns(pl.col("__cat", "__creator").fill_null(0),
                          __imp=pl.col("event") == "impression",
                          __click=pl.col("event") == "click",
                          __play=pl.col("event") == "play"))


def _user_event_values(ev: pl.DataFrame, ev_u: np.ndarray, ev_uc: np.ndarray) -> np.ndarray:
    """Per-event values of the user timeline, shape (E, 6): 1, first event of its session,
    first event of its (UTC) day, gap (s) since the previous event of its session, is play,
    and the increment of ``sum_c n_c log n_c`` over the user's plays per category."""
    frame = pl.DataFrame({
        "u": ev_u, "uc": ev_uc, "s": ev["session_id"], "t": ev["timestamp"],
        "play": ev["__play"].cast(pl.Int64), "__pos": np.arange(ev.height),
    }).sort(["u", "t"], maintain_order=True)
    m = pl.col("play").cum_sum().over("uc") - pl.col("play")  # plays of (user, cat) before
    frame = frame.with_columns(
        first_session=pl.struct("u", "s").is_first_distinct(),
        first_day=pl.struct("u", pl.col("t") // DAY).is_first_distinct(),
        gap=(pl.col("t") - pl.col("t").shift(1)).over(["u", "s"]).fill_null(0),
        m=m.cast(pl.Float64),
    )
    mm = frame["m"].to_numpy()
    play = frame["play"].to_numpy().astype(np.float64)
    nlogn = (mm + 1) * np.log(mm + 1) - mm * np.log(np.maximum(mm, 1.0))
    vals = np.stack([np.ones(frame.height), frame["first_session"].to_numpy(),
                     frame["first_day"].to_numpy(), frame["gap"].to_numpy(),
                     play, play * nlogn], axis=1).astype(np.float64)
    out = np.empty_like(vals)
    out[frame["__pos"].to_numpy()] = vals
    return out


def _static_features(imp: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                     t: np.ndarray, prev_rel: np.ndarray, t0: int) -> pl.DataFrame:
    """The impressions with tier, platform, tenure, recency, freshness and length."""
    u = users.select("user_id", pl.col("tier").cast(pl.String).alias("__tier"),
                     pl.col("platform").cast(pl.String).alias("__uplat"),
                     pl.col("signup_ts").cast(pl.Int64).alias("__signup"))
    it = items.select("item_id", pl.col("length_seconds").cast(pl.Float64).alias("__len"),
                      pl.col("release_ts").cast(pl.Int64).alias("__release"))
    plat = (pl.coalesce(pl.col("platform").cast(pl.String), pl.col("__uplat"))
            if "platform" in imp.columns else pl.col("__uplat"))
    since_prev = pl.Series("__prev", np.where(prev_rel >= 0, t - (prev_rel + t0), -1))
    tenure_s = (pl.col("timestamp") - pl.col("__signup")).clip(lower_bound=0)
    return (imp.join(u, on="user_id", how="left", maintain_order="left")
            .join(it, on="item_id", how="left", maintain_order="left")
            .with_columns(since_prev)
            .with_columns(
                user_subscription_tier=pl.col("__tier"),
                user_platform=plat,
                user_tenure_days=tenure_s.cast(pl.Float64) / DAY,
                # seconds since the previous event; with none, since sign-up
                user_recency=pl.when(pl.col("__prev") >= 0).then(pl.col("__prev"))
                .otherwise(tenure_s).cast(pl.Float64).log1p(),
                item_freshness=(pl.col("timestamp") - pl.col("__release"))
                .clip(lower_bound=0).cast(pl.Float64) / DAY,
                item_length_minutes=pl.col("__len") / 60.0,
            ))


def _collaborative(ev: pl.DataFrame, imp: pl.DataFrame, cutoff: int,
                   cfg: FeatureConfig) -> np.ndarray:
    """``user_factors . item_factors`` of ials fitted on the clicks before ``cutoff``, per
    impression (0 for users/items the model never saw); shape (n,)."""
    from streamrec.data.interactions import Interactions
    from streamrec.factorization import implicit_als  # the registry's "ials", without torch

    clicks = ev.filter(pl.col("__click") & (pl.col("timestamp") < cutoff))
    score = np.zeros(imp.height, np.float64)
    if clicks.height == 0:
        return score
    user_ids, cu = np.unique(clicks["user_id"].to_numpy(), return_inverse=True)
    item_ids, ci = np.unique(clicks["item_id"].to_numpy(), return_inverse=True)
    train = Interactions.from_arrays(cu, ci, clicks["timestamp"].to_numpy(),
                                     n_users=len(user_ids), n_items=len(item_ids))
    # the seed the ials model draws from a Generator seeded with cfg.seed
    seed = int(np.random.default_rng(cfg.seed).integers(2**31 - 1))
    uf, vf = implicit_als(train, factors=cfg.mf_factors, iterations=cfg.mf_iterations,
                          regularization=cfg.mf_regularization, seed=seed)
    qu, qi = imp["user_id"].to_numpy(), imp["item_id"].to_numpy()
    pu = np.minimum(np.searchsorted(user_ids, qu), len(user_ids) - 1)
    pi = np.minimum(np.searchsorted(item_ids, qi), len(item_ids) - 1)
    known = (user_ids[pu] == qu) & (item_ids[pi] == qi)
    pu, pi = pu[known], pi[known]
    score[known] = np.einsum("nf,nf->n", uf[pu], vf[pi]).astype(np.float64)
    return score
