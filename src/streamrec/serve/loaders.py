"""Loading the serving entries of a registry into one consistent :class:`Models` set.

Each entry's files are named in :mod:`streamrec.serve.layout`; the registry verifies them
(sha256) before they are loaded here. :mod:`streamrec.serve.engine` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import scipy.sparse as sp

from streamrec.features.streamrec import FeatureConfig
from streamrec.serve.layout import (
    CatalogLayout,
    CatalogMeta,
    RankerLayout,
    RetrievalLayout,
    SessionLayout,
)

if TYPE_CHECKING:
    from streamrec.features.content import ContentProjector
    from streamrec.features.encoders import CTREncoder
    from streamrec.models.als import ImplicitALS
    from streamrec.models.ctr.base import CTRModel
    from streamrec.models.sequential.base import SequentialRecommender
    from streamrec.retrieval.ann import VectorIndex
    from streamrec.retrieval.covisit import CoVisitation
    from streamrec.serve.registry import ModelRegistry, ModelVersion

__all__ = ["ENTRY_LOADERS", "Models", "load_entry", "load_models"]


@dataclass
class Models:
    """One consistent set of serving models (the registry's versions of each entry)."""

    versions: dict[str, str]
    retrieval: ImplicitALS
    item_vectors: np.ndarray  # (n_items, d) float32, catalog rows (new items appended)
    index: VectorIndex
    covisit: CoVisitation
    projector: ContentProjector
    ranker: CTRModel
    encoder: CTREncoder
    mf: ImplicitALS  # on clicks: the collaborative_score feature
    base_clicks: sp.csr_array
    feature_config: FeatureConfig
    session: SequentialRecommender
    catalog_dir: Path
    meta: CatalogMeta


class _RetrievalParts(TypedDict):
    retrieval: ImplicitALS
    item_vectors: np.ndarray
    index: VectorIndex
    covisit: CoVisitation
    projector: ContentProjector


class _RankerParts(TypedDict):
    ranker: CTRModel
    encoder: CTREncoder
    mf: ImplicitALS
    base_clicks: sp.csr_array
    feature_config: FeatureConfig


class _SessionParts(TypedDict):
    session: SequentialRecommender


class _CatalogParts(TypedDict):
    catalog_dir: Path
    meta: CatalogMeta


def _load_retrieval(art: Path) -> _RetrievalParts:
    from streamrec.features.content import ContentProjector
    from streamrec.models.als import ImplicitALS
    from streamrec.retrieval.ann import VectorIndex
    from streamrec.retrieval.covisit import CoVisitation

    lay = RetrievalLayout(art)
    return {"retrieval": ImplicitALS.load(lay.model),
            "item_vectors": lay.read_item_vectors(),
            "index": VectorIndex.load(lay.index),
            "covisit": CoVisitation.load(lay.covisit),
            "projector": ContentProjector.load(lay.content)}


def _load_ranker(art: Path) -> _RankerParts:
    from streamrec.models.als import ImplicitALS
    from streamrec.models.ctr.base import CTRModel

    lay = RankerLayout(art)
    clicks = lay.read_clicks()
    return {"ranker": CTRModel.load(lay.model), "encoder": lay.read_encoder(),
            "mf": ImplicitALS.load(lay.mf), "base_clicks": clicks,
            "feature_config": lay.read_feature_config()}


def _load_session(art: Path) -> _SessionParts:
    from streamrec.models.sequential.base import SequentialRecommender

    return {"session": SequentialRecommender.load(SessionLayout(art).model)}


def _load_catalog(art: Path) -> _CatalogParts:
    # the state and items are read by the Engine itself; check here that they are there
    lay = CatalogLayout(art)
    lay.check()
    return {"catalog_dir": art, "meta": lay.read_meta()}


#: how each serving entry of the registry is loaded (its part of :class:`Models`)
ENTRY_LOADERS: dict[str, Callable[[Path], Mapping[str, object]]] = {
    "retrieval": _load_retrieval, "ranker": _load_ranker, "session": _load_session,
    "catalog": _load_catalog}


def load_entry(mv: ModelVersion) -> Mapping[str, object]:
    """Load one registered serving entry (its files are not verified here: the registry
    does that first); entries the service does not serve load as saved models.

    Usable as the ``load`` check of :meth:`~streamrec.serve.registry.ModelRegistry.promote`.
    """
    from streamrec.serve.registry import load_saved_model

    loader = ENTRY_LOADERS.get(mv.name)
    if loader is None:
        return {"model": load_saved_model(mv)}
    return loader(mv.artifacts)


def load_models(registry: ModelRegistry, ref: str = "production",
                pins: dict[str, str] | None = None) -> Models:
    """Load (and verify) the four serving entries of ``registry`` at ``ref``.

    Parameters
    ----------
    registry : ModelRegistry
    ref : str
        Alias (or version) of every entry.
    pins : dict of str to str, optional
        Versions to load instead of ``ref`` for some entries (a promotion checks the set
        it would serve before moving the alias).
    """
    pins = pins or {}
    mvs = {name: registry.resolve(name, pins.get(name, ref)) for name in ENTRY_LOADERS}
    parts: dict[str, Any] = {}
    for mv in mvs.values():
        registry.verify(mv)
        parts |= load_entry(mv)
    return Models(versions={n: mv.version for n, mv in mvs.items()}, **parts)
