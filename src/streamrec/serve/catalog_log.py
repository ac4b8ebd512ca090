"""Durable log of the catalog changes made through the service (``POST /admin/items``).

Items added or updated live are not in the registry's catalog version, so without this log
a restart would forget them, and the replay of the event log would drop every event on
them. Each change is one JSON line, appended and ``fsync``-ed before the service answers
201::

    {"added_at": 1700000000, "after_event_id": "e-123", "items": [{"item_id": 7, ...}]}

``added_at`` is the service clock at the change; ``after_event_id`` is the last event the
state had applied then (None: before any logged event). At start-up the service replays
the event log and these changes interleaved in that order, so every event meets the
catalog it met when it was first applied.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamrec.serve.eventlog import append_durably

__all__ = ["CatalogChange", "CatalogLog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogChange:
    """One logged ``POST /admin/items``."""

    added_at: int
    after_event_id: str | None
    items: list[dict[str, Any]]


class CatalogLog:
    """Append-only JSON-lines file of :class:`CatalogChange` records.

    Parameters
    ----------
    path : str or Path
        The file (its directory is created).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def append(self, change: CatalogChange) -> None:
        """Durably append ``change`` (flushed and fsync-ed on return).

        Raises
        ------
        OSError
            The write failed (e.g. a full disk): the change is not durable.
        """
        line = json.dumps({"added_at": change.added_at, "after_event_id": change.after_event_id,
                           "items": change.items}, separators=(",", ":"), allow_nan=False)
        with self._lock:
            append_durably(self.path, [line])

    def read(self) -> list[CatalogChange]:
        """Every complete change, in append order (a torn or unparsable line is skipped and
        logged: it was never acknowledged)."""
        if not self.path.exists():
            return []
        out: list[CatalogChange] = []
        for lineno, line in enumerate(self.path.read_bytes().split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                change = CatalogChange(int(doc["added_at"]), doc.get("after_event_id"),
                                       list(doc["items"]))
            except (ValueError, KeyError, TypeError):
                log.warning("skipping unreadable line %d of %s", lineno, self.path)
                continue
            out.append(change)
        return out
