"""The event queue on a Redis Stream read through a consumer group (see :class:`RedisQueue`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any, cast

from streamrec.serve.queue_base import (
    AppendResult,
    Delivery,
    EventQueue,
    QueueError,
    encode_batch,
    redact,
)

__all__ = ["RedisQueue"]

# a stream entry as the client returns it (decode_responses=True): id, fields (None when the
# entry was deleted while pending)
_Entry = tuple[str, dict[str, str] | None]

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
            raise ValueError(f"invalid redis URL {redact(url)!r}: {exc}") from exc
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
                f"cannot reach redis at {redact(url)}: {exc}; is redis-server running? "
                "start it or use sqlite:///path/to/queue.db"
            ) from exc
        except redis.RedisError as exc:
            self._r.close()
            raise QueueError(f"redis at {redact(url)} refused the queue setup: {exc}") from exc

    def _fail(self, what: str, exc: Exception) -> QueueError:
        if isinstance(exc, self._redis_mod.ConnectionError):
            return QueueError(
                f"cannot reach redis at {redact(self.url)} during {what}: {exc}; is "
                "redis-server running? start it or use sqlite:///path/to/queue.db"
            )
        return QueueError(f"redis {what} on stream {self.stream!r} failed: {exc}")

    def _check_open(self) -> None:
        if self._closed:
            raise QueueError(f"redis queue on stream {self.stream!r} is closed")

    def append(self, events: Sequence[dict]) -> AppendResult:
        """Durably enqueue ``events`` (see :meth:`EventQueue.append`)."""
        ids, payloads = encode_batch(events)
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

    def _xread(self, start: str, count: int, block: int | None) -> list[_Entry]:
        resp = cast(list[tuple[str, list[_Entry]]] | None, self._r.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        ))
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
    def _decode(entries: list[_Entry]) -> tuple[list[Delivery], list[str]]:
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
            batch = cast(list[_Entry], self._r.xrange(self.stream, min=start, max="+",
                                                      count=10_000))
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
            "url": redact(self.url),
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
