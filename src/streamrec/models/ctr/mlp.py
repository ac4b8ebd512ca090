"""MLP click model: dense features and categorical embeddings, concatenated, through a
feed-forward network (the case study's "MLP on the 20 handcrafted features")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from streamrec.data.ctr import FeatureSchema
from streamrec.models.ctr.base import CTRModule, DeepCTRModel
from streamrec.models.ctr.layers import MLP, FieldEmbedding
from streamrec.models.zoo import register

__all__ = ["MLPClassifier"]


class _MLPModule(CTRModule):
    def __init__(self, schema: FeatureSchema, hidden: Sequence[int], embed_dim: int,
                 dropout: float, batch_norm: bool) -> None:
        super().__init__()
        self.n_dense = schema.n_dense
        self.embed = (FieldEmbedding(schema, embed_dim, with_dense=False)
                      if schema.n_categorical else None)
        in_dim = schema.n_dense + schema.n_categorical * embed_dim
        self.mlp = MLP(in_dim, hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def forward(self, dense: Tensor, cat: Tensor, hist: Tensor | None) -> Tensor:
        parts = [dense]  # (B, D)
        if self.embed is not None:
            e = self.embed(dense, cat)  # (B, C, k): categorical fields only
            parts.append(e.flatten(1))  # (B, C·k)
        return self.out(self.mlp(torch.cat(parts, dim=1))).squeeze(-1)  # (B,)


@register("mlp", kind="ctr")
class MLPClassifier(DeepCTRModel):
    """Feed-forward click model over the dense values and the categorical embeddings
    (parameters: :class:`~streamrec.models.ctr.base.DeepCTRModel`)."""

    search_space = {"hidden": [(32,), (64, 32), (128, 64, 32), (256, 128, 64, 32)],
                    "lr": [1e-2, 1e-3, 1e-4], "dropout": [0.0, 0.2]}

    def _build(self, schema: FeatureSchema) -> CTRModule:
        return _MLPModule(schema, self.hidden, self.embed_dim, self.dropout, self.batch_norm)
