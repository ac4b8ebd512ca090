"""Durable, idempotent event queue between ``POST /events`` and the state consumer.

Two backends share one interface, :class:`EventQueue`:

- :class:`SQLiteQueue` (default, embedded): one WAL-mode SQLite file with
  ``synchronous=FULL``; an append is durable against a process kill and a power loss once
  it returns.
- :class:`RedisQueue`: a Redis Stream read through a consumer group; dedupe and append run
  atomically in one Lua script per chunk of a batch. Durable only as far as the server's
  persistence is (``--appendonly yes --appendfsync always`` for the same guarantee).

Events are plain JSON-serialisable dicts; the queue only looks at ``event_id`` (the
idempotency key) and hands each event back exactly as it was appended (ints stay ints,
floats stay floats, ``None`` stays ``None``).

Delivery semantics (both backends): :meth:`EventQueue.read` hands each event to this
consumer once per process lifetime; events read but never acknowledged (a consumer that
crashed, or was closed before :meth:`EventQueue.ack`) are handed out again, first and in
append order, by the next queue opened on the same storage with the same consumer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "AppendResult",
    "Delivery",
    "EventQueue",
    "QueueError",
    "RedisQueue",
    "SQLiteQueue",
    "open_queue",
]


class QueueError(Exception):
    """A queue backend failed (unreachable server, unwritable file, closed queue)."""


@dataclass(frozen=True)
class AppendResult:
    """Outcome of :meth:`EventQueue.append`.

    Attributes
    ----------
    accepted : int
        Events newly enqueued (durable when ``append`` returned).
    duplicates : int
        Events whose ``event_id`` was already appended before, or earlier in the same batch;
        they were not enqueued again.
    """

    accepted: int
    duplicates: int


@dataclass(frozen=True)
class Delivery:
    """One event handed to the consumer by :meth:`EventQueue.read`.

    Attributes
    ----------
    id : str
        Backend message id (SQLite sequence number, Redis stream id); pass it to
        :meth:`EventQueue.ack` once the event has been processed.
    event : dict
        The event exactly as it was appended.
    """

    id: str
    event: dict


def _encode_batch(events: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Validate a batch and return its event ids and JSON payloads, in order.

    The whole batch is checked before anything is written, so a bad event rejects the
    batch without a partial append.
    """
    if isinstance(events, (str, bytes, Mapping)):
        raise TypeError(
            "append expects a sequence of event dicts, got a single "
            f"{type(events).__name__}; wrap it in a list"
        )
    ids: list[str] = []
    payloads: list[str] = []
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise TypeError(f"event {i} of the batch is a {type(event).__name__}, not a dict")
        eid = event.get("event_id")
        if not isinstance(eid, str) or not eid:
            raise ValueError(
                f"event {i} of the batch has event_id={eid!r}; every event needs a non-empty "
                "string event_id (the idempotency key)"
            )
        try:
            payloads.append(json.dumps(event, separators=(",", ":"), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"event {i} of the batch (event_id={eid!r}) is not JSON-serialisable "
                f"({exc}); send only str/int/float/None values and no NaN/inf"
            ) from exc
        ids.append(eid)
    return ids, payloads


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for error messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class EventQueue(ABC):
    """Durable, idempotent FIFO of event dicts with one consumer group.

    Producers call :meth:`append` (any thread); the consumer calls :meth:`read` then
    :meth:`ack`. Usable as a context manager (closes on exit).
    """

    backend: str = "abstract"

    @abstractmethod
    def append(self, events: Sequence[dict]) -> AppendResult:
        """Durably enqueue ``events``, skipping event ids seen before.

        Parameters
        ----------
        events : sequence of dict, length N
            Events with a non-empty string ``event_id``; otherwise opaque JSON values.

        Returns
        -------
        AppendResult
            ``accepted + duplicates == N``. Every accepted event is durable on return.

        Raises
        ------
        TypeError, ValueError
            An event is not a dict, lacks a string ``event_id`` or is not JSON-serialisable
            (nothing of the batch is written).
        QueueError
            The backend failed; the batch may be retried safely (idempotent).
        """

    @abstractmethod
    def read(self, max_events: int = 1000, block_ms: int = 0) -> list[Delivery]:
        """Next deliveries for this consumer, in append order.

        Un-acknowledged deliveries from a previous queue on the same storage (a consumer
        that crashed) come first, then events never delivered.

        Parameters
        ----------
        max_events : int
            At most this many deliveries.
        block_ms : int
            When nothing is available, wait up to this many milliseconds for new events
            (0: return at once).

        Returns
        -------
        list of Delivery
            Possibly empty.
        """

    @abstractmethod
    def ack(self, ids: Sequence[str]) -> None:
        """Mark deliveries processed; they are never delivered again.

        Parameters
        ----------
        ids : sequence of str
            :attr:`Delivery.id` values; unknown or already-acked ids are ignored.
        """

    @abstractmethod
    def lag(self) -> int:
        """Number of events appended but not yet acknowledged."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Backend, counts and lag, for the ``/health`` and ``/metrics`` routes."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend connection (idempotent)."""

    def __enter__(self) -> EventQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_acked_seq ON events (acked, seq);
"""


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``), committed, or rolled back
    on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SQLiteQueue(EventQueue):
    """Event queue in one SQLite file (WAL journal, ``synchronous=FULL``).

    An append is one transaction (``INSERT OR IGNORE`` on the unique ``event_id``), so it
    is all-or-nothing and durable against a process kill and, with ``synchronous=FULL``,
    a power loss once it returns. The table keeps every event id ever appended, so dedupe
    holds for the life of the file. One connection serialised by a lock serves all
    threads (request threads append, a consumer thread reads and acks); several processes
    may open the same file.

    SQLite keeps one ``acked`` flag per event, i.e. one consumer group: ``consumer`` only
    names the reader in :meth:`stats`.

    Parameters
    ----------
    path : str or Path
        Database file; parent directories are created. ``":memory:"`` works but is not
        durable.
    consumer : str
        Consumer name (informational).
    synchronous : {"FULL", "EXTRA", "NORMAL", "OFF"}
        SQLite ``synchronous`` pragma. ``NORMAL`` survives a process kill but may lose the
        last transactions on power loss.
    busy_timeout_ms : int
        How long a write waits for another process holding the write lock.
    """

    backend = "sqlite"
    _POLL_S = 0.1

    def __init__(
        self,
        path: str | Path,
        *,
        consumer: str = "state",
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
    ) -> None:
        sync = synchronous.upper()
        if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(
                f"synchronous={synchronous!r}; use one of FULL (default), EXTRA, NORMAL, OFF"
            )
        self.path = str(path)
        self.consumer = consumer
        self.synchronous = sync
        self._lock = threading.Lock()
        self._wakeup = threading.Event()  # set by append: wakes a blocked read
        self._delivered_upto = 0  # highest seq handed out by this instance
        self._appended = 0
        self._duplicates = 0
        self._closed = False
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
            )
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if self.path != ":memory:" and str(mode).lower() != "wal":
                raise QueueError(
                    f"cannot switch {self.path} to WAL journal mode (got {mode!r}); "
                    "use a local filesystem that supports shared memory"
                )
            self._conn.execute(f"PRAGMA synchronous={sync}")
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise QueueError(
                f"cannot open SQLite queue at {self.path}: {exc}; check the path is a "
                "writable file on a local disk"
            ) from exc

    def _check_open(self) -> sqlite3.Connection:
        if self._closed:
            raise QueueError(f"SQLite queue at {self.path} is closed")
        return self._conn

    def append(self, events: Sequence[dict]) -> AppendResult:
        """Durably enqueue ``events`` (see :meth:`EventQueue.append`)."""
        ids, payloads = _encode_batch(events)
        if not ids:
            return AppendResult(0, 0)
        with self._lock:
            conn = self._check_open()
            try:
                with _immediate(conn):
                    before = conn.total_changes
                    conn.executemany(
                        "INSERT OR IGNORE INTO events (event_id, payload) VALUES (?, ?)",
                        zip(ids, payloads, strict=True),
                    )
                    accepted = conn.total_changes - before
            except sqlite3.Error as exc:
                raise QueueError(
                    f"append to SQLite queue {self.path} failed: {exc}; the batch was not "
                    "written and can be retried"
                ) from exc
        self._appended += accepted
        self._duplicates += len(ids) - accepted
        if accepted:
            self._wakeup.set()
        return AppendResult(accepted=accepted, duplicates=len(ids) - accepted)

    def _fetch(self, max_events: int) -> list[Delivery]:
        with self._lock:
            conn = self._check_open()
            try:
                rows = conn.execute(
                    "SELECT seq, payload FROM events WHERE acked = 0 AND seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (self._delivered_upto, int(max_events)),
                ).fetchall()
            except sqlite3.Error as exc:
                raise QueueError(f"read from SQLite queue {self.path} failed: {exc}") from exc
            if rows:
                self._delivered_upto = rows[-1][0]
        return [Delivery(id=str(seq), event=json.loads(payload)) for seq, payload in rows]

    def read(self, max_events: int = 1000, block_ms: int = 0) -> list[Delivery]:
        """Next un-acked events in append order (see :meth:`EventQueue.read`)."""
        if max_events <= 0:
            return []
        deadline = time.monotonic() + max(block_ms, 0) / 1000
        while True:
            out = self._fetch(max_events)
            if out:
                return out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            # woken at once by an append of this process; appends by other processes are
            # seen at the next poll (no busy loop competing with request threads)
            self._wakeup.wait(min(self._POLL_S, remaining))
            self._wakeup.clear()

    def ack(self, ids: Sequence[str]) -> None:
        """Mark deliveries processed (see :meth:`EventQueue.ack`)."""
        try:
            seqs = [(int(i),) for i in ids]
        except ValueError as exc:
            raise ValueError(f"SQLite delivery ids are integers as strings: {exc}") from exc
        if not seqs:
            return
        with self._lock:
            conn = self._check_open()
            try:
                with _immediate(conn):
                    conn.executemany("UPDATE events SET acked = 1 WHERE seq = ?", seqs)
            except sqlite3.Error as exc:
                raise QueueError(f"ack on SQLite queue {self.path} failed: {exc}") from exc

    def _count(self, sql: str) -> int:
        with self._lock:
            conn = self._check_open()
            try:
                return int(conn.execute(sql).fetchone()[0] or 0)
            except sqlite3.Error as exc:
                raise QueueError(f"query on SQLite queue {self.path} failed: {exc}") from exc

    def lag(self) -> int:
        """Events appended but not yet acknowledged."""
        return self._count("SELECT COUNT(*) FROM events WHERE acked = 0")

    def stats(self) -> dict[str, Any]:
        """``backend``, ``path``, ``consumer``, ``appended`` (all time), ``lag`` and this
        instance's ``appended_session`` / ``duplicates_session``."""
        return {
            "backend": self.backend,
            "path": self.path,
            "consumer": self.consumer,
            "appended": self._count("SELECT COUNT(*) FROM events"),
            "lag": self.lag(),
            "appended_session": self._appended,
            "duplicates_session": self._duplicates,
        }

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


# --------------------------------------------------------------------------- Redis

# KEYS[1] = stream, KEYS[2..] = dedupe keys; ARGV[1] = ttl seconds (0: none),
# ARGV[2] = approximate MAXLEN (0: none), ARGV[3..] = payloads aligned with KEYS[2..].
_APPEND_LUA = """
local ttl = tonumber(ARGV[1])
local maxlen = tonumber(ARGV[2])
local accepted = 0
for i = 2, #KEYS do
  local fresh
  if ttl > 0 then
    fresh = redis.call('SET', KEYS[i], '1', 'NX', 'EX', ttl)
  else
    fresh = redis.call('SET', KEYS[i], '1', 'NX')
  end
  if fresh then
    if maxlen > 0 then
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'e', ARGV[i + 1])
    else
      redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1])
    end
    accepted = accepted + 1
  end
end
return accepted
"""


class RedisQueue(EventQueue):
    """Event queue on a Redis Stream read through a consumer group.

    Each chunk of a batch runs as one Lua script: ``SET <stream>:eid:<event_id> 1 NX EX
    ttl`` and, only when the key was new, ``XADD``; chunks go in one pipeline, so a batch
    costs one round trip. Re-delivery uses the group's pending entries list: a reopened
    consumer first reads its own pending entries (``XREADGROUP ... 0``), then new ones
    (``XREADGROUP ... >``). Pending entries of *other* consumer names are not claimed.

    Durability: Redis is only as durable as its persistence configuration. For "an
    acknowledged event is never lost" across a server crash run the server with
    ``--appendonly yes --appendfsync always`` (the tests do, and check that events
    survive a SIGKILL of the server). With ``appendfsync everysec`` up to a second of
    acknowledged events can be lost on a crash.

    Parameters
    ----------
    url : str
        ``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS).
    stream : str
        Stream key; dedupe keys are ``<stream>:eid:<event_id>``.
    group : str
        Consumer group (created with ``MKSTREAM`` if missing).
    consumer : str
        Consumer name inside the group; re-delivery after a crash needs the same name.
    dedupe_ttl_s : int or None
        How long an event id is remembered for dedupe (None: forever).
    maxlen : int or None
        Approximate cap on the stream length (``XADD MAXLEN ~``); None keeps everything.
        Trimming may drop events not yet read: size it well above the expected lag.
    connect_timeout_s : float
        Socket connect timeout; an unreachable server fails fast with :class:`QueueError`.
    chunk : int
        Events per Lua call inside one pipeline.
    """

    backend = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "streamrec:events",
        group: str = "state",
        consumer: str = "state-1",
        dedupe_ttl_s: int | None = 7 * 86400,
        maxlen: int | None = None,
        connect_timeout_s: float = 2.0,
        chunk: int = 1000,
    ) -> None:
        try:
            import redis
        except ImportError as exc:
            raise QueueError(
                "RedisQueue needs the redis package: pip install 'streamrec[redis]', "
                "or use sqlite:///path/to/queue.db"
            ) from exc
        if dedupe_ttl_s is not None and dedupe_ttl_s <= 0:
            raise ValueError(
                f"dedupe_ttl_s={dedupe_ttl_s}; use a positive number of seconds or None"
            )
        if maxlen is not None and maxlen <= 0:
            raise ValueError(f"maxlen={maxlen}; use a positive length or None")
        self._redis_mod = redis
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.dedupe_ttl_s = dedupe_ttl_s
        self.maxlen = maxlen
        self.chunk = max(1, int(chunk))
        self._prefix = f"{stream}:eid:"
        self._recovering = True  # still draining this consumer's pending list
        self._pending_cursor = "0"
        self._appended = 0
        self._duplicates = 0
        self._closed = False
        self._lock = threading.Lock()  # guards the read cursor, not the client
        try:
            self._r = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=connect_timeout_s,
                protocol=2,
            )
        except ValueError as exc:
            raise ValueError(f"invalid redis URL {_redact(url)!r}: {exc}") from exc
        try:
            self._r.ping()
            try:
                self._r.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._script = self._r.register_script(_APPEND_LUA)
        except redis.ConnectionError as exc:
            self._r.close()
            raise QueueError(
                f"cannot reach redis at {_redact(url)}: {exc}; is redis-server running? "
                "start it or use sqlite:///path/to/queue.db"
            ) from exc
        except redis.RedisError as exc:
            self._r.close()
            raise QueueError(f"redis at {_redact(url)} refused the queue setup: {exc}") from exc

    def _fail(self, what: str, exc: Exception) -> QueueError:
        if isinstance(exc, self._redis_mod.ConnectionError):
            return QueueError(
                f"cannot reach redis at {_redact(self.url)} during {what}: {exc}; is "
                "redis-server running? start it or use sqlite:///path/to/queue.db"
            )
        return QueueError(f"redis {what} on stream {self.stream!r} failed: {exc}")

    def _check_open(self) -> None:
        if self._closed:
            raise QueueError(f"redis queue on stream {self.stream!r} is closed")

    def append(self, events: Sequence[dict]) -> AppendResult:
        """Durably enqueue ``events`` (see :meth:`EventQueue.append`)."""
        ids, payloads = _encode_batch(events)
        if not ids:
            return AppendResult(0, 0)
        self._check_open()
        ttl = str(self.dedupe_ttl_s or 0)
        maxlen = str(self.maxlen or 0)
        try:
            pipe = self._r.pipeline(transaction=False)
            for lo in range(0, len(ids), self.chunk):
                keys = [self.stream, *(self._prefix + e for e in ids[lo : lo + self.chunk])]
                self._script(keys=keys, args=[ttl, maxlen, *payloads[lo : lo + self.chunk]],
                             client=pipe)
            accepted = int(sum(pipe.execute()))
        except self._redis_mod.RedisError as exc:
            raise self._fail("append", exc) from exc
        self._appended += accepted
        self._duplicates += len(ids) - accepted
        return AppendResult(accepted=accepted, duplicates=len(ids) - accepted)

    def _xread(self, start: str, count: int, block: int | None) -> list[tuple[str, Any]]:
        resp = self._r.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        )
        if not resp:
            return []
        return list(resp[0][1])

    def read(self, max_events: int = 1000, block_ms: int = 0) -> list[Delivery]:
        """Pending deliveries of this consumer first, then new events (see
        :meth:`EventQueue.read`)."""
        if max_events <= 0:
            return []
        self._check_open()
        try:
            with self._lock:
                while self._recovering:
                    entries = self._xread(self._pending_cursor, max_events, None)
                    if not entries:
                        self._recovering = False
                        break
                    self._pending_cursor = entries[-1][0]
                    out, gone = self._decode(entries)
                    if gone:  # pending entries trimmed/deleted from the stream
                        self._r.xack(self.stream, self.group, *gone)
                    if out:
                        return out
            entries = self._xread(">", max_events, block_ms if block_ms > 0 else None)
        except self._redis_mod.RedisError as exc:
            raise self._fail("read", exc) from exc
        out, gone = self._decode(entries)
        if gone:
            try:
                self._r.xack(self.stream, self.group, *gone)
            except self._redis_mod.RedisError as exc:
                raise self._fail("ack", exc) from exc
        return out

    @staticmethod
    def _decode(entries: list[tuple[str, Any]]) -> tuple[list[Delivery], list[str]]:
        out: list[Delivery] = []
        gone: list[str] = []
        for mid, fields in entries:
            if not fields or "e" not in fields:
                gone.append(mid)
                continue
            out.append(Delivery(id=mid, event=json.loads(fields["e"])))
        return out, gone

    def ack(self, ids: Sequence[str]) -> None:
        """``XACK`` the deliveries (see :meth:`EventQueue.ack`)."""
        ids = list(ids)
        if not ids:
            return
        self._check_open()
        try:
            self._r.xack(self.stream, self.group, *ids)
        except self._redis_mod.RedisError as exc:
            raise self._fail("ack", exc) from exc

    def _group_info(self) -> dict[str, Any]:
        for info in self._r.xinfo_groups(self.stream):
            if info.get("name") == self.group:
                return info
        raise QueueError(
            f"consumer group {self.group!r} is missing on stream {self.stream!r}; "
            "it was deleted while the queue was open: reopen the queue"
        )

    def _undelivered(self, last_delivered: str) -> int:
        """Entries after ``last_delivered`` (fallback when XINFO gives no ``lag``)."""
        n, start = 0, f"({last_delivered}"
        while True:
            batch = self._r.xrange(self.stream, min=start, max="+", count=10_000)
            n += len(batch)
            if len(batch) < 10_000:
                return n
            start = f"({batch[-1][0]}"

    def lag(self) -> int:
        """Pending (delivered, un-acked) plus not yet delivered entries of the group."""
        self._check_open()
        try:
            info = self._group_info()
            pending = int(info.get("pending") or 0)
            undelivered = info.get("lag")
            if undelivered is None:
                undelivered = self._undelivered(str(info.get("last-delivered-id", "0-0")))
            return pending + int(undelivered)
        except self._redis_mod.RedisError as exc:
            raise self._fail("lag", exc) from exc

    def stats(self) -> dict[str, Any]:
        """``backend``, ``url`` (password redacted), ``stream``, ``group``, ``consumer``,
        ``appended`` (entries ever added), ``length``, ``pending``, ``lag`` and this
        instance's ``appended_session`` / ``duplicates_session``."""
        self._check_open()
        try:
            sinfo = self._r.xinfo_stream(self.stream)
            ginfo = self._group_info()
            length = int(sinfo.get("length") or 0)
            appended = int(sinfo.get("entries-added") or length)
        except self._redis_mod.RedisError as exc:
            raise self._fail("stats", exc) from exc
        return {
            "backend": self.backend,
            "url": _redact(self.url),
            "stream": self.stream,
            "group": self.group,
            "consumer": self.consumer,
            "appended": appended,
            "length": length,
            "pending": int(ginfo.get("pending") or 0),
            "lag": self.lag(),
            "appended_session": self._appended,
            "duplicates_session": self._duplicates,
        }

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        if not self._closed:
            self._closed = True
            self._r.close()


# --------------------------------------------------------------------------- factory

_FORMS = (
    "use sqlite:///path/to/queue.db (or a plain file path) for the embedded SQLite queue, "
    "or redis://host:port/db for Redis Streams"
)


def open_queue(url: str | Path, **kw: Any) -> EventQueue:
    """Open the queue named by ``url``.

    Parameters
    ----------
    url : str or Path
        ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a plain file
        path -> :class:`SQLiteQueue`; ``redis://...`` / ``rediss://...`` ->
        :class:`RedisQueue`.
    **kw
        Keyword arguments of the backend's constructor.

    Returns
    -------
    EventQueue

    Raises
    ------
    ValueError
        Any other form of ``url``.
    QueueError
        The backend cannot be opened (e.g. redis unreachable).
    """
    if isinstance(url, Path):
        return SQLiteQueue(url, **kw)
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"queue url {url!r} is empty or not a string; {_FORMS}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "":
        return SQLiteQueue(url, **kw)
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ValueError(f"queue url {url!r} has no file path; {_FORMS}")
        return SQLiteQueue(url[len("sqlite:///") :], **kw)
    if scheme in {"redis", "rediss"}:
        return RedisQueue(url, **kw)
    raise ValueError(f"queue url {_redact(url)!r} has unsupported scheme {scheme!r}; {_FORMS}")
