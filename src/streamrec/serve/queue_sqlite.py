"""The embedded event queue: one SQLite file in WAL mode (see :class:`SQLiteQueue`)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamrec.serve.queue_base import AppendResult, Delivery, EventQueue, QueueError, encode_batch

__all__ = ["SQLiteQueue"]


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
        ids, payloads = encode_batch(events)
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
