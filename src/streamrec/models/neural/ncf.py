"""Neural collaborative filtering (He et al., WWW 2017): GMF, MLP and NeuMF.

Three models over one module with two optional branches, trained pointwise by the shared
Trainer with sampled negatives (``bce_loss``; ``loss="bpr"`` for the pairwise variant):

- ``gmf``: ``logit(u, i) = h · (p_u ⊙ q_i) + b`` (a weighted dot product);
- ``mlp``: ``logit(u, i) = h · MLP([p_u ; q_i]) + b``, a ReLU tower over the concatenated
  user and item embeddings (dropout before every linear layer, as RecBole does);
- ``neumf``: both branches with separate embeddings, their last layers concatenated into one
  linear predict layer. ``pretrain=True`` follows the paper: fit a GMF and an MLP first,
  copy their embeddings and towers, and start the predict layer at
  ``[alpha · h_gmf ; (1 - alpha) · h_mlp]`` (bias ``alpha · b_gmf + (1 - alpha) · b_mlp``).

The first tower layer on ``[p_u ; q_i]`` is split as ``W_u p_u + W_i q_i``, so a user's half
is computed once for its positive and all its negatives, and full ranking broadcasts
``(B, 1, H)`` user rows against the ``(1, I, H)`` item table in chunks of users (bounded
memory, no loop over users or items).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.data.sampling import STRATEGIES, NegativeSampler
from streamrec.models._history import train_matrix
from streamrec.models.neural.base import TorchRecommender
from streamrec.models.neural.layers import Dropout
from streamrec.models.neural.losses import bce_loss, bpr_loss
from streamrec.models.zoo import register

__all__ = ["GMF", "MLP", "NeuMF"]

LOSSES = ("bce", "bpr")
#: largest (users x items x width) activation built at once by ``score_all`` (float32: 64 MiB)
_CHUNK_ELEMENTS = 1 << 24


class _Tower(nn.Module):
    """ReLU MLP over ``[p_u ; q_i]`` with the first layer split into user and item halves.

    Parameters
    ----------
    dim : int
        Size of each embedding (the tower's input is ``2 * dim``).
    layers : sequence of int
        Output sizes of the linear layers, e.g. (64, 32, 16).
    dropout : float
        Dropout before every linear layer (the embeddings included).
    """

    def __init__(self, dim: int, layers: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.user_in = nn.Linear(dim, layers[0])
        self.item_in = nn.Linear(dim, layers[0], bias=False)
        self.drop = Dropout(dropout)
        hidden: list[nn.Module] = []
        for d_in, d_out in zip(layers[:-1], layers[1:], strict=True):
            hidden += [Dropout(dropout), nn.Linear(d_in, d_out), nn.ReLU()]
        self.hidden = nn.Sequential(*hidden)
        self.width = max(layers)

    def forward(self, pu: Tensor, qi: Tensor) -> Tensor:
        """Tower output for every item of each user row.

        Parameters
        ----------
        pu : Tensor, shape (B, D)
        qi : Tensor, shape (B, M, D) or (M, D) (the same M items for every user)

        Returns
        -------
        Tensor, shape (B, M, layers[-1])
        """
        hu = self.user_in(self.drop(pu))  # (B, H0)
        hi = self.item_in(self.drop(qi))  # (B, M, H0) or (M, H0)
        h = torch.relu(hu.unsqueeze(1) + hi)  # (B, M, H0)
        return self.hidden(h)  # (B, M, H_last)


class _NCFModule(nn.Module):
    """GMF and/or MLP branch, concatenated into a linear predict layer (one logit per pair)."""

    def __init__(self, n_users: int, n_items: int, *, gmf_dim: int, mlp_dim: int,
                 layers: Sequence[int], dropout: float, loss: str) -> None:
        super().__init__()
        self.gmf, self.mlp = gmf_dim > 0, mlp_dim > 0
        width = 0
        if self.gmf:
            self.user_gmf = nn.Embedding(n_users, gmf_dim)
            self.item_gmf = nn.Embedding(n_items, gmf_dim)
            width += gmf_dim
        if self.mlp:
            self.user_mlp = nn.Embedding(n_users, mlp_dim)
            self.item_mlp = nn.Embedding(n_items, mlp_dim)
            self.tower = _Tower(mlp_dim, layers, dropout)
            width += layers[-1]
        self.predict = nn.Linear(width, 1)
        for emb in (m for m in self.modules() if isinstance(m, nn.Embedding)):
            nn.init.normal_(emb.weight, std=0.01)  # the paper's N(0, 0.01) initialisation
        self.loss_name = loss

    def logits(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits of each user against its own items.

        Parameters
        ----------
        users : Tensor, shape (B,)
        items : Tensor, shape (B, M)

        Returns
        -------
        Tensor, shape (B, M)
        """
        parts = []
        if self.gmf:
            pu, qi = self.user_gmf(users), self.item_gmf(items)  # (B, D), (B, M, D)
            parts.append(pu.unsqueeze(1) * qi)  # (B, M, D)
        if self.mlp:
            parts.append(self.tower(self.user_mlp(users), self.item_mlp(items)))  # (B, M, H)
        z = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # (B, M, D + H)
        return self.predict(z).squeeze(-1)  # (B, M)

    def loss(self, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        u, i, j = batch  # (B,), (B,), (B, N)
        logit = self.logits(u, torch.cat([i.unsqueeze(1), j], dim=1))  # (B, 1 + N)
        pos, neg = logit[:, 0], logit[:, 1:]  # (B,), (B, N)
        return bce_loss(pos, neg) if self.loss_name == "bce" else bpr_loss(pos, neg)

    def score_all(self, users: Tensor) -> Tensor:
        """Logits of every item for each user, shape (B, n_items)."""
        w, bias = self.predict.weight[0], self.predict.bias  # (D + H,), (1,)
        out = bias.expand(len(users), -1)  # (B, 1), broadcast over items below
        if self.gmf:
            d = self.user_gmf.embedding_dim
            out = out + (self.user_gmf(users) * w[:d]) @ self.item_gmf.weight.T  # (B, I)
            w = w[d:]
        if self.mlp:
            q = self.item_mlp.weight  # (I, D)
            hi = self.tower.item_in(q)  # (I, H0): the item half of layer 1, once for all users
            hu = self.tower.user_in(self.user_mlp(users))  # (B, H0)
            step = max(1, _CHUNK_ELEMENTS // (len(q) * self.tower.width))
            chunks = [self.tower.hidden(torch.relu(hu[lo:lo + step].unsqueeze(1) + hi)) @ w
                      for lo in range(0, len(users), step)]
            out = out + torch.cat(chunks)  # (B, I)
        return out


def _init_from_pretrained(module: _NCFModule, gmf: _NCFModule, mlp: _NCFModule,
                          alpha: float) -> _NCFModule:
    """Copy a fitted GMF's and MLP's parameters into NeuMF ``module`` (the paper's recipe).

    The predict layer becomes ``[alpha * h_gmf ; (1 - alpha) * h_mlp]`` with bias
    ``alpha * b_gmf + (1 - alpha) * b_mlp``, so the initial NeuMF logit is exactly
    ``alpha * logit_gmf + (1 - alpha) * logit_mlp``.
    """
    with torch.no_grad():
        g, m = gmf.state_dict(), mlp.state_dict()
        own = {k: v for k, v in g.items() if not k.startswith("predict.")}
        own |= {k: v for k, v in m.items() if not k.startswith("predict.")}
        own["predict.weight"] = torch.cat([alpha * g["predict.weight"],
                                           (1 - alpha) * m["predict.weight"]], dim=1)
        own["predict.bias"] = alpha * g["predict.bias"] + (1 - alpha) * m["predict.bias"]
        module.load_state_dict({k: v.detach().clone().cpu() for k, v in own.items()})
    return module


class _NCFBase(TorchRecommender):
    """What GMF, MLP and NeuMF share: hyperparameters, validation, negative sampling, the
    epoch's batches. See :class:`GMF` for the parameters."""

    #: which branches the module has
    _branches: ClassVar[tuple[bool, bool]] = (True, True)
    #: the tower of models without one (GMF): never built, since its branch is off
    layers: tuple[int, ...] = (1,)
    dropout: float = 0.0
    train_defaults: ClassVar[dict[str, Any]] = {"epochs": 200, "patience": 10, "eval_every": 2}

    def __init__(self, factors: int = 64, negatives: int = 4, loss: str = "bce",
                 sampler: str = "uniform", **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def _module_sizes(self) -> dict[str, Any]:
        gmf, mlp = self._branches
        return {"gmf_dim": self.factors if gmf else 0, "mlp_dim": self.factors if mlp else 0,
                "layers": tuple(self.layers), "dropout": float(self.dropout),
                "loss": self.loss}

    def _build_module(self) -> nn.Module:
        return _NCFModule(self.n_users_, self.n_items_, **self._module_sizes())

    def _check_params(self) -> None:
        name = self.name or type(self).__name__
        if self.factors < 1 or self.negatives < 1:
            raise ValueError(f"{name}: factors and negatives must be >= 1")
        if self.loss not in LOSSES:
            raise ValueError(f"{name}: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.sampler not in STRATEGIES:
            raise ValueError(f"{name}: sampler must be one of {STRATEGIES}, got {self.sampler!r}")
        layers = tuple(self.layers)
        if not layers or min(layers) < 1:
            raise ValueError(f"{name}: layers must be a non-empty tuple of sizes >= 1, "
                             f"got {layers!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"{name}: dropout must lie in [0, 1)")

    def _fit_stage(self, train: Interactions, valid: Interactions | None,
                   gen: np.random.Generator, seed: int) -> None:
        """Train a fresh module on ``train`` (one epoch = every positive with its negatives)."""
        x = train_matrix(train, binary=True)
        sampler = NegativeSampler(x, strategy=self.sampler)
        users_np = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))  # (n,) one per pair
        users = torch.from_numpy(users_np)
        items = torch.from_numpy(x.indices.astype(np.int64))  # (n,)
        bs, n_neg = self.train_config.batch_size, self.negatives
        score_fn = None if self.sampler in ("uniform", "popularity") else self._pair_scores

        def batches(epoch: int) -> list[tuple[Tensor, Tensor, Tensor]]:
            order = torch.from_numpy(gen.permutation(len(users_np)))
            neg = torch.from_numpy(sampler.sample(users_np, n_neg, gen, score_fn))  # (n, N)
            return [(users[b], items[b], neg[b]) for b in torch.split(order, bs)]

        self._train(seed, batches, valid, train)

    def _pair_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Logits of ``items`` (B, C) for ``users`` (B,) under the current weights."""
        m = self.module_
        was_training = m.training
        m.eval()
        try:
            with torch.no_grad():
                u = torch.as_tensor(users, device=self.device_)
                i = torch.as_tensor(items, device=self.device_)
                return m.logits(u, i).float().cpu().numpy()
        finally:
            m.train(was_training)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on ``train``; early stopping on ``valid`` NDCG@10 when given."""
        self._check_params()
        gen, seed = self._start_fit(train, rng)
        self._fit_stage(train, valid, gen, seed)
        return self


@register("gmf")
class GMF(_NCFBase):
    """Generalised matrix factorisation: ``σ(h · (p_u ⊙ q_i) + b)``, trained pointwise.

    Parameters
    ----------
    factors : int
        Embedding size.
    negatives : int
        Sampled negatives per positive (4 in the paper).
    loss : {"bce", "bpr"}
        Pointwise log loss over positives and negatives, or pairwise BPR.
    sampler : {"uniform", "popularity", "hard", "mixed"}
        See :class:`~streamrec.data.sampling.NegativeSampler`.
    **train :
        Trainer settings (:class:`~streamrec.models.neural.trainer.TrainConfig` fields;
        defaults in ``train_defaults``); ``batch_size`` counts positives (each comes with
        its ``negatives``).
    """

    _branches = (True, False)
    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [32, 64],
        "lr": [1e-3, 3e-3],
        "negatives": [2, 4],
    }


class _TowerNCF(_NCFBase):
    """MLP and NeuMF: the base's hyperparameters plus the tower's ``layers`` and
    ``dropout`` (see :class:`MLP`)."""

    search_space: ClassVar[dict[str, list[Any]]] = {
        "layers": [(64, 32, 16), (128, 64)],
        "lr": [1e-3, 3e-3],
        "dropout": [0.0, 0.1],
    }

    def __init__(self, layers: Sequence[int] = (64, 32, 16), dropout: float = 0.0,
                 **kwargs: Any) -> None:
        self._set_params(locals())
        self.layers = tuple(int(s) for s in layers)  # a tuple, as load() restores it
        super().__init__(**kwargs)


@register("mlp")
class MLP(_TowerNCF):
    """NCF's MLP: ``σ(h · MLP([p_u ; q_i]) + b)`` with a ReLU tower, trained pointwise.

    Parameters
    ----------
    factors : int
        Size of the user and of the item embedding (the tower's input is twice that).
    layers : tuple of int
        Output sizes of the tower's linear layers, e.g. (64, 32, 16).
    dropout : float
        Dropout before every linear layer.
    negatives, loss, sampler, **train : see :class:`GMF`
    """

    _branches = (False, True)


@register("neumf")
class NeuMF(_TowerNCF):
    """NeuMF: a GMF and an MLP branch with separate embeddings under one predict layer.

    Parameters
    ----------
    factors : int
        Embedding size of each branch (GMF and MLP have their own embeddings).
    layers : tuple of int
        Output sizes of the MLP tower's linear layers.
    dropout : float
        Dropout before every linear layer of the tower.
    negatives, loss, sampler : see :class:`GMF`
    pretrain : bool
        Fit a :class:`GMF` and an :class:`MLP` first (same data, sampler, loss, validation
        and trainer settings, but learning rate ``pretrain_lr`` and Adam), then start NeuMF
        from their parameters with the predict layer weighted by ``alpha``.
    alpha : float
        Weight of the GMF branch in the initial predict layer (0.5 in the paper).
    pretrain_lr : float
        Learning rate of the pre-training fits.
    **train : see :class:`GMF`
    """

    _branches = (True, True)

    def __init__(self, pretrain: bool = False, alpha: float = 0.5, pretrain_lr: float = 1e-3,
                 **kwargs: Any) -> None:
        self._set_params(locals())
        super().__init__(**kwargs)

    _init_branches: tuple[_NCFModule, _NCFModule] | None = None

    def _build_module(self) -> nn.Module:
        module = super()._build_module()
        if self._init_branches is not None:  # only inside a pre-trained fit
            _init_from_pretrained(module, *self._init_branches, self.alpha)
        return module

    def _branch_models(self) -> tuple[GMF, MLP]:
        """Unfitted GMF and MLP with this model's shared settings (for pre-training): its
        trainer settings but for the learning rate (``pretrain_lr``) and the optimiser
        (Adam)."""
        train = {**dataclasses.asdict(self.train_config), "lr": self.pretrain_lr,
                 "optimizer": "adam"}
        shared = {"factors": self.factors, "negatives": self.negatives, "loss": self.loss,
                  "sampler": self.sampler, **train}
        return GMF(**shared), MLP(layers=self.layers, dropout=self.dropout, **shared)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on ``train`` (after pre-training both branches when ``pretrain``)."""
        self._check_params()
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"neumf: alpha must lie in [0, 1], got {self.alpha}")
        gen, seed = self._start_fit(train, rng)
        self.pretrain_summary_: dict[str, dict[str, Any]] = {}
        if not self.pretrain:
            self._fit_stage(train, valid, gen, seed)
            return self
        gmf, mlp = self._branch_models()
        for name, model in (("gmf", gmf), ("mlp", mlp)):  # the two pre-training fits
            model.fit(train, valid=valid, rng=int(gen.integers(2**31 - 1)))
            self.pretrain_summary_[name] = model.history_.summary()
        self._init_branches = (gmf.module_, mlp.module_)
        try:
            self._fit_stage(train, valid, gen, seed)
        finally:
            del self._init_branches  # falls back to the class attribute (None)
        return self
