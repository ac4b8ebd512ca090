"""Models by name: ``create("ease", lam=250.0)``.

The CLI, the benchmark runner, the service and the conformance suite all see this one set.
Modules register on import; :func:`available` imports the built-in model modules first.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from streamrec.models.base import Recommender

_REGISTRY: dict[str, type] = {}
#: modules holding the built-in models (imported lazily, so importing streamrec stays light)
BUILTIN_MODULES = (
    "streamrec.models.popularity",
    "streamrec.models.itemknn",
    "streamrec.models.ease",
    "streamrec.models.als",
    "streamrec.models.mf",
    "streamrec.models.neural.bpr",
    "streamrec.models.neural.ncf",
    "streamrec.models.neural.multvae",
    "streamrec.models.neural.cdae",
    "streamrec.models.neural.two_tower",
    "streamrec.models.neural.neural_mf",
    "streamrec.models.sequential.markov",
    "streamrec.models.sequential.pop_category",
    "streamrec.models.sequential.lstm_attention",
    "streamrec.models.sequential.gru4rec",
    "streamrec.models.sequential.sasrec",
)
_loaded = False

T = TypeVar("T", bound=type)


def register(name: str):
    """Class decorator: register a model class under ``name`` (lower case, unique)."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for mod in BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a real missing dependency, not a model module yet to land
                raise
    _loaded = True


def available(kind: type | None = None) -> list[str]:
    """Registered model names (optionally only subclasses of ``kind``), sorted."""
    _load_builtins()
    return sorted(n for n, c in _REGISTRY.items() if kind is None or issubclass(c, kind))


def get_class(name: str) -> type:
    """The class registered as ``name``."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def create(name: str, **params: Any) -> Recommender:
    """Instantiate model ``name`` with hyperparameters ``params``."""
    cls = get_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from exc
