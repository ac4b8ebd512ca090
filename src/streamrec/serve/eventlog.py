"""Append-only training log of consumed events, as daily JSON-lines part files.

The state consumer appends every event it takes off the queue here before acknowledging
it, so the log is the training data of the next retrain. Files are
``<dir>/events-<YYYYMMDD>.jsonl`` (UTC date of the wall clock at append time); an append
is flushed and ``fsync``-ed before it returns. A process killed mid-write (or a write cut
short by a full disk) leaves at most a torn last line, which the next append starts after
and :meth:`EventLog.read` skips and counts instead of failing.
Re-appending an event after a crash (the queue re-delivers un-acked events) is harmless:
reading deduplicates by ``event_id`` and keeps the first copy.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["EVENT_SCHEMA", "EventLog", "append_durably"]

log = logging.getLogger(__name__)

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "user_id": pl.Int64(),
    "item_id": pl.Int64(),
    "session_id": pl.Int64(),
    "timestamp": pl.Int64(),
    "event": pl.String(),
    "value": pl.Float32(),
    "platform": pl.String(),
    "received_at": pl.Int64(),
}
"""Columns and dtypes of :meth:`EventLog.read`, in order."""

_ID_SCHEMA: dict[str, pl.DataType] = {"event_id": pl.String()}


def _conforms(row: dict[str, Any], schema: dict[str, pl.DataType]) -> bool:
    """Whether ``row`` has a string ``event_id`` and values of the schema's types."""
    if not isinstance(row.get("event_id"), str):
        return False
    for name, dtype in schema.items():
        value = row.get(name)
        if value is None:
            continue
        if dtype == pl.String:
            ok = isinstance(value, str)
        elif dtype == pl.Int64:
            ok = isinstance(value, int) and not isinstance(value, bool) and (
                -(2**63) <= value < 2**63
            )
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            return False
    return True


def append_durably(path: Path, lines: Sequence[str]) -> None:
    """Append ``lines`` (no newlines inside) to ``path``; flushed and ``fsync``-ed on return,
    the directory entry too when the file is new.

    Raises
    ------
    OSError
        The write or the sync failed (e.g. ``ENOSPC``): the caller must treat the lines as
        not written. Part of them may be in the file as a torn last line, which the next
        append starts after and readers skip.
    """
    data = ("\n".join(lines) + "\n").encode()
    created = not path.exists()
    with open(path, "ab") as fh:
        # A torn line left by a killed or failed writer must not swallow the next one.
        if not created and fh.tell() > 0:
            with open(path, "rb") as rd:
                rd.seek(-1, os.SEEK_END)
                if rd.read(1) != b"\n":
                    data = b"\n" + data
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if created:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class EventLog:
    """Durable append-only event log in one directory.

    One writer per directory is expected (the consumer); appends from several threads
    of that process are serialised by a lock.

    Parameters
    ----------
    directory : str or Path
        Created if missing.
    clock : callable returning float, optional
        Unix time used to pick the part file (default :func:`time.time`); for tests.

    Attributes
    ----------
    stats : dict
        Counters of the last :meth:`read` / :meth:`event_ids`: ``files``, ``lines``
        (complete lines), ``torn_lines`` (incomplete or unparsable lines skipped),
        ``duplicates`` (rows dropped by the ``event_id`` dedupe of :meth:`read`).
    """

    def __init__(self, directory: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self.stats: dict[str, int] = {"files": 0, "lines": 0, "torn_lines": 0, "duplicates": 0}

    # ------------------------------------------------------------------ writing

    def current_path(self) -> Path:
        """Part file that an append made now goes to."""
        day = datetime.fromtimestamp(self._clock(), tz=UTC).strftime("%Y%m%d")
        return self.directory / f"events-{day}.jsonl"

    def append(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Append ``events`` as JSON lines; durable (flushed and fsync-ed) on return.

        Parameters
        ----------
        events : sequence of dict, length N
            JSON-serialisable event records (see :data:`EVENT_SCHEMA`).

        Raises
        ------
        TypeError, ValueError
            An event is not a dict or not JSON-serialisable (nothing is written).
        """
        lines = []
        for i, event in enumerate(events):
            if not isinstance(event, Mapping):
                raise TypeError(f"event {i} is a {type(event).__name__}, not a dict")
            try:
                lines.append(json.dumps(event, separators=(",", ":"), allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"event {i} (event_id={event.get('event_id')!r}) is not "
                    f"JSON-serialisable: {exc}"
                ) from exc
        if not lines:
            return
        with self._lock:
            append_durably(self.current_path(), lines)

    # ------------------------------------------------------------------ reading

    def files(self) -> list[Path]:
        """Part files in name (= date) order."""
        return sorted(self.directory.glob("events-*.jsonl"))

    @staticmethod
    def _complete(data: bytes, path: Path) -> tuple[bytes, int]:
        """Complete lines of ``data`` and 1 if its final line is torn, else 0.

        A final line without a newline is kept when it parses as a JSON object (the
        write completed but for the newline), otherwise it is torn.
        """
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if not tail.strip():
            return data[:cut], 0
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            return data + b"\n", 0
        log.warning("skipping torn last line of %s (%d bytes)", path, len(tail))
        return data[:cut], 1

    @staticmethod
    def _parse(body: bytes, schema: dict[str, pl.DataType], path: Path) -> tuple[pl.DataFrame, int]:
        """Parse complete lines; a file with bad lines falls back to line-by-line."""
        if not body.strip():
            return pl.DataFrame(schema=schema), 0
        try:
            return pl.read_ndjson(io.BytesIO(body), schema=schema), 0
        except pl.exceptions.PolarsError:
            pass
        rows: list[dict[str, Any]] = []
        bad = 0
        for lineno, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or not _conforms(row, schema):
                bad += 1
                log.warning("skipping unparsable line %d of %s", lineno, path)
                continue
            rows.append({name: row.get(name) for name in schema})
        frame = pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
        return frame, bad

    def _load(self, paths: Sequence[Path], schema: dict[str, pl.DataType]) -> pl.DataFrame:
        frames: list[pl.DataFrame] = []
        lines = torn = 0
        for path in paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            body, t = self._complete(data, path)
            frame, bad = self._parse(body, schema, path)
            torn += t + bad
            lines += frame.height + bad
            frames.append(frame)
        self.stats = {"files": len(paths), "lines": lines, "torn_lines": torn, "duplicates": 0}
        if not frames:
            return pl.DataFrame(schema=schema)
        return pl.concat(frames, how="vertical")

    def read(self) -> pl.DataFrame:
        """All logged events, deduplicated by ``event_id`` (first copy kept).

        Returns
        -------
        polars.DataFrame, shape (n_events, 8)
            Columns and dtypes of :data:`EVENT_SCHEMA` in that order; missing fields are
            null, unknown fields dropped. An empty directory gives an empty frame.
        """
        frame = self._load(self.files(), EVENT_SCHEMA)
        out = frame.unique(subset="event_id", keep="first", maintain_order=True)
        self.stats["duplicates"] = frame.height - out.height
        return out

    def event_ids(self, last_n: int | None = None) -> set[str]:
        """Event ids in the log, or in its last ``last_n`` complete lines.

        Parameters
        ----------
        last_n : int or None
            Only the newest ``last_n`` lines (across part files); None reads everything.

        Returns
        -------
        set of str
        """
        if last_n is None:
            ids = self._load(self.files(), _ID_SCHEMA)["event_id"]
            return set(ids.drop_nulls().to_list())
        if last_n <= 0:
            return set()
        chunks: list[bytes] = []
        need = last_n
        torn = 0
        files = self.files()
        for path in reversed(files):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            body, t = self._complete(data, path)
            torn += t
            lines = body.splitlines(keepends=True)
            lines = [ln for ln in lines if ln.strip()]
            take = lines[-need:]
            chunks.append(b"".join(take))
            need -= len(take)
            if need <= 0:
                break
        frame, bad = self._parse(b"".join(reversed(chunks)), _ID_SCHEMA, self.directory)
        self.stats = {
            "files": len(files), "lines": frame.height + bad, "torn_lines": torn + bad,
            "duplicates": 0,
        }
        return set(frame["event_id"].drop_nulls().to_list())

    def __len__(self) -> int:
        """Complete lines written across all part files (duplicates included)."""
        total = 0
        for path in self.files():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            body, _ = self._complete(data, path)
            total += sum(1 for ln in body.split(b"\n") if ln.strip())
        return total
