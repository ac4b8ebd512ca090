"""The registry of the load benchmark (``benchmarks/load_service.py``): the small world's
trained ranker and session model next to a constructed catalogue-scale retrieval entry
and catalog (see that file's docstring for what is built and why).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import scipy.sparse as sp

if TYPE_CHECKING:
    from streamrec.features.streamrec import FeatureConfig

__all__ = ["EVENT_MIX", "build_registry"]

Say = Callable[[str], None]
DAY = 86_400
_LAYOUT = 2  # version of what build_registry writes (see its --reuse check)
N_CLUSTERS = 256
#: the event types of the synthetic events (the catalogue's state and the ingestion phase)
EVENT_MIX = {"impression": 0.50, "click": 0.12, "play": 0.22, "like": 0.04, "skip": 0.06,
             "progress": 0.06}


def _small_system(root: Path, dim: int, seed: int, say: Say) -> Path:
    """Train the small world's four entries (the ranker and session model are used)."""
    from streamrec.data.synthetic.world import WorldConfig, generate_world
    from streamrec.features.streamrec import _dedupe
    from streamrec.serve.bundle import BuildConfig, build_system

    registry = root / "small" / "registry"
    if (registry / "ranker").exists():
        return registry
    w = generate_world(WorldConfig(n_users=3000, n_items=2000, n_days=30, seed=seed))
    cfg = BuildConfig(retrieval_params={"factors": dim}, ranker="gbdt",
                      ranker_params={"n_estimators": 300, "n_jobs": 1}, seed=seed)
    build_system(_dedupe(w.events), w.users, w.items, registry, config=cfg, progress=say)
    return registry


def _synthetic_catalogue(n_items: int, n_users: int, dim: int, n_events: int,
                         small: Path, t_end: int, seed: int) -> dict[str, Any]:
    """Items, users, factors and events of the large world (see the module docstring)."""
    from streamrec.serve.layout import CatalogLayout

    rng = np.random.default_rng(seed)
    small_items = CatalogLayout(small).read_items()
    small_users = CatalogLayout(small).read_users()
    categories = small_items["category"].drop_nulls().unique().sort().to_list()
    tiers = small_users["tier"].drop_nulls().unique().sort().to_list()
    platforms = small_users["platform"].drop_nulls().unique().sort().to_list()

    # ---- factors: clustered gaussians (iALS-like scale)
    centers = rng.normal(0.0, 1.0, (N_CLUSTERS, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    size = rng.pareto(1.0, N_CLUSTERS) + 1.0  # uneven cluster sizes
    item_cluster = rng.choice(N_CLUSTERS, n_items, p=size / size.sum())
    item_f = 0.3 * (centers[item_cluster] + 0.5 * rng.normal(
        0.0, 1.0 / np.sqrt(dim), (n_items, dim)).astype(np.float32))
    user_cluster = rng.choice(N_CLUSTERS, n_users, p=size / size.sum())
    user_f = np.empty((n_users, dim), np.float32)
    for lo in range(0, n_users, 200_000):  # chunks: bounded temporaries
        hi = min(lo + 200_000, n_users)
        noise = rng.normal(0.0, 1.0 / np.sqrt(dim), (hi - lo, dim)).astype(np.float32)
        user_f[lo:hi] = 2.0 * (centers[user_cluster[lo:hi]] + 0.7 * noise)

    # ---- items: the cluster decides category, creator and text tokens
    vocab = np.array([f"tok{j}" for j in range(4 * N_CLUSTERS)])
    words = (item_cluster[:, None] * 4 + rng.integers(0, 4, (n_items, 6))) % len(vocab)
    generic = rng.integers(0, len(vocab), (n_items, 2))
    tok = vocab[np.concatenate([words, generic], axis=1)]
    title = [" ".join(r) for r in tok[:, :2].tolist()]
    description = [" ".join(r) for r in tok[:, 2:].tolist()]
    release = t_end - rng.exponential(300 * DAY, n_items).astype(np.int64)
    fresh = rng.random(n_items) < 0.002  # a few new items: the exploration slots
    release[fresh] = t_end - rng.integers(0, 6 * DAY, int(fresh.sum()))
    item_ids = np.arange(1, n_items + 1, dtype=np.int64)
    items = pl.DataFrame({
        "item_id": item_ids, "title": title, "description": description,
        "category": [categories[c % len(categories)] for c in item_cluster.tolist()],
        "creator_id": (item_cluster * 40 + rng.integers(0, 40, n_items)).astype(np.int64),
        "length_seconds": np.clip(rng.lognormal(7.0, 0.8, n_items), 30, 20_000).astype(np.int64),
        "release_ts": release})
    user_ids = np.arange(1, n_users + 1, dtype=np.int64)
    user_platform = rng.integers(0, len(platforms), n_users)
    users = pl.DataFrame({
        "user_id": user_ids,
        "tier": pl.Series(np.array(tiers)[rng.integers(0, len(tiers), n_users)]),
        "platform": pl.Series(np.array(platforms)[user_platform]),
        "signup_ts": t_end - rng.integers(30 * DAY, 3 * 365 * DAY, n_users)})

    # ---- events: heavy-tailed user activity, items mostly from the user's cluster
    act = rng.pareto(1.1, n_users) + 0.05
    u = rng.choice(n_users, n_events, p=act / act.sum())
    order = np.argsort(item_cluster, kind="stable")
    start = np.searchsorted(item_cluster[order], np.arange(N_CLUSTERS))
    count = np.bincount(item_cluster, minlength=N_CLUSTERS)
    uc = user_cluster[u]
    has = count[uc] > 0
    pick = np.where(has, start[uc] + (rng.random(n_events) * np.maximum(count[uc], 1)).astype(
        np.int64), 0)
    i = order[np.minimum(pick, n_items - 1)]
    pop = rng.pareto(1.0, n_items) + 0.01
    other = (rng.random(n_events) < 0.2) | ~has
    i[other] = rng.choice(n_items, int(other.sum()), p=pop / pop.sum())
    kinds = list(EVENT_MIX)
    kind = rng.choice(len(kinds), n_events, p=list(EVENT_MIX.values()))
    ts = t_end - rng.integers(0, 30 * DAY, n_events)
    value = np.where(np.array(kinds)[kind] == "play", rng.random(n_events), np.nan)
    events = pl.DataFrame({
        "user_id": user_ids[u], "item_id": item_ids[i],
        "session_id": user_ids[u] * 1000 + (ts // (6 * 3600)) % 1000, "timestamp": ts,
        "event": pl.Series(np.array(kinds)[kind]),
        "value": pl.Series(value.astype(np.float32)).fill_nan(None),
        "platform": pl.Series(np.array(platforms)[user_platform[u]])}).sort("timestamp")
    return {"items": items, "users": users, "item_factors": item_f, "user_factors": user_f,
            "events": events, "user_rows": u, "item_rows": i, "kind": np.array(kinds)[kind],
            "ts": ts}


def _retrieval_entry(d: Path, world: dict[str, Any], positive: np.ndarray, seed: int,
                     say: Say) -> None:
    from streamrec.features.content import ContentProjector
    from streamrec.models.als import ImplicitALS
    from streamrec.retrieval.ann import VectorIndex
    from streamrec.retrieval.covisit import CoVisitation
    from streamrec.serve.layout import RetrievalLayout

    lay = RetrievalLayout(d)
    item_f, user_f = world["item_factors"], world["user_factors"]
    model = ImplicitALS(factors=item_f.shape[1], num_threads=1)
    model.user_factors_, model.item_factors_ = user_f, item_f
    model.n_users_, model.n_items_ = len(user_f), len(item_f)
    model.save(lay.model)
    lay.write_ids(world["users"]["user_id"].to_numpy(), world["items"]["item_id"].to_numpy())
    lay.write_item_vectors(item_f)
    say(f"retrieval: vector index over {len(item_f):,} items")
    sample = np.random.default_rng(seed).permutation(len(user_f))[:500]
    index = VectorIndex().build(item_f, queries=user_f[np.sort(sample)])
    say(f"retrieval: {index.graph_} graph kept, recall@{index.recall_k} on 500 users "
        f"{index.graph_recall_}")
    index.save(lay.index)
    say("retrieval: co-visitation")
    CoVisitation().fit(world["user_rows"][positive], world["item_rows"][positive],
                       world["ts"][positive], len(item_f)).save(lay.covisit)
    say("retrieval: content projector")
    sub = np.random.default_rng(seed).choice(len(item_f), min(len(item_f), 50_000),
                                             replace=False)
    ContentProjector().fit(world["items"][np.sort(sub)], item_f[np.sort(sub)]).save(
        lay.content)


def _catalog_entry(d: Path, world: dict[str, Any], positive: np.ndarray,
                   config: FeatureConfig, say: Say) -> None:
    from streamrec.serve.bundle import log_frame
    from streamrec.serve.features import FeatureState
    from streamrec.serve.layout import CatalogLayout, catalog_meta

    d.mkdir(parents=True)
    lay = CatalogLayout(d)
    items, users, events = world["items"], world["users"], world["events"]
    lay.write_tables(items, users)
    say(f"catalog: feature state of {len(users):,} users x {len(items):,} items, "
        f"{events.height:,} events")
    state = FeatureState.from_tables(users, items, config=config)
    state.apply(log_frame(events))
    seen = sp.csr_array((np.ones(int(positive.sum()), np.float32),
                         (world["user_rows"][positive], world["item_rows"][positive])),
                        shape=(len(users), len(items)))
    seen.sum_duplicates()
    seen.data[:] = 1.0
    state.set_base_seen(seen)
    lay.write_state(state)
    lay.write_meta(catalog_meta(events, users, items))


def build_registry(root: Path, *, n_items: int, n_users: int, dim: int, n_events: int,
                   seed: int, say: Say) -> dict[str, Any]:
    """Build (or reuse) the large registry under ``root``; returns what was done. ``say``
    is told each step."""
    from streamrec.serve.layout import CatalogLayout, RankerLayout
    from streamrec.serve.registry import ModelRegistry

    # "layout" changes whenever what gets built changes (2: the index graph chosen on user
    # vectors), so an older --reuse directory is rebuilt rather than silently reused
    wanted = {"items": n_items, "users": n_users, "dim": dim, "events": n_events, "seed": seed,
              "layout": _LAYOUT}
    marker = root / "build.json"
    registry = root / "registry"
    if marker.exists() and json.loads(marker.read_text()).get("config") == wanted:
        return {"reused": True, **json.loads(marker.read_text())}
    if registry.exists():
        shutil.rmtree(registry)
    t0 = time.perf_counter()
    say("small world: training the ranker and the session model")
    small = ModelRegistry(_small_system(root, dim, seed, say))
    t_small = time.perf_counter() - t0
    small_catalog = small.resolve("catalog").artifacts
    t_end = int(CatalogLayout(small_catalog).read_meta()["data_end"])
    fc = RankerLayout(small.resolve("ranker").artifacts).read_feature_config()
    say(f"large world: {n_items:,} items, {n_users:,} users, {n_events:,} events")
    world = _synthetic_catalogue(n_items, n_users, dim, n_events, small_catalog, t_end, seed)
    positive = np.isin(world["kind"], ["play", "like"])
    reg = ModelRegistry(registry)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tmp_dir = Path(tmp)
        _retrieval_entry(tmp_dir / "retrieval", world, positive, seed, say)
        _catalog_entry(tmp_dir / "catalog", world, positive, fc, say)
        say("registering")
        for name in ("ranker", "session"):
            reg.register(name, small.resolve(name).artifacts, alias="production",
                         description=f"{name} of the small world (load benchmark)")
        reg.register("retrieval", tmp_dir / "retrieval", alias="production",
                     description="synthetic clustered factors (load benchmark)")
        reg.register("catalog", tmp_dir / "catalog", alias="production",
                     description="synthetic catalogue and state (load benchmark)")
    info = {"config": wanted, "small_world_s": round(t_small, 1),
            "build_s": round(time.perf_counter() - t0, 1),
            "registry_mb": round(sum(f.stat().st_size for f in registry.rglob("*")
                                     if f.is_file()) / 2**20, 1)}
    marker.write_text(json.dumps(info, indent=2))
    return {"reused": False, **info}
