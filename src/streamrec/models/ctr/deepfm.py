"""DeepFM click model (Guo et al., 2017): a Factorization Machine and an MLP sharing one field
embedding, logits summed. The FM part gives the linear and pairwise terms; the MLP reads the
flattened embeddings of all fields, dense ones included (``x_d · v_d``)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from streamrec.data.ctr import FeatureSchema
from streamrec.models.ctr.base import CTRModule, DeepCTRModel
from streamrec.models.ctr.fm import pairwise_interaction
from streamrec.models.ctr.layers import MLP, FieldEmbedding, FirstOrder
from streamrec.models.zoo import register

__all__ = ["DeepFM"]


class _DeepFMModule(CTRModule):
    def __init__(self, schema: FeatureSchema, hidden: Sequence[int], embed_dim: int,
                 dropout: float, batch_norm: bool) -> None:
        super().__init__()
        self.linear = FirstOrder(schema)
        self.embed = FieldEmbedding(schema, embed_dim)
        self.mlp = MLP(self.embed.n_fields * embed_dim, hidden, dropout, batch_norm)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def forward(self, dense: Tensor, cat: Tensor, hist: Tensor | None) -> Tensor:
        e = self.embed(dense, cat)  # (B, F, k): shared by the FM and the deep part
        fm = self.linear(dense, cat) + pairwise_interaction(e)  # (B,)
        deep = self.out(self.mlp(e.flatten(1))).squeeze(-1)  # (B, F·k) -> (B,)
        return fm + deep  # (B,)


@register("deepfm", kind="ctr")
class DeepFM(DeepCTRModel):
    """DeepFM: FM (linear + pairwise interactions) plus an MLP over the same embeddings.

    Parameters as :class:`~streamrec.models.ctr.base.DeepCTRModel`; ``hidden`` is the deep
    part, each field's ``embed_dim`` embedding is shared by the FM and the MLP.
    """

    search_space = {"hidden": [(64, 32), (128, 64, 32), (256, 128, 64)],
                    "embed_dim": [4, 8, 16], "lr": [1e-2, 1e-3, 1e-4], "dropout": [0.0, 0.2]}

    def _build(self, schema: FeatureSchema) -> CTRModule:
        return _DeepFMModule(schema, self.hidden, self.embed_dim, self.dropout,
                             self.batch_norm)
