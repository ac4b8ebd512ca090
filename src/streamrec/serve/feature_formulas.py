"""The 20 StreamRec features of one user and a slate of items, from the online counters.

:class:`~streamrec.serve.features.FeatureState` reads the counters under its lock
(:class:`SlateCounters`); :func:`slate_features` turns them into features with the
formulas of :func:`streamrec.features.streamrec.streamrec_features` and the same
:class:`~streamrec.features.streamrec.FeatureConfig` priors, so a ranker trained offline
sees the same inputs online.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.features.streamrec import DAY, FeatureConfig

__all__ = ["NO_TIME", "SlateCounters", "SlateFeatures", "UserCounters", "feature_array",
           "slate_features"]

#: a time never seen (the user's last event, a signup or release time that is unknown)
NO_TIME = int(np.iinfo(np.int64).min)


#: a slate's features: each numeric one and ``history`` an array, the two categorical ones a
#: string or None (one value for the whole slate)
SlateFeatures = dict[str, "np.ndarray | str | None"]


def feature_array(features: SlateFeatures, name: str) -> np.ndarray:
    """``features[name]``, which must be one of the arrays."""
    value = features[name]
    if not isinstance(value, np.ndarray):
        raise TypeError(f"feature {name!r} is {value!r}, not an array")
    return value


@dataclass(frozen=True)
class UserCounters:
    """One user's counters; the defaults are those of a user the state has never seen."""

    n_ev: float = 0.0  # events
    n_sess: float = 0.0  # sessions
    n_days: float = 0.0  # active UTC days
    gap_sum: float = 0.0  # seconds between consecutive events of a session, summed
    n_play: float = 0.0  # plays
    s_nlogn: float = 0.0  # sum over categories of plays * log(plays)
    last_t: int = NO_TIME  # last event
    signup: int = NO_TIME
    tier: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class SlateCounters:
    """The counters of one user and C candidate items (arrays of shape (C,) unless said)."""

    user: UserCounters
    user_category: np.ndarray  # (C, 3): impressions, clicks, plays in each item's category
    imp: np.ndarray
    click: np.ndarray
    play: np.ndarray
    comp: np.ndarray  # completion ratios of the plays, summed
    creator: np.ndarray  # creator code, 0: unknown
    creator_imp: np.ndarray
    creator_click: np.ndarray
    length: np.ndarray  # seconds, NaN unknown
    release: np.ndarray  # unix s, NO_TIME unknown
    trending: np.ndarray
    history: np.ndarray  # the user's clicked item rows, oldest first


def slate_features(x: SlateCounters, cfg: FeatureConfig, now: int, *, n_categories: int,
                   platform: str | None = None, collaborative: np.ndarray | None = None,
                   ) -> SlateFeatures:
    """The features at time ``now``: each numeric feature -> float64 (C,) (NaN where
    unknown), the two categorical features -> str or None, ``"history"`` -> the user's
    clicked item rows. ``platform`` overrides the user's; ``collaborative`` is
    ``collaborative_score`` (0 when not given)."""
    u = x.user
    c = len(x.imp)
    w_i, w_u, w_c = cfg.item_prior_weight, cfg.user_prior_weight, cfg.category_prior_weight
    if u.n_play > 0:
        diversity = max(np.log(max(u.n_play, 1.0)) - u.s_nlogn / max(u.n_play, 1.0), 0.0)
    else:
        diversity = 0.0
    tenure_s = max(now - u.signup, 0) if u.signup != NO_TIME else None
    if u.last_t != NO_TIME:
        recency = float(np.log1p(max(now - u.last_t, 0)))
    else:
        recency = np.nan if tenure_s is None else float(np.log1p(tenure_s))
    angle = 2.0 * np.pi * (now % DAY) / DAY
    full = np.full
    uc = x.user_category
    return {
        "user_activity_level": full(c, u.n_ev / max(u.n_days, 1.0)),
        "user_session_count": full(c, u.n_sess),
        "user_avg_session_length": full(c, u.gap_sum / max(u.n_sess, 1.0) / 60.0),
        "user_content_diversity": full(c, diversity),
        "user_recency": full(c, recency),
        "user_subscription_tier": u.tier,
        "user_platform": platform or u.platform,
        "user_tenure_days": full(c, np.nan if tenure_s is None else tenure_s / DAY),
        "item_popularity": np.log1p(x.play),
        "item_freshness": np.where(x.release != NO_TIME,
                                   np.maximum(now - x.release, 0) / DAY, np.nan),
        "item_creator_reputation": np.where(x.creator > 0, (x.creator_click + w_i * cfg.prior_ctr)
                                            / (x.creator_imp + w_i), cfg.prior_ctr),
        "item_length_minutes": x.length / 60.0,
        "item_engagement_rate": (x.click + w_i * cfg.prior_ctr) / (x.imp + w_i),
        "item_completion_rate": (x.comp + w_i * cfg.prior_completion) / (x.play + w_i),
        "item_trending_score": x.trending,
        "category_match": (uc[:, 2] + w_c / n_categories) / (u.n_play + w_c),
        "time_of_day_sin": full(c, np.sin(angle)),
        "time_of_day_cos": full(c, np.cos(angle)),
        "historical_ctr_user_category": (uc[:, 1] + w_u * cfg.prior_ctr) / (uc[:, 0] + w_u),
        "collaborative_score": (np.zeros(c) if collaborative is None
                                else np.asarray(collaborative, np.float64)),
        "history": x.history,
    }
