"""Two-tower retrieval model with side features (Yi et al., 2019; Covington et al., 2016).

A user tower and an item tower map an entity to a ``factors``-dim vector; the score of a
(user, item) pair is their dot product divided by ``temperature``. Each tower adds up

- an id embedding (``use_ids``),
- one embedding per categorical side field (code 0 = unknown: null, rare or unseen values),
- the mean of the embeddings of its multi-hot tokens (genres; an EmbeddingBag as a matmul),
- a linear map of its standardised numeric columns,

then applies an optional MLP (``hidden``) and L2-normalises the result (``normalize``).
Side features come from :func:`streamrec.features.side.side_features` through
``fit(..., side=...)``; without them the towers are id embeddings only (a softmax/BPR matrix
factorisation). The side arrays of the train users/items are part of the fitted state (saved
as numeric arrays), so a loaded model scores identically.

Losses (``loss``):

- ``"softmax"``: in-batch softmax, the other positives of a batch are the negatives, with the
  logQ correction ``logit - log p(item)`` from train item frequencies (``logq``);
- ``"sampled_softmax"``: ``negatives`` items per batch shared by its rows, drawn by the
  ``sampler`` (uniform or popularity), logQ-corrected by their sampling probabilities;
- ``"bpr"``: ``negatives`` sampled unseen items per positive, ``-log σ(s_ui - s_uj)``.

``item_vectors()`` and ``user_vectors(users)`` export the towers for approximate nearest
neighbour search: ``user_vectors(u) @ item_vectors().T == score(u)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.data.sampling import NegativeSampler
from streamrec.features.side import EntityFeatures, SideFeatures
from streamrec.models._history import check_users, train_matrix
from streamrec.models.neural.base import TorchRecommender
from streamrec.models.neural.layers import Dropout
from streamrec.models.neural.losses import bpr_loss, in_batch_softmax_loss, sampled_softmax_loss
from streamrec.models.zoo import register

__all__ = ["TwoTower"]

LOSSES = ("softmax", "sampled_softmax", "bpr")
_SIDES = ("user", "item")


class _Tower(nn.Module):
    """Id embedding + side-feature embeddings -> optional MLP -> (normalised) vector.

    The side arrays of every entity are non-persistent buffers (the recommender saves them),
    indexed by the batch's entity indices.
    """

    def __init__(self, n: int, dim: int, *, use_ids: bool, cat: np.ndarray,
                 cards: np.ndarray, multi: np.ndarray, num: np.ndarray,
                 hidden: tuple[int, ...], dropout: float, normalize: bool) -> None:
        super().__init__()
        self.normalize = normalize
        self.ids = nn.Embedding(n, dim) if use_ids else None
        self.fields = nn.ModuleList(nn.Embedding(int(c), dim) for c in cards)
        self.bag = nn.Linear(multi.shape[1], dim, bias=False) if multi.shape[1] else None
        self.dense = nn.Linear(num.shape[1], dim) if num.shape[1] else None
        for emb in ([self.ids] if self.ids is not None else []) + list(self.fields):
            nn.init.normal_(emb.weight, std=0.1)
        bag = multi / np.maximum(multi.sum(axis=1, keepdims=True), 1.0)  # mean over tokens
        self.register_buffer("cat", torch.as_tensor(cat, dtype=torch.long), persistent=False)
        self.register_buffer("bag_x", torch.as_tensor(bag, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("num_x", torch.as_tensor(num, dtype=torch.float32),
                             persistent=False)
        layers: list[nn.Module] = []
        width = dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), Dropout(dropout)]
            width = h
        self.mlp = nn.Sequential(*layers, nn.Linear(width, dim)) if hidden else None
        self.dim = dim

    def forward(self, idx: Tensor) -> Tensor:
        """Vectors of known entities ``idx`` (B,) -> (B, D)."""
        ids = self.ids(idx) if self.ids is not None else None  # (B, D)
        return self.combine(ids, self.cat[idx], self.bag_x[idx], self.num_x[idx])

    def combine(self, ids: Tensor | None, codes: Tensor, bag: Tensor, num: Tensor) -> Tensor:
        """Tower output from an id embedding (B, D) or None (an entity without one), codes
        (B, F), mean-pooled multi-hot rows (B, M) and numeric columns (B, K) -> (B, D)."""
        x = (ids if ids is not None
             else torch.zeros(len(codes), self.dim, device=codes.device))  # (B, D)
        for f, emb in enumerate(self.fields):
            x = x + emb(codes[:, f])  # (B, D)
        if self.bag is not None:
            x = x + self.bag(bag)  # (B, M) @ (M, D) -> (B, D)
        if self.dense is not None:
            x = x + self.dense(num)  # (B, K) @ (K, D) -> (B, D)
        if self.mlp is not None:
            x = self.mlp(x)  # (B, D)
        return F.normalize(x, dim=-1) if self.normalize else x


class _TwoTowerModule(nn.Module):
    def __init__(self, user: _Tower, item: _Tower, *, loss: str, temperature: float,
                 logq: np.ndarray) -> None:
        super().__init__()
        self.user, self.item = user, item
        self.kind, self.temperature = loss, temperature
        self.register_buffer("logq", torch.as_tensor(logq, dtype=torch.float32),
                             persistent=False)

    def loss(self, batch: tuple[Tensor, ...]) -> Tensor:
        if self.kind == "softmax":
            u, i = batch  # (B,), (B,)
            return in_batch_softmax_loss(self.user(u), self.item(i), item_ids=i,
                                         logq=self.logq[i], temperature=self.temperature)
        if self.kind == "sampled_softmax":
            u, i, j = batch  # (B,), (B,), (N,) shared negatives
            hit = j[None, :] == i[:, None]  # (B, N) a negative that is the row's positive
            neg_logq = self.logq[j][None, :].expand(len(u), -1)  # (B, N)
            neg_logq = neg_logq.masked_fill(hit, float("inf"))  # removes accidental hits
            return sampled_softmax_loss(self.user(u), self.item(i), self.item(j),
                                        pos_logq=self.logq[i], neg_logq=neg_logq,
                                        temperature=self.temperature)
        u, i, j = batch  # (B,), (B,), (B, N)
        pu, qi = self.user(u), self.item(i)  # (B, D), (B, D)
        qj = self.item(j.reshape(-1)).view(*j.shape, -1)  # (B, N, D)
        pos = (pu * qi).sum(-1) / self.temperature  # (B,)
        neg = torch.einsum("bd,bnd->bn", pu, qj) / self.temperature  # (B, N)
        return bpr_loss(pos, neg)

    def all_items(self) -> Tensor:
        """Every item's vector, (n_items, D)."""
        n = self.item.cat.shape[0]
        return self.item(torch.arange(n, device=self.item.cat.device))

    def score_all(self, users: Tensor) -> Tensor:
        return self.user(users) @ self.all_items().T / self.temperature  # (B, n_items)


@register("two_tower")
class TwoTower(TorchRecommender):
    """Two-tower retrieval model over ids and side features.

    Parameters
    ----------
    factors : int
        Output size of both towers (and of every embedding).
    hidden : tuple of int
        Hidden layer sizes of each tower's MLP; ``()`` sums the embeddings without an MLP.
    dropout : float
        Dropout in the MLP.
    normalize : bool
        L2-normalise the tower outputs (scores are cosines / ``temperature``).
    temperature : float
        Logits are dot products divided by it.
    loss : {"softmax", "sampled_softmax", "bpr"}
        See the module docstring.
    logq : bool
        Subtract the log frequency of each in-batch item (``softmax``) or the log sampling
        probability (``sampled_softmax``) from its logit while training.
    negatives : int
        ``bpr``: sampled negatives per positive; ``sampled_softmax``: shared negatives per batch.
    sampler : {"uniform", "popularity", "hard", "mixed"}
        Negative sampler (``hard``/``mixed`` only with ``bpr``).
    alpha, hard_candidates : see :class:`~streamrec.data.sampling.NegativeSampler`
    use_ids : bool
        Learn an id embedding per user and item (False: features only).
    use_side : bool
        Use the side features given to ``fit`` (False: ignore them, ids only).
    **train :
        Trainer settings (:class:`~streamrec.models.neural.trainer.TrainConfig` fields);
        defaults in ``train_defaults``.
    """

    #: the benchmark runner passes ``side=side_features(dataset, split)`` to ``fit``
    uses_side_features: ClassVar[bool] = True
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [64, 128],
        "temperature": [0.05, 0.1, 0.2],
        "lr": [1e-3, 3e-3],
    }
    train_defaults: ClassVar[dict[str, Any]] = {"epochs": 200, "batch_size": 1024,
                                                "patience": 10, "eval_every": 2}

    def __init__(self, factors: int = 64, hidden: tuple[int, ...] = (), dropout: float = 0.0,
                 normalize: bool = True, temperature: float = 0.1, loss: str = "softmax",
                 logq: bool = True, negatives: int = 1, sampler: str = "uniform",
                 alpha: float = 0.75, hard_candidates: int = 16, use_ids: bool = True,
                 use_side: bool = True, **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    # ------------------------------------------------------------------ module
    def _build_module(self) -> nn.Module:
        towers = {}
        for side, n in (("user", self.n_users_), ("item", self.n_items_)):  # the two towers
            towers[side] = _Tower(
                n, self.factors, use_ids=self.use_ids, cat=getattr(self, f"{side}_cat_"),
                cards=getattr(self, f"{side}_cards_"), multi=getattr(self, f"{side}_multi_"),
                num=getattr(self, f"{side}_num_"), hidden=tuple(self.hidden),
                dropout=self.dropout, normalize=self.normalize)
        return _TwoTowerModule(towers["user"], towers["item"], loss=self.loss,
                               temperature=float(self.temperature), logq=self.logq_)

    def _extra_state(self) -> dict[str, np.ndarray]:
        state = {"logq_": self.logq_}
        for side in _SIDES:  # user and item arrays
            for part in ("cat", "cards", "multi", "num"):
                state[f"{side}_{part}_"] = getattr(self, f"{side}_{part}_")
            state[f"{side}_fields_"] = np.asarray(getattr(self, f"{side}_fields_"), dtype=str)
        return state

    def _set_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.logq_ = np.asarray(state["logq_"], np.float32)
        for side in _SIDES:
            for part, dtype in (("cat", np.int64), ("cards", np.int64), ("multi", np.float32),
                                ("num", np.float32)):
                setattr(self, f"{side}_{part}_", np.asarray(state[f"{side}_{part}_"], dtype))
            setattr(self, f"{side}_fields_", tuple(str(s) for s in state[f"{side}_fields_"]))

    # ------------------------------------------------------------------ training
    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None,
            side: SideFeatures | None = None) -> Self:
        """Train on ``train``; early stopping on ``valid`` NDCG@10 when given.

        Parameters
        ----------
        train : Interactions
        valid : Interactions, optional
        rng : numpy Generator or int seed, optional
        side : SideFeatures, optional
            Rows aligned with the split's vocabularies (at least ``train.n_users`` user rows
            and ``train.n_items`` item rows; the first ones are used). Without it, or with
            ``use_side=False``, the towers use ids only.
        """
        self._check_params()
        if side is not None and not isinstance(side, SideFeatures):
            raise TypeError(f"two_tower: side must be SideFeatures, got {type(side).__name__}")
        gen, seed = self._start_fit(train, rng)
        self._store_side(side if self.use_side else None)
        if not self.use_ids and not all(self._has_features(s) for s in _SIDES):
            raise ValueError("two_tower: use_ids=False needs user and item side features "
                             "(pass side=side_features(dataset, split))")
        x = train_matrix(train, binary=True)
        users_np = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))  # one row per pair
        items_np = x.indices.astype(np.int64)
        users, items = torch.from_numpy(users_np), torch.from_numpy(items_np)
        sampler = NegativeSampler(x, strategy=self.sampler, alpha=self.alpha,
                                  hard_candidates=self.hard_candidates,
                                  allow_positives=self.loss == "sampled_softmax")
        self.logq_ = self._log_q(x, sampler)
        bs, n_neg = self.train_config.batch_size, self.negatives

        def batches(epoch: int) -> list[tuple[Tensor, ...]]:
            order = torch.from_numpy(gen.permutation(len(users_np)))
            parts = torch.split(order, bs)
            if self.loss == "softmax":
                return [(users[b], items[b]) for b in parts]
            if self.loss == "sampled_softmax":  # negatives shared by the rows of a batch
                neg = torch.from_numpy(sampler.sample(np.zeros(len(parts), np.int64), n_neg, gen))
                return [(users[b], items[b], neg[k]) for k, b in enumerate(parts)]
            score_fn = None if self.sampler in ("uniform", "popularity") else self._pair_scores
            neg = torch.from_numpy(sampler.sample(users_np, n_neg, gen, score_fn))  # (n, N)
            return [(users[b], items[b], neg[b]) for b in parts]

        self._train(seed, batches, valid, train)
        return self

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"two_tower: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.factors < 1 or self.negatives < 1:
            raise ValueError("two_tower: factors and negatives must be >= 1")
        if not self.temperature > 0:
            raise ValueError(f"two_tower: temperature must be > 0, got {self.temperature}")
        if self.loss != "bpr" and self.sampler in ("hard", "mixed"):
            raise ValueError(f"two_tower: sampler={self.sampler!r} needs loss='bpr'")

    def _log_q(self, x: Any, sampler: NegativeSampler) -> np.ndarray:
        """Per-item log probability subtracted from training logits, shape (n_items,)."""
        if not self.logq or self.loss == "bpr":
            return np.zeros(self.n_items_, np.float32)
        if self.loss == "sampled_softmax":
            p = sampler.probabilities
        else:  # in-batch: an item shows up in proportion to its train frequency
            counts = np.bincount(x.indices, minlength=self.n_items_).astype(np.float64)
            p = counts / max(counts.sum(), 1.0)
        return np.log(np.maximum(p, 1e-12)).astype(np.float32)

    def _store_side(self, side: SideFeatures | None) -> None:
        """Keep the train rows of ``side`` as fitted arrays (codes outside range -> 0)."""
        for name, n, feats in (("user", self.n_users_, None if side is None else side.users),
                               ("item", self.n_items_, None if side is None else side.items)):
            if feats is None:
                feats = EntityFeatures(n)
            elif feats.n_rows < n:
                raise ValueError(f"two_tower: side features have {feats.n_rows} {name} rows, "
                                 f"train has {n} {name}s; build them with "
                                 "side_features(dataset, split) for this split")
            cards = np.asarray(feats.cardinalities, np.int64)
            cat = feats.categorical[:n]
            cat = np.where((cat >= 0) & (cat < cards[None, :]), cat, 0).astype(np.int64)
            setattr(self, f"{name}_cat_", np.ascontiguousarray(cat))  # (n, F)
            setattr(self, f"{name}_cards_", cards)  # (F,)
            setattr(self, f"{name}_multi_", np.ascontiguousarray(feats.multi_hot[:n]))  # (n, M)
            setattr(self, f"{name}_num_", np.ascontiguousarray(feats.numeric[:n]))  # (n, K)
            setattr(self, f"{name}_fields_",
                    feats.cat_names + feats.multi_names + feats.num_names)

    def _has_features(self, side: str) -> bool:
        return bool(getattr(self, f"{side}_cards_").size or getattr(self, f"{side}_multi_").shape[1]
                    or getattr(self, f"{side}_num_").shape[1])

    def _pair_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of ``items`` (B, C) for ``users`` (B,) under the current weights."""
        m = self.module_
        with torch.no_grad():
            u = m.user(torch.as_tensor(users, device=self.device_))  # (B, D)
            i = torch.as_tensor(items, device=self.device_)
            v = m.item(i.reshape(-1)).view(*i.shape, -1)  # (B, C, D)
            return torch.einsum("bd,bcd->bc", u, v).cpu().numpy()

    # ------------------------------------------------------------------ export
    def feature_vectors(self, kind: str, features: EntityFeatures) -> np.ndarray:
        """Tower outputs of new users/items from their side features alone (cold start).

        Parameters
        ----------
        kind : {"user", "item"}
        features : EntityFeatures, n rows
            Encoded like the features given to ``fit`` (e.g. with
            ``side.users.encoder.transform(new_table)``): same fields and columns. Codes
            outside a field's range count as unknown.

        Returns
        -------
        ndarray of float32, shape (n, factors)
            Scaled like :meth:`user_vectors` / :meth:`item_vectors` (no id embedding).
        """
        self._check_fitted()
        if kind not in _SIDES:
            raise ValueError(f"kind must be 'user' or 'item', got {kind!r}")
        cards = getattr(self, f"{kind}_cards_")
        want = (len(cards), getattr(self, f"{kind}_multi_").shape[1],
                getattr(self, f"{kind}_num_").shape[1])
        got = (features.n_fields, features.multi_hot.shape[1], features.numeric.shape[1])
        if got != want:
            raise ValueError(f"two_tower: {kind} features have (fields, multi-hot, numeric) "
                             f"widths {got}, the model was fitted with {want}")
        cat = features.categorical
        cat = np.where((cat >= 0) & (cat < cards[None, :]), cat, 0)
        multi = features.multi_hot
        bag = multi / np.maximum(multi.sum(axis=1, keepdims=True), 1.0)
        tower = getattr(self.module_, kind)
        dev = self.device_
        with torch.no_grad():
            v = tower.combine(None, torch.as_tensor(cat, dtype=torch.long, device=dev),
                              torch.as_tensor(bag, dtype=torch.float32, device=dev),
                              torch.as_tensor(features.numeric, device=dev))  # (n, D)
            if kind == "user":
                v = v / self.temperature
            return v.float().cpu().numpy()

    def item_vectors(self) -> np.ndarray:
        """Item tower outputs, shape (n_items_, factors) float32 (unit norm if ``normalize``)."""
        self._check_fitted()
        with torch.no_grad():
            return self.module_.all_items().float().cpu().numpy()

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """User tower outputs divided by ``temperature``, shape (U, factors) float32.

        ``user_vectors(u) @ item_vectors().T`` equals ``score(u)`` (up to float rounding) for
        known users; cold
        users (indices ``>= n_users_``) get zero vectors (serve them popular items instead).
        """
        self._check_fitted()
        users = check_users(users, type(self).__name__)
        out = np.zeros((len(users), self.factors), np.float32)
        known = users < self.n_users_
        if known.any():
            with torch.no_grad():
                u = torch.as_tensor(users[known], device=self.device_)
                out[known] = (self.module_.user(u) / self.temperature).float().cpu().numpy()
        return out
