"""Private helpers of the readers: typed, validated columns (vectorised).

Each ``parse_*`` function reads source column ``src`` of ``df``, hands the rows whose value is
missing or malformed to :class:`~streamrec.data.sources._text.Rejects` (field = the source
column name) and returns the remaining rows with the parsed column added as ``dst``. Source
columns are left as they are, so a rejected row's raw text stays the source's.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from streamrec.data.sources._text import (
    BAD_TIME,
    DUPLICATE_ID,
    MISSING,
    NEGATIVE_DURATION,
    NOT_INT,
    NOT_NUMBER,
    Rejects,
)

TimeUnit = Literal["auto", "s", "ms", "us", "ns"]
_DIVISORS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: datetime formats tried in turn (after a space between date and time became "T");
#: naive times are taken as UTC, zoned ones converted to UTC
_DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%dT%H:%M:%S",
    "%Y/%m/%d",
)


def clean(s: pl.Series) -> pl.Series:
    """Strings stripped, with empty ones as null; other dtypes unchanged. Shape (n,)."""
    if s.dtype == pl.String:
        return s.str.strip_chars().replace("", None)
    return s


def _is_missing(s: pl.Series) -> pl.Series:
    c = clean(s)
    if c.dtype.is_float():
        return c.is_null() | c.is_nan()
    return c.is_null()


def require(df: pl.DataFrame, src: str, rejects: Rejects) -> pl.DataFrame:
    """Reject rows whose ``src`` is null or empty (reason "missing required field")."""
    return rejects.take(df, _is_missing(df[src]), src, MISSING)


def as_ids(s: pl.Series) -> pl.Series:
    """External ids: Int64 when every present value is an integer (written canonically), else String.

    ``"007"`` or ``"1.0"`` keep the column String, so distinct source ids never collide.
    Shape (n,), nulls kept.
    """
    if s.dtype.is_integer():
        return s.cast(pl.Int64)
    if s.dtype.is_float():
        if bool(((s.round() == s) | s.is_null()).all()):
            return s.cast(pl.Int64)
        return s.cast(pl.String)
    c = clean(s.cast(pl.String))
    ints = c.cast(pl.Int64, strict=False)
    canonical = bool((c.is_null() | ints.cast(pl.String).eq_missing(c)).all())
    return ints if canonical else c


def parse_id(df: pl.DataFrame, src: str, dst: str, rejects: Rejects, *,
             numeric: bool) -> pl.DataFrame:
    """A required id column: Int64 (``numeric=True``: anything else is rejected) or inferred."""
    df = require(df, src, rejects)
    if numeric:
        return parse_int(df, src, dst, rejects)
    return df.with_columns(as_ids(df[src]).alias(dst))


def parse_int(df: pl.DataFrame, src: str, dst: str, rejects: Rejects, *,
              required: bool = True, reason: str = NOT_INT) -> pl.DataFrame:
    """An Int64 column; present values that are not integers are rejected."""
    if required:
        df = require(df, src, rejects)
    s = df[src]
    if s.dtype.is_integer():
        return df.with_columns(s.cast(pl.Int64).alias(dst))
    if s.dtype.is_float():
        df = rejects.take(df, s.is_not_null() & (s.round() != s), src, reason)
        return df.with_columns(df[src].cast(pl.Int64).alias(dst))
    c = clean(s.cast(pl.String))
    ints = c.cast(pl.Int64, strict=False)
    df = rejects.take(df.with_columns(ints.alias(dst)), c.is_not_null() & ints.is_null(), src, reason)
    return df


def parse_float(df: pl.DataFrame, src: str, dst: str, rejects: Rejects, *,
                required: bool = False, nonnegative: bool = False,
                dtype: type[pl.DataType] = pl.Float32) -> pl.DataFrame:
    """A float column; non-numbers are rejected, and negatives when ``nonnegative``.

    Missing values stay null unless ``required``.
    """
    if required:
        df = require(df, src, rejects)
    s = df[src]
    if s.dtype.is_numeric():
        vals = s.cast(pl.Float64)
    else:
        c = clean(s.cast(pl.String))
        vals = c.cast(pl.Float64, strict=False)
        df = rejects.take(df.with_columns(vals.alias(dst)), c.is_not_null() & vals.is_null(),
                          src, NOT_NUMBER)
        vals = df[dst]
    if nonnegative:
        df = rejects.take(df.with_columns(vals.alias(dst)), vals < 0, src, NEGATIVE_DURATION)
        vals = df[dst]
    return df.with_columns(vals.cast(dtype).alias(dst))


def _seconds(num: pl.Series, unit: TimeUnit) -> pl.Series:
    """Integer seconds from epoch numbers in ``unit`` (``auto``: by magnitude), shape (n,)."""
    if unit == "auto":
        mag = num.abs().median()
        mag = 0.0 if mag is None else float(mag)  # type: ignore[arg-type]
        unit = "ns" if mag >= 1e17 else "us" if mag >= 1e14 else "ms" if mag >= 1e11 else "s"
    div = _DIVISORS[unit]
    if num.dtype.is_integer():
        return num.cast(pl.Int64) // div if div > 1 else num.cast(pl.Int64)
    return (num / div).floor().cast(pl.Int64, strict=False)


def _parse_datetimes(s: pl.Series) -> pl.Series:
    """Epoch seconds of ISO-8601-like strings (null where none of the formats fits)."""
    norm = s.str.replace(" ", "T", literal=True)
    out = pl.Series(s.name, [None] * len(s), dtype=pl.Int64)
    for fmt in _DATETIME_FORMATS:  # per format; each parse is vectorised over the column
        todo = out.is_null() & norm.is_not_null()
        if not todo.any():
            break
        parsed = norm.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us")
        out = out.fill_null(parsed.dt.epoch("s"))
    return out


def parse_time(df: pl.DataFrame, src: str, dst: str, rejects: Rejects, *,
               unit: TimeUnit = "auto", required: bool = True) -> pl.DataFrame:
    """Int64 seconds since the epoch (or an ordinal such as a rank) from numbers or datetimes.

    Numbers are seconds, or milli/micro/nanoseconds (``unit``; ``"auto"`` decides by the
    median magnitude: >= 1e11 is ms, >= 1e14 us, >= 1e17 ns); fractions are floored.
    Strings that are not numbers are parsed as ISO-8601 dates/times (UTC unless zoned).
    Datetime/Date columns (Parquet) are converted directly. Unparseable values are rejected.
    """
    if unit not in ("auto", *_DIVISORS):
        raise ValueError(f"time_unit must be one of auto, s, ms, us, ns; got {unit!r}")
    if required:
        df = require(df, src, rejects)
    s = df[src]
    if s.dtype == pl.Date:
        return df.with_columns(s.cast(pl.Datetime("us")).dt.epoch("s").alias(dst))
    if isinstance(s.dtype, pl.Datetime):
        return df.with_columns(s.dt.epoch("s").alias(dst))
    if s.dtype.is_numeric():
        num = s.cast(pl.Float64) if s.dtype.is_float() else s
        bad = num.is_nan() | num.is_infinite() if s.dtype.is_float() else None
        if bad is not None and bad.any():
            df = rejects.take(df, bad, src, BAD_TIME)
            num = num.filter(~bad.fill_null(False))
        return df.with_columns(_seconds(num, unit).alias(dst))
    c = clean(s.cast(pl.String))
    ints = c.cast(pl.Int64, strict=False)
    floats = c.cast(pl.Float64, strict=False)
    floats = pl.select(pl.when(floats.is_finite()).then(floats)).to_series()
    if bool((ints.is_not_null() | c.is_null()).all()):
        secs = _seconds(ints, unit)
    else:
        numeric = floats.is_not_null()
        num_secs = _seconds(floats.filter(numeric), unit) if numeric.any() else None
        full = pl.Series(dst, [None] * len(c), dtype=pl.Int64)
        if num_secs is not None:
            full = full.scatter(numeric.arg_true(), num_secs)
        text = pl.select(pl.when(~numeric).then(c)).to_series()
        secs = full.fill_null(_parse_datetimes(text))
    df = df.with_columns(secs.alias(dst))
    return rejects.take(df, c.is_not_null() & df[dst].is_null(), src, BAD_TIME)


def infer_column(s: pl.Series) -> pl.Series:
    """An extra text column typed: Int64 if every value is an integer, else Float64, else String.

    Integers with leading zeros (zip codes) stay String. Empty strings become null.
    """
    if s.dtype != pl.String:
        return s
    c = clean(s)
    if c.null_count() == len(c):
        return c
    ints = c.cast(pl.Int64, strict=False)
    if bool((c.is_null() | ints.cast(pl.String).eq_missing(c)).all()):
        return ints
    floats = c.cast(pl.Float64, strict=False)
    if bool((c.is_null() | floats.is_not_null()).all()):
        return floats
    return s.replace("", None)


def dedupe_ids(df: pl.DataFrame, key: str, src: str, rejects: Rejects) -> pl.DataFrame:
    """Reject every repeat of an id in a side table after its first row (reason "duplicate id")."""
    return rejects.take(df, ~df[key].is_first_distinct(), src, DUPLICATE_ID)


def match_key_dtype(table: pl.DataFrame, key: str, events_ids: pl.Series) -> pl.DataFrame:
    """Give a side table's id column the dtype of the events' ids when the values allow it."""
    if table[key].dtype == events_ids.dtype:
        return table
    if events_ids.dtype == pl.String:
        return table.with_columns(pl.col(key).cast(pl.String))
    return table
