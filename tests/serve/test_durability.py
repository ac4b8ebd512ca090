"""Crash durability of the event path: an acknowledged event is never lost nor applied twice.

For each queue backend (SQLite, Redis with fsync-always AOF) a real ``streamrec serve``
process takes batches of events from a client thread and is SIGKILLed mid-stream. The
client re-sends the batch whose request failed (what a client does without a 202), the
service restarts on the same state directory and queue, drains the queue, and then:

* every acknowledged event id is in the training log exactly once, and the log holds
  nothing else;
* the service's user state, restarted in-process on the same state directory, equals the
  catalog state plus the log (rebuilt here the way the service does it at start-up), and
  each test user's event count is the catalog's plus their acknowledged events.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from streamrec.serve.demo import free_port
from streamrec.serve.eventlog import EventLog
from streamrec.serve.features import EVENT_TYPES, FeatureState
from streamrec.serve.registry import ModelRegistry
from tests.serve._redis import RedisServer

BATCH = 20  # events per POST
KILL_AFTER = 25  # acknowledged batches before the SIGKILL


# --------------------------------------------------------------------------- processes
class ServeProcess:
    """``streamrec serve`` as a real subprocess (uvicorn), on a fresh port."""

    def __init__(self, registry: Path, state_dir: Path, queue_url: str, log_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, STREAMREC_STATE_DIR=str(state_dir), STREAMREC_RELOAD_INTERVAL_S="0",
                   OMP_NUM_THREADS="1")
        self._log = open(log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamrec.cli.main", "serve", "--registry", str(registry),
             "--port", str(self.port), "--queue-url", queue_url, "--log-level", "warning"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.log_file = log_file

    def _fail(self, why: str) -> None:
        self.stop()
        pytest.fail(f"{why}; server log:\n{self.log_file.read_text()[-4000:]}")

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    self._fail(f"streamrec serve exited with {self.proc.returncode}")
                try:
                    r = http.get("/readyz")
                    if r.status_code == 200:
                        return r.json()
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self._fail(f"streamrec serve not ready within {timeout:.0f} s")
        raise AssertionError("unreachable")

    def wait_drained(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until every queued event is applied (``queue_lag`` 0)."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while time.monotonic() < deadline:
                body = http.get("/readyz").json()
                if body.get("queue_lag") == 0 and body.get("consumer_error") is None:
                    return body
                time.sleep(0.05)
        self._fail(f"queue not drained within {timeout:.0f} s: {body}")
        raise AssertionError("unreachable")

    def terminate(self) -> int:
        """Graceful stop (SIGTERM: uvicorn runs the lifespan shutdown); the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


# --------------------------------------------------------------------------- events
def _event_batches(tag: str, users: list[int], items: np.ndarray, seed: int,
                   ) -> Iterator[list[dict[str, Any]]]:
    """Endless batches of valid events with unique ids (server-side timestamps)."""
    rng = np.random.default_rng(seed)
    for b in itertools.count():
        u = rng.choice(users, BATCH)
        i = rng.choice(items, BATCH)
        kind = rng.choice(len(EVENT_TYPES), BATCH)
        yield [{"event_id": f"{tag}-{b}-{j}", "user_id": int(u[j]), "item_id": int(i[j]),
                "event": EVENT_TYPES[int(kind[j])], "session_id": 10_000 + int(u[j]),
                "value": 0.5, "platform": "web"} for j in range(BATCH)]


class Poster(threading.Thread):
    """POSTs batches until a request fails (the server died); records what got a 202."""

    def __init__(self, url: str, batches: Iterator[list[dict[str, Any]]]) -> None:
        super().__init__(name="durability-poster", daemon=True)
        self.url = url
        self.batches = batches
        self.acked: list[dict[str, Any]] = []
        self.acked_batches = 0
        self.failed: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.unexpected: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for batch in self.batches:
                try:
                    r = http.post("/v1/events", json={"events": batch})
                except httpx.TransportError as exc:  # killed mid-request or refused
                    self.failed = batch
                    self.errors.append(type(exc).__name__)
                    return
                if r.status_code != 202 or r.json() != {"accepted": len(batch), "duplicates": 0}:
                    self.unexpected.append(f"{r.status_code}: {r.text[:300]}")
                    return
                self.acked.extend(batch)
                self.acked_batches += 1


# --------------------------------------------------------------------------- the test
def _crash_and_restart(registry: Path, state_dir: Path, queue_url: str, users: list[int],
                       items: np.ndarray, tag: str, logs: Path) -> list[dict[str, Any]]:
    """Post, SIGKILL mid-stream, restart, re-send the failed batch, drain, SIGTERM;
    returns every acknowledged event."""
    # ---- 1. a real server, a client posting batches, SIGKILL mid-stream
    first = ServeProcess(registry, state_dir, queue_url, logs / "serve-1.log")
    try:
        first.wait_ready()
        poster = Poster(first.url, _event_batches(tag, users, items, seed=1))
        poster.start()
        deadline = time.monotonic() + 60
        while (poster.acked_batches < KILL_AFTER and poster.is_alive()
               and time.monotonic() < deadline):
            time.sleep(0.01)
        assert poster.is_alive(), f"the client stopped before the kill: {poster.unexpected}"
        os.kill(first.proc.pid, signal.SIGKILL)
        poster.join(timeout=30)
        assert not poster.is_alive()
    finally:
        first.stop()
    assert first.proc.returncode == -signal.SIGKILL
    assert not poster.unexpected, poster.unexpected
    assert poster.failed, "no request failed: the kill did not happen mid-stream"
    assert len(poster.acked) >= KILL_AFTER * BATCH

    # ---- 2. restart on the same state and queue; the client re-sends its failed batch
    second = ServeProcess(registry, state_dir, queue_url, logs / "serve-2.log")
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.url, timeout=30) as http:
            r = http.post("/v1/events", json={"events": poster.failed})
        assert r.status_code == 202, r.text
        res = r.json()  # duplicates: events of that batch the dead server had stored
        assert res["accepted"] + res["duplicates"] == len(poster.failed)
        second.wait_drained()
        # uvicorn shuts down gracefully, then re-raises SIGTERM (exit status -15)
        assert second.terminate() in (0, -signal.SIGTERM)
    finally:
        second.stop()
    return poster.acked + poster.failed


def _check_log(state_dir: Path, acknowledged: list[dict[str, Any]]) -> pl.DataFrame:
    """Every acknowledged event is in the training log exactly once, and nothing else."""
    ack_ids = [e["event_id"] for e in acknowledged]
    assert len(set(ack_ids)) == len(ack_ids)
    event_log = EventLog(state_dir / "log")
    logged = event_log.read()
    assert event_log.stats["duplicates"] == 0 and event_log.stats["torn_lines"] == 0
    assert len(event_log) == logged.height  # no line written twice
    counts = Counter(logged["event_id"].to_list())
    assert set(counts) == set(ack_ids)
    assert max(counts.values()) == 1
    return logged


def _check_served_state(registry: Path, state_dir: Path, queue_url: str, catalog: Path,
                        users: list[int], logged: pl.DataFrame,
                        acknowledged: list[dict[str, Any]]) -> None:
    """Restart in-process: the served state is the catalog state plus the log, once."""
    from fastapi.testclient import TestClient

    from streamrec.serve.app import create_app
    from streamrec.serve.settings import Settings

    base = FeatureState.load(catalog / "state")
    rebuilt = FeatureState.load(catalog / "state")  # what the service does at start-up
    rebuilt.apply(logged)
    app = create_app(Settings(registry=registry, state_dir=state_dir, queue_url=queue_url,
                              reload_interval_s=0))
    with TestClient(app) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["queue_lag"] == 0, ready
        served = app.state.service.engine.state
        per_user = Counter(e["user_id"] for e in acknowledged)
        for user in users:
            row = served.users.row(user)
            assert row >= 0
            base_row = base.users.row(user)
            before = float(base.u_n_ev[base_row]) if base_row >= 0 else 0.0
            assert served.u_n_ev[row] == before + per_user[user], user
            assert rebuilt.u_n_ev[rebuilt.users.row(user)] == served.u_n_ev[row]
        n_users, n_items = len(served.users), len(served.items)
        assert len(rebuilt.users) == n_users and len(rebuilt.items) == n_items
        for name in ("u_n_ev", "u_n_play", "u_n_sess", "recent", "clicked"):
            np.testing.assert_array_equal(getattr(served, name)[:n_users],
                                          getattr(rebuilt, name)[:n_users], err_msg=name)
        for name in ("i_imp", "i_click", "i_play"):
            np.testing.assert_array_equal(getattr(served, name)[:n_items],
                                          getattr(rebuilt, name)[:n_items], err_msg=name)
        # the item counters grew by exactly the acknowledged events of each type
        ev = Counter(e["event"] for e in acknowledged)
        for name, kind in (("i_imp", "impression"), ("i_click", "click"), ("i_play", "play")):
            grown = getattr(served, name)[:n_items].sum() - getattr(base, name).sum()
            assert grown == ev[kind], name


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sigkill_loses_no_acknowledged_event(backend: str, tiny_registry: Path, tmp_path: Path,
                                             start_redis: Callable[[], RedisServer]) -> None:
    state_dir = tmp_path / "state"
    if backend == "redis":
        queue_url = start_redis().url  # stopped after the test
    else:
        queue_url = f"sqlite:///{state_dir / 'queue.db'}"
    catalog = ModelRegistry(tiny_registry).resolve("catalog").artifacts
    items = pl.read_parquet(catalog / "items.parquet")["item_id"].to_numpy()
    known = pl.read_parquet(catalog / "users.parquet")["user_id"].to_numpy()
    users = [int(u) for u in known[:4]] + [int(known.max()) + 17]  # + a user new to the state
    acknowledged = _crash_and_restart(tiny_registry, state_dir, queue_url, users, items,
                                      backend, tmp_path)
    logged = _check_log(state_dir, acknowledged)
    _check_served_state(tiny_registry, state_dir, queue_url, catalog, users, logged,
                        acknowledged)
