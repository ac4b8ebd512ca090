"""Vocabulary: external ids <-> contiguous integer indices.

Inside StreamRec every user and item is a contiguous ``int32`` index; external ids
(ints or strings, as they appear in the source files) live only at the edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

UnknownPolicy = Literal["error", "reserved"]


class UnknownIdError(KeyError):
    """Raised when ids that the vocabulary has never seen are encoded with ``unknown="error"``."""


class Vocabulary:
    """Bijection between external ids and indices ``0 .. len(vocab) - 1``.

    Parameters
    ----------
    ids : array_like, shape (n,)
        Distinct external ids in index order (``ids[i]`` is the id of index ``i``).
    name : str
        What the ids are ("user", "item"), used in error messages.

    Notes
    -----
    Unknown ids are handled explicitly by :meth:`encode`: either an error
    (``unknown="error"``) or the reserved index :attr:`unknown_index` (``== len(vocab)``),
    so a model can allocate ``len(vocab) + 1`` rows and keep the last for "unknown".
    """

    def __init__(self, ids: Iterable | np.ndarray, *, name: str = "id") -> None:
        arr = _as_id_array(ids)
        order = np.argsort(arr, kind="stable")
        sorted_ids = arr[order]
        if len(sorted_ids) > 1 and bool(np.any(sorted_ids[1:] == sorted_ids[:-1])):
            dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][0]
            raise ValueError(f"{name} vocabulary: duplicate id {dup!r}")
        arr.setflags(write=False)
        self._ids = arr
        self._order = order
        self._sorted = sorted_ids
        self.name = name

    # ------------------------------------------------------------------ construction
    @classmethod
    def fit(cls, values: Iterable | np.ndarray, *, name: str = "id") -> Vocabulary:
        """Build a vocabulary from the distinct values, in sorted order (deterministic)."""
        return cls(np.unique(_as_id_array(values)), name=name)

    # ------------------------------------------------------------------ properties
    @property
    def ids(self) -> np.ndarray:
        """External ids in index order, shape (n,) (read-only)."""
        return self._ids

    @property
    def unknown_index(self) -> int:
        """The index reserved for ids outside the vocabulary (``len(self)``)."""
        return len(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"Vocabulary(name={self.name!r}, size={len(self)}, dtype={self._ids.dtype})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self._ids, other._ids)

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ lookups
    def lookup(self, values: Iterable | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices and a found-mask for ``values``; unknown ones get ``unknown_index``.

        Returns
        -------
        idx : ndarray of int32, shape (n,)
        found : ndarray of bool, shape (n,)
        """
        vals = _as_id_array(values)
        n = len(self._sorted)
        if n == 0 or len(vals) == 0:
            return np.full(len(vals), n, dtype=np.int32), np.zeros(len(vals), dtype=bool)
        if self._sorted.dtype.kind != vals.dtype.kind:
            # int ids vs string values (or the other way round): compare as strings
            sorted_ids, vals = self._sorted.astype(str), vals.astype(str)
        else:
            sorted_ids = self._sorted
        pos = np.searchsorted(sorted_ids, vals)
        pos_c = np.minimum(pos, n - 1)
        found = sorted_ids[pos_c] == vals
        idx = np.where(found, self._order[pos_c], n).astype(np.int32)
        return idx, np.asarray(found, dtype=bool)

    def encode(
        self, values: Iterable | np.ndarray, *, unknown: UnknownPolicy = "error"
    ) -> np.ndarray:
        """Map external ids to indices, shape (n,) int32.

        Parameters
        ----------
        unknown : {"error", "reserved"}
            ``"error"`` raises :class:`UnknownIdError` naming how many ids are unknown and a
            few examples; ``"reserved"`` maps them to :attr:`unknown_index`.
        """
        idx, found = self.lookup(values)
        if unknown == "error" and not bool(found.all()):
            vals = _as_id_array(values)
            missing = vals[~found]
            examples = ", ".join(repr(v) for v in missing[:5].tolist())
            raise UnknownIdError(
                f"{len(missing)} {self.name} id(s) not in the vocabulary (e.g. {examples}); "
                f'pass unknown="reserved" to map them to index {self.unknown_index}'
            )
        return idx

    def contains(self, values: Iterable | np.ndarray) -> np.ndarray:
        """Boolean mask, shape (n,): which values are in the vocabulary."""
        return self.lookup(values)[1]

    def decode(self, indices: Iterable | np.ndarray) -> np.ndarray:
        """External ids for indices, shape (n,). Raises IndexError on out-of-range indices."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self._ids)):
            raise IndexError(f"{self.name} index out of range [0, {len(self._ids)})")
        return self._ids[idx]

    def subset(self, indices: np.ndarray) -> Vocabulary:
        """A new vocabulary holding the ids of ``indices``, re-indexed in that order."""
        return Vocabulary(self._ids[np.asarray(indices)], name=self.name)

    def extend(self, values: Iterable | np.ndarray) -> Vocabulary:
        """A new vocabulary: these ids first, then the distinct unknown ``values`` (sorted)."""
        vals = _as_id_array(values)
        new = np.unique(vals[~self.contains(vals)])
        if self._ids.dtype.kind != new.dtype.kind and len(new):
            return Vocabulary(np.concatenate([self._ids.astype(str), new.astype(str)]), name=self.name)
        return Vocabulary(np.concatenate([self._ids, new.astype(self._ids.dtype)]), name=self.name)

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (no pickle: strings are stored as fixed-width unicode)."""
        return {f"{prefix}ids": self._ids.astype(str) if self._ids.dtype == object else self._ids}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str, *, name: str = "id") -> Vocabulary:
        return cls(np.asarray(arrays[f"{prefix}ids"]), name=name)

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = self.to_arrays("")  # Any: savez's **kwargs include allow_pickle
        np.savez(path, **arrays, name=np.array(self.name))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["ids"], name=str(z["name"]))


def _as_id_array(values: Iterable | np.ndarray) -> np.ndarray:
    """External ids as a numpy array: integers stay int64, everything else becomes unicode."""
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()  # polars / pandas Series
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind == "f":
        if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise ValueError("ids must be integers or strings, got non-integral floats")
        return arr.astype(np.int64)
    return arr.astype(str)
