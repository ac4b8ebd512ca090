"""The ``CTRModel`` interface and the shared torch click model.

A CTR model learns P(click | impression features) from a :class:`~streamrec.data.ctr.CTRData`
with labels and returns probabilities for any other ``CTRData`` of the same schema::

    model = create("deepfm", epochs=20).fit(split.train, valid=split.valid, rng=0)
    p = model.predict_proba(split.test)          # (N,) float32 in (0, 1)

:class:`TorchCTRModel` holds everything the deep models share: tensors built once, batches by
tensor indexing (no DataLoader), binary cross-entropy on logits, the shared
:class:`~streamrec.models.neural.trainer.Trainer` with early stopping on valid AUC, and
persistence of the module's weights and the schema. A subclass only builds its ``nn.Module``
(:meth:`TorchCTRModel._build`) whose ``forward(dense, cat, hist)`` returns logits (B,).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import torch
from scipy.special import expit
from torch import Tensor, nn
from torch.nn import functional as F

from streamrec.data.ctr import CTRData, FeatureSchema
from streamrec.metrics import auc
from streamrec.models.base import Model, as_generator
from streamrec.models.neural.settings import TrainSettingsMixin
from streamrec.models.neural.trainer import (
    Trainer,
    TrainHistory,
    index_batches,
    resolve_device,
    seeded,
    torch_generator,
)

__all__ = ["CTRModel", "CTRModule", "DeepCTRModel", "TorchCTRModel"]


class CTRModel(Model):
    """A model of P(click | features): ``fit(train)`` and ``predict_proba(data)``; the
    labels travel inside :class:`CTRData`."""

    schema_: FeatureSchema

    @abstractmethod
    def fit(self, train: CTRData, *, valid: CTRData | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Learn from ``train`` (labels required); ``valid`` only for early stopping."""

    @abstractmethod
    def predict_proba(self, data: CTRData) -> np.ndarray:
        """Click probabilities, shape (len(data),) float32 in [0, 1]."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "schema_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) first")

    def _check_train(self, train: CTRData) -> np.ndarray:
        if not isinstance(train, CTRData):
            raise TypeError(f"fit expects CTRData, got {type(train).__name__}")
        if len(train) == 0:
            raise ValueError("fit: the training impressions are empty")
        y = train.require_labels(f"{type(self).__name__}.fit")
        if y.min() == y.max():
            raise ValueError(f"fit: every training label is {y[0]:.0f}; clicks and non-clicks "
                             "are both needed")
        return y

    def _check_data(self, data: CTRData) -> None:
        self._check_fitted()
        if not isinstance(data, CTRData):
            raise TypeError(f"predict_proba expects CTRData, got {type(data).__name__}")
        s = data.schema
        if (s.dense, s.categorical) != (self.schema_.dense, self.schema_.categorical):
            raise ValueError(f"{type(self).__name__} was fitted on fields "
                             f"{self.schema_.names}, got {s.names}")
        over = [f for f, a, b in zip(s.categorical, s.cardinalities, self.schema_.cardinalities,
                                     strict=True) if a > b]
        if over:
            raise ValueError(f"fields {over} have more codes than at fit time: encode new data "
                             "with the encoders fitted on train (unseen values get code 0)")


class CTRModule(nn.Module):
    """The ``nn.Module`` of a torch CTR model: ``forward`` gives logits (B,)."""

    @abstractmethod
    def forward(self, dense: Tensor, cat: Tensor, hist: Tensor | None) -> Tensor:
        """Logits, shape (B,), of dense (B, D) float, cat (B, C) long, hist (B, L) long."""

    def penalty(self) -> Tensor | None:
        """Extra loss term (e.g. L2 on embeddings); None by default."""
        return None

    def loss(self, batch: tuple[Tensor, Tensor, Tensor | None, Tensor]) -> Tensor:
        dense, cat, hist, y = batch
        out = F.binary_cross_entropy_with_logits(self(dense, cat, hist), y)
        extra = self.penalty()
        return out if extra is None else out + extra


class TorchCTRModel(TrainSettingsMixin, CTRModel):
    """Shared fitting, prediction and persistence of the torch CTR models.

    Subclasses define ``__init__`` (their hyperparameters, then ``**train``: the trainer
    settings, see :mod:`streamrec.models.neural.settings`) and :meth:`_build`. Click models
    train in float32 (``amp="off"``) unless told otherwise.
    """

    stochastic = True
    train_defaults: ClassVar[dict[str, Any]] = {"epochs": 50, "batch_size": 256, "patience": 5,
                                                "amp": "off"}

    module_: CTRModule
    history_: TrainHistory

    @abstractmethod
    def _build(self, schema: FeatureSchema) -> CTRModule:
        """A fresh module for ``schema``."""

    # ------------------------------------------------------------------ config
    def _device(self) -> torch.device:
        return resolve_device(self.train_config.device)

    @staticmethod
    def _tensors(data: CTRData, device: torch.device
                 ) -> tuple[Tensor, Tensor, Tensor | None]:
        hist = None if data.history is None else torch.from_numpy(data.history).to(device)
        return (torch.from_numpy(data.dense).to(device),
                torch.from_numpy(data.categorical).to(device), hist)

    # ------------------------------------------------------------------ learning
    def fit(self, train: CTRData, *, valid: CTRData | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        y = self._check_train(train)
        gen = as_generator(rng)
        seed = int(gen.integers(2**31 - 1))
        cfg = self.train_config
        trainer = Trainer(cfg)
        device = trainer.device
        dense, cat, hist = self._tensors(train, device)
        labels = torch.from_numpy(y).to(device)
        tgen = torch_generator(seed)

        def batches(epoch: int):
            for idx in index_batches(len(train), cfg.batch_size, tgen):
                idx = idx.to(device)
                yield (dense[idx], cat[idx], None if hist is None else hist[idx], labels[idx])

        validate = None
        if valid is not None and valid.labels is not None and len(np.unique(valid.labels)) == 2:
            vy = valid.labels

            def validate() -> float:
                return auc(vy, self._predict_logits(valid))

        with seeded(seed):  # initialisation and dropout masks both draw from this seed
            self.schema_ = train.schema
            self.module_ = self._build(train.schema)
            self.history_ = trainer.fit(self.module_, lambda e: batches(e), validate=validate,
                                        to_device=lambda b, d: b)
        self.module_.eval()
        return self

    # ------------------------------------------------------------------ prediction
    def _predict_logits(self, data: CTRData, batch_size: int = 65536) -> np.ndarray:
        device = next(self.module_.parameters()).device
        dense, cat, hist = self._tensors(data, device)
        out = np.empty(len(data), np.float32)
        was_training = self.module_.training
        if was_training:  # walking the module tree costs ~25 µs: only when needed
            self.module_.eval()
        with torch.inference_mode():
            for lo in range(0, len(data), batch_size):
                hi = lo + batch_size
                h = None if hist is None else hist[lo:hi]
                out[lo:hi] = self.module_(dense[lo:hi], cat[lo:hi], h).float().cpu().numpy()
        if was_training:
            self.module_.train()
        return out

    def predict_proba(self, data: CTRData) -> np.ndarray:
        self._check_data(data)
        logits = self._predict_logits(data)
        return expit(logits).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        state: dict[str, Any] = {f"module.{k}": v.detach().cpu().numpy()
                                 for k, v in self.module_.state_dict().items()}
        state["schema"] = self.schema_.to_array()
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.schema_ = FeatureSchema.from_array(state["schema"])
        self.module_ = self._build(self.schema_)
        self.module_.load_state_dict({k[len("module."):]: torch.from_numpy(np.array(v))
                                      for k, v in state.items() if k.startswith("module.")})
        self.module_.to(self._device()).eval()


class DeepCTRModel(TorchCTRModel):
    """A torch click model with field embeddings and an MLP (MLP, Wide&Deep, DeepFM, DCN-v2,
    xDeepFM, DIN): the hyperparameters they share.

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths of the MLP (default the case study's [128, 64, 32]).
    embed_dim : int
        Embedding size of each categorical field.
    dropout : float
    batch_norm : bool
    **train :
        Trainer settings (early stopping on valid AUC when valid is given).
    """

    def __init__(self, hidden: Sequence[int] = (128, 64, 32), embed_dim: int = 8,
                 dropout: float = 0.0, batch_norm: bool = False, **train: Any) -> None:
        self._set_params(locals())
        self.hidden = tuple(int(h) for h in hidden)
        super().__init__(**train)
