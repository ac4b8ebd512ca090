"""Models by name: ``create("ease", lam=250.0)``, ``create("mlp", kind="ctr")``.

The CLI, the benchmark runner, the service and the conformance suite all see this one set.
Modules register on import; :func:`available` imports the built-in model modules first.
:func:`spec` looks a model up once into a :class:`ModelSpec`: its class, kind, tuning grid
and capabilities, and how to create and fit it.

Two kinds of model share the names' space side by side: ``"ranking"`` models
(:class:`~streamrec.models.base.Recommender`, top-k over the catalogue) and ``"ctr"`` models
(:class:`~streamrec.models.ctr.base.CTRModel`, P(click) of an impression). A name may exist in
both (``mlp``: the NCF tower, or the click MLP); without ``kind`` a ranking model wins.

This module imports no model module by name (only through :data:`BUILTIN_MODULES`), so that
``models.base`` can use it to load a saved model without an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from streamrec.models.capabilities import CAPABILITIES, ItemVectors

__all__ = ["CAPABILITIES", "KINDS", "ModelSpec", "available", "create", "get_class",
           "register", "spec"]

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


@dataclass(frozen=True)
class ModelSpec:
    """A registered model looked up once: what callers need to know before creating it.

    Attributes
    ----------
    name, kind : str
        Registry name and kind (``"ranking"`` or ``"ctr"``).
    cls : type
        The model class.
    search_space : mapping of str to list
        The declared tuning grid (read-only).
    stochastic : bool
        ``fit`` uses randomness (several seeds are worth running).
    uses_side_features, uses_item_categories, scores_sessions, has_attention,
    requires_history : bool
        The class's flags (:class:`~streamrec.models.capabilities.Capabilities`).
    item_vectors : bool
        Fitted models have item vectors (the class implements
        :class:`~streamrec.models.capabilities.ItemVectors`).
    """

    name: str
    kind: str
    cls: type
    search_space: Mapping[str, list[Any]]
    stochastic: bool
    uses_side_features: bool
    uses_item_categories: bool
    scores_sessions: bool
    has_attention: bool
    requires_history: bool
    item_vectors: bool

    @classmethod
    def of(cls, name: str, kind: str, klass: type) -> ModelSpec:
        """The spec of ``klass`` registered as ``name`` of ``kind``."""
        return cls(name=name, kind=kind, cls=klass,
                   search_space=MappingProxyType(dict(klass.search_space)),
                   stochastic=bool(klass.stochastic),
                   item_vectors=issubclass(klass, ItemVectors),
                   **{c: bool(getattr(klass, c)) for c in CAPABILITIES})

    def create(self, **params: Any) -> Any:
        """A new model with hyperparameters ``params`` (a TypeError names the model)."""
        try:
            return self.cls(**params)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from exc

    def fit_kwargs(self, *, side: Any = None, item_categories: Any = None) -> dict[str, Any]:
        """The optional inputs of ``fit`` this model takes, among those given: ``side``
        (user/item side features) and ``item_categories`` (a category code per item)."""
        out: dict[str, Any] = {}
        if self.uses_side_features and side is not None:
            out["side"] = side
        if self.uses_item_categories:
            out["item_categories"] = item_categories
        return out


def _table(kind: str) -> dict[str, type]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return _CTR_REGISTRY if kind == "ctr" else _REGISTRY


def register(name: str, kind: str = "ranking"):
    """Class decorator: register a model class under ``name`` (lower case, unique per kind).

    The class must declare the capability flags (a subclass of ``Model`` inherits them).
    """
    table = _table(kind)

    def deco(cls: T) -> T:
        if name in table and table[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered by {table[name]}")
        missing = [c for c in (*CAPABILITIES, "search_space", "stochastic")
                   if not hasattr(cls, c)]
        if missing:
            raise TypeError(f"{cls.__name__} does not declare {', '.join(missing)}: "
                            "register subclasses of streamrec.models.base.Model")
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
        importlib.import_module(mod)
    _loaded = True


def available(kind: type | str | None = None) -> list[str]:
    """Registered model names, sorted: ranking ones by default; ``kind="ctr"`` the click
    models; a class: the ranking models that subclass it."""
    _load_builtins()
    if isinstance(kind, str):
        return sorted(_table(kind))
    return sorted(n for n, c in _REGISTRY.items() if kind is None or issubclass(c, kind))


def _lookup(name: str, kind: str | None) -> tuple[str, type]:
    """(kind, class) of ``name``: of ``kind``, or None: ranking first, then ctr."""
    _load_builtins()
    for k in [kind] if kind is not None else list(KINDS):
        table = _table(k)
        if name in table:
            return k, table[name]
    names = available(kind or "ranking") + ([] if kind else available("ctr"))
    raise KeyError(f"unknown {kind + ' ' if kind else ''}model {name!r}; available: "
                   f"{', '.join(sorted(set(names)))}") from None


def get_class(name: str, kind: str | None = None) -> type:
    """The class registered as ``name`` (of ``kind``; None: ranking first, then ctr)."""
    return _lookup(name, kind)[1]


def spec(name: str, kind: str | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` (of ``kind``; None: ranking first, then ctr)."""
    found_kind, cls = _lookup(name, kind)
    return ModelSpec.of(name, found_kind, cls)


def create(name: str, kind: str | None = None, **params: Any) -> Any:
    """Instantiate model ``name`` (of ``kind``) with hyperparameters ``params``."""
    return spec(name, kind).create(**params)
