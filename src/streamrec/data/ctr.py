"""Click-prediction data: one row per impression, model-ready (what every ``CTRModel`` reads).

:class:`CTRData` holds what every CTR model reads, as aligned arrays:

- ``dense`` (N, D) float32: numeric features, already standardised/logged by the encoders;
- ``categorical`` (N, C) int64: embedding indices per field, ``0`` = unknown / unseen
  (field ``j`` takes codes ``0 .. schema.cardinalities[j] - 1``);
- ``history`` (N, L) int64, optional: the user's most recent items before the impression,
  item codes ``1 .. schema.n_history_items - 1`` right-aligned (most recent last), ``0`` pads
  on the left; DIN attends over it with respect to the candidate (``schema.item_field``, in the
  same code space);
- ``labels`` (N,) float32 in {0, 1}; ``timestamps`` (N,) int64 s and ``groups`` (N,) int64
  (e.g. the user, for per-user AUC) when known; ``truth`` (N,) float64: the generator's true
  click probability on synthetic data (the oracle of a report), else None.

:func:`random_split` and :func:`temporal_split` cut it into a :class:`CTRSplit`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

__all__ = ["CTRData", "CTRSplit", "FeatureSchema", "random_split", "split_indices",
           "temporal_split"]


@dataclass(frozen=True)
class FeatureSchema:
    """Names and sizes of the fields of a :class:`CTRData`.

    Attributes
    ----------
    dense : tuple of str
        Names of the dense columns.
    categorical : tuple of str
        Names of the categorical fields.
    cardinalities : tuple of int
        Codes per categorical field, the unknown code 0 included.
    n_history_items : int
        Size of the history's item code space (0 = no history).
    item_field : str or None
        The categorical field holding the candidate item in the history's code space.
    """

    dense: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    cardinalities: tuple[int, ...] = ()
    n_history_items: int = 0
    item_field: str | None = None

    def __post_init__(self) -> None:
        if len(self.categorical) != len(self.cardinalities):
            raise ValueError(f"{len(self.categorical)} categorical fields but "
                             f"{len(self.cardinalities)} cardinalities")
        if any(c < 1 for c in self.cardinalities):
            raise ValueError("every cardinality must be >= 1 (code 0 is the unknown value)")
        if self.item_field is not None and self.item_field not in self.categorical:
            raise ValueError(f"item_field {self.item_field!r} is not a categorical field")

    @property
    def n_dense(self) -> int:
        return len(self.dense)

    @property
    def n_categorical(self) -> int:
        return len(self.categorical)

    @property
    def offsets(self) -> np.ndarray:
        """First column of each categorical field in one stacked code space, int64 (C,):
        field ``j``'s code ``c`` is ``offsets[j] + c`` (one-hot columns, one flat table)."""
        return np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]]).astype(np.int64)

    @property
    def names(self) -> tuple[str, ...]:
        """Dense names, then categorical ones (the order of :meth:`CTRData.matrix`)."""
        return self.dense + self.categorical

    def to_json(self) -> str:
        return json.dumps({"dense": self.dense, "categorical": self.categorical,
                           "cardinalities": self.cardinalities,
                           "n_history_items": self.n_history_items, "item_field": self.item_field})

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        d = json.loads(text)
        return cls(tuple(d["dense"]), tuple(d["categorical"]), tuple(d["cardinalities"]),
                   int(d["n_history_items"]), d["item_field"])

    def to_array(self) -> np.ndarray:
        """The schema as uint8 bytes of its JSON (for ``arrays.npz`` state, no pickle)."""
        return np.frombuffer(self.to_json().encode(), dtype=np.uint8).copy()

    @classmethod
    def from_array(cls, arr: np.ndarray) -> FeatureSchema:
        return cls.from_json(np.asarray(arr, dtype=np.uint8).tobytes().decode())


@dataclass(frozen=True)
class CTRData:
    """Impressions as aligned arrays (see the module docstring)."""

    schema: FeatureSchema
    dense: np.ndarray
    categorical: np.ndarray
    labels: np.ndarray | None = None
    history: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    groups: np.ndarray | None = None
    truth: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        s = self.schema
        dense = np.ascontiguousarray(self.dense, dtype=np.float32)
        cat = np.ascontiguousarray(self.categorical, dtype=np.int64)
        n = dense.shape[0] if dense.ndim == 2 else -1
        if dense.ndim != 2 or dense.shape[1] != s.n_dense:
            raise ValueError(f"dense must have shape (N, {s.n_dense}), got {dense.shape}")
        if cat.shape != (n, s.n_categorical):
            raise ValueError(f"categorical must have shape ({n}, {s.n_categorical}), "
                             f"got {cat.shape}")
        if not np.isfinite(dense).all():
            bad = np.argwhere(~np.isfinite(dense))[0]
            raise ValueError(f"dense row {bad[0]}, field {s.dense[bad[1]]!r}: not finite "
                             "(impute or drop it before building CTRData)")
        if s.n_categorical and n:
            card = np.asarray(s.cardinalities)
            bad_mask = (cat < 0) | (cat >= card)
            if bad_mask.any():
                r, c = np.argwhere(bad_mask)[0]
                raise ValueError(f"categorical row {r}, field {s.categorical[c]!r}: code "
                                 f"{cat[r, c]} outside [0, {card[c]})")
        object.__setattr__(self, "dense", dense)
        object.__setattr__(self, "categorical", cat)
        if self.labels is not None:
            y = np.asarray(self.labels, dtype=np.float32).reshape(-1)
            if len(y) != n:
                raise ValueError(f"labels has {len(y)} rows, features {n}")
            if not np.isin(y, (0.0, 1.0)).all():
                raise ValueError("labels must be 0 or 1")
            object.__setattr__(self, "labels", y)
        if self.history is not None:
            h = np.ascontiguousarray(self.history, dtype=np.int64)
            if h.ndim != 2 or h.shape[0] != n:
                raise ValueError(f"history must have shape ({n}, L), got {h.shape}")
            if s.n_history_items < 1:
                raise ValueError("history given but schema.n_history_items is 0")
            if h.size and (h.min() < 0 or h.max() >= s.n_history_items):
                raise ValueError(f"history codes must lie in [0, {s.n_history_items})")
            object.__setattr__(self, "history", h)
        for name, dtype in (("timestamps", np.int64), ("groups", np.int64),
                            ("truth", np.float64)):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, dtype=dtype).reshape(-1)
                if len(v) != n:
                    raise ValueError(f"{name} has {len(v)} rows, features {n}")
                object.__setattr__(self, name, v)

    def __len__(self) -> int:
        return self.dense.shape[0]

    def take(self, idx: np.ndarray) -> CTRData:
        """The rows ``idx`` (int indices or a boolean mask), in that order."""
        idx = np.asarray(idx)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return replace(self, dense=self.dense[idx], categorical=self.categorical[idx],
                       labels=pick(self.labels), history=pick(self.history),
                       timestamps=pick(self.timestamps), groups=pick(self.groups),
                       truth=pick(self.truth))

    def matrix(self) -> np.ndarray:
        """Dense columns then categorical codes as one float64 matrix (N, D + C), for
        tree models and feature ranking."""
        return np.concatenate([self.dense.astype(np.float64),
                               self.categorical.astype(np.float64)], axis=1)

    def require_labels(self, what: str) -> np.ndarray:
        if self.labels is None:
            raise ValueError(f"{what}: the data has no labels")
        return self.labels

    @property
    def positive_rate(self) -> float:
        return float(self.require_labels("positive_rate").mean()) if len(self) else float("nan")


class CTRSplit(NamedTuple):
    train: CTRData
    valid: CTRData
    test: CTRData


def _check_ratios(ratios: tuple[float, float, float]) -> np.ndarray:
    r = np.asarray(ratios, dtype=np.float64)
    if r.shape != (3,) or (r < 0).any() or not np.isclose(r.sum(), 1.0):
        raise ValueError(f"ratios must be three non-negative shares summing to 1, got {ratios}")
    return r


def split_indices(n: int, ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
                  seed: int = 0) -> list[np.ndarray]:
    """Row indices (ascending) of train, valid and test of :func:`random_split`."""
    r = _check_ratios(ratios)
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(r)[:2] * n).astype(int)
    return [np.sort(p) for p in np.split(order, cuts)]


def random_split(data: CTRData, ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
                 seed: int = 0) -> CTRSplit:
    """Shuffle rows with ``seed`` and cut them by ``ratios`` (train, valid, test)."""
    return CTRSplit(*(data.take(p) for p in split_indices(len(data), ratios, seed)))


def temporal_split(data: CTRData, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> CTRSplit:
    """Oldest rows train, then valid, then the newest test (needs ``timestamps``; ties keep
    row order)."""
    if data.timestamps is None:
        raise ValueError("temporal_split needs timestamps; use random_split")
    r = _check_ratios(ratios)
    order = np.argsort(data.timestamps, kind="stable")
    cuts = np.round(np.cumsum(r)[:2] * len(data)).astype(int)
    return CTRSplit(*(data.take(p) for p in np.split(order, cuts)))
