"""What the sequence models share: user histories, padded inputs, next-item training data.

A :class:`SequentialRecommender` scores from *what the user did last*: ``score(users)`` looks
up each user's most recent items (their history, learned from train and extended with
:meth:`~SequentialRecommender.update_history` as events arrive, e.g. the valid part before
testing) and calls :meth:`~SequentialRecommender.score_sequences`, which the service can also
call with a live session.

Layouts
-------
- *Histories* (``user_seqs_``, public inputs): shape (U, max_len) int64 item indices, oldest
  first, padded with ``-1``. :meth:`score_sequences` also takes a list of variable-length
  item lists.
- *Model inputs* (inside the torch models): right-padded, item index + 1, ``0`` = padding,
  so that a causal encoder's output at position ``t`` never depends on what follows it and a
  prefix gives the same state in training (all positions of a window at once) and in scoring
  (the output at the prefix's last item).
- *Training windows*: each user's item sequence in time order, cut from the end into windows
  of at most ``max_len + 1`` items; in a window, the item at ``t`` is the target of the prefix
  ending at ``t - 1`` (every prefix -> next item, computed in one pass per window).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.metrics.full_ranking import next_item_examples, next_item_ndcg
from streamrec.models._history import check_items, check_users
from streamrec.models.base import Recommender
from streamrec.models.neural.base import TorchRecommender
from streamrec.models.neural.trainer import torch_generator

__all__ = [
    "LOSSES",
    "NextItemModule",
    "SequenceWindows",
    "SequentialRecommender",
    "TorchSequentialRecommender",
    "next_item_examples",
    "pad_sequences",
    "right_align",
]

SeqLike = np.ndarray | Sequence[Sequence[int]] | Sequence[np.ndarray]


# ---------------------------------------------------------------------------- layouts
def pad_sequences(seqs: SeqLike, max_len: int, n_items: int | None = None) -> np.ndarray:
    """Item sequences as one left-padded history array.

    Parameters
    ----------
    seqs : 2-D int array (entries < 0 are padding, anywhere) or a list of item lists
        Oldest item first.
    max_len : int
        Width T; longer sequences keep their last ``max_len`` items.
    n_items : int, optional
        Items ``>= n_items`` (unknown to a model) are dropped as if they were padding.

    Returns
    -------
    ndarray of int64, shape (B, T)
        Oldest first, the latest item in the last column, ``-1`` before the first item.
    """
    if isinstance(seqs, np.ndarray) and seqs.ndim == 2:
        arr = seqs.astype(np.int64, copy=False)
    else:
        rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in seqs]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        width = int(lengths.max()) if len(rows) and lengths.max() > 0 else 1
        arr = np.full((len(rows), width), -1, dtype=np.int64)
        if len(rows):
            flat = np.concatenate(rows) if lengths.sum() else np.zeros(0, np.int64)
            r = np.repeat(np.arange(len(rows)), lengths)
            c = width - np.repeat(lengths, lengths) + (
                np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths))
            arr[r, c] = flat
    keep = arr >= 0
    if n_items is not None:
        keep &= arr < n_items
    # move the kept entries to the right end of each row, keeping their order
    n = keep.sum(axis=1)
    order = np.argsort(keep, axis=1, kind="stable")  # (B, W): dropped first, kept last
    packed = np.take_along_axis(arr, order, axis=1)
    width = packed.shape[1]
    cols = width - max_len + np.arange(max_len)  # the last max_len columns
    out = np.full((len(arr), max_len), -1, dtype=np.int64)
    ok = cols >= 0
    out[:, ok] = packed[:, cols[ok]]
    out[np.arange(max_len)[None, :] < (max_len - np.minimum(n, max_len))[:, None]] = -1
    return out


def right_align(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded ``-1`` histories -> the models' right-padded ``item + 1`` inputs.

    Returns
    -------
    x : ndarray of int64, shape (B, T)
        ``x[b, :n[b]]`` are the items + 1, oldest first; 0 after them.
    n : ndarray of int64, shape (B,)
        Number of items per row.
    """
    valid = history >= 0
    n = valid.sum(axis=1)
    order = np.argsort(~valid, axis=1, kind="stable")  # kept items first, in order
    x = np.take_along_axis(history, order, axis=1) + 1
    x[np.arange(history.shape[1])[None, :] >= n[:, None]] = 0
    return x, n


class SequenceWindows:
    """Every user's item sequence cut into training windows (arrays, no Python objects).

    Parameters
    ----------
    train : Interactions
    max_len : int
        Inputs per window; a window holds up to ``max_len + 1`` items (inputs + last target).

    Attributes
    ----------
    items : ndarray of int64, shape (n,)
        Items + 1 of all events in (user, time) order.
    starts, stops : ndarray of int64, shape (W,)
        ``items[starts[w]:stops[w]]`` is window ``w`` (at least 2 items).
    """

    def __init__(self, train: Interactions, max_len: int) -> None:
        order = train.chronological_order()
        users = train.users[order]
        self.items = train.items[order].astype(np.int64) + 1
        counts = np.bincount(users, minlength=train.n_users)
        ends = np.cumsum(counts)
        begins = ends - counts
        # window j of a user covers [end - (j+1)*max_len - 1, end - j*max_len), clipped
        n_win = np.where(counts >= 2, -(-(counts - 1) // max_len), 0)
        owner = np.repeat(np.arange(train.n_users), n_win)
        j = np.arange(n_win.sum()) - np.repeat(np.cumsum(n_win) - n_win, n_win)
        stops = ends[owner] - j * max_len
        self.starts = np.maximum(stops - max_len - 1, begins[owner]).astype(np.int64)
        self.stops = stops.astype(np.int64)
        self.max_len = int(max_len)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def n_targets(self) -> int:
        """Number of (prefix, next item) examples over all windows."""
        return int((self.stops - self.starts - 1).sum())

    def batch_indices(self, batch_size: int, gen: torch.Generator,
                      bucket: int = 32) -> list[np.ndarray]:
        """One epoch of window indices, shuffled and grouped by length.

        The windows are shuffled, each run of ``bucket`` batches is sorted by window length
        and cut into batches, and the batches are shuffled: a batch is then only as wide as
        its longest window (see :meth:`batch`), so short histories do not pay for padding
        up to ``max_len``. ``bucket=1`` gives plain random batches.
        """
        perm = torch.randperm(len(self), generator=gen).numpy()
        if bucket > 1:
            length = (self.stops - self.starts)[perm]
            chunk = np.arange(len(perm)) // (int(batch_size) * int(bucket))
            perm = perm[np.lexsort((length, chunk))]
        batches = np.array_split(perm, np.arange(int(batch_size), len(perm), int(batch_size)))
        order = torch.randperm(len(batches), generator=gen).numpy()
        return [batches[i] for i in order]

    def batch(self, idx: np.ndarray) -> tuple[Tensor, Tensor]:
        """Inputs and targets of windows ``idx``, right-padded.

        Returns
        -------
        x : Tensor of int64, shape (B, T)
            Items + 1 of the window without its last item; 0 = padding.
        y : Tensor of int64, shape (B, T)
            ``y[b, t]`` = the item + 1 following ``x[b, :t + 1]``; 0 = no target.
        """
        lo, hi = self.starts[idx], self.stops[idx]
        length = hi - lo  # (B,) items in each window, >= 2
        width = int(length.max()) - 1
        pos = lo[:, None] + np.arange(width + 1)[None, :]  # (B, T + 1)
        seq = np.where(pos < hi[:, None], self.items[np.minimum(pos, len(self.items) - 1)], 0)
        x = np.where(pos[:, :-1] < hi[:, None] - 1, seq[:, :-1], 0)  # not the last item
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(seq[:, 1:]))


# ---------------------------------------------------------------------------- models
class SequentialRecommender(Recommender):
    """A recommender that scores from recent item sequences.

    Subclasses implement :meth:`_score_history` (and ``fit``, which must call
    :meth:`_set_history`); they have a ``max_len`` hyperparameter.
    """

    scores_sessions: ClassVar[bool] = True
    max_len: int
    user_seqs_: np.ndarray  # (U, max_len) int64, -1 padded
    item_popularity_: np.ndarray

    # ------------------------------------------------------------------ histories
    def _set_history(self, train: Interactions) -> None:
        seqs, _ = train.sequences(int(self.max_len), offset=1)
        self.user_seqs_ = seqs - 1

    def update_history(self, events: Interactions) -> Self:
        """Append ``events`` (in time order per user) to the users' histories.

        Items unknown to the model (``>= n_items_``) are skipped; users beyond the known
        ones get a history (their ``score`` then uses it). Returns ``self``.
        """
        self._check_fitted()
        ev = events.take(events.items < self.n_items_)
        if len(ev) == 0:
            return self
        hist = self.user_seqs_
        n_rows, width = hist.shape
        rows = max(n_rows, int(ev.users.max()) + 1)
        r, c = np.nonzero(hist >= 0)
        rank = np.empty(len(ev), dtype=np.int64)
        rank[np.lexsort((np.arange(len(ev)), ev.timestamps))] = np.arange(len(ev))
        merged = Interactions(
            users=np.concatenate([r, ev.users]).astype(np.int32),
            items=np.concatenate([hist[r, c], ev.items]).astype(np.int32),
            timestamps=np.concatenate([c - width, rank]),  # old entries before new ones
            values=np.ones(len(r) + len(ev), np.float32),
            n_users=rows, n_items=self.n_items_)
        self._set_history(merged)
        return self

    def histories(self, users: np.ndarray) -> np.ndarray:
        """Histories of ``users``, shape (U, max_len); users without one get all ``-1``."""
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), int(self.max_len)), -1, dtype=np.int64)
        known = users < len(self.user_seqs_)
        out[known] = self.user_seqs_[users[known]]
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores of each user's current history, shape (U, n_items) or (U, len(items))."""
        self._check_fitted()
        users = check_users(users, type(self).__name__)
        return self.score_sequences(self.histories(users), items)

    def score_sequences(self, seqs: SeqLike, items: np.ndarray | None = None) -> np.ndarray:
        """Next-item scores of raw item sequences (e.g. a live session).

        Parameters
        ----------
        seqs : 2-D int array (``-1`` = padding) or a list of item-index lists
            Oldest first; items the model does not know are ignored; only the last
            ``max_len`` items count.
        items : ndarray of int, optional
            Score only these items.

        Returns
        -------
        ndarray of float32, shape (B, n_items) or (B, len(items))
            Empty sequences get the training popularity.
        """
        self._check_fitted()
        items = check_items(items, self.n_items_, type(self).__name__)
        hist = pad_sequences(seqs, int(self.max_len), self.n_items_)
        out = np.empty((len(hist), self.n_items_), dtype=np.float32)
        empty = hist[:, -1] < 0
        out[empty] = self.item_popularity_
        if (~empty).any():
            out[~empty] = self._score_history(hist[~empty])
        return out if items is None else np.ascontiguousarray(out[:, items])

    @abstractmethod
    def _score_history(self, hist: np.ndarray) -> np.ndarray:
        """Scores (B, n_items) of non-empty left-padded histories (B, max_len)."""


class TorchSequentialRecommender(SequentialRecommender, TorchRecommender):
    """A torch sequence model: the module maps right-padded inputs to per-position states.

    The module (see :class:`NextItemModule`) has ``loss((x, y))`` and ``score_all(x)``;
    subclasses implement ``_build_module`` and may override :meth:`_batches`.

    Parameters
    ----------
    max_len : int
        Items of history used (the latest ones).
    loss : {"ce", "bce", "sampled", "gbce"}
        See :class:`NextItemModule` (``"ce"``: full cross-entropy over the catalogue).
    n_negatives : int
        For the sampled losses.
    **train :
        Trainer settings (:class:`~streamrec.models.neural.trainer.TrainConfig` fields;
        defaults in each class's ``train_defaults``; gradients are clipped to norm 5).
    """

    #: models without dropout (the subclasses here all have a ``dropout`` hyperparameter)
    dropout: float = 0.0
    train_defaults: ClassVar[dict[str, Any]] = {"clip_norm": 5.0}

    def __init__(self, max_len: int = 50, loss: str = "ce", n_negatives: int = 256,
                 **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on every (prefix -> next item) example of the train sequences.

        ``valid`` drives early stopping: users known in train are ranked from their train
        history (full ranking, train items excluded); sessions of users not in train (the
        ``case_study`` / ``session_temporal`` protocols) are scored prefix by prefix.
        """
        name = type(self).__name__
        if int(self.max_len) < 1:
            raise ValueError(f"{name}: max_len must be >= 1, got {self.max_len}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"{name}: dropout must lie in [0, 1), got {self.dropout}")
        if self.loss not in LOSSES:
            raise ValueError(f"{name}: loss must be one of {', '.join(LOSSES)} (got {self.loss!r})")
        gen, seed = self._start_fit(train, rng)
        self._set_history(train)
        windows = SequenceWindows(train, int(self.max_len))
        if len(windows) == 0:
            raise ValueError(f"{type(self).__name__}.fit: no user has two or more train events")
        tgen = torch_generator(seed)
        self._train(seed, lambda epoch: self._batches(windows, tgen), valid, train)
        return self

    def _batches(self, windows: SequenceWindows, gen: torch.Generator) -> list[tuple[Tensor, Tensor]]:
        size = self.train_config.batch_size
        return [windows.batch(idx) for idx in windows.batch_indices(size, gen)]

    def _validator(self, valid: Interactions, train: Interactions) -> Callable[[], float]:
        """Valid NDCG@10: of full ranking when most valid users are known in train, else of
        the next item after every prefix of the valid sessions (the ``ndcg@10`` that
        ``streamrec.eval.protocol.evaluate_next_item`` reports)."""
        known = valid.users < train.n_users
        if known.mean() >= 0.5:
            return super()._validator(valid, train)
        sessions = valid.take(valid.items < train.n_items)
        return lambda: next_item_ndcg(self.score_sequences, sessions, n_items=self.n_items_,
                                      max_len=int(self.max_len), fast=self.rank_next_items)

    def _score_history(self, hist: np.ndarray) -> np.ndarray:
        x, n = right_align(hist)
        x = x[:, :max(int(n.max()), 1)]  # trailing padding changes nothing in a causal model
        with torch.no_grad():
            s = self.module_.score_all(torch.from_numpy(x).to(self._device()))
        return s.float().cpu().numpy()

    def rank_next_items(self, sessions: Interactions, k: int, *, min_prefix: int = 1,
                        batch_size: int = 256) -> np.ndarray | None:
        """Top-``k`` items after every prefix of every session, one forward pass per session.

        The fast path of :func:`~streamrec.eval.protocol.evaluate_next_item`: a causal model's
        state at position ``t`` of a session is its state for the prefix ending at ``t``, so
        one pass ranks all of a session's prefixes. Rows follow
        :func:`next_item_examples` (session, then position). Returns None (use the
        prefix-by-prefix path) when a session is longer than ``max_len + 1`` or holds items
        the model does not know.
        """
        self._check_fitted()
        if min_prefix < 1 or (len(sessions) and int(sessions.items.max()) >= self.n_items_):
            return None
        if (sessions.user_counts() > int(self.max_len) + 1).any():
            return None
        windows = SequenceWindows(sessions, int(self.max_len))
        k = min(int(k), self.n_items_)
        out = []
        dev = self._device()
        for lo in range(0, len(windows), int(batch_size)):
            x, y = windows.batch(np.arange(lo, min(lo + int(batch_size), len(windows))))
            y[:, :int(min_prefix) - 1] = 0  # prefixes shorter than min_prefix
            with torch.no_grad():
                h = self.module_.states(x.to(dev))[y.to(dev) > 0]  # (N, D) in (session, t) order
                s = self.module_.logits(h).float()
                out.append(torch.topk(s, k, dim=1).indices.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {"user_seqs_": self.user_seqs_}

    def _set_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.user_seqs_ = np.asarray(state["user_seqs_"], dtype=np.int64)


class NextItemModule(nn.Module, ABC):
    """Base of the sequence modules: per-position states -> next-item scores and losses.

    Subclasses implement ``states(x) -> (B, T, D)`` (causal: position ``t`` sees inputs
    ``<= t`` only). The output layer is the input item embedding (tied, when the states
    have the embedding width) or its own (n_items, ``out_dim``) matrix plus a bias.

    Parameters
    ----------
    n_items : int
    dim : int
        Width of the item embeddings.
    out_dim : int, optional
        Width of the states when they differ from ``dim``: an untied output layer.
    loss : {"ce", "bce", "sampled", "gbce"}
        Full softmax cross-entropy over the catalogue; BCE with one uniform negative per
        target (the original SASRec); sampled softmax over ``n_negatives`` uniform
        negatives shared by the batch (logQ-corrected, accidental hits removed); gBCE
        (gSASRec: BCE with ``n_negatives`` negatives and the positive's probability
        raised to β, ``t`` = ``gbce_t``).
    n_negatives : int
    gbce_t : float
    """

    def __init__(self, n_items: int, dim: int, *, out_dim: int | None = None, loss: str = "ce",
                 n_negatives: int = 256, gbce_t: float = 0.75) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {loss!r})")
        self.n_items = int(n_items)
        self.loss_name = loss
        self.n_negatives = int(n_negatives)
        self.gbce_t = float(gbce_t)
        self.tied = out_dim is None
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=dim ** -0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()
        if out_dim is not None:
            self.out = nn.Linear(out_dim, n_items)

    @abstractmethod
    def states(self, x: Tensor) -> Tensor:
        """Per-position states, shape (B, T, D), for right-padded inputs ``x`` (B, T)."""

    def output_weights(self) -> tuple[Tensor, Tensor | None]:
        """Item output vectors (n_items, D) and bias (n_items,) or None."""
        if self.tied:
            return self.item_emb.weight[1:], None
        return self.out.weight, self.out.bias

    def logits(self, q: Tensor) -> Tensor:
        """Scores (N, n_items) of every item for states ``q`` (N, D)."""
        w, b = self.output_weights()
        s = q @ w.T
        return s if b is None else s + b

    def score_all(self, x: Tensor) -> Tensor:
        """Scores of every item after each (non-empty) sequence, shape (B, n_items)."""
        h = self.states(x)  # (B, T, D)
        last = (x > 0).sum(1).clamp(min=1) - 1  # (B,)
        return self.logits(h[torch.arange(len(x), device=x.device), last])  # (B, I)

    def loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        h = self.states(x)  # (B, T, D)
        sel = y > 0
        q = h[sel]  # (N, D) one query per target
        target = y[sel] - 1  # (N,)
        if self.loss_name == "ce":
            return nn.functional.cross_entropy(self.logits(q).float(), target)
        w, b = self.output_weights()
        n_neg = 1 if self.loss_name == "bce" else self.n_negatives
        if self.loss_name == "sampled":
            neg = torch.randint(0, self.n_items, (n_neg,), device=x.device)  # (K,) shared
            pos_logit = (q * w[target]).sum(-1)  # (N,)
            neg_logit = q @ w[neg].T  # (N, K)
            if b is not None:
                pos_logit, neg_logit = pos_logit + b[target], neg_logit + b[neg]
            # uniform sampling: logQ is a constant, so it cancels; drop accidental hits
            neg_logit = neg_logit.masked_fill(neg[None, :] == target[:, None], float("-inf"))
            logits = torch.cat([pos_logit[:, None], neg_logit], dim=1).float()
            return -torch.log_softmax(logits, dim=1)[:, 0].mean()
        neg = torch.randint(0, self.n_items - 1, (len(q), n_neg), device=x.device)
        neg = neg + (neg >= target[:, None]).long()  # uniform over the items != target
        pos_logit = (q * w[target]).sum(-1).float()  # (N,)
        neg_logit = torch.einsum("nd,nkd->nk", q, w[neg]).float()  # (N, K)
        if b is not None:
            pos_logit, neg_logit = pos_logit + b[target], neg_logit + b[neg]
        if self.loss_name == "bce":
            return (nn.functional.softplus(-pos_logit).mean()
                    + nn.functional.softplus(neg_logit).mean())
        # gBCE (Petrov & Macdonald, 2023): beta = alpha (t (1 - 1/alpha) + 1/alpha)
        alpha = n_neg / max(self.n_items - 1, 1)
        beta = alpha * (self.gbce_t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
        return (beta * nn.functional.softplus(-pos_logit)
                + nn.functional.softplus(neg_logit).sum(1)).mean()


LOSSES = ("ce", "bce", "sampled", "gbce")
