"""Factorization Machine click model (Rendle, 2010): a linear part plus every pairwise
interaction of the fields' embeddings, ``Σ_{i<j} <v_i, v_j>``, computed in O(F·k) as
``0.5 · Σ_k ((Σ_i v_ik)² − Σ_i v_ik²)``. Dense features are fields too (``x_d · v_d``).

:func:`pairwise_interaction` is the second-order term; DeepFM reuses it.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from streamrec.data.ctr import FeatureSchema
from streamrec.models.ctr.base import CTRModule, TorchCTRModel
from streamrec.models.ctr.layers import FieldEmbedding, FirstOrder
from streamrec.models.zoo import register

__all__ = ["FactorizationMachine", "pairwise_interaction"]


def pairwise_interaction(e: Tensor) -> Tensor:
    """The FM second-order term ``Σ_{i<j} <e_i, e_j>`` of field embeddings.

    Parameters
    ----------
    e : Tensor, shape (B, F, k)

    Returns
    -------
    Tensor, shape (B,)
    """
    square_of_sum = e.sum(dim=1).square()  # (B, k)
    sum_of_squares = e.square().sum(dim=1)  # (B, k)
    return 0.5 * (square_of_sum - sum_of_squares).sum(dim=1)  # (B,)


class _FMModule(CTRModule):
    def __init__(self, schema: FeatureSchema, embed_dim: int, l2: float) -> None:
        super().__init__()
        self.linear = FirstOrder(schema)
        self.embed = FieldEmbedding(schema, embed_dim)
        self.l2 = float(l2)

    def forward(self, dense: Tensor, cat: Tensor, hist: Tensor | None) -> Tensor:
        e = self.embed(dense, cat)  # (B, F, k): categorical then dense fields
        return self.linear(dense, cat) + pairwise_interaction(e)  # (B,)

    def penalty(self) -> Tensor | None:
        if self.l2 <= 0:
            return None
        return self.l2 * (self.embed.table.weight.square().sum()
                          + self.embed.dense_vectors.square().sum())  # ()


@register("fm", kind="ctr")
class FactorizationMachine(TorchCTRModel):
    """Factorization Machine: bias + linear terms + pairwise embedding interactions.

    Parameters
    ----------
    embed_dim : int
        Size ``k`` of each field's latent vector.
    l2 : float
        L2 penalty on all latent vectors (categorical tables and dense vectors), added to the
        loss of every batch (0 = none; ``weight_decay`` applies to every parameter instead).
    **train :
        Trainer settings (early stopping on valid AUC when valid is given; defaults in
        :class:`~streamrec.models.ctr.base.TorchCTRModel`).
    """

    search_space = {"embed_dim": [8, 16, 32], "lr": [1e-2, 1e-3, 1e-4],
                    "l2": [0.0, 1e-6, 1e-5]}

    def __init__(self, embed_dim: int = 16, l2: float = 0.0, **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def _build(self, schema: FeatureSchema) -> CTRModule:
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        return _FMModule(schema, self.embed_dim, self.l2)
