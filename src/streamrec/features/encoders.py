"""Encode a feature frame (one row per impression) into model-ready :class:`CTRData`.

:class:`CTREncoder` is fitted on the **train rows only** and applied unchanged to any later
frame (valid, test, the service's requests); :meth:`CTREncoder.to_dict` /
:meth:`CTREncoder.from_dict` make it a JSON document, so the service needs no pickle.

- **dense** columns: optional ``log1p`` (negative values clip to 0 first), then standardised
  with the train mean/std and clipped to ±5; nulls / NaN become 0 (the train mean). The
  standardisation and the level coding are :class:`~streamrec.features.side.FeatureEncoder`'s.
- **categorical** columns: code ``1 + j`` for the ``j``-th level seen at least ``min_count``
  times in train (sorted as strings), 0 for null, rare and unseen values; or, for the
  columns in ``hash_buckets``, the hashing trick: ``code = 1 + crc32(utf-8 text of the value)
  % N`` (stable across processes, platforms and library versions; null -> 0), so unseen
  values of high-cardinality fields still get a bucket.
- **bins**: quantile buckets of a numeric column fitted on train, as an extra categorical
  field ``<column>_bucket`` (code 0 for null, ``1 ..`` for the buckets).
- **history**: a List column of item ids (oldest first) becomes an (N, L) int64 array of item
  codes, right-aligned, 0-padded on the left, in the code space of the categorical
  ``item_field`` (``schema.item_field``, ``schema.n_history_items`` = its cardinality).

:func:`one_hot` expands categorical codes into a sparse one-hot matrix (linear models).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from streamrec.data.ctr import CTRData, FeatureSchema
from streamrec.features.side import FeatureEncoder

__all__ = ["CTREncoder", "hash_codes", "one_hot", "to_ctr_data"]

_VERSION = 1


@dataclass(frozen=True)
class CTREncoder:
    """A fitted frame -> :class:`CTRData` encoding (build it with :meth:`fit`).

    Attributes
    ----------
    dense : tuple of str
        Dense input columns, in output order.
    log : tuple of str
        The dense columns passed through ``log1p`` before standardising.
    categorical : tuple of str
        Categorical input columns, in output order (then the ``*_bucket`` fields).
    hash_buckets : dict of str to int
        Hashed categorical columns and their bucket counts.
    base : FeatureEncoder
        Levels of the non-hashed categorical columns, bucket edges, means/stds.
    history : str or None
        The List column of item ids.
    history_len : int
        Length L of the encoded history.
    item_field : str or None
        The categorical field whose codes the history shares.
    label, timestamp, group : str or None
        Columns copied to ``labels`` / ``timestamps`` / ``groups`` when present.
    """

    dense: tuple[str, ...]
    log: tuple[str, ...]
    categorical: tuple[str, ...]
    hash_buckets: dict[str, int] = field(default_factory=dict)
    base: FeatureEncoder = field(default_factory=FeatureEncoder)
    history: str | None = None
    history_len: int = 0
    item_field: str | None = None
    label: str | None = "label"
    timestamp: str | None = "timestamp"
    group: str | None = "user_id"

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, train: pl.DataFrame, *, dense: Sequence[str] = (),
            categorical: Sequence[str] = (), log: Sequence[str] = (),
            bins: Mapping[str, int] | None = None, hash_buckets: Mapping[str, int] | int | None = None,
            history: str | None = None, history_len: int | None = None,
            item_field: str | None = None, min_count: int = 1, label: str | None = "label",
            timestamp: str | None = "timestamp", group: str | None = "user_id") -> CTREncoder:
        """Fit levels, bucket edges and scalings on ``train`` (the train rows only).

        Parameters
        ----------
        train : polars DataFrame
        dense : sequence of str
            Numeric columns to standardise.
        categorical : sequence of str
            Columns to code as embedding indices.
        log : sequence of str
            Dense columns to pass through ``log1p`` first (must be in ``dense``).
        bins : dict of str to int, optional
            Numeric column -> number of quantile buckets (an extra field ``<col>_bucket``).
        hash_buckets : int or dict of str to int, optional
            Categorical columns coded by the hashing trick (an int: all of them).
        history : str, optional
            A List column of item ids (oldest first) to encode as ``CTRData.history``.
        history_len : int, optional
            L (default: the longest history in ``train``).
        item_field : str, optional
            The categorical column of the candidate item; required with ``history``.
        min_count : int
            Levels seen fewer times in ``train`` get the unknown code 0.
        label, timestamp, group : str or None
            Columns to copy into ``CTRData`` when a transformed frame has them.
        """
        dense, categorical, log = tuple(dense), tuple(categorical), tuple(log)
        bins = dict(bins or {})
        if isinstance(hash_buckets, int):
            hashed = {c: int(hash_buckets) for c in categorical}
        else:
            hashed = {str(k): int(v) for k, v in (hash_buckets or {}).items()}
        _check_fit_args(train, dense, categorical, log, bins, hashed, history, item_field,
                        min_count)
        prepared = _prepare(train, dense, log, list(bins))
        stats = []
        for col in dense:
            vals = prepared[col].to_numpy().astype(np.float64)
            vals = vals[np.isfinite(vals)]
            mean = float(vals.mean()) if len(vals) else 0.0
            std = float(vals.std()) if len(vals) else 1.0
            stats.append((col, mean, std if std > 0 else 1.0))
        levels = []
        for col in categorical:
            if col not in hashed:
                levels.append((col, _levels(train[col], min_count)))
        edges = []
        for col, n in bins.items():
            vals = prepared[col].to_numpy().astype(np.float64)
            vals = vals[np.isfinite(vals)]
            qs = (np.quantile(vals, np.linspace(0, 1, int(n) + 1)[1:-1]) if len(vals)
                  else np.zeros(0))
            edges.append((col, tuple(float(e) for e in np.unique(qs))))
        hlen = 0
        if history is not None:
            hlen = (int(train[history].list.len().max() or 0) if history_len is None
                    else int(history_len))
            if hlen < 1:
                raise ValueError(f"history column {history!r}: history_len must be >= 1 "
                                 "(the train histories are all empty)")
        base = FeatureEncoder(categorical=tuple(levels), buckets=tuple(edges),
                              numeric=tuple(stats))
        return cls(dense, log, categorical, hashed, base, history, hlen, item_field,
                   label, timestamp, group)

    # ------------------------------------------------------------------ transform
    @property
    def schema(self) -> FeatureSchema:
        """The :class:`FeatureSchema` of every transformed frame."""
        cards = [self._cardinality(c) for c in self.categorical]
        bucket_names = [f"{c}_bucket" for c, _ in self.base.buckets]
        cards += [len(e) + 2 for _, e in self.base.buckets]
        n_hist = self._cardinality(self.item_field) if self.history is not None else 0
        return FeatureSchema(self.dense, self.categorical + tuple(bucket_names), tuple(cards),
                             n_hist, self.item_field)

    def _cardinality(self, col: str | None) -> int:
        if col in self.hash_buckets:
            return self.hash_buckets[col] + 1
        return len(dict(self.base.categorical)[col]) + 1

    def transform(self, frame: pl.DataFrame) -> CTRData:
        """Encode ``frame`` with the fitted statistics (nothing is refitted).

        Parameters
        ----------
        frame : polars DataFrame, N rows
            Needs every fitted column; unseen categorical values get code 0 (or their hash
            bucket).

        Returns
        -------
        CTRData
            ``dense`` (N, D), ``categorical`` (N, C), ``history`` (N, L) when fitted with one,
            ``labels`` / ``timestamps`` / ``groups`` from their columns when present.
        """
        needed = list(self.dense) + list(self.categorical) + [c for c, _ in self.base.buckets]
        if self.history is not None:
            needed.append(self.history)
        missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
        if missing:
            raise ValueError(f"CTREncoder.transform: column(s) {missing} missing from the "
                             f"frame (the encoder was fitted with them)")
        n = frame.height
        prepared = _prepare(frame, self.dense, self.log, [c for c, _ in self.base.buckets])
        level_cols = [c for c in self.categorical if c not in self.hash_buckets]
        table = prepared.with_columns([pl.col(c).cast(pl.String) for c in level_cols])
        ent = self.base.transform(table)
        codes = dict(zip(ent.cat_names, ent.categorical.T, strict=True))
        cat_cols = []
        for col in self.categorical:
            if col in self.hash_buckets:
                cat_cols.append(hash_codes(frame[col], self.hash_buckets[col]))
            else:
                cat_cols.append(codes[col])
        cat_cols += [codes[f"{c}_bucket"] for c, _ in self.base.buckets]
        cat = np.stack(cat_cols, axis=1) if cat_cols else np.zeros((n, 0), np.int64)
        dense = ent.numeric if self.dense else np.zeros((n, 0), np.float32)
        history = self._history(frame) if self.history is not None else None
        return CTRData(self.schema, dense, cat, labels=self._column(frame, self.label),
                       history=history, timestamps=self._column(frame, self.timestamp),
                       groups=self._groups(frame))

    def _codes(self, values: pl.Series, col: str) -> np.ndarray:
        """Codes of ``values`` in field ``col``'s code space, shape (len(values),)."""
        if col in self.hash_buckets:
            return hash_codes(values, self.hash_buckets[col])
        levels = FeatureEncoder(categorical=((col, dict(self.base.categorical)[col]),))
        return levels.transform(pl.DataFrame({col: values.cast(pl.String)})).categorical[:, 0]

    def _history(self, frame: pl.DataFrame) -> np.ndarray:
        """(N, L) right-aligned item codes of the last ``history_len`` items, 0-padded."""
        s = frame[self.history]
        if not isinstance(s.dtype, pl.List):
            raise ValueError(f"history column {self.history!r} must be a List of item ids, "
                             f"got {s.dtype}")
        n, length = frame.height, self.history_len
        lens = s.list.len().fill_null(0).to_numpy().astype(np.int64)
        out = np.zeros((n, length), np.int64)
        if lens.sum() == 0:
            return out
        flat = pl.Series(s.to_arrow().flatten())  # the values of the non-null lists, in order
        codes = self._codes(flat, self.item_field)  # type: ignore[arg-type]
        rows = np.repeat(np.arange(n), lens)
        k = np.arange(len(rows)) - np.repeat(np.cumsum(lens) - lens, lens)
        col = length - (lens[rows] - k)  # right-aligned: the last item at column L - 1
        keep = col >= 0
        out[rows[keep], col[keep]] = codes[keep]
        return out

    @staticmethod
    def _column(frame: pl.DataFrame, name: str | None) -> np.ndarray | None:
        if name is None or name not in frame.columns:
            return None
        s = frame[name]
        if s.null_count():
            raise ValueError(f"column {name!r} has {s.null_count()} null value(s)")
        return s.to_numpy()

    def _groups(self, frame: pl.DataFrame) -> np.ndarray | None:
        if self.group is None or self.group not in frame.columns:
            return None
        s = frame[self.group]
        if s.dtype.is_integer() and not s.null_count():
            return s.to_numpy().astype(np.int64)
        return s.rank("dense").fill_null(0).to_numpy().astype(np.int64)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (:meth:`from_dict` rebuilds the encoder)."""
        return {
            "version": _VERSION,
            "dense": list(self.dense),
            "log": list(self.log),
            "categorical": list(self.categorical),
            "hash_buckets": dict(self.hash_buckets),
            "levels": {c: list(lv) for c, lv in self.base.categorical},
            "bins": {c: list(e) for c, e in self.base.buckets},
            "stats": {c: [m, s] for c, m, s in self.base.numeric},
            "history": self.history,
            "history_len": self.history_len,
            "item_field": self.item_field,
            "label": self.label,
            "timestamp": self.timestamp,
            "group": self.group,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CTREncoder:
        """Rebuild an encoder from :meth:`to_dict`'s output."""
        if d.get("version") != _VERSION:
            raise ValueError(f"CTREncoder.from_dict: unsupported version {d.get('version')!r} "
                             f"(expected {_VERSION})")
        base = FeatureEncoder(
            categorical=tuple((c, tuple(str(v) for v in lv)) for c, lv in d["levels"].items()),
            buckets=tuple((c, tuple(float(e) for e in es)) for c, es in d["bins"].items()),
            numeric=tuple((c, float(ms[0]), float(ms[1])) for c, ms in d["stats"].items()))
        return cls(tuple(d["dense"]), tuple(d["log"]), tuple(d["categorical"]),
                   {str(k): int(v) for k, v in d["hash_buckets"].items()}, base,
                   d["history"], int(d["history_len"]), d["item_field"], d["label"],
                   d["timestamp"], d["group"])


def to_ctr_data(frame: pl.DataFrame, encoder: CTREncoder) -> CTRData:
    """``encoder.transform(frame)``: the frame as :class:`CTRData` with a fitted encoder."""
    return encoder.transform(frame)


def hash_codes(values: pl.Series, n_buckets: int) -> np.ndarray:
    """The hashing trick: ``1 + crc32(utf-8 text of the value) % n_buckets``, 0 for null.

    Parameters
    ----------
    values : polars Series, shape (N,)
        Any dtype (hashed through its text form, so ``7`` and ``"7"`` share a bucket).
    n_buckets : int

    Returns
    -------
    ndarray of int64, shape (N,)
        Codes in ``[0, n_buckets]``.
    """
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    text = values.cast(pl.String)
    distinct = text.drop_nulls().unique()
    if len(distinct) == 0:
        return np.zeros(len(values), np.int64)
    buckets = [1 + zlib.crc32(v.encode()) % n_buckets for v in distinct]
    mapped = text.replace_strict(distinct, buckets, default=0, return_dtype=pl.Int64)
    return mapped.fill_null(0).to_numpy().astype(np.int64)


def one_hot(codes: np.ndarray, cardinalities: Sequence[int]) -> sp.csr_matrix:
    """One-hot matrix of categorical codes (one 1 per field, the unknown code included).

    Parameters
    ----------
    codes : ndarray of int, shape (N, C)
        Field ``j`` takes codes ``0 .. cardinalities[j] - 1``.
    cardinalities : sequence of int, length C

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (N, sum(cardinalities))
        Field ``j`` occupies columns ``offsets[j] .. offsets[j] + cardinalities[j] - 1``.
    """
    codes = np.asarray(codes, dtype=np.int64)
    cards = np.asarray(cardinalities, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != len(cards):
        raise ValueError(f"codes must have shape (N, {len(cards)}), got {codes.shape}")
    bad = (codes < 0) | (codes >= cards[None, :])
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"one_hot: row {r}, field {c}: code {codes[r, c]} outside "
                         f"[0, {cards[c]})")
    n, c = codes.shape
    offsets = np.concatenate([[0], np.cumsum(cards)[:-1]])  # FeatureSchema.offsets
    cols = (codes + offsets[None, :]).reshape(-1)
    indptr = np.arange(0, n * c + 1, c, dtype=np.int64)
    return sp.csr_matrix((np.ones(n * c, np.float32), cols, indptr),
                         shape=(n, int(cards.sum())))


# ---------------------------------------------------------------------------- helpers
def _check_fit_args(train: pl.DataFrame, dense: tuple[str, ...], categorical: tuple[str, ...],
                    log: tuple[str, ...], bins: dict[str, int], hashed: dict[str, int],
                    history: str | None, item_field: str | None, min_count: int) -> None:
    needed = list(dense) + list(categorical) + list(bins) + ([history] if history else [])
    missing = [c for c in dict.fromkeys(needed) if c not in train.columns]
    if missing:
        raise ValueError(f"CTREncoder.fit: column(s) {missing} not in the train frame")
    if train.height == 0:
        raise ValueError("CTREncoder.fit: the train frame is empty")
    both = set(dense) & set(categorical)
    if both:
        raise ValueError(f"CTREncoder.fit: column(s) {sorted(both)} are both dense and "
                         "categorical")
    for col in list(dense) + list(bins):
        if not (train[col].dtype.is_numeric() or train[col].dtype == pl.Null):
            raise ValueError(f"CTREncoder.fit: dense/binned column {col!r} is "
                             f"{train[col].dtype}, not numeric; list it as categorical")
    if set(log) - set(dense):
        raise ValueError(f"CTREncoder.fit: log column(s) {sorted(set(log) - set(dense))} "
                         "are not dense columns")
    if set(hashed) - set(categorical):
        raise ValueError(f"CTREncoder.fit: hashed column(s) {sorted(set(hashed) - set(categorical))} "
                         "are not categorical columns")
    for col, n in list(hashed.items()) + list(bins.items()):
        if n < 1:
            raise ValueError(f"CTREncoder.fit: {col!r} needs >= 1 bucket, got {n}")
    if history is not None and item_field not in categorical:
        raise ValueError(f"CTREncoder.fit: history {history!r} needs item_field, a "
                         f"categorical column (got {item_field!r})")
    if min_count < 1:
        raise ValueError(f"CTREncoder.fit: min_count must be >= 1, got {min_count}")


def _prepare(frame: pl.DataFrame, dense: Sequence[str], log: Sequence[str],
             binned: Sequence[str]) -> pl.DataFrame:
    """``frame`` with dense/binned columns as Float64 (log1p of the ``log`` ones)."""
    exprs = []
    for col in dict.fromkeys(list(dense) + list(binned)):
        e = pl.col(col).cast(pl.Float64)
        if col in log:
            e = e.clip(lower_bound=0.0).log1p()
        exprs.append(e.alias(col))
    return frame.with_columns(exprs) if exprs else frame


def _levels(s: pl.Series, min_count: int) -> tuple[str, ...]:
    """Sorted (as text) distinct values of ``s`` seen at least ``min_count`` times."""
    text = s.cast(pl.String).drop_nulls()
    if len(text) == 0:
        return ()
    counts = text.rename("__v").value_counts(name="__n")
    return tuple(sorted(counts.filter(pl.col("__n") >= min_count)["__v"].to_list()))
