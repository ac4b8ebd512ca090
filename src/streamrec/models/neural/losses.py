"""Training losses as pure functions of scores (every torch recommender shares these).

Shapes: ``B`` examples in a batch, ``N`` negatives per example, ``I`` items, ``D`` dims.
All return a scalar mean over the batch unless ``weights`` say otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "bce_loss",
    "bpr_loss",
    "in_batch_softmax_loss",
    "kl_normal",
    "mse_loss",
    "multinomial_loss",
    "sampled_softmax_loss",
]


def bce_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Pointwise binary cross-entropy with sampled negatives.

    Parameters
    ----------
    pos : Tensor, shape (B,)
        Logits of the observed (user, item) pairs (label 1).
    neg : Tensor, shape (B, N) or (B,)
        Logits of sampled negatives (label 0).

    Returns
    -------
    Tensor, scalar: mean over the ``B * (1 + N)`` labelled pairs.
    """
    neg = neg.reshape(len(pos), -1)
    total = F.softplus(-pos).sum() + F.softplus(neg).sum()  # -log σ(x), -log(1 - σ(x))
    return total / (pos.numel() + neg.numel())


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking: ``-log σ(pos - neg)`` averaged over the pairs.

    Parameters
    ----------
    pos : Tensor, shape (B,)
    neg : Tensor, shape (B, N) or (B,)
    """
    diff = pos.reshape(-1, 1) - neg.reshape(len(pos), -1)  # (B, N)
    return F.softplus(-diff).mean()


def sampled_softmax_loss(query: Tensor, pos: Tensor, neg: Tensor, *,
                         pos_logq: Tensor | None = None, neg_logq: Tensor | None = None,
                         temperature: float = 1.0, shared_negatives: bool = True) -> Tensor:
    """Softmax over the positive and sampled negatives, with logQ correction.

    Parameters
    ----------
    query : Tensor, shape (B, D)
    pos : Tensor, shape (B, D)
        The positive item vector of each query.
    neg : Tensor, shape (N, D) if ``shared_negatives`` else (B, N, D)
        Sampled negative item vectors.
    pos_logq, neg_logq : Tensor, shapes (B,) and (N,) or (B, N), optional
        Log sampling probability of each item; subtracted from its logit so the sampled
        softmax estimates the full softmax without popularity bias (Yi et al., 2019).
    temperature : float
        Logits are divided by it.
    """
    pos_logit = (query * pos).sum(-1) / temperature  # (B,)
    if shared_negatives:
        neg_logit = query @ neg.T / temperature  # (B, N)
    else:
        neg_logit = torch.einsum("bd,bnd->bn", query, neg) / temperature
    if pos_logq is not None:
        pos_logit = pos_logit - pos_logq
    if neg_logq is not None:
        neg_logit = neg_logit - neg_logq
    logits = torch.cat([pos_logit[:, None], neg_logit], dim=1)  # (B, 1 + N)
    return -F.log_softmax(logits, dim=1)[:, 0].mean()


def in_batch_softmax_loss(query: Tensor, items: Tensor, *, item_ids: Tensor | None = None,
                          logq: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Softmax where the other examples' positives are the negatives (in-batch negatives).

    Parameters
    ----------
    query : Tensor, shape (B, D)
    items : Tensor, shape (B, D)
        Row ``b`` is the positive of query ``b`` and a negative of every other query.
    item_ids : Tensor, shape (B,), optional
        When given, a column holding the same item as the row's positive is not counted as
        a negative (duplicates in a batch).
    logq : Tensor, shape (B,), optional
        Log probability of each item appearing in a batch (frequency), subtracted from its
        logits: the logQ correction of in-batch sampling bias.
    temperature : float
    """
    logits = query @ items.T / temperature  # (B, B)
    if logq is not None:
        logits = logits - logq[None, :]
    if item_ids is not None:
        dup = item_ids[:, None] == item_ids[None, :]
        dup.fill_diagonal_(False)
        logits = logits.masked_fill(dup, float("-inf"))
    target = torch.arange(len(query), device=query.device)
    return F.cross_entropy(logits, target)


def multinomial_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Full-softmax multinomial log-likelihood (Mult-VAE/DAE): ``-Σ x log softmax(z)``.

    Parameters
    ----------
    logits : Tensor, shape (B, I)
    targets : Tensor, shape (B, I)
        Non-negative counts or 0/1 interactions of each user.

    Returns
    -------
    Tensor, scalar: mean over users of the negative log-likelihood.
    """
    return -(F.log_softmax(logits, dim=1) * targets).sum(1).mean()


def sparse_multinomial_loss(logits: Tensor, rows: Tensor, cols: Tensor,
                            values: Tensor) -> Tensor:
    """:func:`multinomial_loss` with the targets given by their non-zeros only.

    ``-Σ x log softmax(z)`` only needs ``log softmax(z)`` where ``x`` is non-zero, so the
    targets never become a dense (B, I) tensor.

    Parameters
    ----------
    logits : Tensor, shape (B, I)
    rows, cols : Tensor of int64, shape (nnz,)
        Row and item of each non-zero target.
    values : Tensor, shape (nnz,)

    Returns
    -------
    Tensor, scalar: mean over the B users of the negative log-likelihood.
    """
    logp = F.log_softmax(logits, dim=1)  # (B, I)
    return -(logp[rows, cols] * values).sum() / logits.shape[0]


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over dimensions, mean over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def mse_loss(pred: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean squared error for explicit ratings (optionally weighted per example)."""
    err = (pred - target).pow(2)
    if weights is None:
        return err.mean()
    return (err * weights).sum() / weights.sum()
