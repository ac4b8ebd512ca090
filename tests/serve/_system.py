"""The small trained, registered serving system the service tests run on, and the ways they
drive it: the ``streamrec`` command in a subprocess, waiting for the consumer.

The system itself is a fixture (``tiny_registry`` in ``tests/serve/conftest.py``, built once
per session); this module holds what the fixtures and the tests call."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streamrec.data.clean import drop_duplicates
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

    w = generate_world(WorldConfig(n_users=users, n_items=items, n_days=days, seed=seed))
    registry = root / "registry"
    events = drop_duplicates(w.events, subset=["event_id"])[0]
    build_system(events, w.users, w.items, registry, config=TINY_BUILD)
    return registry


def copy_registry(registry: Path, dest: Path) -> Path:
    """A copy of ``registry`` at ``dest`` (which must not exist) that its user may change."""
    shutil.copytree(registry, dest, symlinks=False)
    return dest


def registry_snapshot(registry: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime in ns) of every file under ``registry``, by relative path."""
    return {str(p.relative_to(registry)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(registry.rglob("*")) if p.is_file()}


def run_streamrec(*args: str, env: dict[str, str] | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m streamrec.cli.main ARGS`` (wide terminal, so errors are one line)."""
    return subprocess.run([sys.executable, "-m", "streamrec.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def wait_drained(client: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Poll ``/readyz`` of a ``TestClient`` until every queued event is applied
    (``queue_lag`` 0); the last body."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get("/readyz").json()
        if body.get("queue_lag") == 0:
            return body
        time.sleep(0.01)
    raise AssertionError(f"queue not drained within {timeout} s: {body}")
