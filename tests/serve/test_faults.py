"""Fault injection: what the service does when storage, the consumer, an artifact or a client
misbehaves. Every test asserts that nothing acknowledged is lost and that the status and
readiness say what is going on.

* disk full: a real 2 MB tmpfs under the state directory (root only, else skipped) and, on
  every machine, a log writer patched to raise ``ENOSPC``;
* a consumer that fails at each step of a batch (log, state, ack), on SQLite and Redis;
* a tampered or copied version on promote (CLI and HTTP) and at start-up;
* a chunked body over the limit, and a client that never sends the body it announced.

(SIGKILL during ingest: ``test_durability.py``.)
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from streamrec.serve.app import create_app
from streamrec.serve.demo import ServerThread, free_port
from streamrec.serve.queue import QueueError
from streamrec.serve.registry import ModelRegistry
from streamrec.serve.settings import Settings
from tests.serve._redis import RedisServer
from tests.serve._system import run_streamrec

TOKEN = "fault-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
FRESH_USER = 10**6  # user ids from here on are not in the catalog: their counts start at 0


def _settings(registry: Path, state_dir: Path, **kw: Any) -> Settings:
    kw = {"reload_interval_s": 0, "consumer_max_backoff_s": 0.2} | kw
    return Settings(registry=registry, state_dir=state_dir, admin_token=TOKEN, **kw)


def _items(app: Any, n: int = 40) -> list[int]:
    return [int(i) for i in app.state.service.engine.state.items.ids[:n]]


def _batch(tag: str, items: list[int], n: int = 50, users: int = 7) -> list[dict[str, Any]]:
    return [{"event_id": f"{tag}-{j}", "user_id": FRESH_USER + j % users,
             "item_id": items[j % len(items)], "event": "play", "value": 0.5}
            for j in range(n)]


def _wait(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = check()
        if out:
            return out
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def _assert_all_applied(app: Any, acked: dict[str, int]) -> None:
    """Every acknowledged event is in the training log, and in the state exactly once."""
    svc = app.state.service
    logged = set(svc.event_log.read()["event_id"].to_list())
    missing = set(acked) - logged
    assert not missing, f"{len(missing)} acknowledged events are not in the log"
    st = svc.engine.state
    per_user = Counter(acked.values())
    counts = {u: int(st.u_n_ev[st.users.row(u)]) for u in per_user}
    assert counts == dict(per_user), "the state counts differ from the acknowledged events"


# --------------------------------------------------------------------------- disk full
def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only; skipped where it cannot be mounted)."""
    where = tmp_path / "small-disk"
    if not _mount_tmpfs(where, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root and a permitting container)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(directory: Path) -> None:
    """Take the last free bytes of the file system under ``directory``."""
    with open(directory / "filler", "ab", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def test_disk_full_then_room_again_loses_nothing(tiny_registry: Path, small_disk: Path) -> None:
    """The issue's scenario on a real full disk: batches are acknowledged until the disk
    fills, then refused with 503 + Retry-After; the consumer cannot write the log, so
    /readyz is not ready; once there is room again every acknowledged event reaches the
    log and the state, without a restart."""
    settings = _settings(tiny_registry, small_disk / "state", port=free_port())
    acked: dict[str, int] = {}
    refusals: list[httpx.Response] = []
    with ServerThread(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        items = _items(srv.app)
        # the consumer waits (as one that fell behind would) until the disk is full
        with srv.app.state.service.apply_lock:
            for b in range(400):
                events = _batch(f"full-{b}", items, n=100, users=37)
                r = http.post("/v1/events", json={"events": events})
                if r.status_code == 202:
                    acked |= {e["event_id"]: e["user_id"] for e in events}
                else:
                    refusals.append(r)
                if len(refusals) >= 3:
                    break
            _fill(small_disk)
        assert acked and len(refusals) == 3, "the disk never filled"
        assert {r.status_code for r in refusals} == {503}
        assert all(r.headers.get("retry-after") and "detail" in r.json() for r in refusals)
        body = _wait("not ready while the log cannot be written", lambda: (
            (r := http.get("/readyz")).status_code == 503 and r.json()))
        assert body["consumer_error"] and body["queue_lag"] > 0
        time.sleep(0.5)  # retries keep failing, and nothing is passed over meanwhile
        assert http.get("/readyz").status_code == 503
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        _wait("drained after room came back", lambda: (
            (r := http.get("/readyz")).status_code == 200 and r.json()["queue_lag"] == 0),
            timeout=30)
        _assert_all_applied(srv.app, acked)
        failures = [ln for ln in http.get("/metrics").text.splitlines()
                    if ln.startswith("streamrec_consumer_failures_total")]
        assert failures and float(failures[0].split()[-1]) >= 1


# --------------------------------------------------------------------------- consumer failures
class Fault:
    """Makes one step of the consumer raise while ``on``."""

    def __init__(self, exc: Exception) -> None:
        self.on = True
        self.exc = exc
        self.calls = 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def failing(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.on:
                raise self.exc
            return fn(*args, **kw)
        return failing


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest,
              start_redis: Callable[[], RedisServer]) -> str | None:
    return None if request.param == "sqlite" else start_redis().url


@pytest.mark.parametrize("step", ["log", "state", "derived", "ack"])
def test_a_failing_batch_is_retried_never_passed_over(
        tiny_registry: Path, tmp_path: Path, step: str, queue_url: str | None) -> None:
    """A step of the consumer fails for a while (a full disk under the log, an exception in
    the middle of the state update, a lost ack): /readyz says not ready with the error,
    later batches wait behind the failing one, and once the fault clears every
    acknowledged event is in the log and counted in the state exactly once."""
    app = create_app(_settings(tiny_registry, tmp_path / "state", queue_url=queue_url))
    with TestClient(app) as client:
        svc = app.state.service
        items = _items(app)
        fault = Fault(OSError(errno.ENOSPC, "No space left on device") if step == "log"
                      else QueueError("ack failed: redis went away") if step == "ack"
                      else RuntimeError(f"{step} update failed mid-batch"))
        target, name = {"log": (svc.event_log, "append"),
                        "state": (svc.engine, "apply_state"),
                        "derived": (svc.engine, "refresh_derived"),
                        "ack": (svc.queue, "ack")}[step]
        setattr(target, name, fault.wrap(getattr(target, name)))
        acked: dict[str, int] = {}
        for b in range(3):
            events = _batch(f"{step}-{b}", items)
            assert client.post("/v1/events", json={"events": events}).status_code == 202
            acked |= {e["event_id"]: e["user_id"] for e in events}
        body = _wait("not ready while failing", lambda: (
            (r := client.get("/readyz")).status_code == 503 and r.json()))
        assert body["consumer_error"] and body["reason"] and body["queue_lag"] > 0, body
        _wait("retried", lambda: fault.calls >= 3)
        if step in ("log", "state"):  # nothing of the failing batch is in the state yet
            st = svc.engine.state
            assert all(st.users.row(u) < 0 or st.u_n_ev[st.users.row(u)] == 0
                       for u in set(acked.values()))
        fault.on = False
        _wait("drained after the fault cleared", lambda: (
            (r := client.get("/readyz")).status_code == 200 and r.json()["queue_lag"] == 0))
        _assert_all_applied(app, acked)
        assert client.get("/readyz").json()["consumer_failures"] >= 3
        assert "streamrec_consumer_failures_total" in client.get("/metrics").text


def test_readiness_bounds_the_lag(tiny_registry: Path, tmp_path: Path) -> None:
    """More acknowledged events waiting than ready_max_lag: not ready, and why."""
    app = create_app(_settings(tiny_registry, tmp_path / "state", ready_max_lag=20))
    with TestClient(app) as client:
        svc = app.state.service
        fault = Fault(RuntimeError("stalled"))
        svc.engine.apply_state = fault.wrap(svc.engine.apply_state)
        client.post("/v1/events", json={"events": _batch("lag", _items(app), n=60)})
        body = _wait("not ready", lambda: (r := client.get("/readyz")).status_code == 503
                     and r.json())
        fault.on = False
        _wait("ready again", lambda: client.get("/readyz").status_code == 200)
        assert body["queue_lag"] == 60


# --------------------------------------------------------------------------- promotion
def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_promote_refuses_a_tampered_or_copied_version(own_registry: Path,
                                                      tmp_path: Path) -> None:
    reg = ModelRegistry(own_registry)
    v2 = reg.register("ranker", reg.resolve("ranker").artifacts)
    _tamper(v2.artifacts / "model" / "arrays.npz")
    shutil.copytree(reg.resolve("catalog").path, own_registry / "catalog" / "v2")
    # the CLI: one line naming the file, exit 2, the alias where it was
    for name, alias, needle in (("ranker", "staging", "arrays.npz"),
                                ("ranker", "production", "arrays.npz"),
                                ("catalog", "production", "manifest.json")):
        done = run_streamrec("registry", "promote", name, "v2", "--alias", alias,
                          "--registry", str(own_registry))
        assert done.returncode == 2, done.stdout + done.stderr
        assert needle in done.stderr and "Traceback" not in done.stderr
        assert reg.aliases(name).get(alias) == ("v1" if alias == "production" else None)
    # the HTTP route: 409 naming the file; the server keeps serving v1 and stays ready
    app = create_app(_settings(own_registry, tmp_path / "state", reload_interval_s=0.1))
    with TestClient(app) as client:
        for name, needle in (("ranker", "arrays.npz"), ("catalog", "manifest.json")):
            r = client.post("/admin/promote", json={"name": name, "version": "v2"},
                            headers=ADMIN)
            assert r.status_code == 409 and needle in r.json()["detail"], r.text
            assert reg.aliases(name)["production"] == "v1"
        time.sleep(0.3)  # the watcher has looked at the aliases again
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["versions"]["ranker"] == "v1"
        assert ready.json()["reload_error"] is None


def test_a_version_that_loads_is_promoted_over_http(own_registry: Path, tmp_path: Path) -> None:
    reg = ModelRegistry(own_registry)
    reg.register("ranker", reg.resolve("ranker").artifacts)
    app = create_app(_settings(own_registry, tmp_path / "state"))
    with TestClient(app) as client:
        r = client.post("/admin/promote", json={"name": "ranker", "version": "v2"},
                        headers=ADMIN)
        assert r.status_code == 200 and r.json()["versions"]["ranker"] == "v2", r.text
        assert reg.aliases("ranker")["production"] == "v2"
        r = client.post("/admin/promote", json={"name": "ranker", "version": "v7"},
                        headers=ADMIN)
        assert r.status_code == 404
        # a sound new catalog needs a restart: refused live, the alias stays
        reg.register("catalog", reg.resolve("catalog").artifacts)
        r = client.post("/admin/promote", json={"name": "catalog", "version": "v2"},
                        headers=ADMIN)
        assert r.status_code == 409 and "restart" in r.json()["detail"]
        assert reg.aliases("catalog")["production"] == "v1"


def test_startup_on_a_bad_registry_is_one_line_and_exit_2(own_registry: Path,
                                                         tmp_path: Path) -> None:
    reg = ModelRegistry(own_registry)
    state = {"STREAMREC_STATE_DIR": str(tmp_path / "state")}
    _tamper(reg.resolve("ranker").artifacts / "model" / "arrays.npz")
    done = run_streamrec("serve", "--registry", str(own_registry), "--port", str(free_port()),
                         env=state)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "arrays.npz" in done.stderr and len(done.stderr.strip().splitlines()) <= 3
    (reg.resolve("session").path / "manifest.json").unlink()
    done = run_streamrec("serve", "--registry", str(own_registry), "--port", str(free_port()),
                         env=state)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "manifest.json" in done.stderr


# --------------------------------------------------------------------------- hostile clients
@pytest.fixture
def server(tiny_registry: Path, tmp_path: Path) -> Iterator[ServerThread]:
    settings = _settings(tiny_registry, tmp_path / "state", port=free_port(),
                         max_body_bytes=64_000, body_timeout_s=1.0)
    with ServerThread(settings) as srv:
        yield srv


def _status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(
        server: ServerThread) -> None:
    """No Content-Length: the 413 comes as the limit is crossed, not after the whole body
    was read (the client cannot even send all of it)."""
    total = 20_000_000
    chunk = b"x" * 65_536
    sent = 0
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _ = _status(sock)
    assert status == 413
    assert sent < total, "the server read the whole oversize body"
    with httpx.Client(base_url=server.url) as http:  # and it still serves
        assert http.get("/readyz").status_code == 200


def test_a_client_that_never_sends_its_body_gets_408(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.settings.port), timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 500\r\n\r\n{\"events\": [")
        status, data = _status(sock)
        waited = time.monotonic() - t0
    assert status == 408 and b"stalled" in data
    assert waited < 5
