"""What both event-queue backends share: :class:`EventQueue` (the interface), its result
types, the batch check and the error type. :mod:`streamrec.serve.queue` describes the
delivery semantics and opens a backend.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["AppendResult", "Delivery", "EventQueue", "QueueError", "encode_batch", "redact"]


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


def encode_batch(events: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
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


def redact(url: str) -> str:
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
