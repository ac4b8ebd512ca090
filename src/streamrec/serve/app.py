"""The FastAPI service: ``create_app(settings)``; models load in the lifespan, never at import.

Background work started in the lifespan:

* the **consumer** thread reads the durable queue, appends each batch to the training
  log (fsync), applies it to the online state, then acks it. An event acknowledged by
  ``POST /v1/events`` (202) is in the queue; after a crash it is either in the log (and
  replayed into the state at start-up) or still un-acked in the queue (re-delivered; ids
  already in the log are not applied twice).
* the **watcher** thread polls the registry aliases and hot-swaps the model set when a
  promotion (CLI or ``/admin/promote``) moves one.

Routes and their errors are in :mod:`streamrec.serve.routes`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamrec.serve.settings import Settings

__all__ = ["ServiceState", "create_app"]

log = logging.getLogger("streamrec.serve")

_LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5)


class Metrics:
    """Prometheus metrics of one app (own registry: several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("streamrec_request_seconds", "request latency by route",
                                 ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r)
        self.requests = Counter("streamrec_requests", "requests by route and status",
                                ["route", "status"], registry=r)
        self.stage = Histogram("streamrec_stage_seconds", "recommendation stage timings",
                               ["stage"], buckets=_LATENCY_BUCKETS, registry=r)
        self.events = Counter("streamrec_events", "events received",
                              ["result"], registry=r)
        self.consumed = Counter("streamrec_events_consumed", "events applied to the state",
                                registry=r)
        self.queue_lag = Gauge("streamrec_queue_lag", "events acknowledged but not yet "
                               "applied to the state", registry=r)
        self.model = Gauge("streamrec_model_version", "serving version of each entry (1 = "
                           "current)", ["name", "version"], registry=r)
        self.swaps = Counter("streamrec_model_swaps", "hot swaps of the model set", registry=r)


@dataclass
class ServiceState:
    """What the routes share (``app.state.service``)."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Any = None
    queue: Any = None
    event_log: Any = None
    registry: Any = None
    ready: bool = False
    consumer_error: str | None = None
    clock_offset: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    swap_lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> int:
        return int(time.time()) + self.clock_offset

    def set_versions(self, versions: dict[str, str]) -> None:
        self.metrics.model.clear()
        for name, version in versions.items():
            self.metrics.model.labels(name, version).set(1)

    # ------------------------------------------------------------------ model swaps
    def reload(self) -> dict[str, Any]:
        """Load the registry's current ``ref`` versions; swap them in when any changed."""
        from streamrec.serve.engine import load_models

        with self.swap_lock:
            current = self.engine.versions
            wanted = {n: self.registry.resolve(n, self.settings.ref).version for n in current}
            if wanted == current:
                return {"swapped": False, "versions": current}
            if wanted["catalog"] != current["catalog"]:
                raise RuntimeError("the catalog entry changed: restart the service to load a "
                                   "new catalog and state (models swap live, data does not)")
            models = load_models(self.registry, self.settings.ref)
            old = self.engine.swap(models)
            self.set_versions(models.versions)
            self.metrics.swaps.inc()
            log.info("hot swap %s -> %s", old, models.versions)
            return {"swapped": True, "previous_versions": old, "versions": models.versions}

    def _watch(self) -> None:
        interval = self.settings.reload_interval_s
        while not self.stop.wait(interval):
            try:
                self.reload()
            except Exception as exc:  # keep serving the current models; report and retry
                log.warning("model reload failed: %s", exc)

    # ------------------------------------------------------------------ consumer
    def _consume(self) -> None:
        """Queue -> training log -> state -> ack, until stopped."""
        s = self.settings
        recovered = self._recovered_ids
        while not self.stop.is_set():
            try:
                batch = self.queue.read(s.consumer_batch, block_ms=200)
                if not batch:
                    self.metrics.queue_lag.set(self.queue.lag())
                    self.engine.refresh_if_stale()  # idle: keep the lists off the request path
                    continue
                events = [d.event for d in batch]
                if recovered:  # re-delivered after a crash: skip what the log already has
                    events = [e for e in events if e["event_id"] not in recovered]
                    if events:  # re-deliveries come first: from here on all is new
                        recovered = set()
                if events:
                    self.event_log.append(events)
                    self.engine.apply_events(_frame(events))
                self.queue.ack([d.id for d in batch])
                self.metrics.consumed.inc(len(events))
                self.metrics.queue_lag.set(self.queue.lag())
                self.consumer_error = None
            except Exception as exc:  # the event stays un-acked and is retried
                self.consumer_error = f"{type(exc).__name__}: {exc}"
                log.exception("event consumer failed; retrying")
                self.stop.wait(1.0)

    def start(self) -> None:
        """Load everything and start the background threads (the lifespan's start-up)."""
        import faiss
        import torch

        from streamrec.serve.engine import Engine, EngineConfig, load_models
        from streamrec.serve.eventlog import EventLog
        from streamrec.serve.policy import PolicyConfig
        from streamrec.serve.queue import open_queue
        from streamrec.serve.registry import ModelRegistry

        s = self.settings
        self.stop.clear()  # the app may be started again after a shutdown
        self.threads = []
        torch.set_num_threads(s.torch_threads)
        faiss.omp_set_num_threads(s.torch_threads)  # one query at a time: no fan-out
        self.registry = ModelRegistry(s.registry)
        models = load_models(self.registry, s.ref)
        state_dir = s.resolved_state_dir()
        state_dir.mkdir(parents=True, exist_ok=True)
        self.event_log = EventLog(state_dir / "log")
        past = self.event_log.read()
        end = max(int(models.meta["data_end"]),
                  int(past["timestamp"].max()) if past.height else 0)
        wall = int(time.time())
        replay = s.clock == "replay" or (s.clock == "auto" and end < wall - 86_400)
        self.clock_offset = end + 1 - wall if replay else 0
        cfg = EngineConfig(n_ann=s.n_ann, n_covisit=s.n_covisit, n_popular=s.n_popular,
                           new_item_days=s.new_item_days, blend=s.blend,
                           policy=PolicyConfig(s.max_per_category, s.explore_slots))
        self.engine = Engine(models, cfg, clock=self.now)
        if past.height:  # events consumed before a restart: back into the state
            self.engine.apply_events(past)
        self._recovered_ids = set(past["event_id"].to_list()) if past.height else set()
        self.queue = open_queue(s.resolved_queue_url())
        self.set_versions(models.versions)
        for target, name in ((self._consume, "consumer"), (self._watch, "watcher")):
            if name == "watcher" and not s.reload_interval_s:
                continue
            t = threading.Thread(target=target, name=f"streamrec-{name}", daemon=True)
            t.start()
            self.threads.append(t)
        # the models and state are loaded for good: keep their objects out of the garbage
        # collector's scans (shorter pauses under load)
        gc.collect()
        gc.freeze()
        self.ready = True

    def shutdown(self) -> None:
        self.ready = False
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        if self.queue is not None:
            self.queue.close()


def _frame(events: list[dict]) -> pl.DataFrame:
    from streamrec.serve.bundle import log_frame

    return log_frame(pl.DataFrame(events, infer_schema_length=None))


class _Observe:
    """ASGI middleware: refuses bodies over ``max_body`` bytes (413) and records latency and
    status per route template (a plain ASGI class: ``BaseHTTPMiddleware`` costs about a
    millisecond per request)."""

    def __init__(self, app: Any, *, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_body):
            response = JSONResponse({"detail": f"request body over {self.max_body} bytes; "
                                     "send smaller batches"}, status_code=413)
            await response(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(path, scope["method"]).observe(time.perf_counter() - t0)
            self.metrics.requests.labels(path, str(status)).inc()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The StreamRec service (see :mod:`streamrec.serve.routes` for the API)."""
    from streamrec.serve.routes import router

    settings = settings or Settings()
    service = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.shutdown()

    app = FastAPI(
        title="StreamRec", version="0.1.0", lifespan=lifespan,
        description="Two-stage recommendations (retrieve -> rank -> policy) on live state, "
                    "an event stream that updates it, and the model registry's versions.")
    app.state.service = service
    app.include_router(router)

    app.add_middleware(_Observe, metrics=service.metrics, max_body=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
                  for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {where}", "errors": errors},
                            status_code=422)

    return app
