"""The event consumer: queue -> training log -> state -> ack, one batch at a time.

What it guarantees (the service's ``/readyz`` reports on it):

* **nothing acknowledged is passed over.** A batch that fails anywhere (a full disk under
  the log, a state update that raises, an unreachable queue) is kept and retried with
  backoff (0.5 s, doubling, up to ``max_backoff_s``) until it goes through; the next batch
  is not read before. The queue's ack moves only after the log and the state are written.
* **no step runs twice for a batch.** Each batch remembers which steps are done (set
  aside, logged, applied, derived), so a retry after a failed ack does not count the
  events in the state again.
* **bad events are set aside, not dropped.** Events that fail the event schema (possible
  only from producers writing to the queue directly), name an item the catalog does not
  know, or are timestamped more than ``max_future_s`` after they were received go to
  ``quarantine`` (one JSON line each, with the reason), never into the training log or the
  state.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from pydantic import TypeAdapter, ValidationError

from streamrec.serve.eventlog import append_durably
from streamrec.serve.schemas import QueuedEvent

if TYPE_CHECKING:
    from streamrec.serve.engine import Engine
    from streamrec.serve.eventlog import EventLog
    from streamrec.serve.metrics import Metrics
    from streamrec.serve.queue import Delivery, EventQueue

__all__ = ["ConsumerHealth", "EventConsumer", "outside_window"]

log = logging.getLogger("streamrec.serve")

_FIRST_BACKOFF_S = 0.5

_QUEUED_LIST = TypeAdapter(list[QueuedEvent])
#: polars dtypes of the queued event's fields (the events passed the schema check)
_QUEUED = {"event_id": pl.String, "user_id": pl.Int64, "item_id": pl.Int64,
           "event": pl.String, "timestamp": pl.Int64, "session_id": pl.Int64,
           "value": pl.Float64, "platform": pl.String, "received_at": pl.Int64}


def outside_window(frame: pl.DataFrame, max_future_s: int, now: int) -> np.ndarray:
    """Which events are timestamped more than ``max_future_s`` after they were received
    (``received_at``; events logged before that column existed are held to ``now``).

    Parameters
    ----------
    frame : polars.DataFrame, (n, ...)
        ``timestamp`` and, when present, ``received_at`` (Int64, nullable).
    max_future_s : int
    now : int
        Unix seconds.

    Returns
    -------
    ndarray of bool, (n,)
    """
    received = (frame["received_at"].fill_null(now) if "received_at" in frame.columns
                else pl.Series(np.full(frame.height, now, np.int64)))
    late = frame["timestamp"].cast(pl.Int64) > received + max_future_s
    return late.fill_null(True).to_numpy()


@dataclass
class ConsumerHealth:
    """What ``/readyz`` and ``/metrics`` say about the consumer."""

    error: str | None = None
    failing_since: float | None = None
    failures: int = 0
    quarantined: int = 0
    last_event_id: str | None = None  # the last event applied to the state


@dataclass
class _Batch:
    """One read from the queue and the steps already done for it."""

    deliveries: list[Delivery]
    candidates: list[dict[str, Any]]  # not in the log yet: to check
    checked: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)  # to log and apply
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # to set aside
    set_aside: bool = False
    logged: bool = False
    applied: bool = False
    derived: bool = False
    frame: pl.DataFrame | None = field(default=None, repr=False)


class EventConsumer:
    """Moves acknowledged events from the queue into the training log and the state.

    Parameters
    ----------
    queue : EventQueue
    event_log : EventLog
    engine : Engine
    metrics : Metrics
    quarantine : Path
        JSON-lines file of the events set aside.
    clock : callable() -> int
        The service clock (for events without ``received_at``).
    apply_lock : threading.Lock
        Held while a batch is logged and applied: a catalog change made meanwhile
        (``POST /admin/items``) lands between two batches, in the logs as in the state.
    already_logged : set of str
        Event ids the log held at start-up (replayed already): re-deliveries of them are
        acked without applying them again.
    batch : int
        Events per read.
    max_future_s : int
    max_backoff_s : float
    """

    def __init__(self, queue: EventQueue, event_log: EventLog, engine: Engine,
                 metrics: Metrics, *, quarantine: Path, clock: Callable[[], int],
                 apply_lock: threading.Lock, already_logged: set[str], batch: int = 1000,
                 max_future_s: int = 300, max_backoff_s: float = 30.0) -> None:
        self.queue = queue
        self.event_log = event_log
        self.engine = engine
        self.metrics = metrics
        self.quarantine = quarantine
        self.clock = clock
        self.apply_lock = apply_lock
        self.already_logged = already_logged
        self.batch = batch
        self.max_future_s = max_future_s
        self.max_backoff_s = max_backoff_s
        self.health = ConsumerHealth()

    # ------------------------------------------------------------------ the loop
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; a failing batch is retried, never skipped."""
        pending: _Batch | None = None
        delay = 0.0
        while not stop.is_set():
            try:
                if pending is None:
                    pending = self._take()
                    if pending is None:
                        continue
                self._finish(pending)
                pending = None
                delay = 0.0
                self._recovered()
                self.metrics.queue_lag.set(self.queue.lag())
            except Exception as exc:  # keep the batch; report, back off, retry it
                delay = min(self.max_backoff_s, max(_FIRST_BACKOFF_S, 2 * delay))
                self._failed(exc, delay, pending)
                stop.wait(delay)

    def _take(self) -> _Batch | None:
        deliveries = self.queue.read(self.batch, block_ms=200)
        if not deliveries:
            self.metrics.queue_lag.set(self.queue.lag())
            self.engine.refresh_if_stale()  # idle: keep the lists off the request path
            return None
        events = [d.event for d in deliveries]
        if self.already_logged:  # re-delivered after a crash: the log has them already
            fresh = [e for e in events if e.get("event_id") not in self.already_logged]
            if fresh:  # re-deliveries come first: from here on all is new
                self.already_logged = set()
            events = fresh
        # from here on the batch is held by run() until it is acked: whatever fails next
        # (even the checks) is retried on the same deliveries
        return _Batch(deliveries, events)

    def _finish(self, b: _Batch) -> None:
        if not b.checked:
            b.events, b.rejected = self._check(b.candidates)
            b.checked = True
        if b.rejected and not b.set_aside:
            lines = [json.dumps({"reason": why, "event": e}, separators=(",", ":"),
                                default=str) for e, why in b.rejected]
            self.quarantine.parent.mkdir(parents=True, exist_ok=True)
            append_durably(self.quarantine, lines)
            b.set_aside = True
            self.health.quarantined += len(b.rejected)
            self.metrics.quarantined.inc(len(b.rejected))
            log.warning("set aside %d event(s) in %s; first: %s", len(b.rejected),
                        self.quarantine, b.rejected[0][1])
        if b.events:
            if b.frame is None:
                b.frame = _frame(b.events)
            with self.apply_lock:
                if not b.logged:
                    self.event_log.append(b.events)
                    b.logged = True
                if not b.applied:
                    n = self.engine.apply_state(b.frame)
                    b.applied = True
                    b.derived = n == 0
                    self.health.last_event_id = b.events[-1]["event_id"]
            if not b.derived:
                self.engine.refresh_derived(b.frame)
                b.derived = True
        self.queue.ack([d.id for d in b.deliveries])
        self.metrics.consumed.inc(len(b.events))

    # ------------------------------------------------------------------ health
    def _failed(self, exc: Exception, delay: float, pending: _Batch | None) -> None:
        h = self.health
        first = h.error is None
        h.error = f"{type(exc).__name__}: {exc}"
        h.failing_since = h.failing_since or time.time()
        h.failures += 1
        self.metrics.consumer_failures.inc()
        self.metrics.consumer_failing.set(1)
        size = len(pending.deliveries) if pending is not None else 0
        if first:  # the whole story once, then one line per retry
            log.exception("event consumer failed on a batch of %d; retrying it in %.1f s",
                          size, delay)
        else:
            log.error("event consumer still failing (%d attempts): %s; retrying in %.1f s",
                      h.failures, h.error, delay)

    def _recovered(self) -> None:
        h = self.health
        if h.error is not None:
            log.warning("event consumer recovered after %.1f s",
                        time.time() - (h.failing_since or time.time()))
        h.error = None
        h.failing_since = None
        self.metrics.consumer_failing.set(0)

    # ------------------------------------------------------------------ checks
    def _check(self, events: list[dict[str, Any]]) -> tuple[list[dict], list[tuple[dict, str]]]:
        """Split a batch into the events to apply and those to set aside (with why)."""
        if not events:
            return [], []
        reasons = _schema_problems(events)
        ok = [i for i, why in enumerate(reasons) if why is None]
        if ok:
            frame = pl.DataFrame([events[i] for i in ok], schema=_QUEUED)
            late = outside_window(frame, self.max_future_s, self.clock())
            items = frame["item_id"].to_numpy()
            unknown = np.isin(items, self.engine.unknown_items(items))
            for j in np.flatnonzero(late | unknown):  # only the (rare) bad events
                reasons[ok[j]] = (f"timestamp more than {self.max_future_s} s after it was "
                                  "received" if late[j] else "item_id not in the catalog")
        good = [e for e, why in zip(events, reasons, strict=True) if why is None]
        bad = [(e, why) for e, why in zip(events, reasons, strict=True) if why is not None]
        return good, bad


def _schema_problems(events: list[dict[str, Any]]) -> list[str | None]:
    """Per event: why it does not fit :class:`~streamrec.serve.schemas.QueuedEvent`, or
    None (one pydantic pass over the batch, about 1 us an event)."""
    reasons: list[str | None] = [None] * len(events)
    try:
        _QUEUED_LIST.validate_python(events)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err.get("loc", ())
            if loc and isinstance(loc[0], int) and reasons[loc[0]] is None:
                field = ".".join(str(x) for x in loc[1:]) or "event"
                reasons[loc[0]] = f"{field}: {err.get('msg', 'invalid')}"
    return reasons


def _frame(events: list[dict[str, Any]]) -> pl.DataFrame:
    from streamrec.serve.bundle import log_frame

    return log_frame(pl.DataFrame(events, infer_schema_length=None))
