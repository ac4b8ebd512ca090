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

from pathlib import Path
from typing import Any

from streamrec.serve.queue_base import (
    AppendResult,
    Delivery,
    EventQueue,
    QueueError,
    redact,
)
from streamrec.serve.queue_redis import RedisQueue
from streamrec.serve.queue_sqlite import SQLiteQueue

__all__ = [
    "AppendResult",
    "Delivery",
    "EventQueue",
    "QueueError",
    "RedisQueue",
    "SQLiteQueue",
    "open_queue",
]

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
    raise ValueError(f"queue url {redact(url)!r} has unsupported scheme {scheme!r}; {_FORMS}")
