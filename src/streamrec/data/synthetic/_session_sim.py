"""The draws and the Markov chain behind :func:`streamrec.data.synthetic.sessions.generate_sessions`
(the model is described in that module's docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from streamrec.data.dataset import ITEM, TIME, USER, VALUE, Dataset
from streamrec.data.synthetic._session_config import BEHAVIOUR_KINDS

if TYPE_CHECKING:
    from streamrec.data.synthetic._session_config import SessionConfig

__all__ = ["BEHAVIOUR_KINDS", "ItemPicker", "category_dist", "draw_catalog", "draw_sessions",
           "session_dataset", "walk"]

_EXPLORER, _DEEP_DIVE, _COMPARISON = 0, 1, 2
DAY = 86_400


def category_dist(kind: np.ndarray, switch: np.ndarray, prev: np.ndarray, pref: np.ndarray,
                   compare: np.ndarray) -> np.ndarray:
    """Distribution of the current category, shape (B, C) float64.

    Parameters
    ----------
    kind : (B,) behaviour kind (0 explorer, 1 deep_dive, 2 comparison)
    switch : (B,) switch probability
    prev : (B,) previous category, -1 at step 0
    pref : (B, C) preference weights
    compare : (B, C) comparison set
    """
    b = len(prev)
    first = prev < 0
    start = _start_dist(kind, pref, compare)  # (B, C)
    q = _switch_dist(kind, np.where(first, 0, prev), pref, compare)  # (B, C)
    out = switch[:, None] * q
    rows = np.arange(b)
    out[rows, np.where(first, 0, prev)] += 1.0 - switch
    return np.where(first[:, None], start, out)


def _start_dist(kind: np.ndarray, pref: np.ndarray, compare: np.ndarray) -> np.ndarray:
    """Category of a session's first event, shape (B, C) float64: the preference weights, or
    uniform over the comparison set for comparison sessions."""
    uniform_set = compare / np.maximum(compare.sum(axis=1, keepdims=True), 1)
    return np.where((kind == _COMPARISON)[:, None], uniform_set, pref)


def _switch_dist(kind: np.ndarray, cur: np.ndarray, pref: np.ndarray, compare: np.ndarray
                 ) -> np.ndarray:
    """Where a switching session goes from category ``cur``, shape (B, C) float64."""
    b, c = pref.shape
    others = np.ones((b, c))
    others[np.arange(b), cur] = 0.0
    uniform = others / (c - 1)  # (B, C)
    # deep_dive: preference weights without the current category; comparison: the rest of
    # the comparison set; either falls back to uniform over the other categories
    target = np.where((kind == _COMPARISON)[:, None], compare.astype(np.float64), pref) * others
    mass = target.sum(axis=1, keepdims=True)  # (B, 1)
    renorm = np.where(mass > 0, target / np.where(mass > 0, mass, 1.0), uniform)
    return np.where((kind == _EXPLORER)[:, None], uniform, renorm)


def _sample_rows(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one column per row of ``p`` (B, C) with uniforms ``u`` (B,)."""
    cum = np.cumsum(p, axis=1)
    idx = (cum <= (u * cum[:, -1])[:, None]).sum(axis=1)
    return np.minimum(idx, p.shape[1] - 1)


def draw_catalog(cfg: SessionConfig, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Category sizes (C,), item category (N,) and P(item | category) (N,) by item id, and
    the item ids ordered by (category, rank) (N,)."""
    n, c = cfg.n_items, cfg.n_categories
    shares = rng.dirichlet(np.full(c, cfg.category_alpha))
    extra = shares * (n - c)
    sizes = np.floor(extra).astype(np.int64)
    short = (n - c) - int(sizes.sum())
    sizes[np.argsort(-(extra - sizes), kind="stable")[:short]] += 1  # largest remainders
    sizes += 1
    by_cat_rank = rng.permutation(n).astype(np.int64)  # items by (category, rank)
    cat_of_pos = np.repeat(np.arange(c), sizes)
    starts = np.cumsum(sizes) - sizes
    rank_of_pos = np.arange(n) - starts[cat_of_pos] + 1
    weight = rank_of_pos.astype(np.float64) ** -cfg.zipf_s
    prob_of_pos = weight / np.bincount(cat_of_pos, weights=weight, minlength=c)[cat_of_pos]
    item_cat = np.empty(n, np.int64)
    item_prob = np.empty(n, np.float64)
    item_cat[by_cat_rank] = cat_of_pos
    item_prob[by_cat_rank] = prob_of_pos
    return sizes, item_cat, item_prob, by_cat_rank


def draw_sessions(cfg: SessionConfig, sizes: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Behaviour (U,), length (U,), start time (U,), preference weights (U, C), comparison
    set (U, C) of every session."""
    u, c = cfg.n_users, cfg.n_categories
    behaviour = rng.choice(len(cfg.behaviours), size=u, p=cfg.behaviour_p).astype(np.int64)
    length = rng.integers(cfg.min_length, cfg.max_length + 1, size=u)
    start = cfg.start_ts + rng.integers(0, max(1, int(cfg.span_days * DAY)), size=u)
    # Gumbel top-k: the argsort of log(size) + Gumbel is a draw without replacement ∝ size
    keys = np.log(sizes)[None, :] + rng.gumbel(size=(u, c))
    order = np.argsort(-keys, axis=1)  # (U, C)
    weights = rng.dirichlet(np.ones(cfg.n_preferred), size=u)  # (U, P)
    rows = np.arange(u)[:, None]
    pref = np.zeros((u, c))
    pref[rows, order[:, : cfg.n_preferred]] = weights
    lo, hi = cfg.comparison_set
    k = rng.integers(lo, hi + 1, size=u)
    compare = np.zeros((u, c), dtype=bool)
    in_set = np.arange(c)[None, :] < k[:, None]  # (U, C) over draw-order positions
    compare[np.broadcast_to(rows, (u, c))[in_set], order[in_set]] = True
    is_cmp = np.asarray([cfg.behaviours[b] == "comparison" for b in range(len(cfg.behaviours))])
    compare &= is_cmp[behaviour][:, None]
    return behaviour, length, start, pref, compare


@dataclass(frozen=True)
class ItemPicker:
    """Items ordered by (category, rank) with keys category + within-category CDF, so that
    ``searchsorted(key, cat + u)`` draws an item of category ``cat`` by its Zipf
    probability."""

    key: np.ndarray  # (N,) increasing
    cat_lo: np.ndarray  # (C,) first position of each category
    cat_hi: np.ndarray  # (C,) last position
    by_cat_rank: np.ndarray  # (N,) item id at each position

    @classmethod
    def build(cls, sizes: np.ndarray, item_cat: np.ndarray, item_prob: np.ndarray,
              by_cat_rank: np.ndarray) -> ItemPicker:
        pos_cat = item_cat[by_cat_rank]
        ends = np.cumsum(sizes)
        cat_lo, cat_hi = ends - sizes, ends - 1
        p_sorted = item_prob[by_cat_rank]
        cs = np.cumsum(p_sorted)
        key = pos_cat + (cs - (cs - p_sorted)[cat_lo][pos_cat])
        key[cat_hi] = np.arange(1, len(sizes) + 1)  # exact category ends
        return cls(key, cat_lo, cat_hi, by_cat_rank)

    def pick(self, cats: np.ndarray, u: np.ndarray) -> np.ndarray:
        """One item of each category ``cats`` (B,) for the uniforms ``u`` (B,)."""
        pos = np.searchsorted(self.key, cats + u, side="right")
        return self.by_cat_rank[np.clip(pos, self.cat_lo[cats], self.cat_hi[cats])]


def walk(cfg: SessionConfig, rng: np.random.Generator, kind: np.ndarray, switch: np.ndarray,
          pref: np.ndarray, compare: np.ndarray, picker: ItemPicker,
          progress: Callable[[int, int], None] | None,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every session's category, item and seconds since the previous step, (U, max_length)
    each: one iteration per step position, vectorised over sessions."""
    n_u, t_max = cfg.n_users, cfg.max_length
    cats = np.empty((n_u, t_max), np.int64)
    items = np.empty((n_u, t_max), np.int64)
    gaps = np.zeros((n_u, t_max), np.int64)
    prev = np.full(n_u, -1, np.int64)
    for t in range(t_max):
        u_switch, u_cat, u_item = rng.random(n_u), rng.random(n_u), rng.random(n_u)
        if t == 0:
            cur = _sample_rows(_start_dist(kind, pref, compare), u_cat)
        else:
            q = _switch_dist(kind, prev, pref, compare)
            cur = np.where(u_switch < switch, _sample_rows(q, u_cat), prev)
            gaps[:, t] = rng.integers(cfg.step_seconds[0], cfg.step_seconds[1] + 1, size=n_u)
        cats[:, t] = cur
        items[:, t] = picker.pick(cur, u_item)
        prev = cur
        if progress is not None:
            progress(t + 1, t_max)
    return cats, items, gaps


def session_dataset(cfg: SessionConfig, behaviour: np.ndarray, start: np.ndarray,
             item_cat: np.ndarray, items: np.ndarray, ts: np.ndarray, mask: np.ndarray,
             ) -> Dataset:
    """The events of the steps in ``mask`` (U, T) with the users and items tables."""
    n_u, c = cfg.n_users, cfg.n_categories
    users_of = np.broadcast_to(np.arange(n_u)[:, None], mask.shape)
    events = pl.DataFrame({
        USER: pl.Series(users_of[mask], dtype=pl.Int64),
        ITEM: pl.Series(items[mask], dtype=pl.Int64),
        TIME: pl.Series(ts[mask], dtype=pl.Int64),
        VALUE: pl.Series(np.ones(int(mask.sum()), np.float32), dtype=pl.Float32),
    })
    width = max(2, len(str(c - 1)))
    cat_names = np.array([f"c{k:0{width}d}" for k in range(c)])
    items_table = pl.DataFrame({
        ITEM: pl.Series(np.arange(cfg.n_items), dtype=pl.Int64),
        "category": pl.Series(cat_names[item_cat], dtype=pl.String),
        "category_id": pl.Series(item_cat, dtype=pl.Int32),
    })
    users_table = pl.DataFrame({
        USER: pl.Series(np.arange(n_u), dtype=pl.Int64),
        "behaviour": pl.Series(np.asarray(cfg.behaviours)[behaviour], dtype=pl.String),
        "start_ts": pl.Series(start, dtype=pl.Int64),
    })
    return Dataset.from_frames(events, users_table, items_table, name="synthetic-sessions")
