"""A growable external-id -> row index for the online state (users and items appear live).

:class:`~streamrec.data.vocab.Vocabulary` is immutable (fitted on train); the service needs
rows for users and items first seen in the event stream. Integer ids that are small and
non-negative (the common case: database keys) are looked up in a direct table, so a batch
of ids is one numpy gather; other ids fall back to a dict.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

__all__ = ["IdIndex"]

#: ids below this use the direct table (int32 rows: 4 bytes per possible id)
_DIRECT_LIMIT = 1 << 26


class IdIndex:
    """External int64 ids <-> contiguous rows ``0 .. len - 1``, growable and thread-safe.

    Parameters
    ----------
    ids : array_like of int, shape (n,)
        Distinct ids of rows ``0 .. n - 1``.
    name : str
        What the ids are, for error messages.
    """

    def __init__(self, ids: np.ndarray | Sequence[int] = (), *, name: str = "id") -> None:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(np.unique(arr)) != len(arr):
            raise ValueError(f"{name} ids must be distinct")
        self.name = name
        self._lock = threading.Lock()
        self._ids = arr.copy()
        self._n = len(arr)
        self._table = np.full(0, -1, np.int32)
        self._dict: dict[int, int] | None = None
        if len(arr) and (arr.min() < 0 or arr.max() >= _DIRECT_LIMIT):
            self._dict = {int(x): i for i, x in enumerate(arr.tolist())}
        else:
            self._grow_table(int(arr.max()) + 1 if len(arr) else 0)
            self._table[arr] = np.arange(len(arr), dtype=np.int32)

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> np.ndarray:
        """External ids of rows ``0 .. len - 1``, shape (len,)."""
        return self._ids[: self._n]

    def _grow_table(self, size: int) -> None:
        if size > len(self._table):
            new = np.full(max(size, 2 * len(self._table), 1024), -1, np.int32)
            new[: len(self._table)] = self._table
            self._table = new

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids`` (-1 for unknown ids), shape (len(ids),) int64."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if self._dict is not None:
            d = self._dict
            return np.fromiter((d.get(int(x), -1) for x in ids), np.int64, len(ids))
        table = self._table
        ok = (ids >= 0) & (ids < len(table))
        out = np.full(len(ids), -1, np.int64)
        out[ok] = table[ids[ok]]
        return out

    def row(self, id_: int) -> int:
        """Row of one id, -1 if unknown (the per-request path: no array round trip)."""
        if self._dict is not None:
            return self._dict.get(int(id_), -1)
        table = self._table
        return int(table[id_]) if 0 <= id_ < len(table) else -1

    def add(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``ids``, appending the unknown ones (first occurrence order); (len(ids),)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            rows = self.lookup(ids)
            new_mask = rows < 0
            if not new_mask.any():
                return rows
            new_ids, first = np.unique(ids[new_mask], return_index=True)
            new_ids = new_ids[np.argsort(first)]
            start = self._n
            new_rows = np.arange(start, start + len(new_ids), dtype=np.int64)
            if start + len(new_ids) > len(self._ids):
                grown = np.empty(max(2 * len(self._ids), start + len(new_ids), 1024), np.int64)
                grown[:start] = self._ids[:start]
                self._ids = grown
            self._ids[start: start + len(new_ids)] = new_ids
            if self._dict is None and (new_ids.min() < 0 or new_ids.max() >= _DIRECT_LIMIT):
                self._dict = {int(x): i for i, x in enumerate(self._ids[:start].tolist())}
            if self._dict is not None:
                self._dict.update(zip(new_ids.tolist(), new_rows.tolist(), strict=True))
            else:
                self._grow_table(int(new_ids.max()) + 1)
                self._table[new_ids] = new_rows.astype(np.int32)
            self._n = start + len(new_ids)
            return self.lookup(ids)
