"""What a model class can do beyond its interface, declared rather than probed.

Every model inherits :class:`Capabilities` (through ``streamrec.models.base.Model``) and sets
the flags that hold for it; a fitted model with item vectors implements :class:`ItemVectors`.
:func:`streamrec.models.zoo.spec` reads both into a ``ModelSpec``, which callers (the
benchmark, the conformance suite) consult instead of ``getattr``/``hasattr`` probes.

This module imports nothing from streamrec: the registry and the model base both use it.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

__all__ = ["CAPABILITIES", "Capabilities", "ItemVectors"]


class Capabilities:
    """Capability flags of a model class, all off by default."""

    #: ``fit(..., side=SideFeatures)`` uses the split's user/item side features
    uses_side_features: ClassVar[bool] = False
    #: ``fit(..., item_categories=codes)`` takes one category code per item
    uses_item_categories: ClassVar[bool] = False
    #: ``score_sequences(seqs)`` scores live sessions (the next-item protocols need it)
    scores_sessions: ClassVar[bool] = False
    #: ``attention(seqs)`` gives attention weights over each sequence's items, (B, T)
    has_attention: ClassVar[bool] = False
    #: (click models) ``fit`` needs ``CTRData.history``
    requires_history: ClassVar[bool] = False


#: the names of the flags of :class:`Capabilities`
CAPABILITIES: tuple[str, ...] = tuple(
    name for name in vars(Capabilities) if not name.startswith("_"))


@runtime_checkable
class ItemVectors(Protocol):
    """A model with one learned vector per item (factor models: ials, bpr, biased_mf,
    bprmf, two_tower, neural_mf)."""

    def item_vectors(self) -> np.ndarray:
        """Shape (n_items, D) float32: for models scoring by a dot product, the item side of
        it (what an ANN index of the items holds)."""
