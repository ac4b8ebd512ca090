"""The configuration of a synthetic world (its own module: the world's parts import it, and
the world imports them)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

__all__ = ["WorldConfig"]


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines a synthetic world (same config, same world).

    Parameters
    ----------
    n_users, n_items, n_days : int
        Sizes of the world and length of the window in days.
    seed : int
    n_categories : int
        Categories (genres); the first 20 have hand-written vocabularies, more get
        pseudo-words.
    style_dim : int
        Dimension of the latent user/item style (personal appeal beyond the category).
    sessions_per_day : float
        Median of the users' expected sessions per day (before tier and weekday factors).
    activity_sigma : float
        Lognormal spread of the activity level (heavy tail of events per user).
    max_sessions_per_day, max_steps : int
        Caps on sessions per user-day and slates per session.
    steps_per_session : float
        Mean slates per deep-dive/comparison session (explorers browse 25% longer).
    slate_size : int
        Impressions per slate. With ``slate_size > 6`` very active users can exceed 30
        events per minute (the default bot threshold of cleaning).
    log_impressions : bool
        Whether impression events are written (they are most of the rows).
    p_explorer, p_deep_dive, p_comparison : float
        Session behaviour probabilities (normalised).
    switch_explorer, switch_deep_dive, switch_comparison : float
        Per-step probability that the browsed category changes.
    taste_concentration : float
        Dirichlet concentration per category (x n_categories x category share); small values
        give users few favourite categories.
    zipf_exponent : float
        Popularity exponent inside a category.
    new_user_share, new_item_share : float
        Users who sign up / items released during the window.
    fresh_boost : float
        How much the production recommender promotes items released in the last weeks.
    churn_strength, churn_ctr_ref, churn_floor, churn_memory : float
        Engagement is multiplied by ``exp(churn_strength * (ctr - ref) / ref)`` (ctr:
        exponentially smoothed daily click rate with weight ``churn_memory``) on active days
        below the reference (recovering slowly above it); users under ``churn_floor`` churn.
    duplicate_rate, null_rate, negative_duration_rate, bot_rate : float
        Injected anomalies: exact duplicate rows (of all rows), nulls (of users for
        ``country`` and ``platform``, of items for ``length_seconds``), negative durations
        (of play rows), bot users (of users).
    guarantee_anomalies : bool
        Also inject one anomaly of each kind into the first user block (and null one item
        length) so that tiny worlds always exercise the cleaning path.
    bot_burst_prob, bot_burst_min, bot_burst_max, bot_clicks_per_minute
        A bot bursts on a day with this probability, clicking ``min..max`` random items at
        about this rate.
    chunk_users : int
        Users simulated at once (memory bound); rounded up to a multiple of ``block_users``.
        Does not change the output.
    block_users : int
        Users per seeded block of static attributes (part of the world's identity).
    start_ts : int
        Window start in seconds since the epoch (default 2026-01-01 00:00 UTC).
    """

    n_users: int = 5_000
    n_items: int = 2_000
    n_days: int = 60
    seed: int = 0
    n_categories: int = 20
    style_dim: int = 8
    sessions_per_day: float = 0.1
    activity_sigma: float = 1.0
    max_sessions_per_day: int = 8
    max_steps: int = 25
    steps_per_session: float = 4.0
    slate_size: int = 6
    log_impressions: bool = True
    p_explorer: float = 0.3
    p_deep_dive: float = 0.5
    p_comparison: float = 0.2
    switch_explorer: float = 0.40
    switch_deep_dive: float = 0.15
    switch_comparison: float = 0.50
    taste_concentration: float = 0.15
    zipf_exponent: float = 0.9
    new_user_share: float = 0.2
    new_item_share: float = 0.25
    fresh_boost: float = 2.0
    churn_strength: float = 2.0
    churn_ctr_ref: float = 0.09
    churn_floor: float = 0.3
    churn_memory: float = 0.3
    duplicate_rate: float = 0.005
    null_rate: float = 0.01
    negative_duration_rate: float = 0.001
    bot_rate: float = 0.002
    guarantee_anomalies: bool = True
    bot_burst_prob: float = 0.3
    bot_burst_min: int = 80
    bot_burst_max: int = 300
    bot_clicks_per_minute: float = 300.0
    chunk_users: int = 10_000
    block_users: int = 1_000
    start_ts: int = 1_767_225_600

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_days", "n_categories", "style_dim", "slate_size",
                     "max_sessions_per_day", "max_steps", "chunk_users", "block_users"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"WorldConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("p_explorer", "p_deep_dive", "p_comparison", "switch_explorer",
                     "switch_deep_dive", "switch_comparison", "new_user_share", "new_item_share",
                     "duplicate_rate", "null_rate", "negative_duration_rate", "bot_rate",
                     "bot_burst_prob", "churn_memory"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"WorldConfig.{name} must be a probability in [0, 1], got {v}")
        if self.p_explorer + self.p_deep_dive + self.p_comparison <= 0:
            raise ValueError("WorldConfig: behaviour probabilities p_* sum to 0")
        for name in ("sessions_per_day", "steps_per_session", "taste_concentration",
                     "churn_ctr_ref", "bot_clicks_per_minute"):
            if getattr(self, name) <= 0:
                raise ValueError(f"WorldConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.steps_per_session < 1:
            raise ValueError(f"WorldConfig.steps_per_session must be >= 1, got {self.steps_per_session}")
        if not 0 < self.bot_burst_min <= self.bot_burst_max:
            raise ValueError("WorldConfig: need 0 < bot_burst_min <= bot_burst_max")

    @property
    def effective_chunk_users(self) -> int:
        """``chunk_users`` rounded up to a multiple of ``block_users``."""
        b = self.block_users
        return max(b, math.ceil(self.chunk_users / b) * b)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
