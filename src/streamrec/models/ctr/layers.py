"""Layers shared by the deep CTR models (one copy, never per model).

- :class:`FieldEmbedding`: every feature as a ``dim``-vector field, shape (B, F, dim):
  categorical field ``j`` looks up its own table (one flat ``nn.Embedding`` with offsets);
  dense feature ``d`` is ``x_d · v_d`` (a learned vector scaled by the value, as in FM and
  DeepFM). ``F = n_categorical + n_dense``.
- :class:`FirstOrder`: the linear (wide) part, a weight per categorical code plus a weight per
  dense feature and a bias, shape (B,).
- :class:`MLP`: Linear → (BatchNorm) → ReLU → (Dropout) blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from streamrec.data.ctr import FeatureSchema
from streamrec.models.neural.layers import Dropout, lookup

__all__ = ["MLP", "FieldEmbedding", "FirstOrder"]


class FieldEmbedding(nn.Module):
    """All fields as embeddings, (B, F, dim), F = n_categorical + n_dense.

    Parameters
    ----------
    schema : FeatureSchema
    dim : int
    std : float
        Normal initialisation scale.
    with_dense : bool
        Also embed the dense features (else F = n_categorical and ``dense`` is ignored).
    """

    def __init__(self, schema: FeatureSchema, dim: int, std: float = 0.01,
                 with_dense: bool = True) -> None:
        super().__init__()
        n_dense = schema.n_dense if with_dense else 0
        self.n_fields = schema.n_categorical + n_dense
        self.dim = dim
        self.register_buffer("offsets", torch.as_tensor(schema.offsets), persistent=False)
        self.table = nn.Embedding(max(int(sum(schema.cardinalities)), 1), dim)
        self.dense_vectors = nn.Parameter(torch.randn(n_dense, dim) * std)
        nn.init.normal_(self.table.weight, std=std)

    def forward(self, dense: Tensor, cat: Tensor) -> Tensor:
        parts = []
        if cat.shape[1]:
            parts.append(lookup(self.table, cat + self.offsets))  # (B, C, dim)
        if self.dense_vectors.shape[0]:
            parts.append(dense.unsqueeze(-1) * self.dense_vectors)  # (B, D, dim)
        if not parts:
            return dense.new_zeros(dense.shape[0], 0, self.dim)
        return torch.cat(parts, dim=1)  # (B, F, dim)


class FirstOrder(nn.Module):
    """Bias + a weight per categorical code + a weight per dense feature, (B,)."""

    def __init__(self, schema: FeatureSchema) -> None:
        super().__init__()
        self.register_buffer("offsets", torch.as_tensor(schema.offsets), persistent=False)
        self.weights = nn.Embedding(max(int(sum(schema.cardinalities)), 1), 1)
        nn.init.zeros_(self.weights.weight)
        self.dense = nn.Linear(schema.n_dense, 1) if schema.n_dense else None
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, dense: Tensor, cat: Tensor) -> Tensor:
        out = self.bias.expand(dense.shape[0])
        if cat.shape[1]:
            out = out + lookup(self.weights, cat + self.offsets).sum(dim=(1, 2))  # (B,)
        if self.dense is not None:
            out = out + self.dense(dense).squeeze(-1)  # (B,)
        return out


class MLP(nn.Module):
    """``in_dim`` → hidden layers (Linear, optional BatchNorm, ReLU, optional Dropout).

    Parameters
    ----------
    in_dim : int
    hidden : sequence of int
        Widths of the hidden layers; empty gives the identity.
    dropout : float
    batch_norm : bool
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], dropout: float = 0.0,
                 batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers.append(nn.Linear(in_dim, width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(Dropout(dropout))
            in_dim = width
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, out_dim)
