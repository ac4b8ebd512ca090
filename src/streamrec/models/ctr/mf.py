"""Matrix factorisation as a click model: ``logit = b + b_u + b_i + <p_u, q_i>`` from the user
and item id fields only (no other feature), trained with binary cross-entropy.

The "MF" row of the foundation article's comparison: what collaborative filtering alone
gets on impressions, next to FM, Wide&Deep, DeepFM and DIN, which add the features.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from streamrec.data.ctr import FeatureSchema
from streamrec.models.ctr.base import CTRModule, TorchCTRModel
from streamrec.models.neural.layers import lookup
from streamrec.models.zoo import register

__all__ = ["MFClassifier"]


class _MFModule(CTRModule):
    def __init__(self, n_users: int, n_items: int, user_col: int, item_col: int, dim: int,
                 l2: float) -> None:
        super().__init__()
        self.user_col, self.item_col, self.l2 = user_col, item_col, l2
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.bias = nn.Parameter(torch.zeros(()))
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.01)
        for emb in (self.user_bias, self.item_bias):
            nn.init.zeros_(emb.weight)
        self._last: tuple[Tensor, Tensor] | None = None

    def forward(self, dense: Tensor, cat: Tensor, hist: Tensor | None) -> Tensor:
        u, i = cat[:, self.user_col], cat[:, self.item_col]  # (B,), (B,)
        p, q = lookup(self.user, u), lookup(self.item, i)  # (B, k), (B, k)
        self._last = (p, q)
        bias = lookup(self.user_bias, u)[:, 0] + lookup(self.item_bias, i)[:, 0]  # (B,)
        return self.bias + bias + (p * q).sum(dim=1)  # (B,)

    def penalty(self) -> Tensor | None:
        if not self.l2 or self._last is None:
            return None
        p, q = self._last
        return self.l2 * ((p * p).sum(dim=1) + (q * q).sum(dim=1)).mean()


@register("mf", kind="ctr")
class MFClassifier(TorchCTRModel):
    """Biased matrix factorisation on the user and item id fields.

    Parameters
    ----------
    dim : int
        Latent factors.
    l2 : float
        L2 penalty on the factors of each batch's users and items.
    user_field : str
        Categorical field of the user (e.g. ``user_id``, or a hashed user).
    item_field : str or None
        Categorical field of the item; None: the schema's ``item_field``, else ``item_id``.
    **train :
        Trainer settings (early stopping on valid AUC when valid is given; defaults in
        ``train_defaults``).
    """

    search_space = {"dim": [16, 32, 64], "l2": [0.0, 1e-4, 1e-3]}
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 1024, "lr": 3e-3, "patience": 3}

    def __init__(self, dim: int = 32, l2: float = 1e-4, user_field: str = "user_id",
                 item_field: str | None = None, **train: Any) -> None:
        self._set_params(locals())
        super().__init__(**train)

    def _build(self, schema: FeatureSchema) -> CTRModule:
        item = self.item_field or schema.item_field or "item_id"
        missing = [f for f in (self.user_field, item) if f not in schema.categorical]
        if missing:
            raise ValueError(f"mf needs the categorical fields {missing} (user and item ids); "
                             f"the data has {schema.categorical}: set user_field / item_field")
        uc, ic = schema.categorical.index(self.user_field), schema.categorical.index(item)
        return _MFModule(schema.cardinalities[uc], schema.cardinalities[ic], uc, ic, self.dim,
                         self.l2)
