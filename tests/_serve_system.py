"""A small trained, registered serving system shared by the service tests."""

from __future__ import annotations

from pathlib import Path

from streamrec.serve.bundle import BuildConfig, build_system

#: small and fast: the tests check behaviour, not quality
TINY_BUILD = BuildConfig(
    retrieval_params={"factors": 16, "iterations": 5},
    ranker="gbdt", ranker_params={"n_estimators": 40, "n_jobs": 1},
    ranker_rows=60_000,
    session_model="gru4rec",
    session_params={"max_len": 10, "epochs": 2, "batch_size": 256, "embed": 16,
                    "hidden": 16},
)


def build_tiny_system(root: Path, *, users: int = 400, items: int = 300, days: int = 12,
                      seed: int = 0) -> Path:
    """Generate a world, fit the serving models on it and register them under ``root``;
    returns the registry directory."""
    from streamrec.data.synthetic.world import WorldConfig, generate_world
    from streamrec.features.streamrec import _dedupe

    w = generate_world(WorldConfig(n_users=users, n_items=items, n_days=days, seed=seed))
    registry = root / "registry"
    build_system(_dedupe(w.events), w.users, w.items, registry, config=TINY_BUILD)
    return registry
