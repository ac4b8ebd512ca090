"""Mult-DAE and Mult-VAE (Liang et al., WWW 2018): autoencoders over a user's item history.

A user is their binary train row ``x_u`` (n_items,). The encoder reads the L2-normalised row
after input dropout, ``tanh`` MLP ``n_items -> hidden -> latent``; the decoder mirrors it,
``latent -> hidden -> n_items``, and its logits go through a softmax over all items. The loss
is the multinomial log-likelihood ``-Σ_i x_ui log softmax(z_u)_i``
(:func:`~streamrec.models.neural.losses.sparse_multinomial_loss`, computed from the
rows' non-zeros); Mult-VAE adds
``β · KL(q(z|x_u) || N(0, I))`` where β grows linearly with the optimiser step ``t``,
``β_t = min(anneal_cap, t / total_anneal_steps)`` (Liang et al.'s KL annealing), samples
``z = μ + ε·σ`` in training (reparameterisation) and scores from ``μ`` (deterministic).

Both score from the train history, which they keep as fitted state (csr ``X_``, saved as
numeric arrays): ``score(users)`` decodes each user's stored row; users unseen in training
get item popularity (:class:`~streamrec.models.neural.base.TorchRecommender`). A batch is a
set of users whose rows are gathered from the csr arrays on the training device by tensor
indexing (:func:`gather_rows`), never a loop over users.

The rows are about 5% dense on MovieLens, so the batch stays sparse (:class:`HistoryRows`, CSR arrays) and
the first encoder layer is a weighted ``embedding_bag`` over each row's non-zeros
(:class:`SparseInput`): the same ``dropout(normalize(x)) W + b`` as the dense product, with
input dropout drawn only for the non-zeros, at ``O(nnz · H)`` instead of ``O(B · I · H)``
for the forward pass and the weight gradient. Only the decoder's output layer is dense, as
the softmax over all items needs every logit.

:class:`AutoencoderRecommender` (history state, user batches, ``_query``) is shared with
:mod:`streamrec.models.neural.cdae`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.models._history import csr_from_state, csr_state, train_matrix
from streamrec.models.neural.base import TorchRecommender
from streamrec.models.neural.layers import dropout
from streamrec.models.neural.losses import kl_normal, sparse_multinomial_loss
from streamrec.models.neural.trainer import resolve_device
from streamrec.models.zoo import register

__all__ = ["AutoencoderRecommender", "HistoryRows", "MultDAE", "MultVAE", "SparseInput",
           "UserBatches", "gather_rows"]

class UserBatches:
    """The batches of one epoch: a permutation of users split into batches, built lazily.

    Parameters
    ----------
    order : Tensor of int64, shape (n,)
        Users in the order of this epoch.
    batch_size : int
    make : callable
        ``make(idx)`` builds the batch of users ``idx`` (Tensor of int64, shape (B,)).
    """

    def __init__(self, order: Tensor, batch_size: int, make: Callable[[Tensor], Any]) -> None:
        self.order = order
        self.batch_size = batch_size
        self.make = make

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        for idx in torch.split(self.order, self.batch_size):
            yield self.make(idx)


@dataclass(frozen=True)
class HistoryRows:
    """Some users' history rows in CSR form: what the autoencoder modules read.

    Attributes
    ----------
    users : Tensor of int64, shape (B,)
        Row ``b`` is user ``users[b]``'s history.
    crow : Tensor of int64, shape (B + 1,)
        Row ``b``'s non-zeros are ``col[crow[b]:crow[b + 1]]``.
    col : Tensor of int64, shape (nnz,)
        Item of each non-zero.
    val : Tensor of float32, shape (nnz,)
        Value of each non-zero.
    n_items : int
    """

    users: Tensor
    crow: Tensor
    col: Tensor
    val: Tensor
    n_items: int

    @classmethod
    def from_scipy(cls, x: sp.csr_array, users: np.ndarray) -> HistoryRows:
        """Rows ``users`` of ``x`` (csr, (n_users, n_items)); users must be < n_users."""
        rows = sp.csr_array(x[users])
        return cls(torch.from_numpy(np.asarray(users, np.int64)),
                   torch.from_numpy(rows.indptr.astype(np.int64)),
                   torch.from_numpy(rows.indices.astype(np.int64)),
                   torch.from_numpy(rows.data.astype(np.float32)), int(x.shape[1]))

    def to(self, device: torch.device | str) -> HistoryRows:
        """The same rows on ``device``."""
        return HistoryRows(self.users.to(device), self.crow.to(device), self.col.to(device),
                           self.val.to(device), self.n_items)

    def row_ids(self) -> Tensor:
        """Row of each non-zero, shape (nnz,)."""
        counts = self.crow[1:] - self.crow[:-1]  # (B,)
        return torch.repeat_interleave(torch.arange(len(counts), device=counts.device),
                                       counts, output_size=len(self.col))

    def to_dense(self) -> Tensor:
        """The rows as a dense float tensor, shape (B, n_items)."""
        out = torch.zeros(len(self.users), self.n_items, device=self.val.device,
                          dtype=self.val.dtype)
        return out.index_put_((self.row_ids(), self.col), self.val, accumulate=True)


def gather_rows(indptr: Tensor, indices: Tensor, data: Tensor, users: Tensor,
                n_items: int) -> HistoryRows:
    """Rows ``users`` of the csr matrix given by its arrays (all on one device).

    Parameters
    ----------
    indptr : Tensor of int64, shape (n_users + 1,)
    indices : Tensor of int64, shape (nnz,)
    data : Tensor of float32, shape (nnz,)
    users : Tensor of int64, shape (B,)
    n_items : int

    Returns
    -------
    HistoryRows
    """
    start = indptr[users]  # (B,)
    counts = indptr[users + 1] - start  # (B,)
    crow = torch.zeros(len(users) + 1, dtype=torch.long, device=indptr.device)
    torch.cumsum(counts, 0, out=crow[1:])
    total = int(crow[-1])
    shift = torch.repeat_interleave(start - crow[:-1], counts, output_size=total)  # (nnz_B,)
    pos = torch.arange(total, device=indptr.device) + shift  # (nnz_B,) into indices/data
    return HistoryRows(users, crow, indices[pos], data[pos], n_items)


class _RowsTimesWeight(torch.autograd.Function):
    """``out[b] = Σ_k val[k] · weight[col[k]]`` over row ``b``'s non-zeros (a CSR batch times
    a dense weight), differentiable in ``weight`` only.

    The forward pass is a weighted ``embedding_bag``. Its own backward scatters every
    non-zero's gradient row into a dense table after a sort (measured on Mult-VAE, ML-100K:
    6.2 ms of a 57 ms epoch); the weight gradient ``Xᵀ G`` is the same bag product over the
    transposed batch, ``grad_weight[i] = Σ val · G[row]`` over item ``i``'s non-zeros, so it
    runs as a second forward ``embedding_bag`` after one stable sort of the columns.
    """

    @staticmethod
    def forward(ctx: Any, weight: Tensor, rows: Tensor, col: Tensor, crow: Tensor,
                val: Tensor) -> Tensor:
        ctx.save_for_backward(rows, col, val)
        ctx.n_items = weight.shape[0]
        return F.embedding_bag(col, weight, crow[:-1], mode="sum", per_sample_weights=val)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if ctx.needs_input_grad[4]:
            raise RuntimeError("_RowsTimesWeight is differentiable in weight only, not in val")
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        rows, col, val = ctx.saved_tensors
        col_sorted, perm = torch.sort(col, stable=True)  # the batch's non-zeros by item
        offsets = torch.zeros(ctx.n_items, dtype=torch.long, device=col.device)  # (I,)
        torch.cumsum(torch.bincount(col_sorted, minlength=ctx.n_items)[:-1], 0,
                     out=offsets[1:])
        grad_weight = F.embedding_bag(rows[perm], grad, offsets, mode="sum",
                                      per_sample_weights=val[perm].to(grad.dtype))  # (I, H)
        return grad_weight, None, None, None, None


class SparseInput(nn.Module):
    """First layer of an autoencoder over sparse history rows: ``x W + b``.

    The product runs as a weighted ``embedding_bag`` over each row's non-zeros
    (``O(nnz · H)`` instead of ``O(B · I · H)``, the weight gradient too:
    :class:`_RowsTimesWeight`). Before it, rows are optionally L2-normalised and their
    non-zeros dropped out with probability ``dropout`` (kept values scaled by
    ``1 / (1 - dropout)``), in training only: exactly ``dropout(normalize(x)) W + b`` on the
    dense rows.

    Parameters
    ----------
    n_items, out : int
        Input (items) and output sizes.
    dropout : float
    normalize : bool
    """

    def __init__(self, n_items: int, out: int, dropout: float, normalize: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_items, out))  # (I, H)
        self.bias = nn.Parameter(torch.zeros(out))  # (H,)
        nn.init.xavier_uniform_(self.weight)
        self.dropout = dropout
        self.normalize = normalize

    def forward(self, x: HistoryRows) -> Tensor:
        """Shape (B, H) from rows ``x`` of width ``n_items``."""
        val, row = x.val, x.row_ids()  # (nnz,), (nnz,)
        if self.normalize:
            sq = torch.zeros(len(x.users), device=val.device, dtype=val.dtype)
            norm = sq.index_add_(0, row, val * val).sqrt().clamp_min(1e-12)  # (B,)
            val = val / norm[row]
        val = dropout(val, self.dropout, self.training)  # (nnz,)
        out = _RowsTimesWeight.apply(self.weight, row, x.col, x.crow, val)  # (B, H)
        return out + self.bias


class AutoencoderRecommender(TorchRecommender):
    """Base of the models that encode a user's train history row (Mult-DAE/VAE, CDAE).

    Keeps the binary train matrix ``X_`` (csr, (n_users, n_items)) as fitted state, builds
    per-epoch user batches by tensor indexing, and hands the module's ``loss`` and
    ``score_all`` the users' rows as :class:`HistoryRows` (user ids included). Subclasses
    implement ``_build_module``.
    """

    train_defaults: ClassVar[dict[str, Any]] = {"epochs": 500, "batch_size": 128,
                                                "patience": 10, "eval_every": 5}
    X_: sp.csr_array

    def _fit_autoencoder(self, train: Interactions, valid: Interactions | None,
                         rng: np.random.Generator | int | None) -> Self:
        """Store the history, then train on batches of the users who have one."""
        gen, seed = self._start_fit(train, rng)
        self.X_ = train_matrix(train, binary=True)
        device = resolve_device(self.train_config.device)
        indptr, indices, data = (torch.from_numpy(a).to(device) for a in (
            self.X_.indptr.astype(np.int64), self.X_.indices.astype(np.int64),
            self.X_.data.astype(np.float32)))
        active = np.flatnonzero(np.diff(self.X_.indptr) > 0)  # users with a train history

        def make(idx: Tensor) -> HistoryRows:
            return gather_rows(indptr, indices, data, idx.to(device), self.n_items_)

        def batches(epoch: int) -> UserBatches:
            return UserBatches(torch.from_numpy(gen.permutation(active)),
                               self.train_config.batch_size, make)

        self._train(seed, batches, valid, train)
        return self

    def _query(self, users: np.ndarray) -> HistoryRows:  # type: ignore[override]
        """The known ``users``' train rows."""
        return HistoryRows.from_scipy(self.X_, users)

    def _extra_state(self) -> dict[str, np.ndarray]:
        return csr_state("X_", self.X_)

    def _set_extra_state(self, state: dict[str, np.ndarray]) -> None:
        self.X_ = csr_from_state("X_", state)


class _MultAE(nn.Module):
    """Encoder/decoder MLPs of Mult-DAE (``variational=False``) and Mult-VAE.

    Parameters
    ----------
    n_items : int
    hidden : int
        Width of the hidden layer of the encoder and of the decoder.
    latent : int
        Size of the code (of ``μ`` and of ``log σ²`` for the VAE).
    dropout : float
        Input dropout (after L2 normalisation), training only.
    variational : bool
    anneal_cap : float
        Final KL weight β.
    total_anneal_steps : int
        Optimiser steps over which β grows linearly from 0 to ``anneal_cap`` (0: β is the
        cap from the start).
    """

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float,
                 variational: bool, anneal_cap: float, total_anneal_steps: int) -> None:
        super().__init__()
        self.variational = variational
        self.latent = latent
        self.enc_in = SparseInput(n_items, hidden, dropout, normalize=True)
        self.enc_out = nn.Linear(hidden, 2 * latent if variational else latent)
        self.dec_in = nn.Linear(latent, hidden)
        self.dec_out = nn.Linear(hidden, n_items)
        for layer in (self.enc_out, self.dec_in, self.dec_out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
        self.steps = 0  # optimiser steps taken (one ``loss`` call in training per step)

    @property
    def beta(self) -> float:
        """KL weight of the next training step: ``min(anneal_cap, steps / total)``."""
        if self.total_anneal_steps <= 0:
            return self.anneal_cap
        return min(self.anneal_cap, self.steps / self.total_anneal_steps)

    def encode(self, x: HistoryRows) -> tuple[Tensor, Tensor | None]:
        """Code of each row: ``(μ, log σ²)`` for the VAE, ``(code, None)`` for the DAE.

        Parameters
        ----------
        x : HistoryRows
            B users' binary (or count) history rows over I items.
        """
        h = torch.tanh(self.enc_in(x))  # (B, H): dropout(normalize(x)) W + b
        if not self.variational:
            return torch.tanh(self.enc_out(h)), None  # (B, L)
        out = self.enc_out(h)  # (B, 2L)
        return out[:, : self.latent], out[:, self.latent:]  # (B, L), (B, L)

    def decode(self, z: Tensor) -> Tensor:
        """Item logits, shape (B, I), of codes ``z`` (B, L)."""
        return self.dec_out(torch.tanh(self.dec_in(z)))  # (B, I)

    def loss(self, x: HistoryRows) -> Tensor:
        mu, logvar = self.encode(x)  # (B, L), (B, L) or None
        rows = x.row_ids()  # (nnz,): the targets are the rows' non-zeros
        if logvar is None:
            return sparse_multinomial_loss(self.decode(mu), rows, x.col, x.val)
        z = mu
        if self.training:  # reparameterisation: z = μ + ε σ
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # (B, L)
        beta = self.beta
        if self.training and torch.is_grad_enabled():
            self.steps += 1
        nll = sparse_multinomial_loss(self.decode(z), rows, x.col, x.val)
        return nll + beta * kl_normal(mu, logvar)

    def score_all(self, x: HistoryRows) -> Tensor:
        mu, _ = self.encode(x)  # (B, L): the mean, no sampling
        return self.decode(mu)  # (B, I)


class _MultBase(AutoencoderRecommender):
    """Shared ``__init__``/``fit`` of Mult-DAE and Mult-VAE."""

    variational: ClassVar[bool] = True

    def __init__(self, hidden: int = 600, latent: int = 200, dropout: float = 0.5,
                 anneal_cap: float = 0.2, total_anneal_steps: int = 2000,
                 **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def _build_module(self) -> nn.Module:
        return _MultAE(self.n_items_, self.hidden, self.latent, self.dropout,
                       type(self).variational, self.anneal_cap, self.total_anneal_steps)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on ``train``; early stopping on ``valid`` NDCG@10 when given."""
        name = type(self).name
        if self.hidden < 1 or self.latent < 1:
            raise ValueError(f"{name}: hidden and latent must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{name}: dropout must lie in [0, 1), got {self.dropout}")
        if self.anneal_cap < 0 or self.total_anneal_steps < 0:
            raise ValueError(f"{name}: anneal_cap and total_anneal_steps must be >= 0")
        return self._fit_autoencoder(train, valid, rng)


@register("multvae")
class MultVAE(_MultBase):
    """Mult-VAE: variational autoencoder with a multinomial likelihood and KL annealing.

    Parameters
    ----------
    hidden : int
        Hidden width of encoder and decoder (the paper: 600).
    latent : int
        Size of the Gaussian code (the paper: 200; RecBole's ``latent_dimension: 128`` is
        ``μ`` and ``log σ²`` together, i.e. ``latent=64`` here).
    dropout : float
        Input dropout after L2 normalisation.
    anneal_cap : float
        Final KL weight β.
    total_anneal_steps : int
        β grows linearly from 0 by ``1 / total_anneal_steps`` per optimiser step up to
        ``anneal_cap`` (an epoch is ``ceil(n_users / batch_size)`` steps).
    **train :
        Trainer settings (:class:`~streamrec.models.neural.trainer.TrainConfig` fields;
        defaults in :class:`AutoencoderRecommender`); a batch is ``batch_size`` users.
    """

    variational = True
    # ML-100K (valid NDCG@10, seed 0): lr below 1e-3 helps (3e-4: 0.1377 vs 0.1347)
    search_space: ClassVar[dict[str, list[Any]]] = {
        "lr": [2e-4, 3e-4, 5e-4, 1e-3],
        "dropout": [0.5, 0.7],
        "anneal_cap": [0.2, 0.4],
        "weight_decay": [0.0, 1e-4],
    }


@register("multdae")
class MultDAE(_MultBase):
    """Mult-DAE: denoising autoencoder with a multinomial likelihood.

    Same parameters as :class:`MultVAE`; ``anneal_cap`` and ``total_anneal_steps`` are
    unused (there is no KL term) and the code is ``tanh(encoder output)``.
    """

    variational = False
    search_space: ClassVar[dict[str, list[Any]]] = {
        "lr": [1e-3, 3e-3],
        "dropout": [0.3, 0.5],
        "latent": [64, 200],
        "weight_decay": [0.0, 1e-5, 1e-4],
    }
