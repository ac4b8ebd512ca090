"""Hot swaps under load: promotions and rollbacks while clients hammer the service.

An in-process uvicorn (:class:`~streamrec.serve.demo.ServerThread`, registry polled every
0.2 s) serves a copy of the tiny system while 4 client threads request recommendations. New
ranker and retrieval versions (v2, same content as v1) are promoted through the registry (the
watcher picks them up), rolled back, promoted through ``POST /admin/promote`` and rolled
back again. No request may fail, and every request that starts after a swap is visible
must report the new versions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import polars as pl

from streamrec.serve.demo import ServerThread, free_port
from streamrec.serve.registry import ModelRegistry
from streamrec.serve.settings import Settings

TOKEN = "hotswap-token"
N_CLIENTS = 4
PHASE_S = 0.5  # hammering time after each swap is visible
SWAPPED = ("retrieval", "ranker")


@dataclass(frozen=True)
class Reply:
    start: float
    end: float
    status: int
    versions: tuple[str, ...]  # of SWAPPED


class Hammer(threading.Thread):
    """Requests recommendations for random known users until stopped."""

    def __init__(self, url: str, users: np.ndarray, seed: int, stop: threading.Event) -> None:
        super().__init__(name=f"hammer-{seed}", daemon=True)
        self.url = url
        self.users = users
        self.rng = np.random.default_rng(seed)
        self.stop = stop
        self.replies: list[Reply] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                user = int(self.rng.choice(self.users))
                t0 = time.monotonic()
                try:
                    r = http.get(f"/v1/users/{user}/recommendations", params={"k": 10})
                    versions = r.json().get("versions", {}) if r.status_code == 200 else {}
                except Exception as exc:  # every failure is recorded and fails the test
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                self.replies.append(Reply(t0, time.monotonic(), r.status_code,
                                          tuple(versions.get(n, "?") for n in SWAPPED)))


def _wait_versions(http: httpx.Client, want: str, timeout: float = 15.0) -> float:
    """Wait until the service reports ``want`` for the swapped entries; the time seen."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = http.get("/readyz").json()["versions"]
        if all(seen[n] == want for n in SWAPPED):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"the service did not switch to {want} within {timeout} s: {seen}")


def test_promote_and_rollback_under_load(own_registry: Path, tmp_path: Path) -> None:
    reg = ModelRegistry(own_registry)
    catalog = reg.resolve("catalog").artifacts
    users = pl.read_parquet(catalog / "users.parquet")["user_id"].to_numpy()
    settings = Settings(registry=own_registry, port=free_port(), admin_token=TOKEN,
                        reload_interval_s=0.2, state_dir=tmp_path / "state")
    stop = threading.Event()
    # (expected versions, visible from, next action at)
    phases: list[tuple[str, float, float]] = []
    admin = {"Authorization": f"Bearer {TOKEN}"}
    with ServerThread(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        hammers = [Hammer(srv.url, users, seed, stop) for seed in range(N_CLIENTS)]
        for h in hammers:
            h.start()
        try:
            t = _wait_versions(http, "v1")
            time.sleep(PHASE_S)
            for name in SWAPPED:  # v2: the same artifacts, a new version
                assert reg.register(name, reg.resolve(name).artifacts).version == "v2"
            # 1. promotion through the registry: the watcher swaps
            phases.append(("v1", t, time.monotonic()))
            for name in SWAPPED:
                assert reg.promote(name, "v2") == "v1"
            t = _wait_versions(http, "v2")
            time.sleep(PHASE_S)
            # 2. rollback through the registry
            phases.append(("v2", t, time.monotonic()))
            for name in SWAPPED:
                assert reg.rollback(name) == "v1"
            t = _wait_versions(http, "v1")
            time.sleep(PHASE_S)
            # 3. promotion through the admin route: swapped before the response
            phases.append(("v1", t, time.monotonic()))
            for name in SWAPPED:
                r = http.post("/admin/promote", json={"name": name, "version": "v2"},
                              headers=admin)
                assert r.status_code == 200, r.text
                assert r.json()["previous"] == "v1"  # the alias's old version
                assert r.json()["versions"][name] == "v2"
            t = time.monotonic()
            assert all(v == "v2" for n, v in http.get("/readyz").json()["versions"].items()
                       if n in SWAPPED)
            time.sleep(PHASE_S)
            # 4. and back
            phases.append(("v2", t, time.monotonic()))
            for name in SWAPPED:
                assert reg.rollback(name) == "v1"
            t = _wait_versions(http, "v1")
            time.sleep(PHASE_S)
            phases.append(("v1", t, time.monotonic()))
        finally:
            stop.set()
            for h in hammers:
                h.join(timeout=30)
        swaps = [ln for ln in http.get("/metrics").text.splitlines()
                 if ln.startswith("streamrec_model_swaps_total")]

    errors = [e for h in hammers for e in h.errors]
    replies = sorted((r for h in hammers for r in h.replies), key=lambda r: r.start)
    assert not errors, errors[:5]
    bad = [r for r in replies if r.status != 200]
    assert not bad, bad[:5]
    assert len(replies) > 50
    for want, visible, until in phases:
        inside = [r for r in replies if r.start >= visible and r.end <= until]
        assert len(inside) >= 5, (want, len(inside))
        wrong = [r for r in inside if r.versions != (want, want)]
        assert not wrong, (want, wrong[:5])
    # every phase change is a swap (promotions of two entries may be one or two swaps)
    assert swaps and float(swaps[0].split()[-1]) >= 4
