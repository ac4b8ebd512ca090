"""Stage 3 of the service: turn ranked candidates into the list a user sees.

:func:`apply_policy` takes the ranker's order and enforces, in this order: no item the user
already consumed (the caller drops those before ranking; the policy re-checks), at most
``max_per_category`` items of one category, and ``explore_slots`` positions at the end of the
list reserved for *new* items (released or added recently) that the ranker had no history
to score well, so the catalog's newest items get impressions and so data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PolicyConfig", "apply_policy"]


@dataclass(frozen=True)
class PolicyConfig:
    """Stage-3 rules.

    Attributes
    ----------
    max_per_category : int
        Cap on items of one category in a list (0: no cap).
    explore_slots : int
        Positions (taken from the end of the list) for the best-ranked new items not
        already in it.
    """

    max_per_category: int = 3
    explore_slots: int = 1


def apply_policy(order: np.ndarray, categories: np.ndarray, is_new: np.ndarray, k: int,
                 config: PolicyConfig, *, seen: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` positions of a ranked candidate list.

    Parameters
    ----------
    order : ndarray of int, shape (C,)
        Candidate items (any ids), best first.
    categories : ndarray of int, shape (C,)
        Category code of each candidate (0 = unknown: never capped).
    is_new : ndarray of bool, shape (C,)
        Candidates eligible for the exploration slots.
    k : int
    config : PolicyConfig
    seen : ndarray, optional
        Items never to return.

    Returns
    -------
    picked : ndarray of int, shape (<= k,)
        Positions into ``order``, in list order.
    explored : ndarray of bool, same shape
        Which picks filled an exploration slot.
    """
    c = len(order)
    allowed = np.ones(c, bool)
    if seen is not None and len(seen):
        allowed &= ~np.isin(order, seen)
    cap = config.max_per_category
    n_explore = min(config.explore_slots, k)
    cand = np.flatnonzero(allowed)
    if cap > 0:  # the first `cap` allowed items of each category, in list order
        cand = cand[(_rank_in_group(categories[cand]) < cap) | (categories[cand] == 0)]
    head = cand[: k - n_explore]
    pool = np.setdiff1d(np.flatnonzero(allowed & is_new), head, assume_unique=True)
    if cap > 0 and len(pool):  # exploration respects the cap of the final list
        used = np.bincount(categories[head], minlength=int(categories.max()) + 1)
        room = cap - used[categories[pool]] - _rank_in_group(categories[pool])
        pool = pool[(room > 0) | (categories[pool] == 0)]
    explore = pool[:n_explore]
    if len(explore) < n_explore:  # not enough new items: fill with the ranked list
        head = cand[: k - len(explore)]
    picked = np.concatenate([head, explore])
    explored = np.arange(len(picked)) >= len(head)
    return picked.astype(np.int64), explored


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """Position of each element among the earlier elements of its group, shape (n,)."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(groups, kind="stable")  # by group, earlier elements first
    g = groups[order]
    pos = np.arange(n)
    first = np.empty(n, bool)  # where each group starts in the sorted order
    first[0] = True
    np.not_equal(g[1:], g[:-1], out=first[1:])
    rank = np.empty(n, np.int64)
    rank[order] = pos - np.maximum.accumulate(np.where(first, pos, 0))
    return rank
