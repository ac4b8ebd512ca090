"""Models by name: ``create("ease", lam=250.0)``, ``create("mlp", kind="ctr")``.

The CLI, the benchmark runner, the service and the conformance suite all see this one set.
Modules register on import; :func:`available` imports the built-in model modules first.

Two kinds of model share the names' space side by side: ``"ranking"`` models
(:class:`~streamrec.models.base.Recommender`, top-k over the catalogue) and ``"ctr"`` models
(:class:`~streamrec.models.ctr.base.CTRModel`, P(click) of an impression). A name may exist in
both (``mlp``: the NCF tower, or the click MLP); without ``kind`` a ranking model wins.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from streamrec.models.base import Recommender

KINDS = ("ranking", "ctr")
_REGISTRY: dict[str, type] = {}
_CTR_REGISTRY: dict[str, type] = {}
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
    "streamrec.models.ctr.logistic",
    "streamrec.models.ctr.fm",
    "streamrec.models.ctr.mf",
    "streamrec.models.ctr.mlp",
    "streamrec.models.ctr.wide_deep",
    "streamrec.models.ctr.deepfm",
    "streamrec.models.ctr.dcn",
    "streamrec.models.ctr.xdeepfm",
    "streamrec.models.ctr.din",
    "streamrec.models.ctr.gbdt",
    "streamrec.models.ctr.ensemble",
)
_loaded = False

T = TypeVar("T", bound=type)


def _table(kind: str) -> dict[str, type]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return _CTR_REGISTRY if kind == "ctr" else _REGISTRY


def register(name: str, kind: str = "ranking"):
    """Class decorator: register a model class under ``name`` (lower case, unique per kind)."""
    table = _table(kind)

    def deco(cls: T) -> T:
        if name in table and table[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {table[name]}")
        cls.name = name
        cls.kind = kind
        table[name] = cls
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


def available(kind: type | str | None = None) -> list[str]:
    """Registered model names, sorted: ranking ones by default; ``kind="ctr"`` the click
    models; a class: the ranking models that subclass it."""
    _load_builtins()
    if isinstance(kind, str):
        return sorted(_table(kind))
    return sorted(n for n, c in _REGISTRY.items() if kind is None or issubclass(c, kind))


def get_class(name: str, kind: str | None = None) -> type:
    """The class registered as ``name`` (of ``kind``; None: ranking first, then ctr)."""
    _load_builtins()
    tables = [_table(kind)] if kind is not None else [_REGISTRY, _CTR_REGISTRY]
    for table in tables:  # a loop over (at most two) kinds
        if name in table:
            return table[name]
    names = available(kind or "ranking") + ([] if kind else available("ctr"))
    raise KeyError(f"unknown {kind + ' ' if kind else ''}model {name!r}; available: "
                   f"{', '.join(sorted(set(names)))}") from None


def create(name: str, kind: str | None = None, **params: Any) -> Recommender:
    """Instantiate model ``name`` (of ``kind``) with hyperparameters ``params``."""
    cls = get_class(name, kind)
    try:
        return cls(**params)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from exc
