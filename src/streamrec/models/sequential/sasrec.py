"""SASRec (Kang & McAuley, 2018): causal self-attention over the item sequence.

Item embeddings (scaled by √D) plus learned positions, ``blocks`` pre-LayerNorm transformer
blocks (causal multi-head self-attention, then a two-layer position-wise feed-forward, each
with dropout and a residual connection), a final LayerNorm; the state at position ``t`` is
scored against the shared item embeddings. Losses: BCE with one negative per target (the
original), full cross-entropy over the catalogue (SASRec+ / "CE"), sampled softmax with many
negatives, or gBCE (gSASRec); see :class:`~streamrec.models.sequential.base.NextItemModule`.

Positions count from the first item of the (right-padded) window, so a prefix has the same
state in training and when scored alone.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from torch import Tensor, nn
from torch.nn import functional as F

from streamrec.data.interactions import Interactions
from streamrec.models.sequential.base import NextItemModule, TorchSequentialRecommender
from streamrec.models.zoo import register

__all__ = ["SASRec"]


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, dim)
        self.ff2 = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.attn_p = attn_dropout

    def forward(self, h: Tensor) -> Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(  # (B, heads, T, D/heads), position t sees <= t
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
            dropout_p=self.attn_p if self.training else 0.0)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))  # (B, T, D)
        return h + self.drop(self.ff2(self.drop(F.relu(self.ff1(self.ln2(h))))))


class _SASRecModule(NextItemModule):
    def __init__(self, n_items: int, dim: int, max_len: int, blocks: int, heads: int,
                 dropout: float, attn_dropout: float = 0.0, **loss_kw: Any) -> None:
        super().__init__(n_items, dim, **loss_kw)
        self.scale = dim ** 0.5
        self.pos_emb = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout, attn_dropout) for _ in range(blocks))
        self.ln = nn.LayerNorm(dim)

    def states(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        pos = self.pos_emb.weight[:t]  # (T, D) positions from the window's first item
        h = self.drop(self.item_emb(x) * self.scale + pos)  # (B, T, D)
        h = h * (x > 0).unsqueeze(-1)  # padding stays zero
        for block in self.blocks:
            h = block(h)
        return self.ln(h)  # (B, T, D)


@register("sasrec")
class SASRec(TorchSequentialRecommender):
    """Self-attentive sequential recommendation.

    Parameters
    ----------
    dim : int
        Embedding / model width (SASRec on ML-1M: 50; 64 here).
    blocks : int
        Transformer blocks (2).
    heads : int
        Attention heads (1); ``dim`` must be divisible by it.
    dropout : float
        Embedding, residual and feed-forward dropout (0.2 on ML-1M).
    attn_dropout : float
        Dropout on the attention weights (the original uses ``dropout`` there too). Off by
        default: on CPU it makes PyTorch fall back from fused to unfused attention, about
        6x slower, for no measured gain here.
    gbce_t : float
        gBCE calibration ``t`` (gSASRec: 0.75).
    max_len, loss, n_negatives, **train :
        See :class:`~streamrec.models.sequential.base.TorchSequentialRecommender`
        (``max_len``: 200 on ML-1M; ``loss="bce"``: the original one-negative BCE); a batch
        is ``batch_size`` sequence windows.
    """

    search_space: ClassVar[dict[str, list[Any]]] = {
        "lr": [1e-3, 2e-3],
        "dropout": [0.1, 0.2, 0.3, 0.5],
        "blocks": [1, 2],
    }
    train_defaults: ClassVar[dict[str, Any]] = {"epochs": 200, "batch_size": 128}

    def __init__(self, dim: int = 64, blocks: int = 2, heads: int = 1, dropout: float = 0.2,
                 attn_dropout: float = 0.0, gbce_t: float = 0.75, **kwargs: Any) -> None:
        self._set_params(locals())
        super().__init__(**kwargs)

    def _build_module(self) -> nn.Module:
        return _SASRecModule(self.n_items_, self.dim, self.max_len, self.blocks, self.heads,
                             self.dropout, self.attn_dropout, loss=self.loss, n_negatives=self.n_negatives,
                             gbce_t=self.gbce_t)

    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Train on every (prefix -> next item) example of ``train``; see the base class."""
        if not 0.0 <= float(self.attn_dropout) < 1.0:
            raise ValueError(f"SASRec: attn_dropout must lie in [0, 1), got {self.attn_dropout}")
        if min(self.dim, self.blocks, self.heads) < 1:
            raise ValueError("SASRec: dim, blocks, heads must be >= 1")
        if self.dim % self.heads:
            raise ValueError(f"SASRec: dim ({self.dim}) must be divisible by heads ({self.heads})")
        return super().fit(train, valid=valid, rng=rng)
