"""``TorchRecommender``: what every torch model shares (scoring, seeding, persistence).

A subclass implements

- ``_build_module()``: the ``nn.Module`` for the fitted sizes (``n_users_``, ``n_items_`` and
  whatever the subclass stored in ``_extra_state``), used by ``fit`` and again by ``load``;
- ``fit``: prepare tensors, then ``self._train(module, batches, valid, train, gen)``;
- optionally ``_query(users)`` (what ``module.score_all`` takes; default the user indices)
  and ``_extra_state`` / ``_set_extra_state`` for arrays beyond the module's parameters.

The trainer settings (every :class:`~streamrec.models.neural.trainer.TrainConfig` field:
``epochs``, ``batch_size``, ``lr``, ``patience``, ``device``...) are flat hyperparameters
held in ``train_config`` (:mod:`streamrec.models.neural.settings`). The module's parameters are saved as numeric arrays (never pickle)
and scores are identical after ``load``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from streamrec.data.interactions import Interactions
from streamrec.metrics.full_ranking import ranking_ndcg
from streamrec.models._history import check_items, check_users
from streamrec.models.base import Recommender, as_generator
from streamrec.models.neural.settings import TrainSettingsMixin
from streamrec.models.neural.trainer import (
    TrainConfig,
    Trainer,
    TrainHistory,
    resolve_device,
    seeded,
)

__all__ = ["TorchRecommender"]

_PARAM_PREFIX = "module."


class TorchRecommender(TrainSettingsMixin, Recommender):
    """Base of the torch recommenders; see the module docstring."""

    stochastic = True
    module_: nn.Module
    history_: TrainHistory

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _build_module(self) -> nn.Module:
        """A fresh module for the fitted sizes (parameters initialised from torch's RNG)."""

    def _query(self, users: np.ndarray) -> Tensor:
        """What ``module.score_all`` takes for known ``users`` (default: their indices)."""
        return torch.as_tensor(users, dtype=torch.long)

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_extra_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_extra_state` saved (before the module is rebuilt)."""

    # ------------------------------------------------------------------ training
    def _start_fit(self, train: Interactions,
                   rng: np.random.Generator | int | None) -> tuple[np.random.Generator, int]:
        """Validate ``train``, record sizes and cold-start scores; a generator and a seed."""
        self._check_train(train)
        gen = as_generator(rng)
        self.n_users_, self.n_items_ = int(train.n_users), int(train.n_items)
        self.item_popularity_ = np.bincount(train.items, minlength=self.n_items_).astype(
            np.float32)
        return gen, int(gen.integers(2**31 - 1))

    def _train(self, seed: int, batches: Callable[[int], Iterable[Any]],
               valid: Interactions | None, train: Interactions,
               config: TrainConfig | None = None) -> TrainHistory:
        """Build the module under ``seed`` and train it, early-stopping on :meth:`_validator`
        of ``valid`` when given."""
        config = config or self.train_config
        trainer = Trainer(config)
        self.device_ = trainer.device
        with seeded(seed):
            self.module_ = self._build_module().to(self.device_)
            validate = None
            if valid is not None and len(valid) > 0:
                validate = self._validator(valid, train)
            self.history_ = trainer.fit(self.module_, batches, validate=validate)
        self.module_.eval()
        return self.history_

    def _validator(self, valid: Interactions, train: Interactions) -> Callable[[], float]:
        """The early-stopping criterion (higher is better): valid NDCG@10 of full ranking,
        train items excluded (the ``ndcg@10`` that ``streamrec.eval.protocol.evaluate``
        reports)."""
        return lambda: ranking_ndcg(self.score, valid, n_items=self.n_items_, exclude=train)

    # ------------------------------------------------------------------ scoring
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores, shape (U, n_items) or (U, len(items)); cold users get item popularity."""
        self._check_fitted()
        owner = type(self).__name__
        users = check_users(users, owner)
        items = check_items(items, self.n_items_, owner)
        out = np.empty((len(users), self.n_items_), dtype=np.float32)
        known = users < self.n_users_
        if not known.all():
            out[~known] = self.item_popularity_
        if known.any():
            with torch.no_grad():
                q = self._query(users[known])
                s = self.module_.score_all(q.to(self._device()))  # (U_known, n_items)
            out[known] = s.float().cpu().numpy()
        return out if items is None else np.ascontiguousarray(out[:, items])

    def _device(self) -> torch.device:
        """Where the fitted module lives (the configured device before a fit or load)."""
        return getattr(self, "device_", None) or resolve_device(self.train_config.device)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        state = {_PARAM_PREFIX + k: v.detach().float().cpu().numpy()
                 if v.is_floating_point() else v.detach().cpu().numpy()
                 for k, v in self.module_.state_dict().items()}
        state["n_users_"] = np.asarray(self.n_users_, np.int64)
        state["n_items_"] = np.asarray(self.n_items_, np.int64)
        state["item_popularity_"] = self.item_popularity_
        state.update(self._extra_state())
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.n_users_, self.n_items_ = int(state["n_users_"]), int(state["n_items_"])
        self.item_popularity_ = np.asarray(state["item_popularity_"], np.float32)
        self._set_extra_state(state)
        self.device_ = resolve_device(self.train_config.device)
        with seeded(0):  # initial values are overwritten; keep the global RNG untouched
            module = self._build_module()
        params = {k[len(_PARAM_PREFIX):]: torch.from_numpy(np.array(v))
                  for k, v in state.items() if k.startswith(_PARAM_PREFIX)}
        module.load_state_dict(params)
        self.module_ = module.to(self.device_).eval()
