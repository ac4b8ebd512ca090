"""Trainer settings as flat hyperparameters of every torch model (ranking, sequence, click).

A torch model's ``__init__`` takes its own hyperparameters plus ``**train``: any
:class:`~streamrec.models.neural.trainer.TrainConfig` field (``epochs``, ``lr``,
``schedule``, ``min_delta``...). Each class declares where its defaults differ from
``TrainConfig``'s once, in ``train_defaults`` (merged down the class hierarchy)::

    class BPRMF(TorchRecommender):
        train_defaults: ClassVar[dict[str, Any]] = {"epochs": 200, "patience": 10,
                                                    "eval_every": 4}

        def __init__(self, factors: int = 64, **train: Any) -> None:
            self._set_params(locals())
            super().__init__(**train)

The settings live in ``model.train_config`` (a frozen ``TrainConfig``, validated when the
model is created) and :meth:`~TrainSettingsMixin.get_params` lists every field, so a
manifest, a ``--params`` JSON object and a ``search_space`` grid all use the flat names
(``"lr"``), and a field added to ``TrainConfig`` is at once a hyperparameter of every model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from streamrec.models.neural.trainer import TrainConfig

__all__ = ["TrainSettingsMixin", "train_setting_names"]


def train_setting_names() -> tuple[str, ...]:
    """The trainer settings a torch model takes: the fields of ``TrainConfig``."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


class TrainSettingsMixin:
    """Holds a torch model's trainer settings; put it before the model base class."""

    #: where this class's trainer settings differ from ``TrainConfig``'s defaults; a
    #: subclass's entries are merged over its parents'
    train_defaults: ClassVar[dict[str, Any]] = {}
    train_config: TrainConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = sorted(set(cls.__dict__.get("train_defaults", {})) - set(train_setting_names()))
        if unknown:
            raise TypeError(f"{cls.__name__}.train_defaults names unknown trainer settings "
                            f"{unknown}; the settings are {', '.join(train_setting_names())}")

    def __init__(self, **train: Any) -> None:
        unknown = sorted(set(train) - set(train_setting_names()))
        if unknown:
            own = type(self).param_names()  # type: ignore[attr-defined]
            raise TypeError(
                f"{type(self).__name__} got unknown hyperparameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(own) or 'none of its own'} and the trainer settings "
                f"{', '.join(train_setting_names())}")
        self.train_config = TrainConfig(**{**self.resolved_train_defaults(), **train})

    @classmethod
    def resolved_train_defaults(cls) -> dict[str, Any]:
        """This class's trainer defaults: ``train_defaults`` merged from the base classes
        down (the ``TrainConfig`` defaults apply to the settings not named)."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            out.update(klass.__dict__.get("train_defaults", {}))
        return out

    def get_params(self) -> dict[str, Any]:
        """The model's own hyperparameters, then every trainer setting."""
        own = super().get_params()  # type: ignore[misc]
        return {**own, **dataclasses.asdict(self.train_config)}
