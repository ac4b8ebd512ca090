"""CDAE: collaborative denoising autoencoder (Wu et al., WSDM 2016).

A user is their binary train row ``y_u`` (n_items,). Training corrupts it with drop-out noise
(each observed item dropped with probability ``corruption``, the kept ones scaled by
``1 / (1 - corruption)`` so the corrupted row is unbiased), encodes it together with a
per-user vector ``V_u`` and decodes a logit for every item::

    z_u = h(W ỹ_u + V_u + b)          # (H,)   h: sigmoid (the paper), relu, tanh or identity
    ŷ_u = W' z_u + b'                 # (I,)   logits; the output activation is the sigmoid

The loss is the logistic loss (binary cross-entropy on the logits). With ``negatives=0`` it
runs over every item of the user's row (the observed ones labelled 1, all others 0), which
is exact and cheap at MovieLens sizes since the decoder computes every logit anyway. With
``negatives=k > 0`` it follows the paper's negative sampling: besides the positives, each
unobserved item counts with probability ``min(1, k · n_u / (n_items - n_u))`` (about ``k``
negatives per positive, drawn independently per item so the batch stays one tensor op).
Either way the per-user sum is averaged over the users of the batch.

Scores are the logits of the uncorrupted row (sigmoid is monotone: same ranking); the train
history is fitted state, shared machinery with Mult-VAE
(:class:`~streamrec.models.neural.multvae.AutoencoderRecommender`): the first layer runs over
each row's non-zeros only, and users unseen in training get item popularity.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.models.neural.multvae import AutoencoderRecommender, HistoryRows, SparseInput
from streamrec.models.zoo import register

__all__ = ["CDAE"]

ACTIVATIONS = ("sigmoid", "relu", "tanh", "identity")


class _CDAEModule(nn.Module):
    """Corrupted history + user vector -> hidden layer -> item logits.

    Parameters
    ----------
    n_users, n_items, hidden : int
    corruption : float
        Drop-out probability of each observed input item (training only).
    activation : {"sigmoid", "relu", "tanh", "identity"}
        Hidden activation ``h``.
    negatives : int
        0: logistic loss over all items; k > 0: over the positives and about ``k`` sampled
        unobserved items per positive.
    """

    def __init__(self, n_users: int, n_items: int, hidden: int, corruption: float,
                 activation: str, negatives: int) -> None:
        super().__init__()
        self.enc = SparseInput(n_items, hidden, corruption, normalize=False)
        self.user = nn.Embedding(n_users, hidden)
        self.dec = nn.Linear(hidden, n_items)
        nn.init.normal_(self.user.weight, std=0.01)
        nn.init.xavier_uniform_(self.dec.weight)
        nn.init.zeros_(self.dec.bias)
        self.activation = activation
        self.negatives = negatives

    def _act(self, h: Tensor) -> Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(h)
        if self.activation == "relu":
            return torch.relu(h)
        if self.activation == "tanh":
            return torch.tanh(h)
        return h

    def forward(self, x: HistoryRows) -> Tensor:
        """Item logits, shape (B, I), of B users' rows ``x`` (corrupted in training)."""
        z = self._act(self.enc(x) + self.user(x.users))  # (B, H)
        return self.dec(z)  # (B, I)

    def loss(self, x: HistoryRows) -> Tensor:
        target = x.to_dense()  # (B, I) 0/1
        bce = F.binary_cross_entropy_with_logits(self(x), target, reduction="none")  # (B, I)
        if self.negatives <= 0:
            return bce.sum(1).mean()
        n_pos = target.sum(1, keepdim=True)  # (B, 1)
        rate = (self.negatives * n_pos / (target.shape[1] - n_pos).clamp_min(1)).clamp(max=1)
        keep = (torch.rand_like(target) < rate) | (target > 0)  # (B, I) positives + negatives
        return (bce * keep).sum(1).mean()

    def score_all(self, x: HistoryRows) -> Tensor:
        return self(x)  # (B, I)


@register("cdae")
class CDAE(AutoencoderRecommender):
    """Collaborative denoising autoencoder with a per-user input vector.

    Parameters
    ----------
    hidden : int
        Hidden size (also the size of the user vectors).
    corruption : float
        Drop-out probability of each observed input item in training.
    activation : {"sigmoid", "relu", "tanh", "identity"}
        Hidden activation (the paper's best: sigmoid; RecBole's default: relu).
    negatives : int
        0 (default): logistic loss over all items; k > 0: over the positives and about
        ``k`` sampled unobserved items per positive (the paper's negative sampling).
    **train :
        Trainer settings (:class:`~streamrec.models.neural.trainer.TrainConfig` fields;
        defaults in :class:`~streamrec.models.neural.multvae.AutoencoderRecommender`); a
        batch is ``batch_size`` users; ``weight_decay`` is the L2 penalty on all weights.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "hidden": [64, 200],
        "corruption": [0.2, 0.5],
        "activation": ["sigmoid", "relu"],
        "lr": [1e-3, 3e-3],
        "weight_decay": [0.0, 1e-5],
    }

    def __init__(self, hidden: int = 200, corruption: float = 0.5,
                 activation: str = "sigmoid", negatives: int = 0, **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def _build_module(self) -> nn.Module:
        return _CDAEModule(self.n_users_, self.n_items_, self.hidden, self.corruption,
                           self.activation, self.negatives)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on ``train``; early stopping on ``valid`` NDCG@10 when given."""
        if self.hidden < 1 or self.negatives < 0:
            raise ValueError("cdae: hidden must be >= 1 and negatives >= 0")
        if not 0.0 <= self.corruption < 1.0:
            raise ValueError(f"cdae: corruption must lie in [0, 1), got {self.corruption}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"cdae: activation must be one of {ACTIVATIONS}, "
                             f"got {self.activation!r}")
        return self._fit_autoencoder(train, valid, rng)
