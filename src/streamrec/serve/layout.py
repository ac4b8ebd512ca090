"""The serving bundle: the files of each registry entry the service loads, and their formats.

This module is the only place that names them. :mod:`streamrec.serve.bundle` writes the
entries, :mod:`streamrec.serve.loaders` reads them, and ``benchmarks/load_service.py``
constructs large ones; all three go through the layouts below. Each entry is one registry
version (``registry/<name>/<version>/artifacts/``):

=========  ====================  =========================================================
entry      path                  content
=========  ====================  =========================================================
retrieval  ``model/``            iALS on the positive events (``Model.save``)
           ``ids.npz``           ``user_ids``, ``item_ids``: external id of each row
           ``item_vectors.npy``  (n_items, d) float32, the index's vectors: the model's,
                                 or the content projector's for items without a positive
                                 event
           ``index/``            :class:`~streamrec.retrieval.ann.VectorIndex` over them
           ``covisit.npz``       :class:`~streamrec.retrieval.covisit.CoVisitation`
           ``content/``          :class:`~streamrec.features.content.ContentProjector`
                                 (item content -> vector, for items added later)
ranker     ``model/``            the CTR model
           ``encoder.json``      its :class:`~streamrec.features.encoders.CTREncoder`
           ``features.json``     the :class:`~streamrec.features.streamrec.FeatureConfig`
           ``mf/``               iALS on clicks (the ``collaborative_score`` feature)
           ``clicks.npz``        (n_users, n_items) 0/1 csr of the users' clicked items:
                                 ``data``, ``indices``, ``indptr``, ``shape``
session    the entry itself      the sequence model (``Model.save`` at the top; an entry
                                 with a ``model/`` directory is read from there)
catalog    ``items.parquet``     items, in the row order of every model of the set
           ``users.parquet``     users, likewise
           ``state/``            the :class:`~streamrec.serve.features.FeatureState` after
                                 the training log
           ``meta.json``         :class:`CatalogMeta`
=========  ====================  =========================================================

Registries written earlier must keep loading: a change of name or format needs a reader
for the old form next to the new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, cast

import numpy as np

if TYPE_CHECKING:
    import polars as pl
    import scipy.sparse as sp

    from streamrec.features.encoders import CTREncoder
    from streamrec.features.streamrec import FeatureConfig
    from streamrec.models.base import Model
    from streamrec.serve.features import FeatureState

__all__ = [
    "MODEL_DIR",
    "CatalogLayout",
    "CatalogMeta",
    "RankerLayout",
    "RetrievalLayout",
    "SessionLayout",
    "catalog_meta",
]

#: the directory of an entry that holds its main model's ``Model.save`` output (the
#: registry reads the model's class and parameters from ``model/manifest.json`` too)
MODEL_DIR = "model"


@dataclass(frozen=True)
class RetrievalLayout:
    """The ``retrieval`` entry under ``root``."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def ids(self) -> Path:
        return self.root / "ids.npz"

    @property
    def item_vectors(self) -> Path:
        return self.root / "item_vectors.npy"

    @property
    def index(self) -> Path:
        return self.root / "index"

    @property
    def covisit(self) -> Path:
        return self.root / "covisit.npz"

    @property
    def content(self) -> Path:
        return self.root / "content"

    def write_ids(self, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        """The external id of each user row and item row of the models."""
        np.savez(self.ids, user_ids=user_ids, item_ids=item_ids)

    def write_item_vectors(self, vectors: np.ndarray) -> None:
        np.save(self.item_vectors, vectors.astype(np.float32))

    def read_item_vectors(self) -> np.ndarray:
        """(n_items, d) float32."""
        return np.load(self.item_vectors, allow_pickle=False).astype(np.float32)


@dataclass(frozen=True)
class RankerLayout:
    """The ``ranker`` entry under ``root``."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def encoder(self) -> Path:
        return self.root / "encoder.json"

    @property
    def features(self) -> Path:
        return self.root / "features.json"

    @property
    def mf(self) -> Path:
        return self.root / "mf"

    @property
    def clicks(self) -> Path:
        return self.root / "clicks.npz"

    def write_encoder(self, encoder: CTREncoder) -> None:
        self.encoder.write_text(json.dumps(encoder.to_dict()))

    def read_encoder(self) -> CTREncoder:
        from streamrec.features.encoders import CTREncoder

        return CTREncoder.from_dict(json.loads(self.encoder.read_text()))

    def write_feature_config(self, config: FeatureConfig) -> None:
        self.features.write_text(json.dumps(asdict(config)))

    def read_feature_config(self) -> FeatureConfig:
        from streamrec.features.streamrec import FeatureConfig

        return FeatureConfig(**json.loads(self.features.read_text()))

    def write_clicks(self, clicks: sp.csr_array) -> None:
        """The csr's own arrays and its shape (no pickle, no scipy file format)."""
        np.savez(self.clicks, data=clicks.data, indices=clicks.indices, indptr=clicks.indptr,
                 shape=np.array(clicks.shape))

    def read_clicks(self) -> sp.csr_array:
        import scipy.sparse as sp

        with np.load(self.clicks, allow_pickle=False) as z:
            return sp.csr_array((z["data"], z["indices"], z["indptr"]),
                                shape=tuple(z["shape"]))


@dataclass(frozen=True)
class SessionLayout:
    """The ``session`` entry under ``root``: the sequence model's own saved files."""

    root: Path

    @property
    def model(self) -> Path:
        """Where the model was saved: the entry itself, or its ``model/`` directory when
        there is one."""
        sub = self.root / MODEL_DIR
        return sub if sub.exists() else self.root

    def write_model(self, model: Model) -> None:
        model.save(self.root)


class CatalogMeta(TypedDict):
    """``meta.json`` of the catalog entry: the training log's time span and sizes."""

    data_start: int  # first event's timestamp (unix s)
    data_end: int  # last event's timestamp: a replay clock continues from here
    events: int
    users: int
    items: int


def catalog_meta(events: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                 ) -> CatalogMeta:
    """The :class:`CatalogMeta` of a training log (``timestamp`` column) and its tables."""
    import polars as pl

    span = events.select(start=pl.col("timestamp").min(), end=pl.col("timestamp").max())
    return {"data_start": int(span["start"].item()), "data_end": int(span["end"].item()),
            "events": events.height, "users": users.height, "items": items.height}


@dataclass(frozen=True)
class CatalogLayout:
    """The ``catalog`` entry under ``root``."""

    root: Path

    @property
    def items(self) -> Path:
        return self.root / "items.parquet"

    @property
    def users(self) -> Path:
        return self.root / "users.parquet"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    def write_tables(self, items: pl.DataFrame, users: pl.DataFrame) -> None:
        items.write_parquet(self.items)
        users.write_parquet(self.users)

    def read_items(self) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.items)

    def read_users(self) -> pl.DataFrame:
        import polars as pl

        return pl.read_parquet(self.users)

    def write_state(self, state: FeatureState) -> None:
        state.save(self.state)

    def read_state(self) -> FeatureState:
        from streamrec.serve.features import FeatureState

        return FeatureState.load(self.state)

    def write_meta(self, meta: CatalogMeta) -> None:
        self.meta.write_text(json.dumps(meta, indent=2))

    def read_meta(self) -> CatalogMeta:
        return cast(CatalogMeta, json.loads(self.meta.read_text()))

    def check(self) -> None:
        """Raise FileNotFoundError naming the first file the service reads at start-up
        that the entry lacks."""
        for need in (self.items, self.state):
            if not need.exists():
                raise FileNotFoundError(2, "the catalog entry lacks it", str(need))
