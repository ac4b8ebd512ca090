"""Train and register everything the service loads, from a cleaned event log.

The service reads four registry entries (each ``registry/<name>/<version>/``), whose files
:mod:`streamrec.serve.layout` names:

=========  ======================================================================
retrieval  iALS on positive events (play, like), the faiss index of its item vectors,
           co-visitation neighbours and the content projector (item content -> vector,
           for items without any positive event and items added after training)
ranker     a CTR model over the 20 StreamRec features, its encoder and feature
           configuration, and the iALS on clicks behind ``collaborative_score``
session    a sequence model (GRU4Rec by default) on the positive events, for live sessions
catalog    the items and users tables, the
           :class:`~streamrec.serve.features.FeatureState` after the whole log, and the
           log's time span
=========  ======================================================================

Item and user rows are the catalog's (the order of its items and users tables) in every
model, so the service maps ids once. Models are refitted on the whole log before
registration (the offline evaluation, on a held-out split, provides the metrics).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from streamrec.features.streamrec import FeatureConfig
from streamrec.serve.features import POSITIVE_EVENTS, FeatureState
from streamrec.serve.layout import (
    CatalogLayout,
    RankerLayout,
    RetrievalLayout,
    SessionLayout,
    catalog_meta,
)

if TYPE_CHECKING:
    from streamrec.data.interactions import Interactions
    from streamrec.serve.registry import ModelVersion

__all__ = ["SERVING_MODELS", "BuildConfig", "build_system", "log_frame"]

#: the registry names the service loads
SERVING_MODELS: tuple[str, ...] = ("retrieval", "ranker", "session", "catalog")
_LOG_COLUMNS = ("user_id", "item_id", "session_id", "timestamp", "event", "value", "platform")


@dataclass
class BuildConfig:
    """What :func:`build_system` trains.

    Attributes
    ----------
    retrieval_params : dict
        iALS hyperparameters (``factors`` is the vector size of the index).
    ranker : str
        Registered CTR model of the ranking stage (``gbdt``: the best single model on the
        synthetic impressions, tied with the ensemble, and the fastest to serve).
    ranker_params : dict
    ranker_rows : int
        The most recent impressions used to train the ranker (valid/test are the newest
        10% each of these, by time).
    session_model : str
    session_params : dict
    seed : int
    """

    retrieval_params: dict[str, Any] = field(default_factory=lambda: {"factors": 64})
    ranker: str = "gbdt"
    ranker_params: dict[str, Any] = field(default_factory=lambda: {"n_jobs": 1})
    ranker_rows: int = 400_000
    session_model: str = "gru4rec"
    session_params: dict[str, Any] = field(default_factory=lambda: {
        "max_len": 20, "epochs": 5, "batch_size": 256})
    seed: int = 0
    feature_config: FeatureConfig = field(default_factory=FeatureConfig)


def log_frame(events: pl.DataFrame) -> pl.DataFrame:
    """The columns of an event log the online state uses (missing ones as nulls)."""
    cols = []
    for c, dtype in zip(_LOG_COLUMNS, (pl.Int64, pl.Int64, pl.Int64, pl.Int64, pl.String,
                                       pl.Float32, pl.String), strict=True):
        cols.append(pl.col(c).cast(dtype) if c in events.columns else pl.lit(None, dtype).alias(c))
    return events.select(cols)


def _interactions(log: pl.DataFrame, users: np.ndarray, items: np.ndarray,
                  kinds: tuple[str, ...]) -> Interactions:
    from streamrec.data.interactions import Interactions

    sel = log.filter(pl.col("event").is_in(list(kinds))).sort("timestamp")
    u = np.searchsorted(users, sel["user_id"].to_numpy())
    i = np.searchsorted(items, sel["item_id"].to_numpy())
    return Interactions.from_arrays(u, i, sel["timestamp"].to_numpy(),
                                    n_users=len(users), n_items=len(items))


def _wrong_model(name: str, model: object, needed: type) -> TypeError:
    return TypeError(f"model {name!r} is a {type(model).__name__}; the service loads this "
                     f"entry as a {needed.__name__}")


def _catalog_rows(log: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                  ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The log's serving columns, restricted to the catalog's users and items; the tables
    deduplicated by id and sorted (their order is every model's row order)."""
    log = log_frame(log)
    users = users.unique("user_id", keep="first", maintain_order=True).sort("user_id")
    items = items.unique("item_id", keep="first", maintain_order=True).sort("item_id")
    known = log["item_id"].is_in(items["item_id"].implode()) & log["user_id"].is_in(
        users["user_id"].implode())
    return log.filter(known), users, items


def build_system(log: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                 registry_root: str | Path, *, config: BuildConfig | None = None,
                 metrics: dict[str, dict[str, float]] | None = None,
                 split: str | dict[str, Any] | None = None, alias: str = "production",
                 progress: Callable[[str], None] | None = None) -> dict[str, ModelVersion]:
    """Fit the four serving entries on ``log`` and register them (``alias`` set on each).

    Parameters
    ----------
    log : polars DataFrame
        The cleaned event log (user_id, item_id, session_id, timestamp, event, value,
        platform); every event type (impressions and clicks train the ranker).
    users, items : polars DataFrame
        The catalog tables (users: user_id, tier, platform, signup_ts; items: item_id,
        category, creator_id, length_seconds, release_ts and text columns).
    registry_root : path
    metrics : dict, optional
        Offline metrics per entry name, recorded in the manifests.
    split : str or dict, optional
        How those metrics were measured.
    progress : callable(str), optional
        Told each step as it starts.

    Returns
    -------
    dict: entry name -> registered :class:`~streamrec.serve.registry.ModelVersion`.
    """
    from streamrec.models.sequential.base import SequentialRecommender
    from streamrec.models.zoo import create
    from streamrec.serve.registry import ModelRegistry, fingerprint_arrays

    cfg = config or BuildConfig()
    say = progress or (lambda _msg: None)
    log, users, items = _catalog_rows(log, users, items)
    user_ids, item_ids = users["user_id"].to_numpy(), items["item_id"].to_numpy()
    fp = fingerprint_arrays(*(log[c].to_numpy() for c in ("user_id", "item_id", "timestamp")))
    registry = ModelRegistry(registry_root)
    metrics = metrics or {}
    out: dict[str, ModelVersion] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        positives = _interactions(log, user_ids, item_ids, POSITIVE_EVENTS[:2])

        say("retrieval: iALS, index, co-visitation, content projector")
        d = tmp / "retrieval"
        _build_retrieval(d, positives, items, user_ids, item_ids, cfg)
        out["retrieval"] = registry.register(
            "retrieval", d, metrics=metrics.get("retrieval"), data_fingerprint=fp, split=split,
            description="iALS on plays and likes; faiss index over its item vectors",
            alias=alias)

        say(f"ranker: {cfg.ranker} on the 20 StreamRec features")
        d = tmp / "ranker"
        ranker_metrics = _build_ranker(d, log, users, items, user_ids, item_ids, cfg)
        out["ranker"] = registry.register(
            "ranker", d, metrics=ranker_metrics | metrics.get("ranker", {}),
            data_fingerprint=fp, split={"protocol": "temporal", "ratios": [0.8, 0.1, 0.1],
                                        "rows": cfg.ranker_rows},
            description=f"{cfg.ranker} click model over the 20 point-in-time features",
            alias=alias)

        say(f"session: {cfg.session_model}")
        d = tmp / "session"
        seq = create(cfg.session_model, **cfg.session_params)
        if not isinstance(seq, SequentialRecommender):
            raise _wrong_model(cfg.session_model, seq, SequentialRecommender)
        seq.fit(_interactions(log, user_ids, item_ids, POSITIVE_EVENTS[:2]), rng=cfg.seed)
        SessionLayout(d).write_model(seq)
        out["session"] = registry.register(
            "session", d, metrics=metrics.get("session"), data_fingerprint=fp,
            split=split, description="next item of a live session", alias=alias)

        say("catalog: items, users and the online feature state")
        d = tmp / "catalog"
        _build_catalog(d, log, users, items, positives, cfg)
        out["catalog"] = registry.register(
            "catalog", d, data_fingerprint=fp, split=split,
            description="catalog tables and the feature state after the training log",
            alias=alias)
    return out


def _seen(train: Interactions) -> sp.csr_array:
    x = sp.csr_array(train.to_csr(), dtype=np.float32)
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def _build_catalog(d: Path, log: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                   positives: Interactions, cfg: BuildConfig) -> None:
    d.mkdir()
    lay = CatalogLayout(d)
    lay.write_tables(items, users)
    state = FeatureState.from_tables(users, items, config=cfg.feature_config)
    state.apply(log)
    state.set_base_seen(_seen(positives))
    lay.write_state(state)
    lay.write_meta(catalog_meta(log, users, items))


def _build_retrieval(d: Path, positives: Interactions, items: pl.DataFrame,
                     user_ids: np.ndarray, item_ids: np.ndarray, cfg: BuildConfig) -> None:
    from streamrec.features.content import ContentProjector
    from streamrec.models.als import ImplicitALS
    from streamrec.retrieval.ann import VectorIndex
    from streamrec.retrieval.covisit import CoVisitation

    lay = RetrievalLayout(d)
    model = ImplicitALS(**cfg.retrieval_params)
    model.fit(positives, rng=cfg.seed)
    model.save(lay.model)
    lay.write_ids(user_ids, item_ids)
    vectors = model.item_factors_.copy()
    has_events = np.bincount(positives.items, minlength=len(item_ids)) > 0
    proj = ContentProjector().fit(items.filter(pl.Series(has_events)), vectors[has_events])
    proj.save(lay.content)
    if (~has_events).any():  # items nobody played yet: vectors from their content
        vectors[~has_events] = proj.transform(items.filter(pl.Series(~has_events)))
    lay.write_item_vectors(vectors)
    # 500 users as sample queries: a large catalogue's index keeps the HNSW graph that
    # finds more of their exact top 100 (VectorIndex graph="auto")
    users = model.user_factors_
    sample = np.random.default_rng(cfg.seed).permutation(len(users))[:500]
    VectorIndex().build(vectors, queries=users[np.sort(sample)]).save(lay.index)
    CoVisitation().fit(positives.users, positives.items, positives.timestamps,
                       len(item_ids)).save(lay.covisit)


def _build_ranker(d: Path, log: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                  user_ids: np.ndarray, item_ids: np.ndarray, cfg: BuildConfig,
                  ) -> dict[str, float]:
    """Fit the click model on the newest ``ranker_rows`` impressions (temporal 80/10/10),
    save it with its encoder and the serving MF; returns its valid/test metrics."""
    from streamrec.eval.ctr import ctr_metrics
    from streamrec.features.streamrec import (
        impressions_from_events,
        streamrec_encoder,
        streamrec_features,
    )
    from streamrec.models.als import ImplicitALS
    from streamrec.models.ctr.base import CTRModel
    from streamrec.models.zoo import create

    lay = RankerLayout(d)
    fc = cfg.feature_config
    imp = impressions_from_events(log, dedupe=False)
    if imp.height > cfg.ranker_rows:
        imp = imp.tail(cfg.ranker_rows)
    # rows before the MF cutoff (config.mf_share of the way) only train collaborative_score
    frame = streamrec_features(log, users, items, imp, history_len=20, config=fc)
    n = frame.height
    a, b = int(0.8 * n), int(0.9 * n)
    parts = frame[:a], frame[a:b], frame[b:]
    encoder = streamrec_encoder(parts[0])
    data = [encoder.transform(p) for p in parts]
    model = create(cfg.ranker, kind="ctr", **cfg.ranker_params)
    if not isinstance(model, CTRModel):
        raise _wrong_model(cfg.ranker, model, CTRModel)
    model.fit(data[0], valid=data[1], rng=cfg.seed)
    model.save(lay.model)
    lay.write_encoder(encoder)
    lay.write_feature_config(fc)
    # serving MF: every click of the log, rows = catalog rows
    clicks = _interactions(log, user_ids, item_ids, ("click",))
    mf = ImplicitALS(factors=fc.mf_factors, iterations=fc.mf_iterations,
                     regularization=fc.mf_regularization)
    mf.fit(clicks, rng=fc.seed)
    mf.save(lay.mf)
    lay.write_clicks(_seen(clicks))  # the users' clicked items, for folding in live clicks
    out: dict[str, float] = {}
    for name, part in (("valid", data[1]), ("test", data[2])):
        m = ctr_metrics(part.require_labels("ranker metrics"), model.predict_proba(part))
        out |= {f"{name}_{k}": float(v) for k, v in m.items()}
    return out
