"""Wide & Deep click model (Cheng et al., 2016): a wide linear model over the one-hot codes and
dense values (memorisation) plus a deep network over dense values and categorical embeddings
(generalisation), trained jointly; the logit is their sum."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from streamrec.data.ctr import FeatureSchema
from streamrec.models.ctr.base import CTRModule, DeepCTRModel
from streamrec.models.ctr.layers import MLP, FieldEmbedding, FirstOrder
from streamrec.models.zoo import register

__all__ = ["WideDeep"]


class _WideDeepModule(CTRModule):
    def __init__(self, schema: FeatureSchema, hidden: Sequence[int], embed_dim: int,
                 dropout: float, batch_norm: bool) -> None:
        super().__init__()
        self.wide = FirstOrder(schema)
        self.embed = (FieldEmbedding(schema, embed_dim, with_dense=False)
                      if schema.n_categorical else None)
        self.mlp = MLP(schema.n_dense + schema.n_categorical * embed_dim, hidden, dropout,
                       batch_norm)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def forward(self, dense: Tensor, cat: Tensor, hist: Tensor | None) -> Tensor:
        parts = [dense]  # (B, D)
        if self.embed is not None:
            parts.append(self.embed(dense, cat).flatten(1))  # (B, C·k)
        deep = self.out(self.mlp(torch.cat(parts, dim=1))).squeeze(-1)  # (B,)
        return self.wide(dense, cat) + deep  # (B,)


@register("wide_deep", kind="ctr")
class WideDeep(DeepCTRModel):
    """Wide & Deep: linear (wide) part plus an MLP (deep) part, logits summed.

    Parameters as :class:`~streamrec.models.ctr.base.DeepCTRModel`; ``hidden`` and
    ``embed_dim`` are the deep part's.
    """

    search_space = {"hidden": [(64, 32), (128, 64, 32), (256, 128, 64)],
                    "lr": [1e-2, 1e-3, 1e-4], "dropout": [0.0, 0.2]}

    def _build(self, schema: FeatureSchema) -> CTRModule:
        return _WideDeepModule(schema, self.hidden, self.embed_dim, self.dropout,
                               self.batch_norm)
