"""A synthetic world of next-item sessions with an exact oracle (the case study of issue 5).

Every "user" of this world is one anonymous browsing session. The generator is a small,
fully specified Markov model, so the exact distribution of every next item is known and
the physical limit of next-item prediction (the Bayes-optimal ranking) can be measured.
The draws and the Markov chain are in :mod:`~streamrec.data.synthetic._session_sim`.

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

from streamrec.data.dataset import Dataset
from streamrec.data.synthetic._session_config import BEHAVIOUR_KINDS, SessionConfig
from streamrec.data.synthetic._session_sim import (
    ItemPicker,
    category_dist,
    draw_catalog,
    draw_sessions,
    session_dataset,
    walk,
)

__all__ = ["BEHAVIOUR_KINDS", "SessionConfig", "SessionWorld", "generate_sessions",
           "oracle_hit_mass"]

_CATALOG_STREAM, _USER_STREAM, _STEP_STREAM = 1, 2, 3


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
        return category_dist(kind, switch, prev, self.user_pref[u], self.user_compare[u])

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

    def stream(key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))

    sizes, item_cat, item_prob, by_cat_rank = draw_catalog(cfg, stream(_CATALOG_STREAM))
    behaviour, length, start, pref, compare = draw_sessions(cfg, sizes, stream(_USER_STREAM))
    kinds = np.array([BEHAVIOUR_KINDS.index(b) for b in cfg.behaviours], np.int64)
    picker = ItemPicker.build(sizes, item_cat, item_prob, by_cat_rank)
    cats, items, gaps = walk(cfg, stream(_STEP_STREAM), kinds[behaviour],
                              np.asarray(cfg.switch_probs, dtype=np.float64)[behaviour], pref,
                              compare, picker, progress)
    n_u, t_max = cfg.n_users, cfg.max_length
    mask = np.arange(t_max)[None, :] < length[:, None]  # (U, T), rows in (session, step) order
    ds = session_dataset(cfg, behaviour, start, item_cat, items, start[:, None] + np.cumsum(gaps, axis=1),
                  mask)
    prev_cat = np.concatenate([np.full((n_u, 1), -1, np.int64), cats[:, :-1]], axis=1)
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

