"""Train and register everything the service loads, from a cleaned event log.

The service reads four registry entries (each ``registry/<name>/<version>/``):

=========  ======================================================================
retrieval  iALS on positive events (play, like): ``model/`` plus ``ids.npz`` (external
           user/item id of each row), ``index/`` (faiss index of the item vectors),
           ``covisit.npz`` (co-visitation neighbours) and ``content/`` (item content ->
           vector projector, for items added after training)
           ``item_vectors.npy`` holds the index's vectors: the model's, or the projector's
           for items without any positive event
ranker     a CTR model over the 20 StreamRec features: ``model/``, ``encoder.json``,
           ``features.json`` (the :class:`FeatureConfig`) and ``mf/`` (the iALS on clicks
           behind ``collaborative_score``)
session    a sequence model (GRU4Rec by default) on the positive events, for live sessions
catalog    ``items.parquet``, ``users.parquet`` and ``state/`` (the
           :class:`~streamrec.serve.features.FeatureState` after the whole log), ``meta.json``
=========  ======================================================================

Item and user rows are the catalog's (the order of ``items.parquet``/``users.parquet``) in
every model, so the service maps ids once. Models are refitted on the whole log before
registration (the offline evaluation, on a held-out split, provides the metrics).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from streamrec.features.streamrec import FeatureConfig
from streamrec.serve.features import POSITIVE_EVENTS, FeatureState

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


def _interactions(log: pl.DataFrame, users: np.ndarray, items: np.ndarray, kinds: tuple[str, ...]):
    from streamrec.data.interactions import Interactions

    sel = log.filter(pl.col("event").is_in(list(kinds))).sort("timestamp")
    u = np.searchsorted(users, sel["user_id"].to_numpy())
    i = np.searchsorted(items, sel["item_id"].to_numpy())
    return Interactions.from_arrays(u, i, sel["timestamp"].to_numpy(),
                                    n_users=len(users), n_items=len(items))


def build_system(log: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame,
                 registry_root: str | Path, *, config: BuildConfig | None = None,
                 metrics: dict[str, dict[str, float]] | None = None,
                 split: str | dict | None = None, alias: str = "production",
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
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
    from streamrec.serve.registry import ModelRegistry, fingerprint_arrays

    cfg = config or BuildConfig()
    say = progress or (lambda _msg: None)
    log = log_frame(log)
    users = users.unique("user_id", keep="first", maintain_order=True).sort("user_id")
    items = items.unique("item_id", keep="first", maintain_order=True).sort("item_id")
    known = log["item_id"].is_in(items["item_id"].implode()) & log["user_id"].is_in(
        users["user_id"].implode())
    log = log.filter(known)
    user_ids, item_ids = users["user_id"].to_numpy(), items["item_id"].to_numpy()
    fp = fingerprint_arrays(*(log[c].to_numpy() for c in ("user_id", "item_id", "timestamp")))
    registry = ModelRegistry(registry_root)
    metrics = metrics or {}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        positives = _interactions(log, user_ids, item_ids, POSITIVE_EVENTS[:2])

        say("retrieval: iALS, index, co-visitation, content projector")
        d = tmp / "retrieval"
        out["retrieval"] = registry.register(
            "retrieval", _build_retrieval(d, positives, items, user_ids, item_ids, cfg),
            metrics=metrics.get("retrieval"), data_fingerprint=fp, split=split,
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
        from streamrec.models.registry import create

        seq = create(cfg.session_model, **cfg.session_params)
        seq.fit(_interactions(log, user_ids, item_ids, POSITIVE_EVENTS[:2]), rng=cfg.seed)
        seq.save(tmp / "session")
        out["session"] = registry.register(
            "session", tmp / "session", metrics=metrics.get("session"), data_fingerprint=fp,
            split=split, description="next item of a live session", alias=alias)

        say("catalog: items, users and the online feature state")
        d = tmp / "catalog"
        d.mkdir()
        items.write_parquet(d / "items.parquet")
        users.write_parquet(d / "users.parquet")
        state = FeatureState.from_tables(users, items, config=cfg.feature_config)
        state.apply(log)
        state.set_base_seen(_seen(positives))
        state.save(d / "state")
        (d / "meta.json").write_text(json.dumps({
            "data_start": int(log["timestamp"].min()), "data_end": int(log["timestamp"].max()),
            "events": log.height, "users": users.height, "items": items.height}, indent=2))
        out["catalog"] = registry.register(
            "catalog", d, data_fingerprint=fp, split=split,
            description="catalog tables and the feature state after the training log",
            alias=alias)
    return out


def _seen(train) -> sp.csr_array:
    x = sp.csr_array(train.to_csr(), dtype=np.float32)
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def _build_retrieval(d: Path, positives, items: pl.DataFrame, user_ids: np.ndarray,
                     item_ids: np.ndarray, cfg: BuildConfig) -> Path:
    from streamrec.features.content import ContentProjector
    from streamrec.models.registry import create
    from streamrec.retrieval.ann import VectorIndex
    from streamrec.retrieval.covisit import CoVisitation

    model = create("ials", **cfg.retrieval_params)
    model.fit(positives, rng=cfg.seed)
    model.save(d / "model")
    np.savez(d / "ids.npz", user_ids=user_ids, item_ids=item_ids)
    vectors = model.item_factors_.copy()
    has_events = np.bincount(positives.items, minlength=len(item_ids)) > 0
    proj = ContentProjector().fit(items.filter(pl.Series(has_events)), vectors[has_events])
    proj.save(d / "content")
    if (~has_events).any():  # items nobody played yet: vectors from their content
        vectors[~has_events] = proj.transform(items.filter(pl.Series(~has_events)))
    np.save(d / "item_vectors.npy", vectors.astype(np.float32))
    # 500 users as sample queries: a large catalogue's index keeps the HNSW graph that
    # finds more of their exact top 100 (VectorIndex graph="auto")
    users = model.user_factors_
    sample = np.random.default_rng(cfg.seed).permutation(len(users))[:500]
    VectorIndex().build(vectors, queries=users[np.sort(sample)]).save(d / "index")
    CoVisitation().fit(positives.users, positives.items, positives.timestamps,
                       len(item_ids)).save(d / "covisit.npz")
    return d


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
    from streamrec.models.registry import create

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
    model.fit(data[0], valid=data[1], rng=cfg.seed)
    model.save(d / "model")
    (d / "encoder.json").write_text(json.dumps(encoder.to_dict()))
    (d / "features.json").write_text(json.dumps(asdict(fc)))
    # serving MF: every click of the log, rows = catalog rows
    clicks = _interactions(log, user_ids, item_ids, ("click",))
    mf = create("ials", factors=fc.mf_factors, iterations=fc.mf_iterations,
                regularization=fc.mf_regularization)
    mf.fit(clicks, rng=fc.seed)
    mf.save(d / "mf")
    seen = _seen(clicks)  # the users' clicked items, for folding in live clicks
    np.savez(d / "clicks.npz", data=seen.data, indices=seen.indices, indptr=seen.indptr,
             shape=np.array(seen.shape))
    out = {}
    for name, part in (("valid", data[1]), ("test", data[2])):
        m = ctr_metrics(part.labels, model.predict_proba(part))
        out |= {f"{name}_{k}": float(v) for k, v in m.items()}
    return out
