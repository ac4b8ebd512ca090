"""Full ranking of a score function: the kernels behind :mod:`streamrec.eval.protocol` and
the models' early stopping.

They take score functions (``score(users) -> (B, n_items)``,
``score_sequences(prefixes) -> (B, n_items)``) rather than models, so that the models layer,
which sits above this module, can validate on the same numbers the evaluator reports:
:func:`ranking_ndcg` is :func:`~streamrec.eval.protocol.evaluate`'s mean ``ndcg@k`` and
:func:`next_item_ndcg` is :func:`~streamrec.eval.protocol.evaluate_next_item`'s.

Scores are produced one batch at a time and only the top-k indices are kept (the shared
:func:`streamrec.retrieval.topk.topk`, so ties break as in ``Recommender.recommend``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.metrics.ranking import hits_from_keys, ndcg, truth_keys
from streamrec.retrieval.topk import mask_rows, topk

__all__ = [
    "ExcludeLike",
    "exclusion_matrix",
    "nan_mean",
    "next_item_examples",
    "next_item_ndcg",
    "next_item_ranking",
    "rank_prefixes",
    "rank_users",
    "ranking_ndcg",
    "relevant_items",
]

ExcludeLike = (
    Interactions
    | sp.sparray
    | sp.spmatrix
    | Sequence[Interactions | sp.sparray | sp.spmatrix]
    | None
)
ScoreUsers = Callable[[np.ndarray], np.ndarray]
#: ``adjust(scores, users)``: edits a batch's masked scores in place before its top-k
AdjustScores = Callable[[np.ndarray, np.ndarray], None]
#: a model's one-pass ranking of every prefix of ``sessions`` (``rank_next_items``), or None
FastNextItems = Callable[..., np.ndarray | None]


def nan_mean(values: np.ndarray) -> float:
    """Mean over the non-nan entries (nan when there are none, without a warning)."""
    if not len(values):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan -> nan
        return float(np.nanmean(values))


# ---------------------------------------------------------------------------- users
def relevant_items(test: Interactions) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    """The relevant items of every user with at least one ``test`` interaction.

    Returns
    -------
    truth : csr, shape (test.n_users, test.n_items)
        Stored = relevant.
    users : ndarray of int64, shape (U,)
        Users with a relevant item, ascending.
    n_rel : ndarray of int64, shape (U,)
        Distinct relevant items per user.
    """
    truth = test.to_csr()
    per_row = np.diff(truth.indptr)
    users = np.flatnonzero(per_row).astype(np.int64)
    return truth, users, per_row[users].astype(np.int64)


def exclusion_matrix(exclude: ExcludeLike, n_items: int) -> sp.csr_array | None:
    """One csr (n_users, n_items) whose stored entries are the union of ``exclude``'s pairs."""
    if exclude is None:
        return None
    parts = list(exclude) if isinstance(exclude, list | tuple) else [exclude]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    n_rows = 0
    for part in parts:
        if isinstance(part, Interactions):
            r, c, nr = part.users, part.items, part.n_users
        elif sp.issparse(part):
            coo = sp.coo_array(part)  # keeps explicitly stored zeros: stored means excluded
            r, c, nr = coo.coords[0], coo.coords[1], part.shape[0]
        else:
            raise TypeError(
                "evaluate: exclude must be Interactions, a scipy sparse matrix, or a list of "
                f"them; got {type(part).__name__}"
            )
        rows.append(np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        n_rows = max(n_rows, int(nr))
    if not parts:
        return None
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = c < n_items  # items the model does not know cannot be ranked anyway
    m = sp.csr_array(
        (np.ones(int(keep.sum()), dtype=np.float32), (r[keep], c[keep])),
        shape=(n_rows, n_items),
    )
    m.sum_duplicates()
    return m


def rank_users(score: ScoreUsers, users: np.ndarray, n_items: int, k: int, *,
               exclude: sp.csr_array | None = None, batch_size: int = 1024,
               adjust: AdjustScores | None = None, owner: str = "model") -> np.ndarray:
    """Top-``k`` items of every user among all ``n_items`` (``exclude``'s pairs masked).

    Parameters
    ----------
    score : callable
        ``score(users)`` -> scores of shape (len(users), n_items).
    users : ndarray of int64, shape (U,)
    n_items, k : int
    exclude : csr, optional
        From :func:`exclusion_matrix`.
    batch_size : int
        Users scored at once (memory ``batch_size * n_items`` float32); no effect on results.
    adjust : callable, optional
        ``adjust(scores, batch_users)`` edits a batch's scores in place after masking
        (sampled evaluation keeps only some candidates).
    owner : str
        Named in the error when ``score`` returns the wrong shape.

    Returns
    -------
    ndarray of int64, shape (U, k)
        ``-1`` where a user has fewer than ``k`` candidates.
    """
    ranked = np.full((len(users), k), -1, dtype=np.int64)
    for lo in range(0, len(users), int(batch_size)):
        ub = users[lo:lo + int(batch_size)]
        scores = np.array(score(ub), dtype=np.float32)  # a copy: masked in place
        if scores.shape != (len(ub), n_items):
            raise ValueError(f"evaluate: {owner}.score returned shape {scores.shape}, "
                             f"expected ({len(ub)}, {n_items})")
        mask_rows(scores, exclude, ub)
        if adjust is not None:
            adjust(scores, ub)
        ranked[lo:lo + len(ub)], _ = topk(scores, k)
        del scores
    return ranked


def ranking_ndcg(score: ScoreUsers, test: Interactions, *, n_items: int,
                 exclude: ExcludeLike = None, k: int = 10, batch_size: int = 1024) -> float:
    """Mean NDCG@``k`` of full ranking over the users of ``test`` (a validation criterion:
    the ``ndcg@k`` mean of :func:`~streamrec.eval.protocol.evaluate`)."""
    truth, users, n_rel = relevant_items(test)
    ranked = rank_users(score, users, n_items, min(int(k), n_items),
                        exclude=exclusion_matrix(exclude, n_items), batch_size=batch_size)
    keys, n_cols = truth_keys(truth)
    return nan_mean(ndcg(hits_from_keys(ranked, users, keys, n_cols), n_rel, int(k)))


# ---------------------------------------------------------------------------- sessions
def next_item_examples(sessions: Interactions, max_len: int, *, min_prefix: int = 1,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (prefix -> next item) example of the sessions (users) of ``sessions``.

    Parameters
    ----------
    sessions : Interactions
        One sequence per user, in time order.
    max_len : int
        Prefixes keep their last ``max_len`` items.
    min_prefix : int
        Shortest prefix predicted from (1: every item after the first is a target).

    Returns
    -------
    prefixes : ndarray of int64, shape (N, max_len)
        Left-padded with ``-1`` (the history layout), item indices of ``sessions``.
    targets : ndarray of int64, shape (N,)
    owners : ndarray of int64, shape (N,)
        The user (session) of each example.
    """
    order = sessions.chronological_order()
    users = sessions.users[order].astype(np.int64)
    items = sessions.items[order].astype(np.int64)
    counts = np.bincount(users, minlength=sessions.n_users)
    begins = np.repeat(np.cumsum(counts) - counts, counts)  # (n,) start of each row's user
    pos = np.arange(len(items)) - begins  # position within the user's sequence
    rows = np.flatnonzero(pos >= min_prefix)  # the targets
    cols = rows[:, None] - max_len + np.arange(max_len)[None, :]  # (N, T) rows of the prefix
    ok = cols >= begins[rows][:, None]
    prefixes = np.where(ok, items[np.maximum(cols, 0)], -1)
    return prefixes, items[rows], users[rows]


def rank_prefixes(score_sequences: ScoreUsers, prefixes: np.ndarray, k: int, batch_size: int,
                  exclude_seen: bool) -> np.ndarray:
    """Top-``k`` items after each left-padded prefix, through ``score_sequences``."""
    ranked = np.full((len(prefixes), k), -1, dtype=np.int64)
    for lo in range(0, len(prefixes), int(batch_size)):
        pb = prefixes[lo:lo + int(batch_size)]
        scores = np.array(score_sequences(pb), dtype=np.float32)
        if exclude_seen:
            r, c = np.nonzero(pb >= 0)
            scores[r, pb[r, c]] = -np.inf
        ranked[lo:lo + len(pb)], _ = topk(scores, k)
    return ranked


def next_item_ranking(score_sequences: ScoreUsers, sessions: Interactions, *, n_items: int,
                      max_len: int, k: int, batch_size: int = 1024, min_prefix: int = 1,
                      exclude_seen: bool = False, fast: FastNextItems | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` items after every prefix of every session, with the items that follow.

    ``fast(sessions, k, min_prefix=...)`` (a causal model's one pass per session) is tried
    first unless ``exclude_seen``; when it returns None the prefixes (their last ``max_len``
    items, unknown items dropped) are scored through ``score_sequences``.

    Returns
    -------
    ranked : ndarray of int64, shape (N, k)
    targets, owners : ndarray of int64, shape (N,)
        In the order of :func:`next_item_examples`.
    """
    prefixes, targets, owners = next_item_examples(sessions, max_len, min_prefix=min_prefix)
    prefixes = np.where(prefixes < n_items, prefixes, -1)  # unknown items leave the prefix
    ranked = None if fast is None or exclude_seen else fast(sessions, k, min_prefix=min_prefix)
    if ranked is None:
        ranked = rank_prefixes(score_sequences, prefixes, k, batch_size, exclude_seen)
    return ranked, targets, owners


def next_item_ndcg(score_sequences: ScoreUsers, sessions: Interactions, *, n_items: int,
                   max_len: int, k: int = 10, fast: FastNextItems | None = None,
                   batch_size: int = 1024) -> float:
    """Mean NDCG@``k`` of the next item over every prefix of ``sessions`` (a validation
    criterion: the ``ndcg@k`` mean of :func:`~streamrec.eval.protocol.evaluate_next_item`)."""
    ranked, targets, _ = next_item_ranking(score_sequences, sessions, n_items=n_items,
                                           max_len=max_len, k=min(int(k), n_items),
                                           batch_size=batch_size, fast=fast)
    hits = ranked == targets[:, None]
    return nan_mean(ndcg(hits, np.ones(len(targets), dtype=np.int64), int(k)))
