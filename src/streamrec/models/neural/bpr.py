"""BPR matrix factorisation in torch (Rendle et al., 2009), trained by the shared Trainer.

``score(u, i) = p_u · q_i``; each epoch pairs every training interaction with ``negatives``
sampled unseen items and minimises ``-log σ(score(u, i) - score(u, j))`` with Adam, early
stopping on valid NDCG@10. Unlike the ``bpr`` adapter over ``implicit`` (plain SGD), this
one supports every sampler of :mod:`streamrec.data.sampling` and runs on CUDA when present.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.data.sampling import NegativeSampler
from streamrec.models._history import train_matrix
from streamrec.models.neural.base import TorchRecommender
from streamrec.models.neural.layers import lookup
from streamrec.models.neural.losses import bpr_loss
from streamrec.models.zoo import register

__all__ = ["BPRMF"]


class _BPRModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, reg: float) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)
        self.reg = reg

    def loss(self, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        u, i, j = batch  # (B,), (B,), (B, N)
        pu = lookup(self.user, u)  # (B, D)
        q = lookup(self.item, torch.cat([i.unsqueeze(1), j], dim=1))  # (B, 1 + N, D)
        s = (pu.unsqueeze(1) * q).sum(-1)  # (B, 1 + N); cheaper than a bmm of tiny matrices
        loss = bpr_loss(s[:, 0], s[:, 1:])
        if self.reg:  # L2 on the embeddings in the batch (RecBole's reg_weight convention)
            loss = loss + self.reg * (pu.pow(2).sum() + q.pow(2).sum()) / len(u)
        return loss

    def score_all(self, users: Tensor) -> Tensor:
        return self.user(users) @ self.item.weight.T  # (B, n_items)


@register("bprmf")
class BPRMF(TorchRecommender):
    """BPR-MF with Adam and sampled negatives.

    Parameters
    ----------
    factors : int
        Embedding size.
    reg : float
        L2 weight on the embeddings of each batch.
    negatives : int
        Sampled negatives per positive.
    sampler : {"uniform", "popularity", "hard", "mixed"}
        See :class:`~streamrec.data.sampling.NegativeSampler`; ``hard``/``mixed`` score
        ``hard_candidates`` items per negative with the current model.
    alpha, hard_candidates : see NegativeSampler
    **train :
        Trainer settings (:class:`~streamrec.models.neural.trainer.TrainConfig` fields);
        defaults in ``train_defaults``.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "factors": [64, 128],
        "lr": [5e-4, 1e-3, 3e-3],
        "reg": [0.0, 1e-5, 1e-4],
    }
    train_defaults: ClassVar[dict[str, Any]] = {"epochs": 200, "patience": 10, "eval_every": 4}

    def __init__(self, factors: int = 64, reg: float = 0.0, negatives: int = 1,
                 sampler: str = "uniform", alpha: float = 0.75, hard_candidates: int = 16,
                 **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def _build_module(self) -> nn.Module:
        return _BPRModule(self.n_users_, self.n_items_, self.factors, self.reg)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on ``train``; early stopping on ``valid`` NDCG@10 when given."""
        if self.factors < 1 or self.negatives < 1:
            raise ValueError("bprmf: factors and negatives must be >= 1")
        gen, seed = self._start_fit(train, rng)
        x = train_matrix(train, binary=True)
        sampler = NegativeSampler(x, strategy=self.sampler, alpha=self.alpha,
                                  hard_candidates=self.hard_candidates)
        users_np = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))  # one row per pair
        users, items = torch.from_numpy(users_np), torch.from_numpy(x.indices.astype(np.int64))
        bs, n_neg = self.train_config.batch_size, self.negatives

        def batches(epoch: int) -> list[tuple[Tensor, Tensor, Tensor]]:
            order = torch.from_numpy(gen.permutation(len(users_np)))
            score_fn = None if self.sampler in ("uniform", "popularity") else self._pair_scores
            neg = torch.from_numpy(sampler.sample(users_np, n_neg, gen, score_fn))  # (n, N)
            return [(users[b], items[b], neg[b]) for b in torch.split(order, bs)]

        self._train(seed, batches, valid, train)
        return self

    def item_vectors(self) -> np.ndarray:
        """The item embeddings, shape (n_items, factors) float32 (``score`` is their dot
        product with the user embeddings)."""
        self._check_fitted()
        return self.module_.item.weight.detach().float().cpu().numpy()

    def _pair_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of ``items`` (B, C) for ``users`` (B,) under the current weights."""
        m = self.module_
        with torch.no_grad():
            u = torch.as_tensor(users, device=self.device_)
            i = torch.as_tensor(items, device=self.device_)
            return torch.einsum("bd,bcd->bc", m.user(u), m.item(i)).cpu().numpy()
