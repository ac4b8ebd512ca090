"""The full-ranking evaluator.

:func:`evaluate` ranks every item known to the model for every test user (items the user
already has in ``exclude`` are masked), takes the top ``max(ks)`` with the shared
:func:`streamrec.retrieval.topk.topk`, and computes every metric at every cut-off from the
resulting hit matrix. Scores are produced one batch of users at a time and only the top-k
indices are kept, so memory is ``batch_size * n_items`` scores plus ``U * max(ks)`` indices.
Results do not depend on ``batch_size``. The ranking kernels live below the models
(:mod:`streamrec.metrics.full_ranking`), where the models' early stopping uses them too.

Sampled evaluation (ranking each user's relevant items among ``N`` sampled negatives) is
available only when asked for (``sampled=N``); its result is flagged ``sampled=True`` and its
means are labelled ``sampled_...``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.metrics import beyond as B
from streamrec.metrics.full_ranking import (
    ExcludeLike,
    exclusion_matrix,
    next_item_ranking,
    rank_users,
    relevant_items,
)
from streamrec.metrics.ranking import (
    RANKING_METRICS,
    hits_from_keys,
    metrics_from_hits,
    truth_keys,
)
from streamrec.models.base import Recommender, as_generator
from streamrec.retrieval.topk import mask_rows, topk

__all__ = ["RANKING_METRICS", "EvalResult", "evaluate", "evaluate_next_item", "metrics_from_hits"]


@dataclass
class EvalResult:
    """Per-user and aggregate metrics of one evaluation.

    Attributes
    ----------
    users : ndarray of int64, shape (U,)
        Evaluated user indices (every user with at least one test interaction), ascending.
    per_user : dict of str to ndarray of float64, shape (U,)
        e.g. ``"ndcg@10"``, ``"novelty@10"``; row ``j`` belongs to ``users[j]``.
    aggregate : dict of str to float
        Metrics that are not per user, e.g. ``"coverage@10"``.
    sampled : bool
        True only for sampled evaluation (``evaluate(..., sampled=N)``).
    n_negatives : int or None
        Negatives sampled per user when ``sampled``.
    """

    users: np.ndarray
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    aggregate: dict[str, float] = field(default_factory=dict)
    sampled: bool = False
    n_negatives: int | None = None

    def means(self) -> dict[str, float]:
        """Mean over users of every per-user metric (nan entries skipped), plus the aggregates.

        Returns
        -------
        dict of str to float
            Keys as in ``per_user`` / ``aggregate``; when :attr:`sampled`, every key is
            prefixed ``"sampled_"`` (e.g. ``"sampled_ndcg@10"``).
        """
        prefix = "sampled_" if self.sampled else ""
        out: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan or empty -> nan
            for key, values in self.per_user.items():
                out[prefix + key] = float(np.nanmean(values)) if len(values) else float("nan")
        for key, value in self.aggregate.items():
            out[prefix + key] = float(value)
        return out


def _check_args(model: Recommender, ks: Sequence[int], metrics: Sequence[str],
                batch_size: int, sampled: int | None, sampling: str,
                item_counts: np.ndarray | None, item_categories: np.ndarray | None,
                item_embeddings: np.ndarray | None) -> tuple[int, tuple[int, ...]]:
    n_items = getattr(model, "n_items_", None)
    if n_items is None:
        raise RuntimeError(f"evaluate: {type(model).__name__} is not fitted (no n_items_)")
    ks_t = tuple(sorted({int(k) for k in ks}))
    if not ks_t or ks_t[0] < 1:
        raise ValueError(f"evaluate: ks must be positive integers, got {tuple(ks)}")
    unknown = [m for m in metrics if m not in RANKING_METRICS]
    if unknown:
        raise ValueError(f"evaluate: unknown metrics {unknown}; known: {list(RANKING_METRICS)}")
    if int(batch_size) < 1:
        raise ValueError(f"evaluate: batch_size must be >= 1, got {batch_size}")
    if item_categories is not None and item_embeddings is not None:
        raise ValueError("evaluate: pass item_categories or item_embeddings, not both")
    for name, arr in (("item_counts", item_counts), ("item_categories", item_categories),
                      ("item_embeddings", item_embeddings)):
        if arr is not None and len(arr) < int(n_items):
            raise ValueError(f"evaluate: {name} has {len(arr)} rows, the model has {n_items} items")
    if sampled is not None:
        if int(sampled) < 1:
            raise ValueError(f"evaluate: sampled must be a positive number of negatives, got {sampled}")
        if sampling not in ("uniform", "popularity"):
            raise ValueError(f"evaluate: sampling must be 'uniform' or 'popularity', got {sampling!r}")
        if sampling == "popularity" and item_counts is None:
            raise ValueError("evaluate: sampling='popularity' needs item_counts")
    return int(n_items), ks_t


def _sample_candidates(scores: np.ndarray, users: np.ndarray, truth: sp.csr_array,
                       exclude: sp.csr_array | None, n_neg: int, weights: np.ndarray | None,
                       gen: np.random.Generator) -> None:
    """Keep only each row's relevant items and ``n_neg`` sampled negatives (in place).

    Negatives are drawn without replacement from the items that are neither excluded nor
    relevant: uniformly, or proportionally to ``weights`` (exponential keys ``E / w``,
    Efraimidis-Spirakis). Random numbers are drawn row after row, so the draw of a user does
    not depend on the batch it falls in.
    """
    shape = scores.shape
    if weights is None:
        priority = gen.random(shape)  # (B, I), larger is drawn first
    else:
        with np.errstate(divide="ignore"):
            priority = -gen.standard_exponential(shape) / weights  # weight 0 -> -inf: never drawn
    mask_rows(priority, exclude, users)
    relevant = np.isneginf(mask_rows(np.zeros(shape, dtype=np.float32), truth, users))
    priority[relevant] = -np.inf
    neg, _ = topk(priority, n_neg)  # (B, n_neg), -1 where too few items are left
    keep = relevant
    rows = np.broadcast_to(np.arange(shape[0])[:, None], neg.shape)
    ok = neg >= 0
    keep[rows[ok], neg[ok]] = True
    scores[~keep] = -np.inf


def evaluate(
    model: Recommender,
    test: Interactions,
    *,
    exclude: ExcludeLike = None,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = RANKING_METRICS,
    batch_size: int = 1024,
    item_counts: np.ndarray | None = None,
    item_categories: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    sampled: int | None = None,
    sampling: Literal["uniform", "popularity"] = "uniform",
    rng: np.random.Generator | int | None = None,
) -> EvalResult:
    """Full-ranking top-K evaluation of a fitted recommender.

    Parameters
    ----------
    model : Recommender
        Fitted; ``model.score(users)`` returns shape (B, ``model.n_items_``).
    test : Interactions
        Held-out interactions. Every user with at least one of them is evaluated; the
        user's relevant items are its distinct test items, including items with index
        ``>= model.n_items_`` (unseen at training time: counted in ``n_relevant``, never hit).
    exclude : Interactions, sparse matrix, or list of them, optional
        Stored (user, item) pairs that must not be recommended, e.g. ``[train, valid]`` at
        test time. A relevant item that is also excluded can never be hit.
    ks : sequence of int
        Cut-offs; every metric is computed at each.
    metrics : sequence of str
        Among ``"precision", "recall", "ndcg", "map", "mrr", "hit"``.
    batch_size : int
        Users scored at once (memory ``batch_size * n_items`` float32); no effect on results.
    item_counts : ndarray, shape (n_items,), optional
        Training popularity; adds ``novelty@k`` (self-information against
        ``model.n_users_`` users) and ``popularity@k`` per user; the weights of
        ``sampling="popularity"``.
    item_categories : ndarray of int, shape (n_items,), optional
        Adds ``diversity@k`` (intra-list, 1 - same category).
    item_embeddings : ndarray, shape (n_items, D), optional
        Adds ``diversity@k`` (intra-list, 1 - cosine); not together with categories.
    sampled : int, optional
        Sampled evaluation: rank each user's relevant items among this many negatives drawn
        from the non-excluded, non-relevant items. Off by default (full ranking).
    sampling : {"uniform", "popularity"}
        Negative distribution for ``sampled`` (popularity: proportional to ``item_counts``).
    rng : numpy Generator or int seed, optional
        Randomness of ``sampled`` (seed 0 when None).

    Returns
    -------
    EvalResult
        ``per_user`` keys ``"{metric}@{k}"``; ``aggregate`` holds ``"coverage@{k}"`` (full
        ranking only). Sampled results carry ``sampled=True`` and no beyond-accuracy metrics.
    """
    n_items, ks_t = _check_args(model, ks, metrics, batch_size, sampled, sampling,
                                item_counts, item_categories, item_embeddings)
    truth, users, n_rel = relevant_items(test)  # truth (n_users, test.n_items): stored = relevant
    ex = exclusion_matrix(exclude, n_items)
    adjust = (None if sampled is None else
              _sampler(truth, ex, int(sampled), sampling, item_counts, n_items, rng))
    ranked = rank_users(model.score, users, n_items, min(ks_t[-1], n_items), exclude=ex,
                        batch_size=batch_size, adjust=adjust, owner=type(model).__name__)
    keys, n_cols = truth_keys(truth)
    hits = hits_from_keys(ranked, users, keys, n_cols)
    per_user = metrics_from_hits(hits, n_rel, ks_t, metrics)
    aggregate: dict[str, float] = {}
    if sampled is None:
        n_users_train = int(getattr(model, "n_users_", test.n_users))
        _beyond_accuracy(per_user, aggregate, ranked, ks_t, n_items, n_users_train,
                         item_counts, item_categories, item_embeddings)
    return EvalResult(users=users, per_user=per_user, aggregate=aggregate,
                      sampled=sampled is not None,
                      n_negatives=None if sampled is None else int(sampled))


def _sampler(truth: sp.csr_array, exclude: sp.csr_array | None, n_neg: int, sampling: str,
             item_counts: np.ndarray | None, n_items: int,
             rng: np.random.Generator | int | None) -> Callable[[np.ndarray, np.ndarray], None]:
    """The score adjustment of sampled evaluation: keep each row's relevant items and
    ``n_neg`` negatives (:func:`_sample_candidates`), drawn from ``rng``."""
    gen = as_generator(rng)
    weights = (np.asarray(item_counts, dtype=np.float64)[:n_items]
               if sampling == "popularity" else None)

    def adjust(scores: np.ndarray, users: np.ndarray) -> None:
        _sample_candidates(scores, users, truth, exclude, n_neg, weights, gen)

    return adjust


def _beyond_accuracy(per_user: dict[str, np.ndarray], aggregate: dict[str, float],
                     ranked: np.ndarray, ks: Sequence[int], n_items: int, n_users_train: int,
                     item_counts: np.ndarray | None, item_categories: np.ndarray | None,
                     item_embeddings: np.ndarray | None) -> None:
    """Add novelty, popularity and diversity per user and coverage at each cut-off."""
    for k in ks:
        top = ranked[:, :k]
        if item_counts is not None:
            per_user[f"novelty@{k}"] = B.novelty(top, item_counts, n_users_train)
            per_user[f"popularity@{k}"] = B.average_popularity(top, item_counts)
        if item_categories is not None or item_embeddings is not None:
            per_user[f"diversity@{k}"] = B.intra_list_diversity(
                top, categories=item_categories, embeddings=item_embeddings)
        aggregate[f"coverage@{k}"] = B.coverage(top, n_items)


def evaluate_next_item(
    model: Recommender,
    sessions: Interactions,
    *,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = RANKING_METRICS,
    batch_size: int = 1024,
    min_prefix: int = 1,
    exclude_seen: bool = False,
) -> EvalResult:
    """Next-item evaluation: every prefix of every session predicts the item that follows.

    The model ranks its whole catalogue after each prefix (its last ``model.max_len``
    items) through ``score_sequences``; the single relevant item is the next one. This is
    the session-based protocol (GRU4Rec, the case study): sessions need not belong to users
    the model has seen.

    Parameters
    ----------
    model : Recommender
        Fitted, with ``score_sequences`` (the sequence models, and ``pop``).
    sessions : Interactions
        One sequence per user index, ordered by timestamp; items the model does not know
        stay as targets (never hit) but are dropped from prefixes.
    ks, metrics :
        As in :func:`evaluate`; with one relevant item, ``hit@k`` = ``recall@k``.
    batch_size : int
        Prefixes scored at once; no effect on results.
    min_prefix : int
        Shortest prefix that predicts (1: every item after a session's first).
    exclude_seen : bool
        Mask the prefix's own items (off: sessions revisit items).

    Returns
    -------
    EvalResult
        One row per (prefix, next item) example: ``users`` holds the session of each row
        (repeated), ``per_user`` the example's metrics, in (session, position) order.
    """
    if not model.scores_sessions:
        raise TypeError(
            f"{type(model).__name__} cannot score sessions (no score_sequences): next-item "
            "protocols need a sequence model (lstm_attention, gru4rec, sasrec, markov, "
            "pop_last_category) or pop")
    n_items, ks_t = _check_args(model, ks, metrics, batch_size, None, "uniform",
                                None, None, None)
    ranked, targets, owners = next_item_ranking(
        model.score_sequences, sessions, n_items=n_items,  # type: ignore[attr-defined]
        max_len=int(getattr(model, "max_len", 50) or 50), k=min(ks_t[-1], n_items),
        batch_size=batch_size, min_prefix=min_prefix, exclude_seen=exclude_seen,
        # one pass per session (causal sequence models)
        fast=getattr(model, "rank_next_items", None))
    hits = ranked == targets[:, None]  # (N, k_max): one relevant item per row
    n_rel = np.ones(len(targets), dtype=np.int64)
    per_user = metrics_from_hits(hits, n_rel, ks_t, metrics)
    aggregate = {f"coverage@{k}": B.coverage(ranked[:, :k], n_items) for k in ks_t}
    return EvalResult(users=owners, per_user=per_user, aggregate=aggregate)
