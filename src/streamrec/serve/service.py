"""What the service holds and runs: models, live state, logs, the consumer and the watcher.

:class:`ServiceState` is ``app.state.service``. At start-up it loads the registry's
serving versions, replays the training log and the catalog log into the state (events
beyond the time window set aside), opens the queue and starts two threads:

* the **consumer** (:class:`~streamrec.serve.consumer.EventConsumer`): queue -> training
  log -> state -> ack; a failing batch is retried, never passed over;
* the **watcher**: polls the registry aliases and hot-swaps the model set when a
  promotion (CLI or ``/admin/promote``) moves one.

An event acknowledged by ``POST /v1/events`` (202) is in the queue; after a crash it is
either in the log (replayed into the state at start-up) or still un-acked in the queue
(re-delivered; ids already in the log are not applied twice).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from streamrec.serve.catalog_log import CatalogChange, CatalogLog
from streamrec.serve.consumer import EventConsumer, outside_window
from streamrec.serve.metrics import Metrics
from streamrec.serve.settings import Settings

if TYPE_CHECKING:
    from streamrec.serve.engine import Engine, Models
    from streamrec.serve.eventlog import EventLog
    from streamrec.serve.queue import EventQueue
    from streamrec.serve.registry import ModelRegistry

__all__ = ["PromotionRefused", "ServiceState", "StartupError"]

log = logging.getLogger("streamrec.serve")

DAY = 86_400


class StartupError(Exception):
    """The service cannot start (bad registry, tampered artifact, unusable state dir or
    queue); the message is one line that says what to fix."""


class PromotionRefused(Exception):
    """A promotion the running service will not make (the alias is left as it was)."""


@dataclass
class ServiceState:
    """What the routes share (``app.state.service``)."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Engine = field(init=False)
    queue: EventQueue = field(init=False)
    event_log: EventLog = field(init=False)
    catalog_log: CatalogLog = field(init=False)
    registry: ModelRegistry = field(init=False)
    consumer: EventConsumer = field(init=False)
    ready: bool = False
    clock_offset: int = 0
    reload_error: str | None = None
    replay_set_aside: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    # swaps and promotions one at a time; a batch of events and a catalog change too
    swap_lock: threading.Lock = field(default_factory=threading.Lock)
    apply_lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> int:
        """The service clock (unix s): the wall clock, or the replay clock of a dataset
        that ended in the past."""
        return int(time.time()) + self.clock_offset

    # ------------------------------------------------------------------ readiness
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every acknowledged event is being applied, and the facts behind it."""
        if not self.ready:
            return False, {"ready": False, "reason": "starting: models loading"}
        h = self.consumer.health
        error = h.error  # read once: the consumer thread changes it meanwhile
        out: dict[str, Any] = {
            "versions": self.engine.versions, "consumer_error": error,
            "consumer_failures": h.failures, "failing_since": h.failing_since,
            "reload_error": self.reload_error,
            "quarantined": h.quarantined + self.replay_set_aside, "now": self.now()}
        reason = None
        try:
            out["queue_lag"] = lag = self.queue.lag()
        except Exception as exc:  # an unreachable queue: not ready, and say why
            lag = 0
            reason = f"the queue cannot be read: {exc}"
        bound = self.settings.ready_max_lag
        if not all(t.is_alive() for t in self.threads):
            reason = "a background thread stopped; restart the service"
        elif error is not None:
            reason = f"the event consumer is failing and retrying: {error}"
        elif reason is None and bound and lag > bound:
            reason = f"{lag} acknowledged events wait to be applied (bound {bound})"
        return reason is None, {"ready": reason is None, "reason": reason, **out}

    # ------------------------------------------------------------------ model swaps
    def set_versions(self, versions: dict[str, str]) -> None:
        self.metrics.model.clear()
        for name, version in versions.items():
            self.metrics.model.labels(name, version).set(1)

    def _swap(self, models: Models) -> dict[str, Any]:
        old = self.engine.swap(models)
        self.set_versions(models.versions)
        self.metrics.swaps.inc()
        self.reload_error = None
        log.info("hot swap %s -> %s", old, models.versions)
        return {"swapped": True, "previous_versions": old, "versions": models.versions}

    def reload(self) -> dict[str, Any]:
        """Load the registry's current ``ref`` versions; swap them in when any changed.

        Raises
        ------
        PromotionRefused
            The catalog's version changed (data is loaded at start-up only).
        RegistryError
            A version does not verify or load (the current set keeps serving).
        """
        from streamrec.serve.engine import load_models

        with self.swap_lock:
            current = self.engine.versions
            wanted = {n: self.registry.resolve(n, self.settings.ref).version for n in current}
            if wanted == current:
                self.reload_error = None
                return {"swapped": False, "versions": current}
            if wanted["catalog"] != current["catalog"]:
                raise PromotionRefused(
                    f"catalog {self.settings.ref} is {wanted['catalog']} but "
                    f"{current['catalog']} is served: a catalog (items, users, state) is "
                    "loaded at start-up only; restart the service to serve it")
            return self._swap(load_models(self.registry, self.settings.ref))

    def promote(self, name: str, version: str, alias: str) -> dict[str, Any]:
        """Point ``alias`` at ``version`` of ``name`` once it verifies and loads; when the
        alias is the one served, the set it makes is loaded first and swapped in.

        Raises
        ------
        RegistryError
            Unknown name or version (404).
        TamperedArtifactError, UnloadableVersionError, PromotionRefused
            Refused; the alias did not move (409).
        """
        from streamrec.serve.engine import ENTRY_LOADERS, load_entry, load_models
        from streamrec.serve.registry import TamperedArtifactError, UnloadableVersionError

        mv = self.registry.resolve(name, version)
        if alias != self.settings.ref or name not in ENTRY_LOADERS:
            previous = self.registry.promote(name, version, alias, load=load_entry)
            return {"previous": previous, "swapped": False}
        with self.swap_lock:
            if name == "catalog" and version != self.engine.versions["catalog"]:
                self.registry.verify(mv)  # a damaged version is named before the restart rule
                raise PromotionRefused(
                    f"catalog {version} would change the data this service loaded at start-up; "
                    f"promote it with `streamrec registry promote catalog {version}` and restart "
                    "the service")
            try:
                models = load_models(self.registry, self.settings.ref, pins={name: version})
            except (TamperedArtifactError, UnloadableVersionError):
                raise  # they name the file at fault already
            except Exception as exc:
                raise UnloadableVersionError(
                    f"{mv.artifacts}: {name} {version} cannot be loaded with the other "
                    f"{alias} entries ({type(exc).__name__}: {exc}); register a new version",
                    mv.artifacts) from exc
            previous = self.registry.promote(name, version, alias, load=lambda _: None)
            out = self._swap(models) if models.versions != self.engine.versions else {
                "swapped": False, "versions": self.engine.versions}
        return {"previous": previous, **out}

    def _watch(self) -> None:
        interval = self.settings.reload_interval_s
        while not self.stop.wait(interval):
            try:
                self.reload()
            except Exception as exc:  # keep serving the current set; report it once
                why = f"{type(exc).__name__}: {exc}"
                if why != self.reload_error:
                    log.warning("the registry's %s versions are not served: %s",
                                self.settings.ref, why)
                self.reload_error = why

    # ------------------------------------------------------------------ catalog changes
    def add_items(self, items: list[dict[str, Any]]) -> pl.DataFrame:
        """Add or update catalog items: logged durably (replayed at restart, between the
        events they came between), then live. Returns the items as added.

        Raises
        ------
        OSError
            The catalog log could not be written (nothing was changed).
        """
        with self.apply_lock:
            now = self.now()
            frame = pl.DataFrame(items, infer_schema_length=None).with_columns(
                pl.col("release_ts").fill_null(now))
            self.catalog_log.append(CatalogChange(now, self.consumer.health.last_event_id,
                                                  frame.to_dicts()))
            self.engine.add_items(frame, now=now)
        return frame

    # ------------------------------------------------------------------ start and stop
    def start(self) -> None:
        """Load everything and start the background threads.

        Raises
        ------
        StartupError
            One line naming what is wrong (the traceback is in the debug log).
        """
        try:
            self._start()
        except StartupError:
            raise
        except Exception as exc:
            log.debug("start-up failed", exc_info=exc)
            reason = str(exc).splitlines()[0] if str(exc) else ""
            raise StartupError(f"cannot start the service on {self.settings.registry}: "
                               f"{type(exc).__name__}: {reason}") from exc

    def _start(self) -> None:
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
        self.catalog_log = CatalogLog(state_dir / "catalog" / "changes.jsonl")
        past = self.event_log.read()
        changes = self.catalog_log.read()
        logged_ids = set(past["event_id"].to_list()) if past.height else set()
        past = self._drop_outside_window(past)
        self.clock_offset = self._clock_offset(models, past, changes)
        cfg = EngineConfig(n_ann=s.n_ann, n_covisit=s.n_covisit, n_popular=s.n_popular,
                           new_item_days=s.new_item_days, blend=s.blend,
                           policy=PolicyConfig(s.max_per_category, s.explore_slots))
        self.engine = Engine(models, cfg, clock=self.now)
        _replay(self.engine, past, changes)
        self.queue = open_queue(s.resolved_queue_url())
        self.consumer = EventConsumer(
            self.queue, self.event_log, self.engine, self.metrics,
            quarantine=state_dir / "quarantine" / "events.jsonl", clock=self.now,
            apply_lock=self.apply_lock, already_logged=logged_ids, batch=s.consumer_batch,
            max_future_s=s.max_future_s, max_backoff_s=s.consumer_max_backoff_s)
        self.consumer.health.last_event_id = past["event_id"][-1] if past.height else None
        self.set_versions(models.versions)
        self._start_threads()
        # the models and state are loaded for good: keep their objects out of the garbage
        # collector's scans (shorter pauses under load)
        gc.collect()
        gc.freeze()
        self.ready = True

    def _start_threads(self) -> None:
        targets: list[tuple[Callable[[threading.Event], None], str]] = [
            (self.consumer.run, "consumer")]
        if self.settings.reload_interval_s:
            targets.append((lambda _stop: self._watch(), "watcher"))
        for target, name in targets:
            t = threading.Thread(target=target, args=(self.stop,), name=f"streamrec-{name}",
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _drop_outside_window(self, past: pl.DataFrame) -> pl.DataFrame:
        """The logged events without those beyond the time window (written before the
        window was checked): they neither enter the state nor move the clock."""
        if not past.height:
            return past
        late = outside_window(past, self.settings.max_future_s, int(time.time()))
        if late.any():
            self.replay_set_aside = int(late.sum())
            log.warning("replay: %d logged event(s) are timestamped more than %d s after "
                        "they were received; set aside (not applied, clock unchanged)",
                        self.replay_set_aside, self.settings.max_future_s)
            past = past.filter(pl.Series(~late))
        return past

    def _clock_offset(self, models: Models, past: pl.DataFrame,
                      changes: list[CatalogChange]) -> int:
        """0 on the wall clock; in replay mode, the offset that continues time from the
        last thing the service saw (training data, an event received, an item added)."""
        ends = [int(models.meta["data_end"])]
        if past.height:
            ends += [int(past.select(pl.col(c).max()).item() or 0)
                     for c in ("timestamp", "received_at")]
        ends += [c.added_at for c in changes[-1:]]
        end = max(ends)
        wall = int(time.time())
        s = self.settings
        replay = s.clock == "replay" or (s.clock == "auto" and end < wall - DAY)
        return end + 1 - wall if replay else 0

    def shutdown(self) -> None:
        self.ready = False
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        if getattr(self, "queue", None) is not None:
            self.queue.close()


def _replay(engine: Engine, past: pl.DataFrame, changes: list[CatalogChange]) -> None:
    """Apply the logged events and catalog changes in the order they were first applied:
    each change after the event it names (``after_event_id``)."""
    pos: dict[str | None, int] = {}
    if changes:
        marks = {c.after_event_id for c in changes} - {None}
        where = (past.with_row_index("pos").filter(pl.col("event_id").is_in(list(marks)))
                 .unique("event_id", keep="first"))
        pos = dict(zip(where["event_id"].to_list(), where["pos"].to_list(), strict=True))
    start = 0
    for change in changes:  # per admin request, not per event: few
        # an unknown mark (its event set aside, say) keeps the change where it was
        cut = max(start, pos.get(change.after_event_id, start - 1) + 1)
        if cut > start:
            engine.apply_events(past.slice(start, cut - start))
        start = cut
        frame = pl.DataFrame(change.items, infer_schema_length=None)
        engine.add_items(frame, now=change.added_at)
    if past.height > start:
        engine.apply_events(past.slice(start))
