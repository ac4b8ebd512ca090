"""Static user attributes of the synthetic world, generated per fixed block of users."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamrec.data.synthetic._world_catalog import DAY, Catalog

if TYPE_CHECKING:
    from streamrec.data.synthetic._world_config import WorldConfig

TIERS = ("free", "basic", "premium")
TIER_PROB = (0.55, 0.30, 0.15)
TIER_ACTIVITY = (0.8, 1.0, 1.3)
PLATFORMS = ("tv", "mobile", "web", "tablet")
PLATFORM_PROB = (0.35, 0.35, 0.20, 0.10)
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "CA", "ES", "IT", "MX", "AU", "NL", "SE",
             "KR")
_USER_STREAM = 1


@dataclass
class UserChunk:
    """Static attributes of the users ``[lo, hi)`` (global indices; user id = index + 1).

    Attributes
    ----------
    lo, hi : int
    taste : ndarray of float32, shape (n, C)
        Dirichlet taste over categories (rows sum to 1).
    style : ndarray of float32, shape (n, d)
    tier, platform, country : ndarray of int8, shape (n,)
        Codes into TIERS, PLATFORMS, COUNTRIES (the true values; nulls are only written).
    signup_day : ndarray of int64, shape (n,)
        Day of sign-up relative to the window start (negative: before the window).
    signup_ts : ndarray of int64, shape (n,)
    activity : ndarray of float64, shape (n,)
        Expected sessions per day (heavy-tailed, lognormal times the tier factor).
    is_bot : ndarray of bool, shape (n,)
    null_country, null_platform : ndarray of bool, shape (n,)
        Injected missing values in the written ``users`` table.
    """

    lo: int
    hi: int
    taste: np.ndarray
    style: np.ndarray
    tier: np.ndarray
    platform: np.ndarray
    country: np.ndarray
    signup_day: np.ndarray
    signup_ts: np.ndarray
    activity: np.ndarray
    is_bot: np.ndarray
    null_country: np.ndarray
    null_platform: np.ndarray
    category_names: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return self.hi - self.lo

    def table(self) -> pa.Table:
        """The written ``users`` rows: user_id, tier, platform, country, signup_ts, activity,
        top_category (with the injected nulls)."""
        return pa.table({
            "user_id": pa.array(np.arange(self.lo + 1, self.hi + 1, dtype=np.int64)),
            "tier": _strings(self.tier, TIERS),
            "platform": _strings(self.platform, PLATFORMS, self.null_platform),
            "country": _strings(self.country, COUNTRIES, self.null_country),
            "signup_ts": pa.array(self.signup_ts.astype(np.int64)),
            "activity": pa.array(self.activity.astype(np.float32)),
            "top_category": _strings(self.taste.argmax(axis=1).astype(np.int32),
                                     self.category_names),
        })


def _strings(codes: np.ndarray, names: tuple[str, ...] | list[str],
             null: np.ndarray | None = None) -> pa.Array:
    """A string array from integer codes (dictionary-decoded in Arrow, no Python objects)."""
    idx = pa.array(codes.astype(np.int32), mask=null)
    return pc.cast(pa.DictionaryArray.from_arrays(idx, pa.array(list(names), pa.string())),
                   pa.string())


def _block(config: WorldConfig, catalog: Catalog, block: int) -> dict[str, np.ndarray]:
    """Attributes of one block of users, from its own seeded stream (chunk-size independent)."""
    b = config.block_users
    lo, hi = block * b, min((block + 1) * b, config.n_users)
    n = hi - lo
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(_USER_STREAM, block)))
    n_cat = config.n_categories
    alpha = np.maximum(config.taste_concentration * n_cat * catalog.cat_prob, 0.02)
    taste = rng.dirichlet(alpha, size=n).astype(np.float32)
    style = (rng.normal(size=(n, config.style_dim)) / np.sqrt(config.style_dim)).astype(np.float32)
    tier = rng.choice(len(TIERS), size=n, p=TIER_PROB).astype(np.int8)
    platform = rng.choice(len(PLATFORMS), size=n, p=PLATFORM_PROB).astype(np.int8)
    cw = 1.0 / np.arange(1, len(COUNTRIES) + 1) ** 1.1
    country = rng.choice(len(COUNTRIES), size=n, p=cw / cw.sum()).astype(np.int8)
    new = rng.random(n) < config.new_user_share
    signup_day = np.where(new, rng.integers(0, max(config.n_days, 1), size=n),
                          -1 - np.floor(rng.exponential(365.0, size=n)).astype(np.int64))
    signup_ts = config.start_ts + signup_day * DAY + rng.integers(0, DAY, size=n)
    activity = (config.sessions_per_day * np.exp(rng.normal(0.0, config.activity_sigma, size=n))
                * np.asarray(TIER_ACTIVITY)[tier])
    activity = np.minimum(activity, config.max_sessions_per_day / 2)
    u_bot = rng.random(n)
    is_bot = u_bot < config.bot_rate
    u_null = rng.random((n, 2))
    null_country = u_null[:, 0] < config.null_rate
    null_platform = u_null[:, 1] < config.null_rate
    if block == 0 and config.guarantee_anomalies and n:
        if config.bot_rate > 0 and n >= 20:  # no forced bot in a world of a few users
            is_bot[np.argmin(u_bot)] = True
        if config.null_rate > 0:
            null_country[np.argmin(u_null[:, 0])] = True
            null_platform[np.argmin(u_null[:, 1])] = True
    return dict(taste=taste, style=style, tier=tier, platform=platform, country=country,
                signup_day=signup_day.astype(np.int64), signup_ts=signup_ts.astype(np.int64),
                activity=activity, is_bot=is_bot, null_country=null_country,
                null_platform=null_platform)


def make_users(config: WorldConfig, catalog: Catalog, lo: int, hi: int) -> UserChunk:
    """Users ``[lo, hi)``: the blocks that cover them, generated and cut to the range."""
    b = config.block_users
    blocks = [_block(config, catalog, k) for k in range(lo // b, (hi - 1) // b + 1)]
    start = lo - (lo // b) * b
    parts = {key: np.concatenate([blk[key] for blk in blocks])[start:start + hi - lo]
             for key in blocks[0]}
    return UserChunk(lo=lo, hi=hi, **parts, category_names=tuple(catalog.category_names))
