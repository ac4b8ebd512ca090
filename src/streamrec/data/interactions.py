"""Interactions: the immutable, model-facing view of an engagement log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp


def _frozen(a: np.ndarray, dtype: type) -> np.ndarray:
    """A read-only C-contiguous array; copies when the input could still be written by the caller."""
    arr: np.ndarray = np.asarray(a, dtype=dtype)
    if arr is a and arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, dtype=dtype, order="C")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Interactions:
    """Columns of user-item events, all of length ``n``, in source (file) order.

    Attributes
    ----------
    users : ndarray of int32, shape (n,)
        User indices in ``[0, n_users)``.
    items : ndarray of int32, shape (n,)
        Item indices in ``[0, n_items)``.
    timestamps : ndarray of int64, shape (n,)
        Seconds since the epoch (or an ordinal such as a chronological rank).
    values : ndarray of float32, shape (n,)
        Rating, watch time, or 1.0 for plain implicit feedback.
    events : ndarray of int8, shape (n,), optional
        Event-type codes into ``event_names``.
    n_users, n_items : int
        Sizes of the index spaces (the vocabularies), which may exceed the ids present.
    event_names : tuple of str
        Name of each event code.

    Arrays are read-only; every transformation returns a new object.
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    n_users: int
    n_items: int
    events: np.ndarray | None = None
    event_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.users)
        object.__setattr__(self, "users", _frozen(self.users, np.int32))
        object.__setattr__(self, "items", _frozen(self.items, np.int32))
        object.__setattr__(self, "timestamps", _frozen(self.timestamps, np.int64))
        object.__setattr__(self, "values", _frozen(self.values, np.float32))
        if self.events is not None:
            object.__setattr__(self, "events", _frozen(self.events, np.int8))
        object.__setattr__(self, "n_users", int(self.n_users))
        object.__setattr__(self, "n_items", int(self.n_items))
        object.__setattr__(self, "event_names", tuple(self.event_names))
        cols = {"items": self.items, "timestamps": self.timestamps, "values": self.values}
        if self.events is not None:
            cols["events"] = self.events
        for name, col in cols.items():
            if len(col) != n:
                raise ValueError(f"Interactions: column {name!r} has {len(col)} rows, users has {n}")
        if n:
            if self.users.min() < 0 or self.users.max() >= self.n_users:
                raise ValueError(f"Interactions: user index outside [0, {self.n_users})")
            if self.items.min() < 0 or self.items.max() >= self.n_items:
                raise ValueError(f"Interactions: item index outside [0, {self.n_items})")
            if self.events is not None and self.event_names and (
                self.events.min() < 0 or self.events.max() >= len(self.event_names)
            ):
                raise ValueError("Interactions: event code outside event_names")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        users: Sequence[int] | np.ndarray,
        items: Sequence[int] | np.ndarray,
        timestamps: Sequence[int] | np.ndarray | None = None,
        values: Sequence[float] | np.ndarray | None = None,
        *,
        n_users: int | None = None,
        n_items: int | None = None,
        events: np.ndarray | None = None,
        event_names: Sequence[str] = (),
    ) -> Interactions:
        """Build from index arrays; missing timestamps become the row order, values 1.0."""
        u = np.asarray(users, dtype=np.int32)
        i = np.asarray(items, dtype=np.int32)
        t = np.arange(len(u), dtype=np.int64) if timestamps is None else np.asarray(timestamps)
        v = np.ones(len(u), dtype=np.float32) if values is None else np.asarray(values)
        return cls(
            u,
            i,
            t,
            v,
            n_users=int(u.max()) + 1 if n_users is None else n_users,
            n_items=int(i.max()) + 1 if n_items is None else n_items,
            events=events,
            event_names=tuple(event_names),
        )

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        return (
            f"Interactions(n={len(self)}, n_users={self.n_users}, n_items={self.n_items}, "
            f"events={self.event_names or None})"
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(n_users, n_items)."""
        return (self.n_users, self.n_items)

    def _replace(self, **changes: object) -> Interactions:
        kw = dict(
            users=self.users,
            items=self.items,
            timestamps=self.timestamps,
            values=self.values,
            n_users=self.n_users,
            n_items=self.n_items,
            events=self.events,
            event_names=self.event_names,
        )
        kw.update(changes)
        return Interactions(**kw)  # type: ignore[arg-type]

    def take(self, index: np.ndarray) -> Interactions:
        """Rows selected by an integer index array or a boolean mask (same index spaces)."""
        idx = np.asarray(index)
        return self._replace(
            users=self.users[idx],
            items=self.items[idx],
            timestamps=self.timestamps[idx],
            values=self.values[idx],
            events=None if self.events is None else self.events[idx],
        )

    def with_sizes(self, n_users: int, n_items: int) -> Interactions:
        """The same rows in larger (or equal) index spaces."""
        return self._replace(n_users=n_users, n_items=n_items)

    def remap(
        self, user_map: np.ndarray, item_map: np.ndarray, n_users: int, n_items: int
    ) -> Interactions:
        """Re-index through lookup tables (old index -> new index); rows mapped to -1 are dropped."""
        u = user_map[self.users]
        i = item_map[self.items]
        keep = (u >= 0) & (i >= 0)
        sub = self.take(keep) if not bool(keep.all()) else self
        return sub._replace(users=u[keep], items=i[keep], n_users=n_users, n_items=n_items)

    def chronological_order(self) -> np.ndarray:
        """Row order sorted by (user, timestamp), ties kept in row order; shape (n,)."""
        return np.lexsort((np.arange(len(self)), self.timestamps, self.users))

    def sort_by_user_time(self) -> Interactions:
        """Rows sorted by (user, timestamp), stable."""
        return self.take(self.chronological_order())

    @staticmethod
    def concat(parts: Sequence[Interactions]) -> Interactions:
        """Rows of several parts in one object (index spaces: the largest)."""
        if not parts:
            raise ValueError("concat needs at least one Interactions")
        names = parts[0].event_names
        has_events = all(p.events is not None for p in parts)
        return Interactions(
            users=np.concatenate([p.users for p in parts]),
            items=np.concatenate([p.items for p in parts]),
            timestamps=np.concatenate([p.timestamps for p in parts]),
            values=np.concatenate([p.values for p in parts]),
            n_users=max(p.n_users for p in parts),
            n_items=max(p.n_items for p in parts),
            events=np.concatenate([p.events for p in parts]) if has_events else None,
            event_names=names if has_events else (),
        )

    # ------------------------------------------------------------------ views
    def to_csr(
        self, *, values: Literal["binary", "values", "count"] = "binary", dtype: type = np.float32
    ) -> sp.csr_array:
        """User x item matrix, shape (n_users, n_items).

        Parameters
        ----------
        values : {"binary", "values", "count"}
            ``binary``: 1 where the user interacted; ``count``: number of events;
            ``values``: sum of the ``values`` column over duplicate pairs.
        """
        data: np.ndarray = (
            self.values.astype(dtype)
            if values == "values"
            else np.ones(len(self), dtype=dtype)
        )
        m = sp.csr_array(
            (data, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=dtype
        )
        m.sum_duplicates()
        if values == "binary":
            m.data[:] = 1
        m.sort_indices()
        return m

    def user_counts(self) -> np.ndarray:
        """Events per user, shape (n_users,) int64."""
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Events per item, shape (n_items,) int64."""
        return np.bincount(self.items, minlength=self.n_items)

    def sequences(
        self, max_len: int, *, offset: int = 1, users: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each user's most recent items, left-padded, oldest first.

        Parameters
        ----------
        max_len : int
            Length T of each row; longer histories keep their last ``max_len`` items.
        offset : int
            Added to item indices so that 0 can mean padding (default 1).
        users : ndarray, optional
            Which users (rows in this order); default all ``n_users``.

        Returns
        -------
        seqs : ndarray of int64, shape (U, T)
            ``seqs[u, -1]`` is the user's latest item (+ offset); padding is 0.
        lengths : ndarray of int64, shape (U,)
            Number of real items in each row (``<= max_len``).
        """
        order = self.chronological_order()
        u = self.users[order]
        it = self.items[order].astype(np.int64) + offset
        counts = np.bincount(u, minlength=self.n_users)
        ends = np.cumsum(counts)  # exclusive end of each user's run in sorted order
        pos_from_end = ends[u] - np.arange(len(u)) - 1  # 0 for the latest item
        keep = pos_from_end < max_len
        out = np.zeros((self.n_users, max_len), dtype=np.int64)
        out[u[keep], max_len - 1 - pos_from_end[keep]] = it[keep]
        lengths = np.minimum(counts, max_len).astype(np.int64)
        if users is not None:
            sel = np.asarray(users)
            return out[sel], lengths[sel]
        return out, lengths

    # ------------------------------------------------------------------ interop
    def to_polars(self) -> pl.DataFrame:
        """Columns user, item, timestamp, value (and event as a categorical name)."""
        df = pl.DataFrame(
            {
                "user": self.users,
                "item": self.items,
                "timestamp": self.timestamps,
                "value": self.values,
            }
        )
        if self.events is not None:
            names = np.asarray(self.event_names or [str(c) for c in range(128)], dtype=str)
            df = df.with_columns(pl.Series("event", names[self.events]))
        return df

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (no pickle)."""
        out = {
            f"{prefix}users": self.users,
            f"{prefix}items": self.items,
            f"{prefix}timestamps": self.timestamps,
            f"{prefix}values": self.values,
            f"{prefix}shape": np.array([self.n_users, self.n_items], dtype=np.int64),
            f"{prefix}event_names": np.array(self.event_names, dtype=str),
        }
        if self.events is not None:
            out[f"{prefix}events"] = self.events
        return out

    @classmethod
    def from_arrays_dict(cls, arrays: dict, prefix: str = "") -> Interactions:
        shape = arrays[f"{prefix}shape"]
        ev = arrays.get(f"{prefix}events") if hasattr(arrays, "get") else None
        if ev is None and f"{prefix}events" in arrays:
            ev = arrays[f"{prefix}events"]
        return cls(
            users=arrays[f"{prefix}users"],
            items=arrays[f"{prefix}items"],
            timestamps=arrays[f"{prefix}timestamps"],
            values=arrays[f"{prefix}values"],
            n_users=int(shape[0]),
            n_items=int(shape[1]),
            events=ev,
            event_names=tuple(str(x) for x in arrays[f"{prefix}event_names"]),
        )

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = self.to_arrays()  # Any: savez's **kwargs include allow_pickle
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Interactions:
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays_dict({k: z[k] for k in z.files})
