"""Side features of users and items as model-ready arrays (categorical codes, multi-hot, numeric).

:func:`side_features` turns a :class:`~streamrec.data.dataset.Dataset`'s ``users`` / ``items``
polars tables into :class:`SideFeatures` whose rows follow a split's vocabularies (row ``i``
describes user/item index ``i`` of ``split.user_vocab`` / ``split.item_vocab``, train ids
first, then the cold ones). Every column is typed automatically:

- **categorical**: strings, booleans, categoricals and integer ``*_id`` columns. Code 0 is
  "unknown": nulls, levels seen fewer than ``min_count`` times in the fitting rows and, at
  transform time, levels never seen. Free text and id-like strings (more than
  ``max_levels`` levels, or more distinct values than ``max_distinct_ratio`` of the rows) are
  left out.
- **numeric**: numbers, and strings of which at least 99% parse as numbers (MovieLens
  ``age``, ``release_year``; the others count as null): standardised with the fitting rows' mean/std, nulls set to 0 (the mean),
  clipped to ±5; each also gets a quantile-bucket categorical field ``<col>_bucket`` (code 0
  for null) so that models can learn non-linear effects (ages, years).
- **multi-hot**: list columns (RecBole ``token_seq`` such as ``class`` genres) with at most
  ``max_levels`` tokens of ``min_count`` occurrences; one 0/1 column per token.

The levels, bucket edges and means are fitted on the train users/items only
(:class:`FeatureEncoder`), so cold entities are encoded the way a production system would see
them, and :meth:`FeatureEncoder.transform` encodes any new table the same way (unseen levels
get the unknown code; nothing crashes). Everything is vectorised polars/numpy.

Example::

    prep = prepare("recbole:path/to/ml-100k")
    sp = make_split(prep.dataset, "temporal_user")
    side = side_features(prep.dataset, sp)
    side.users.categorical.shape   # (943, 4): age_bucket, gender, occupation, ...
    side.items.multi_hot.shape     # (1682, 19): class=Action, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from streamrec.data.dataset import Dataset
    from streamrec.data.splits import Split
    from streamrec.data.vocab import Vocabulary

__all__ = ["EntityFeatures", "FeatureEncoder", "SideFeatures", "side_features"]

UNKNOWN = 0  #: the categorical code of null / rare / unseen values
_CLIP = 5.0
#: a text column is numeric when this share of its values parse as numbers (the rest: null)
_NUMERIC_SHARE = 0.99


# ---------------------------------------------------------------------------- arrays
@dataclass(frozen=True)
class EntityFeatures:
    """Encoded side features of one kind of entity; row ``i`` describes index ``i``.

    Build by hand for tests (only ``n_rows`` is required)::

        EntityFeatures(4, categorical=np.array([[1], [2], [0], [1]]), cardinalities=(3,),
                       cat_names=("tier",))

    Attributes
    ----------
    n_rows : int
    categorical : ndarray of int64, shape (n_rows, F)
        Codes in ``[0, cardinalities[f])``; 0 is unknown/null/rare.
    cardinalities : tuple of int, length F
        Codes per field, the unknown code included.
    cat_names : tuple of str, length F
    multi_hot : ndarray of float32, shape (n_rows, M)
        0/1 indicators (e.g. genres).
    multi_names : tuple of str, length M
        ``"<column>=<token>"`` labels.
    numeric : ndarray of float32, shape (n_rows, K)
        Standardised values (0 where null).
    num_names : tuple of str, length K
    encoder : FeatureEncoder or None
        What produced the arrays (None when built by hand); encodes new tables the same way.
    """

    n_rows: int
    categorical: np.ndarray | None = None
    cardinalities: tuple[int, ...] = ()
    cat_names: tuple[str, ...] = ()
    multi_hot: np.ndarray | None = None
    multi_names: tuple[str, ...] = ()
    numeric: np.ndarray | None = None
    num_names: tuple[str, ...] = ()
    encoder: FeatureEncoder | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = int(self.n_rows)
        cat = _as_2d(self.categorical, n, np.int64, "categorical")
        multi = _as_2d(self.multi_hot, n, np.float32, "multi_hot")
        num = _as_2d(self.numeric, n, np.float32, "numeric")
        cards = tuple(int(c) for c in self.cardinalities)
        if len(cards) != cat.shape[1]:
            raise ValueError(f"EntityFeatures: {cat.shape[1]} categorical field(s) but "
                             f"{len(cards)} cardinalities")
        if cat.size and (cat.min() < 0 or bool((cat >= np.asarray(cards)[None, :]).any())):
            raise ValueError("EntityFeatures: categorical codes must lie in [0, cardinality); "
                             "map unknown values to code 0")
        names = {"cat_names": (self.cat_names, cat.shape[1], "c"),
                 "multi_names": (self.multi_names, multi.shape[1], "m"),
                 "num_names": (self.num_names, num.shape[1], "x")}
        for attr, (given, width, prefix) in names.items():
            given = tuple(str(s) for s in given) or tuple(f"{prefix}{j}" for j in range(width))
            if len(given) != width:
                raise ValueError(f"EntityFeatures: {attr} has {len(given)} names for "
                                 f"{width} columns")
            object.__setattr__(self, attr, given)
        object.__setattr__(self, "n_rows", n)
        object.__setattr__(self, "categorical", cat)
        object.__setattr__(self, "cardinalities", cards)
        object.__setattr__(self, "multi_hot", multi)
        object.__setattr__(self, "numeric", num)

    def __len__(self) -> int:
        return self.n_rows

    @property
    def n_fields(self) -> int:
        """Number of categorical fields F."""
        return len(self.cardinalities)

    @property
    def is_empty(self) -> bool:
        """No feature at all (ids only)."""
        return not (self.n_fields or self.multi_hot.shape[1] or self.numeric.shape[1])

    def take(self, rows: np.ndarray) -> EntityFeatures:
        """The features of ``rows`` (int indices, shape (R,)), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return EntityFeatures(len(rows), self.categorical[rows], self.cardinalities,
                              self.cat_names, self.multi_hot[rows], self.multi_names,
                              self.numeric[rows], self.num_names, self.encoder)

    def head(self, n: int) -> EntityFeatures:
        """The first ``n`` rows (e.g. the train users of a split)."""
        if n > self.n_rows:
            raise ValueError(f"EntityFeatures has {self.n_rows} rows, asked for the first {n}")
        return self.take(np.arange(n))

    def first_category(self, name: str | None = None) -> np.ndarray:
        """One category code per row (for colouring plots), shape (n_rows,) int64.

        The first multi-hot token of each row (-1 when it has none) when the entity has
        multi-hot columns, else the codes of categorical field ``name`` (default: the first
        field that is not a numeric bucket).
        """
        if name is None and self.multi_hot.shape[1]:
            has = self.multi_hot.any(axis=1)
            return np.where(has, self.multi_hot.argmax(axis=1), -1).astype(np.int64)
        fields = [f for f in self.cat_names if not f.endswith("_bucket")] or list(self.cat_names)
        if not fields:
            return np.full(self.n_rows, -1, np.int64)
        return self.categorical[:, self.cat_names.index(name or fields[0])].copy()


@dataclass(frozen=True)
class SideFeatures:
    """User and item side features aligned with a split's vocabularies.

    Attributes
    ----------
    users : EntityFeatures
        ``len(split.user_vocab)`` rows: the train users first, then cold ones.
    items : EntityFeatures
        ``len(split.item_vocab)`` rows.
    """

    users: EntityFeatures
    items: EntityFeatures

    @property
    def n_users(self) -> int:
        return self.users.n_rows

    @property
    def n_items(self) -> int:
        return self.items.n_rows

    @classmethod
    def empty(cls, n_users: int, n_items: int) -> SideFeatures:
        """No features (ids only)."""
        return cls(EntityFeatures(n_users), EntityFeatures(n_items))


# ---------------------------------------------------------------------------- encoder
@dataclass(frozen=True)
class FeatureEncoder:
    """The fitted typing, levels, bucket edges and scalings of one side table.

    Attributes
    ----------
    categorical : tuple of (column, levels)
        Code ``1 + j`` is ``levels[j]``; anything else is code 0.
    buckets : tuple of (column, edges)
        Field ``<column>_bucket``: code ``1 + searchsorted(edges, value, "right")``, 0 for null.
    multi : tuple of (column, tokens)
        One multi-hot column per token.
    numeric : tuple of (column, mean, std)
    """

    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()
    buckets: tuple[tuple[str, tuple[float, ...]], ...] = ()
    multi: tuple[tuple[str, tuple[str, ...]], ...] = ()
    numeric: tuple[tuple[str, float, float], ...] = ()

    @classmethod
    def fit(cls, table: pl.DataFrame, *, key: str, rows: np.ndarray | None = None,
            max_levels: int = 100, min_count: int = 2, max_distinct_ratio: float = 0.5,
            n_buckets: int = 8, exclude: Sequence[str] = ()) -> FeatureEncoder:
        """Type every column of ``table`` (but ``key``/``exclude``) and fit it on ``rows``.

        Parameters
        ----------
        table : polars DataFrame
        key : str
            The id column (skipped).
        rows : ndarray of int, shape (R,), optional
            Rows to fit levels/statistics on (default: all).
        max_levels : int
            Categorical/multi-hot columns with more kept levels are left out.
        min_count : int
            Levels seen fewer times map to the unknown code.
        max_distinct_ratio : float
            String columns with more distinct values per fitted row are free text or ids
            (left out).
        n_buckets : int
            Quantile buckets per numeric column (0: no bucket fields).
        exclude : sequence of str
            Columns to leave out.
        """
        fit = table if rows is None else table[np.asarray(rows, dtype=np.int64)]
        n_fit = max(fit.height, 1)
        cats: list[tuple[str, tuple[str, ...]]] = []
        bucket: list[tuple[str, tuple[float, ...]]] = []
        multi: list[tuple[str, tuple[str, ...]]] = []
        nums: list[tuple[str, float, float]] = []
        for col in table.columns:
            if col == key or col in exclude:
                continue
            kind, series = _column_kind(fit[col], col)
            if kind == "multi":
                tokens = _levels(series.explode().drop_nulls().cast(pl.String), min_count)
                if 0 < len(tokens) <= max_levels:
                    multi.append((col, tokens))
            elif kind == "numeric":
                vals = series.drop_nulls().to_numpy().astype(np.float64)
                vals = vals[np.isfinite(vals)]
                if len(vals) == 0:
                    continue
                mean, std = float(vals.mean()), float(vals.std())
                nums.append((col, mean, std if std > 0 else 1.0))
                if n_buckets > 1 and len(np.unique(vals)) > 2:
                    q = np.quantile(vals, np.linspace(0, 1, n_buckets + 1)[1:-1])
                    bucket.append((col, tuple(float(e) for e in np.unique(q))))
            else:
                s = series.cast(pl.String)
                levels = _levels(s.drop_nulls(), min_count)
                distinct = s.drop_nulls().n_unique()
                if 0 < len(levels) <= max_levels and distinct <= max_distinct_ratio * n_fit:
                    cats.append((col, levels))
        return cls(tuple(cats), tuple(bucket), tuple(multi), tuple(nums))

    def transform(self, table: pl.DataFrame, present: np.ndarray | None = None) -> EntityFeatures:
        """Encode ``table`` (one row per entity) with the fitted levels and scalings.

        Parameters
        ----------
        table : polars DataFrame
            Needs the fitted columns; a missing column encodes as unknown/zero.
        present : ndarray of bool, shape (n,), optional
            Rows without a side-table entry (False) get unknown codes and zeros.
        """
        n = table.height
        cols: list[np.ndarray] = []
        names: list[str] = []
        cards: list[int] = []
        for col, levels in self.categorical:
            codes = np.zeros(n, np.int64)
            if col in table.columns:
                codes = _codes(table[col].cast(pl.String), levels)
            cols.append(codes)
            names.append(col)
            cards.append(len(levels) + 1)
        for col, edges in self.buckets:
            codes = np.zeros(n, np.int64)
            if col in table.columns:
                v = _numeric_values(table[col], col)
                ok = np.isfinite(v)
                codes[ok] = 1 + np.searchsorted(np.asarray(edges), v[ok], side="right")
            cols.append(codes)
            names.append(f"{col}_bucket")
            cards.append(len(edges) + 2)
        cat = np.stack(cols, axis=1) if cols else np.zeros((n, 0), np.int64)
        multi_blocks, multi_names = [], []
        for col, tokens in self.multi:
            block = np.zeros((n, len(tokens)), np.float32)
            if col in table.columns:
                exploded = (table.select(pl.col(col)).with_row_index("__row")
                            .explode(col).drop_nulls(col))
                codes = _codes(exploded[col].cast(pl.String), tokens)
                rows = exploded["__row"].to_numpy().astype(np.int64)
                keep = codes > 0
                block[rows[keep], codes[keep] - 1] = 1.0
            multi_blocks.append(block)
            multi_names += [f"{col}={t}" for t in tokens]
        multi = np.concatenate(multi_blocks, axis=1) if multi_blocks else None
        num_cols = []
        for col, mean, std in self.numeric:
            v = (_numeric_values(table[col], col) if col in table.columns
                 else np.full(n, np.nan))
            z = np.clip((v - mean) / std, -_CLIP, _CLIP)
            num_cols.append(np.where(np.isfinite(z), z, 0.0).astype(np.float32))
        num = np.stack(num_cols, axis=1) if num_cols else None
        if present is not None:
            absent = ~np.asarray(present, dtype=bool)
            cat[absent] = UNKNOWN
            if multi is not None:
                multi[absent] = 0.0
            if num is not None:
                num[absent] = 0.0
        return EntityFeatures(n, cat, tuple(cards), tuple(names), multi, tuple(multi_names),
                              num, tuple(c for c, _, _ in self.numeric), self)


# ---------------------------------------------------------------------------- entry point
def side_features(dataset: Dataset, split: Split, *, max_levels: int = 100, min_count: int = 2,
                  max_distinct_ratio: float = 0.5, n_buckets: int = 8,
                  exclude: Sequence[str] = ()) -> SideFeatures:
    """Encode ``dataset``'s user and item tables in ``split``'s index spaces.

    Levels, bucket edges and scalings are fitted on the train users/items of ``split``
    (indices ``< split.n_users`` / ``< split.n_items``); cold users/items are encoded with
    them (unseen levels -> unknown code 0). Users/items without a side-table row, or a
    dataset without a table, get unknown codes and zeros (no features at all when the table
    is absent). See the module docstring for how columns are typed and the parameters of
    :meth:`FeatureEncoder.fit`.

    Returns
    -------
    SideFeatures
        ``users`` has ``len(split.user_vocab)`` rows and ``items`` ``len(split.item_vocab)``.
    """
    from streamrec.data.dataset import ITEM, USER

    opts = {"max_levels": max_levels, "min_count": min_count,
            "max_distinct_ratio": max_distinct_ratio, "n_buckets": n_buckets, "exclude": exclude}
    users = _entity(dataset.users, USER, dataset.user_vocab, split.user_vocab,
                    split.n_users, opts)
    items = _entity(dataset.items, ITEM, dataset.item_vocab, split.item_vocab,
                    split.n_items, opts)
    return SideFeatures(users, items)


def _entity(table: pl.DataFrame | None, key: str, data_vocab: Vocabulary,
            split_vocab: Vocabulary, n_train: int, opts: dict) -> EntityFeatures:
    """Rows of ``table`` (aligned to ``data_vocab``) reordered to ``split_vocab`` and encoded."""
    n = len(split_vocab)
    if table is None or table.width <= 1:
        return EntityFeatures(n)
    idx, found = data_vocab.lookup(split_vocab.ids)
    found &= idx < table.height
    aligned = table[np.where(found, idx, 0).astype(np.int64)]
    encoder = FeatureEncoder.fit(aligned, key=key, rows=np.flatnonzero(found[:n_train]), **opts)
    return encoder.transform(aligned, present=found)


# ---------------------------------------------------------------------------- helpers
def _as_2d(a: np.ndarray | None, n: int, dtype: type, what: str) -> np.ndarray:
    if a is None:
        return np.zeros((n, 0), dtype)
    arr = np.asarray(a)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"EntityFeatures: {what} has shape {arr.shape}, expected ({n}, k)")
    return np.ascontiguousarray(arr, dtype=dtype)


def _column_kind(s: pl.Series, name: str) -> tuple[str, pl.Series]:
    """("multi" | "numeric" | "categorical", the series to encode)."""
    dt = s.dtype
    if isinstance(dt, pl.List | pl.Array):
        return "multi", s
    if dt == pl.Boolean:
        return "categorical", s.cast(pl.String)
    if dt.is_integer() and (name == "id" or name.endswith("_id")):
        return "categorical", s
    if dt.is_numeric():
        return "numeric", s.cast(pl.Float64)
    if dt in (pl.String, pl.Categorical) or isinstance(dt, pl.Enum):
        s = s.cast(pl.String).str.strip_chars()
        s = s.set(s == "", None)  # empty text is missing
        parsed = s.cast(pl.Float64, strict=False)
        present = len(s) - s.null_count()
        if present and len(s) - parsed.null_count() >= _NUMERIC_SHARE * present:
            return "numeric", parsed  # numbers written as text (RecBole's age, year)
        return "categorical", s
    if dt.is_temporal():
        return "numeric", s.cast(pl.Int64).cast(pl.Float64)
    return "categorical", s.cast(pl.String)


def _numeric_values(s: pl.Series, name: str) -> np.ndarray:
    """Float64 values of a numeric (or numeric-text) column, NaN where null or unparsable."""
    _, v = _column_kind(s, name)
    if v.dtype != pl.Float64:
        v = v.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    return v.fill_null(np.nan).to_numpy().astype(np.float64)


def _levels(s: pl.Series, min_count: int) -> tuple[str, ...]:
    """Sorted distinct values seen at least ``min_count`` times."""
    if len(s) == 0:
        return ()
    counts = s.rename("__value").value_counts(name="__count")
    kept = counts.filter(pl.col("__count") >= min_count)["__value"]
    return tuple(sorted(kept.cast(pl.String).to_list()))


def _codes(s: pl.Series, levels: tuple[str, ...]) -> np.ndarray:
    """Code ``1 + j`` for ``levels[j]``, 0 for null and anything else; shape (len(s),)."""
    if not levels:
        return np.zeros(len(s), np.int64)
    mapped = s.replace_strict(list(levels), list(range(1, len(levels) + 1)), default=0,
                              return_dtype=pl.Int64)
    return mapped.fill_null(UNKNOWN).to_numpy().astype(np.int64)
