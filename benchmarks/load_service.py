"""Load test of ``streamrec serve`` at catalogue scale; prints one JSON object.

usage: python benchmarks/load_service.py [--items 200000] [--users 1000000] [--dim 64]
       [--rps 100] [--seconds 30] [--reuse DIR] [--out FILE]

**The registry** (4 entries, alias ``production``, the files of
:mod:`streamrec.serve.layout`). Training real models at 200K items x 1M users on two cores
takes far too long, so the large entries are *constructed*, not trained:

* ``ranker`` and ``session`` are trained for real by :func:`build_system` on a small
  synthetic world (``WorldConfig(n_users=3000, n_items=2000, n_days=30)``; LightGBM with
  300 trees, GRU4Rec). Their item-id codes only know that world's ids (other items get the
  unknown code 0) and the session model scores its 2000 items (the engine ignores items
  beyond a model's ``n_items_``); that changes scores, not the work per request.
* ``retrieval`` is an :class:`~streamrec.models.als.ImplicitALS` whose factors come from a
  clustered gaussian generator (``--users`` x ``--dim`` user factors, ``--items`` x
  ``--dim`` item factors, 256 clusters), saved with its item vectors, a
  :class:`~streamrec.retrieval.ann.VectorIndex` over them (HNSW from 50K items up; the
  graph with the higher recall@100 on 500 user vectors, see ``graph_recall`` in its
  ``params.json``),
  :class:`~streamrec.retrieval.covisit.CoVisitation` fitted on the synthetic plays and
  likes, a :class:`~streamrec.features.content.ContentProjector` fitted on the synthetic
  items table (text tokens of each item's cluster) and the row ids.
* ``catalog`` holds the items and users tables with ``--items`` items and
  ``--users`` users (the small world's categories, tiers and platforms, so the ranker's
  codes line up) and the :class:`~streamrec.serve.features.FeatureState` after
  ``--events`` synthetic events over the last 30 days (users drawn from a heavy-tailed
  activity, items mostly from the user's cluster), with the plays and likes as base seen
  items.

``--reuse DIR`` builds the registry into DIR the first time and reuses it afterwards
(``DIR/build.json`` records what was built); without it the build goes to a temporary
directory that is deleted at the end.

**The measurements** run against a real ``streamrec serve`` subprocess
(``OMP_NUM_THREADS=1``, SQLite queue in a fresh state directory):

1. open loop: ``--rps`` requests/s of ``GET /v1/users/{id}/recommendations?k=10`` for
   ``--seconds`` s, users uniform over the catalogue's plus ``--unknown`` of unknown ids.
   Latency is measured from each request's *scheduled* time (no coordinated omission) and
   from its actual send; the server's own stage timings (``timings_ms``) are reported too.
2. closed loop: N connections each sending back-to-back requests for ``--closed-seconds``
   s, N in ``--concurrency``: throughput and latency.
3. ingestion: ``--ingest-clients`` clients POST batches of 500 events as fast as they can
   for ``--ingest-seconds`` s: events/s acknowledged (202), then the time until the
   consumer has applied all of them; an open loop of 20 recommendation requests/s runs
   while the clients post.

The client runs in this process (keep-alive plain-socket HTTP/1.1 connections in threads
for the recommendation requests, httpx for the event batches) on the same machine: its
CPU time is reported (``client_cpu_s``) next to the server's, because both share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INGEST_BATCH = 500


def say(msg: str) -> None:
    """Progress on stderr (stdout is the JSON result)."""
    print(f"[load_service {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# =========================================================================== the server
class Server:
    """``streamrec serve`` in a subprocess (one torch/OpenMP thread)."""

    def __init__(self, registry: Path, state_dir: Path, port: int, log: Path) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", STREAMREC_STATE_DIR=str(state_dir))
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamrec.cli.main", "serve", "--registry", str(registry),
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=self._fh, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 900.0) -> float:
        t0 = time.perf_counter()
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while time.perf_counter() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited ({self.proc.returncode}): "
                                       f"{self.log.read_text()[-3000:]}")
                try:
                    if http.get("/readyz").status_code == 200:
                        return time.perf_counter() - t0
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"the server was not ready within {timeout} s")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._fh.close()


# =========================================================================== clients
def _pct(values: list[float] | np.ndarray) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    if not len(v):
        return {"n": 0}
    q = np.percentile(v, [50, 90, 99])
    return {"n": len(v), "p50": round(float(q[0]), 3), "p90": round(float(q[1]), 3),
            "p99": round(float(q[2]), 3), "max": round(float(v.max()), 3),
            "mean": round(float(v.mean()), 3)}


class HttpError(Exception):
    """A response this client cannot read (no Content-Length, a closed connection)."""


class _Http:
    """One keep-alive HTTP/1.1 connection over a plain socket, for the GET requests.

    The load generator shares the two cores with the server, so its own cost per request
    lands in every latency it measures. ``http.client`` parses each response's headers with
    the ``email`` package: about 0.4 ms more per request than this client on the loopback
    (``/healthz`` p50 1.22 vs 0.79 ms at 100 requests/s; httpx costs more still). The
    request is one prebuilt line; the response is read up to its ``Content-Length`` (every
    route of the service sends one); a broken connection is reopened on the next request.
    """

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        return sock

    def _read(self, sock: socket.socket, buf: bytes) -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise HttpError("the server closed the connection")
        return buf + chunk

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET path``."""
        try:
            sock = self.sock = self.sock or self._connect()
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
            buf = self.buf
            while (end := buf.find(b"\r\n\r\n")) < 0:
                buf = self._read(sock, buf)
            head = buf[:end].decode("latin-1").split("\r\n")
            length = next((int(v) for k, _, v in (h.partition(":") for h in head[1:])
                           if k.strip().lower() == "content-length"), None)
            if length is None:
                raise HttpError(f"no Content-Length in the response to {path}: {head[:3]}")
            while len(buf) < end + 4 + length:
                buf = self._read(sock, buf)
            self.buf = buf[end + 4 + length:]
            return int(head[0].split(" ", 2)[1]), buf[end + 4: end + 4 + length]
        except (OSError, HttpError, ValueError):
            self.close()  # reconnect on the next request
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


class _Recorder:
    """Latencies, statuses and server stage timings of recommendation requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sched: list[float] = []
        self.service: list[float] = []
        self.stages: dict[str, list[float]] = {"retrieve": [], "rank": [], "policy": []}
        self.errors: dict[str, int] = {}

    def request(self, http: _Http, user: int, scheduled: float) -> None:
        t_send = time.perf_counter()
        try:
            status, raw = http.get(f"/v1/users/{user}/recommendations?k=10")
            t_end = time.perf_counter()
            body = json.loads(raw) if status == 200 else None
        except (OSError, HttpError, ValueError) as exc:
            with self.lock:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            return
        with self.lock:
            if body is None:
                key = f"http_{status}"
                self.errors[key] = self.errors.get(key, 0) + 1
                return
            self.sched.append(1e3 * (t_end - scheduled))
            self.service.append(1e3 * (t_end - t_send))
            for stage, ms in body.get("timings_ms", {}).items():
                self.stages.setdefault(stage, []).append(ms)

    def summary(self) -> dict[str, Any]:
        total = [sum(x) for x in zip(*(self.stages[s] for s in ("retrieve", "rank", "policy")),
                                     strict=True)]
        return {"latency_ms": _pct(self.sched), "latency_from_send_ms": _pct(self.service),
                "server_stage_ms": {s: _pct(v) for s, v in self.stages.items()}
                | {"retrieve+rank+policy": _pct(total)},
                "errors": sum(self.errors.values()), "error_kinds": self.errors}


def _users(rng: np.random.Generator, n: int, n_users: int, unknown: float) -> np.ndarray:
    """Known ids (1..n_users) uniformly, ``unknown`` of them ids the catalogue lacks."""
    u = rng.integers(1, n_users + 1, n)
    new = rng.random(n) < unknown
    u[new] = n_users + 1 + rng.integers(0, 10 * n_users, int(new.sum()))
    return u


def open_loop(url: str, rps: float, seconds: float, users: np.ndarray,
              workers: int = 16) -> dict[str, Any]:
    """Fire requests at fixed times (``rps``) whatever the responses do.

    ``workers`` threads, each with its own connected keep-alive client (created before
    the clock starts), take the scheduled requests from a queue; a request waits in the
    queue only when all workers are busy, and that wait counts in ``latency_ms``.
    """
    n = int(rps * seconds)
    rec = _Recorder()
    jobs: queue.SimpleQueue[tuple[int, float] | None] = queue.SimpleQueue()
    clients = [_Http(url) for _ in range(workers)]
    for c in clients:  # connect now: no connection set-up inside the measurement
        c.get("/healthz")

    def worker(http: _Http) -> None:
        while (job := jobs.get()) is not None:
            rec.request(http, job[0], job[1])

    threads = [threading.Thread(target=worker, args=(c,), name=f"open-loop-{k}")
               for k, c in enumerate(clients)]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter() + 0.05
    late = 0
    for j in range(n):  # the dispatcher: one job per scheduled request
        at = t0 + j / rps
        wait = at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.005:
            late += 1
        jobs.put((int(users[j % len(users)]), at))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    return {"target_rps": rps, "seconds": round(elapsed, 2), "requests": n,
            "achieved_rps": round((n - sum(rec.errors.values())) / elapsed, 1),
            "dispatch_late_5ms": late, "client_cpu_s": round(time.process_time() - cpu0, 2),
            **rec.summary()}


def closed_loop(url: str, concurrency: int, seconds: float, users: np.ndarray,
                ) -> dict[str, Any]:
    """``concurrency`` connections, each sending its next request when the last returns."""
    rec = _Recorder()
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        conn = _Http(url)
        j = k
        while time.perf_counter() < stop:
            rec.request(conn, int(users[j % len(users)]), time.perf_counter())
            j += concurrency
        conn.close()

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    s = rec.summary()
    return {"concurrency": concurrency, "seconds": round(elapsed, 2),
            "rps": round(s["latency_ms"].get("n", 0) / elapsed, 1),
            "client_cpu_s": round(time.process_time() - cpu0, 2), **s}


def ingest(url: str, clients: int, seconds: float, n_users: int, n_items: int, tag: str,
           probe_users: np.ndarray, server: Server, mix: dict[str, float]) -> dict[str, Any]:
    """POST batches of events (event types drawn from ``mix``) as fast as possible; then
    wait for the consumer to catch up."""
    kinds = np.array(list(mix))
    p = np.array(list(mix.values()))
    acked = [0] * clients
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        rng = np.random.default_rng(1000 + k)
        with httpx.Client(base_url=url, timeout=60) as http:
            b = 0
            while time.perf_counter() < stop:
                u = rng.integers(1, n_users + 1, INGEST_BATCH).tolist()
                i = rng.integers(1, n_items + 1, INGEST_BATCH).tolist()
                e = kinds[rng.choice(len(kinds), INGEST_BATCH, p=p)].tolist()
                batch = [{"event_id": f"{tag}-{k}-{b}-{j}", "user_id": u[j], "item_id": i[j],
                          "event": e[j], "session_id": u[j] * 1000 + 999}
                         for j in range(INGEST_BATCH)]
                b += 1
                try:
                    r = http.post("/v1/events", content=json.dumps({"events": batch}),
                                  headers={"content-type": "application/json"})
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    continue
                if r.status_code == 202:
                    acked[k] += r.json()["accepted"]
                else:
                    errors.append(f"http_{r.status_code}")

    probe: dict[str, Any] = {}

    def prober() -> None:  # an open loop of 20 requests/s while the clients post
        probe.update(open_loop(url, 20.0, seconds, probe_users, workers=4))

    cpu0, srv0 = time.process_time(), server.cpu_s()
    t0 = time.perf_counter()
    pt = threading.Thread(target=prober)
    pt.start()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lag = -1
    with httpx.Client(base_url=url, timeout=30) as http:
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            lag = int(http.get("/readyz").json().get("queue_lag", -1))
            if lag == 0:
                break
            time.sleep(0.1)
    drained = time.perf_counter() - t0
    pt.join()
    total = sum(acked)
    return {"clients": clients, "batch": INGEST_BATCH, "seconds": round(elapsed, 2),
            "events_acknowledged": total, "acknowledged_per_s": round(total / elapsed, 1),
            "applied_after_s": round(drained, 2) if lag == 0 else None,
            "applied_per_s": round(total / drained, 1) if lag == 0 else None,
            "errors": len(errors), "client_cpu_s": round(time.process_time() - cpu0, 2),
            "server_cpu_s": round(server.cpu_s() - srv0, 2),
            "recommendations_meanwhile": probe}


# =========================================================================== main
def _phase(name: str, server: Server, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    say(name)
    cpu0 = server.cpu_s()
    out = fn()
    out.setdefault("server_cpu_s", round(server.cpu_s() - cpu0, 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--events", type=int, default=3_000_000,
                        help="synthetic events behind the catalogue's feature state")
    parser.add_argument("--rps", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="open-loop duration")
    parser.add_argument("--unknown", type=float, default=0.05, help="share of unknown users")
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--closed-seconds", type=float, default=10.0)
    parser.add_argument("--ingest-clients", default="1,4")
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", type=Path, default=None,
                        help="build the registry into DIR once, reuse it afterwards")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    # the registry's construction lives next to this file (benchmarks/ is on sys.path)
    from load_service_registry import EVENT_MIX, build_registry
    from streamrec.serve.demo import free_port

    workdir = args.reuse or Path(tempfile.mkdtemp(prefix="streamrec-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="streamrec-load-state-"))
    out: dict[str, Any] = {
        "benchmark": "load_service", "cpus": os.cpu_count(),
        "python": platform.python_version(), "machine": platform.machine(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "notes": ["client and server share the machine's cores: see client_cpu_s and "
                  "server_cpu_s", "server: streamrec serve, OMP_NUM_THREADS=1, SQLite queue",
                  "latency_ms is from each request's scheduled send time (open loop) or its "
                  "send (closed loop); server_stage_ms is the response's timings_ms"]}
    server = None
    try:
        out["build"] = build_registry(workdir, n_items=args.items, n_users=args.users,
                                      dim=args.dim, n_events=args.events, seed=args.seed,
                                      say=say)
        say(f"registry ready: {out['build']}")
        server = Server(workdir / "registry", state_dir, free_port(), state_dir / "serve.log")
        out["server"] = {"startup_s": round(server.wait_ready(), 1)}
        out["server"]["rss_mb_after_start"] = server.rss_mb()
        rng = np.random.default_rng(args.seed + 1)
        warm = closed_loop(server.url, 1, 3.0, _users(rng, 1000, args.users, args.unknown))
        out["warmup"] = {"requests": warm["latency_ms"].get("n", 0), "errors": warm["errors"]}
        users = _users(rng, int(args.rps * args.seconds) + 1, args.users, args.unknown)
        out["open_loop"] = _phase(f"open loop: {args.rps} requests/s for {args.seconds} s",
                                  server, lambda: open_loop(server.url, args.rps, args.seconds,
                                                            users))
        out["closed_loop"] = []
        for c in (int(x) for x in args.concurrency.split(",") if x):
            users = _users(rng, 100_000, args.users, args.unknown)
            out["closed_loop"].append(_phase(
                f"closed loop: {c} connections", server,
                lambda c=c, users=users: closed_loop(server.url, c, args.closed_seconds, users)))
        best = max(out["closed_loop"], key=lambda r: r["rps"], default=None)
        out["max_throughput_rps"] = best["rps"] if best else None
        out["ingest"] = []
        for c in (int(x) for x in args.ingest_clients.split(",") if x):
            probe_users = _users(rng, 10_000, args.users, args.unknown)
            out["ingest"].append(_phase(
                f"ingestion: {c} clients", server,
                lambda c=c, pu=probe_users: ingest(server.url, c, args.ingest_seconds,
                                                   args.users, args.items, f"c{c}", pu,
                                                   server, EVENT_MIX)))
        out["server"]["rss_mb_at_end"] = server.rss_mb()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        if args.reuse is None:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
