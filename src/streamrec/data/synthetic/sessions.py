"""A synthetic world of next-item sessions with an exact oracle (the case study of issue 5).

Every "user" of this world is one anonymous browsing session. The generator is a small,
fully specified Markov model, so the exact distribution of every next item is known and
the physical limit of next-item prediction (the Bayes-optimal ranking) can be measured.

Catalogue
---------
``n_items`` items (external ids ``0 .. n_items - 1``) in ``n_categories`` categories whose
sizes are ``Dirichlet(category_alpha * 1)`` shares of the catalogue (largest-remainder
rounding, every category at least one item). Items are assigned to categories through a
seeded permutation, so ids carry no category information. Inside a category the items have
a seeded random ranking and ``P(item | category) ∝ rank ** -zipf_s``.

Sessions
--------
A session has a behaviour (``explorer`` / ``deep_dive`` / ``comparison`` with
``behaviour_probs``), a length uniform in ``[min_length, max_length]``, ``n_preferred``
preferred categories drawn without replacement with probability ∝ category size, with
``Dirichlet(1)`` preference weights, and a comparison set: the first ``k`` categories of
that same size-weighted draw order, ``k`` uniform in ``comparison_set`` (so ``k`` of the
preferred categories when ``k <= n_preferred``; it is all False for the other behaviours).

* step 0: the category is drawn from the preference weights (comparison: uniformly from
  the comparison set); the item from the category's Zipf distribution;
* step t >= 1: with probability ``switch_probs[behaviour]`` the category switches —
  explorer: uniformly to any *other* category; deep_dive: to another preferred category by
  the preference weights renormalised without the current one (uniformly to any other
  category when no other preferred category has weight); comparison: uniformly to another
  category of its comparison set — otherwise it stays; then the item is drawn from the
  current category's Zipf distribution. Repeats are kept.

Hence ``P(next item = i | state) = P(category(i) | state) * P(i | category(i))`` with
``P(c' | c) = (1 - s) [c' = c] + s Q_b(c' | c)``: :meth:`SessionWorld.next_item_probs`.

Time
----
Sessions start uniformly over ``span_days`` days from ``start_ts``; consecutive events are
``step_seconds`` (uniform integers, bounds included) apart, so timestamps strictly increase
within a session and a global time order exists. With the default gaps (<= 600 s) a
30-minute session gap (:func:`streamrec.data.splits.session_ids`) recovers the sessions.

Determinism
-----------
The catalogue, the sessions' static attributes and the trajectories come from three
streams ``SeedSequence(seed, spawn_key=(k,))``; the catalogue depends only on the catalogue
options, and every session draws its uniforms on every step whatever its length, so the same
(config, seed) always gives the same world.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from streamrec.data.dataset import ITEM, TIME, USER, VALUE, Dataset

__all__ = ["BEHAVIOUR_KINDS", "SessionConfig", "SessionWorld", "generate_sessions",
           "oracle_hit_mass"]

#: The behaviours the generator knows (``SessionConfig.behaviours`` is a subset).
BEHAVIOUR_KINDS = ("explorer", "deep_dive", "comparison")
_EXPLORER, _DEEP_DIVE, _COMPARISON = 0, 1, 2
_CATALOG_STREAM, _USER_STREAM, _STEP_STREAM = 1, 2, 3
_DAY = 86_400


@dataclass(frozen=True)
class SessionConfig:
    """Everything that defines a session world (with the seed: same config, same world).

    Parameters
    ----------
    n_users : int
        Sessions (one per user: a "user" of this world is a session).
    n_items, n_categories : int
        Catalogue size and number of categories (``2 <= n_categories <= n_items``).
    category_alpha : float
        Dirichlet concentration of the category size shares (small: very unequal sizes).
    zipf_s : float
        Popularity exponent inside a category (0: uniform).
    behaviours : tuple of str
        Session behaviours, a subset of ``("explorer", "deep_dive", "comparison")``.
    behaviour_probs : tuple of float
        Probability of each behaviour (normalised; same length as ``behaviours``).
    switch_probs : tuple of float
        Per-step probability that the category switches, per behaviour.
    min_length, max_length : int
        Session length is uniform on ``[min_length, max_length]``.
    n_preferred : int
        Preferred categories per session (drawn ∝ category size without replacement).
    comparison_set : tuple of int
        ``(lo, hi)``: a comparison session alternates among ``k ~ U{lo..hi}`` categories.
    step_seconds : tuple of int
        ``(lo, hi)``: seconds between consecutive events of a session (uniform, inclusive).
    start_ts : int
        Earliest session start, seconds since the epoch (default 2026-01-01 00:00 UTC).
    span_days : float
        Session starts are uniform over ``[start_ts, start_ts + span_days days)``.
    """

    n_users: int = 20_000
    n_items: int = 5_000
    n_categories: int = 25
    category_alpha: float = 2.0
    zipf_s: float = 0.8
    behaviours: tuple[str, ...] = BEHAVIOUR_KINDS
    behaviour_probs: tuple[float, ...] = (0.3, 0.5, 0.2)
    switch_probs: tuple[float, ...] = (0.40, 0.15, 0.50)
    min_length: int = 5
    max_length: int = 34
    n_preferred: int = 3
    comparison_set: tuple[int, int] = (2, 3)
    step_seconds: tuple[int, int] = (10, 600)
    start_ts: int = 1_767_225_600
    span_days: float = 30.0

    def __post_init__(self) -> None:
        for name in ("behaviours", "behaviour_probs", "switch_probs", "comparison_set",
                     "step_seconds"):
            value = getattr(self, name)
            if isinstance(value, str) or not hasattr(value, "__len__"):
                raise ValueError(f"SessionConfig.{name} must be a tuple, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("n_users", "n_items", "n_categories", "min_length", "max_length",
                     "n_preferred"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SessionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_categories < 2:
            raise ValueError(f"SessionConfig.n_categories must be >= 2 (sessions switch between "
                             f"categories), got {self.n_categories}")
        if self.n_items < self.n_categories:
            raise ValueError(f"SessionConfig: n_items ({self.n_items}) must be >= n_categories "
                             f"({self.n_categories}): every category holds at least one item")
        if not self.category_alpha > 0:
            raise ValueError(f"SessionConfig.category_alpha must be > 0, got {self.category_alpha}")
        if not self.zipf_s >= 0:
            raise ValueError(f"SessionConfig.zipf_s must be >= 0, got {self.zipf_s}")
        nb = len(self.behaviours)
        unknown = [b for b in self.behaviours if b not in BEHAVIOUR_KINDS]
        if not nb or unknown or len(set(self.behaviours)) != nb:
            raise ValueError(f"SessionConfig.behaviours must be distinct names among "
                             f"{BEHAVIOUR_KINDS}, got {self.behaviours}")
        for name in ("behaviour_probs", "switch_probs"):
            if len(getattr(self, name)) != nb:
                raise ValueError(f"SessionConfig.{name} needs one value per behaviour ({nb}), "
                                 f"got {getattr(self, name)}")
        if any(not p >= 0 for p in self.behaviour_probs) or not sum(self.behaviour_probs) > 0:
            raise ValueError(f"SessionConfig.behaviour_probs must be >= 0 with a positive sum, "
                             f"got {self.behaviour_probs}")
        if any(not 0 <= p <= 1 for p in self.switch_probs):
            raise ValueError(f"SessionConfig.switch_probs must be probabilities in [0, 1], "
                             f"got {self.switch_probs}")
        if self.min_length > self.max_length:
            raise ValueError(f"SessionConfig: min_length ({self.min_length}) > max_length "
                             f"({self.max_length})")
        if self.n_preferred > self.n_categories:
            raise ValueError(f"SessionConfig.n_preferred ({self.n_preferred}) exceeds "
                             f"n_categories ({self.n_categories})")
        lo, hi = _pair(self.comparison_set, "comparison_set")
        if not 2 <= lo <= hi <= self.n_categories:
            raise ValueError(f"SessionConfig.comparison_set must be (lo, hi) with 2 <= lo <= hi "
                             f"<= n_categories ({self.n_categories}), got {self.comparison_set}")
        lo, hi = _pair(self.step_seconds, "step_seconds")
        if not 1 <= lo <= hi:
            raise ValueError(f"SessionConfig.step_seconds must be (lo, hi) with 1 <= lo <= hi "
                             f"(timestamps increase within a session), got {self.step_seconds}")
        if not self.span_days > 0:
            raise ValueError(f"SessionConfig.span_days must be > 0, got {self.span_days}")
        if self.start_ts < 0:
            raise ValueError(f"SessionConfig.start_ts must be >= 0, got {self.start_ts}")

    @property
    def behaviour_p(self) -> np.ndarray:
        """Normalised behaviour probabilities, shape (n_behaviours,) float64."""
        p = np.asarray(self.behaviour_probs, dtype=np.float64)
        return p / p.sum()

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def _pair(value: tuple, name: str) -> tuple[int, int]:
    if len(value) != 2 or any(int(v) != v for v in value):
        raise ValueError(f"SessionConfig.{name} must be two integers (lo, hi), got {value}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True, eq=False)
class SessionWorld:
    """A generated session world: the dataset and the generator's truth.

    The truth arrays are aligned with the dataset's index spaces (row ``i`` describes
    index ``i`` of ``dataset.user_vocab`` / ``dataset.item_vocab``); items never drawn are
    absent from the dataset and appear only in the ``world_*`` arrays, indexed by external
    item id (the ids are ``0 .. config.n_items - 1``).

    Attributes
    ----------
    dataset : Dataset
        Events ``user_id``, ``item_id``, ``timestamp`` (Int64 s), ``value`` (1.0), ordered by
        (session, step); ``users`` (``behaviour`` String, ``start_ts`` Int64) and ``items``
        (``category`` String such as ``"c07"``, ``category_id`` Int32). The popularity truth
        (ranks, probabilities) is kept out of the feature tables: it is in the arrays below.
    config : SessionConfig
    seed : int
    world_item_category : ndarray of int64, shape (config.n_items,)
        Category of every generator item, by external id.
    world_item_prob : ndarray of float64, shape (config.n_items,)
        ``P(item | its category)`` of every generator item (sums to 1 per category).
    category_sizes : ndarray of int64, shape (n_categories,)
    item_category : ndarray of int64, shape (dataset.n_items,)
    item_prob : ndarray of float64, shape (dataset.n_items,)
        ``P(item | its category)`` in dataset item index order.
    user_behaviour : ndarray of int64, shape (dataset.n_users,)
        Index into ``config.behaviours``.
    user_pref : ndarray of float64, shape (dataset.n_users, n_categories)
        Preference weights (zero outside the preferred categories; rows sum to 1).
    user_compare : ndarray of bool, shape (dataset.n_users, n_categories)
        Comparison set (all False unless the behaviour is ``comparison``).
    event_category : ndarray of int64, shape (n_events,)
        Current category at each row of ``dataset.interactions``.
    event_prev_category : ndarray of int64, shape (n_events,)
        Category of the previous event of the same session (-1 for a first event).
    """

    dataset: Dataset
    config: SessionConfig
    seed: int
    world_item_category: np.ndarray
    world_item_prob: np.ndarray
    category_sizes: np.ndarray
    item_category: np.ndarray
    item_prob: np.ndarray
    user_behaviour: np.ndarray
    user_pref: np.ndarray
    user_compare: np.ndarray
    event_category: np.ndarray
    event_prev_category: np.ndarray
    _kinds: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name, None)
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        kinds = np.array([BEHAVIOUR_KINDS.index(b) for b in self.config.behaviours], np.int64)
        kinds.setflags(write=False)
        object.__setattr__(self, "_kinds", kinds)

    @property
    def n_categories(self) -> int:
        return self.config.n_categories

    # ------------------------------------------------------------------ oracle
    def category_probs(self, users: np.ndarray, prev_category: np.ndarray) -> np.ndarray:
        """The generator's distribution of the current category given the session state.

        Parameters
        ----------
        users : ndarray of int, shape (B,)
            Dataset user (= session) indices.
        prev_category : ndarray of int, shape (B,)
            Category of the session's previous event; -1 for the first event.

        Returns
        -------
        ndarray of float64, shape (B, n_categories)
            Rows sum to 1.
        """
        u = np.asarray(users, dtype=np.int64)
        prev = np.asarray(prev_category, dtype=np.int64)
        if u.shape != prev.shape or u.ndim != 1:
            raise ValueError(f"users and prev_category must be 1-d of one length, got "
                             f"{u.shape} and {prev.shape}")
        kind = self._kinds[self.user_behaviour[u]]
        switch = np.asarray(self.config.switch_probs, dtype=np.float64)[self.user_behaviour[u]]
        return _category_dist(kind, switch, prev, self.user_pref[u], self.user_compare[u])

    def next_item_probs(self, rows: np.ndarray, *, item_ids: np.ndarray | None = None
                        ) -> np.ndarray:
        """Exact distribution of the item at event rows given the state before them.

        Parameters
        ----------
        rows : ndarray of int, shape (B,)
            Row indices of ``dataset.interactions``. The state is the session's behaviour,
            preferences/comparison set and the category of its previous event (the step-0
            distribution for a session's first event).
        item_ids : ndarray, shape (I,), optional
            External item ids of the columns; default ``dataset.item_vocab.ids`` (dataset
            item index order). Pass ``np.arange(config.n_items)`` for all generator items
            (rows then sum to 1), or ``split.item_vocab.ids`` for a split's index space;
            ids that are not generator items get probability 0.

        Returns
        -------
        ndarray of float32, shape (B, I)
            ``P(item | state)``; in the dataset's index space rows sum to 1 minus the mass of
            items that were never drawn.
        """
        r = np.asarray(rows, dtype=np.int64)
        users = self.dataset.interactions.users[r]
        cat = self.category_probs(users, self.event_prev_category[r])  # (B, C)
        if item_ids is None:
            icat, iprob = self.item_category, self.item_prob
        else:
            icat, iprob = self._item_truth(np.asarray(item_ids))
        out = cat[:, np.maximum(icat, 0)] * iprob[None, :]  # (B, I)
        return out.astype(np.float32)

    def _item_truth(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Category (-1 if unknown) and P(item | category) (0 if unknown) of external ids."""
        if ids.dtype.kind not in "iu":
            try:
                ids = ids.astype(np.int64)
            except ValueError as exc:
                raise ValueError("item_ids must be integer item ids of the session world") from exc
        ids = ids.astype(np.int64)
        known = (ids >= 0) & (ids < len(self.world_item_prob))
        safe = np.where(known, ids, 0)
        return (np.where(known, self.world_item_category[safe], -1),
                np.where(known, self.world_item_prob[safe], 0.0))

    # ------------------------------------------------------------------ summary
    def describe(self) -> dict[str, object]:
        """A ``world.json``-style summary: config, seed, counts, shares and switch rates."""
        inter = self.dataset.interactions
        lengths = np.bincount(inter.users, minlength=self.dataset.n_users)
        nb = len(self.config.behaviours)
        beh_counts = np.bincount(self.user_behaviour, minlength=nb)
        steps = self.event_prev_category >= 0
        switched = steps & (self.event_category != self.event_prev_category)
        row_beh = self.user_behaviour[inter.users]
        n_steps = np.bincount(row_beh[steps], minlength=nb)
        n_sw = np.bincount(row_beh[switched], minlength=nb)
        names = self.config.behaviours
        return {
            "config": self.config.to_dict(),
            "seed": self.seed,
            "sessions": int(self.dataset.n_users),
            "events": len(inter),
            "items": int(self.config.n_items),
            "items_drawn": int(self.dataset.n_items),
            "categories": int(self.n_categories),
            "category_size": {"min": int(self.category_sizes.min()),
                              "max": int(self.category_sizes.max())},
            "behaviours": dict(zip(names, beh_counts.tolist(), strict=True)),
            "behaviour_share": dict(zip(names, (beh_counts / max(1, beh_counts.sum())).tolist(),
                                        strict=True)),
            "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
            "switch_rate": {b: (float(n_sw[k] / n_steps[k]) if n_steps[k] else None)
                            for k, b in enumerate(names)},
            "time_min": int(inter.timestamps.min()) if len(inter) else None,
            "time_max": int(inter.timestamps.max()) if len(inter) else None,
        }


# ---------------------------------------------------------------------------- dynamics
def _category_dist(kind: np.ndarray, switch: np.ndarray, prev: np.ndarray, pref: np.ndarray,
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


# ---------------------------------------------------------------------------- generation
def _catalog(cfg: SessionConfig, rng: np.random.Generator
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


def _sessions(cfg: SessionConfig, sizes: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Behaviour (U,), length (U,), start time (U,), preference weights (U, C), comparison
    set (U, C) of every session."""
    u, c = cfg.n_users, cfg.n_categories
    behaviour = rng.choice(len(cfg.behaviours), size=u, p=cfg.behaviour_p).astype(np.int64)
    length = rng.integers(cfg.min_length, cfg.max_length + 1, size=u)
    start = cfg.start_ts + rng.integers(0, max(1, int(cfg.span_days * _DAY)), size=u)
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


def generate_sessions(
    config: SessionConfig | None = None,
    seed: int = 0,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SessionWorld:
    """Generate a session world in memory (see the module docstring for the model).

    Parameters
    ----------
    config : SessionConfig, optional
        Default ``SessionConfig()`` (20,000 sessions, 5,000 items, 25 categories).
    seed : int
        Same (config, seed), same world.
    progress : callable(done, total), optional
        Called after each simulated step (``total = config.max_length``).

    Returns
    -------
    SessionWorld
    """
    cfg = config or SessionConfig()
    c = cfg.n_categories

    def stream(key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))

    sizes, item_cat, item_prob, by_cat_rank = _catalog(cfg, stream(_CATALOG_STREAM))
    behaviour, length, start, pref, compare = _sessions(cfg, sizes, stream(_USER_STREAM))
    kinds = np.array([BEHAVIOUR_KINDS.index(b) for b in cfg.behaviours], np.int64)
    kind = kinds[behaviour]
    switch = np.asarray(cfg.switch_probs, dtype=np.float64)[behaviour]
    # items ordered by (category, rank) with keys category + within-category CDF, so that
    # searchsorted(key, cat + u) draws an item of category ``cat`` by its Zipf probability
    pos_cat = item_cat[by_cat_rank]
    ends = np.cumsum(sizes)
    cat_lo, cat_hi = ends - sizes, ends - 1
    p_sorted = item_prob[by_cat_rank]
    cs = np.cumsum(p_sorted)
    key = pos_cat + (cs - (cs - p_sorted)[cat_lo][pos_cat])  # (N,) increasing
    key[cat_hi] = np.arange(1, c + 1)  # exact category ends

    rng = stream(_STEP_STREAM)
    n_u, t_max = cfg.n_users, cfg.max_length
    cats = np.empty((n_u, t_max), np.int64)
    items = np.empty((n_u, t_max), np.int64)
    gaps = np.zeros((n_u, t_max), np.int64)
    prev = np.full(n_u, -1, np.int64)
    for t in range(t_max):  # vectorised over sessions; <= max_length steps
        u_switch, u_cat, u_item = rng.random(n_u), rng.random(n_u), rng.random(n_u)
        if t == 0:
            cur = _sample_rows(_start_dist(kind, pref, compare), u_cat)
        else:
            q = _switch_dist(kind, prev, pref, compare)
            cur = np.where(u_switch < switch, _sample_rows(q, u_cat), prev)
            gaps[:, t] = rng.integers(cfg.step_seconds[0], cfg.step_seconds[1] + 1, size=n_u)
        pos = np.searchsorted(key, cur + u_item, side="right")
        pos = np.clip(pos, cat_lo[cur], cat_hi[cur])
        cats[:, t] = cur
        items[:, t] = by_cat_rank[pos]
        prev = cur
        if progress is not None:
            progress(t + 1, t_max)

    mask = np.arange(t_max)[None, :] < length[:, None]  # (U, T), rows in (session, step) order
    ts = start[:, None] + np.cumsum(gaps, axis=1)
    prev_cat = np.concatenate([np.full((n_u, 1), -1, np.int64), cats[:, :-1]], axis=1)
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
    ds = Dataset.from_frames(events, users_table, items_table, name="synthetic-sessions")
    uid = ds.user_vocab.ids.astype(np.int64)
    iid = ds.item_vocab.ids.astype(np.int64)
    return SessionWorld(
        dataset=ds,
        config=cfg,
        seed=int(seed),
        world_item_category=item_cat,
        world_item_prob=item_prob,
        category_sizes=sizes,
        item_category=item_cat[iid],
        item_prob=item_prob[iid],
        user_behaviour=behaviour[uid],
        user_pref=pref[uid],
        user_compare=compare[uid],
        event_category=cats[mask],
        event_prev_category=prev_cat[mask],
    )


def oracle_hit_mass(probs: np.ndarray, k: int) -> np.ndarray:
    """Probability mass of the top-``k`` columns of each row, shape (B,): the expected
    Hit@k of the Bayes-optimal ranking."""
    kk = min(k, probs.shape[1])
    top = np.partition(probs, probs.shape[1] - kk, axis=1)[:, -kk:]
    return top.sum(axis=1)

