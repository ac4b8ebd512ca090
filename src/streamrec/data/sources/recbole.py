"""RecBole atomic files: ``NAME.inter`` (+ ``NAME.user``, ``NAME.item``).

Tab-separated, no quoting, one typed header line ``name:type`` with type ``token``,
``float``, ``token_seq`` or ``float_seq`` (sequences are space-separated). Columns map to
the canonical frame by name: ``user_id``, ``item_id``, ``timestamp`` (float -> Int64
seconds, floored), ``rating`` -> ``value``; the others keep their names without the type:
``token`` -> String, ``float`` -> Float64, ``token_seq`` -> List(String), ``float_seq`` ->
List(Float64). Id columns are Int64 when every id is an integer, else String.

Required in ``.inter``: ``user_id``, ``item_id`` and, when the column exists, ``timestamp``
(without one, the timestamp is the row order). An empty ``rating`` stays null (the Dataset
reads it as 1.0); without a rating column every value is 1.0.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from streamrec.data.dataset import ITEM, TIME, USER, VALUE, RawData
from streamrec.data.errors import BadRowPolicy, BadRows, DataFormatError
from streamrec.data.sources._columns import (
    clean,
    dedupe_ids,
    match_key_dtype,
    parse_float,
    parse_id,
    parse_time,
)
from streamrec.data.sources._text import NOT_NUMBER, Rejects, read_delimited

RECBOLE_TYPES = ("token", "float", "token_seq", "float_seq")
_CANONICAL = {"user_id": USER, "item_id": ITEM, "timestamp": TIME, "rating": VALUE}
_INTER_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")


def read_recbole(path: str | Path, *, on_bad_rows: BadRowPolicy = "error") -> RawData:
    """Read RecBole atomic files.

    Parameters
    ----------
    path : str or Path
        A directory ``DIR`` holding ``DIR/NAME.inter`` with ``NAME`` the directory's name
        (and optionally ``NAME.user``, ``NAME.item``), or the ``.inter`` file itself (its
        side files are ``NAME.user``/``NAME.item`` next to it; for split files such as
        ``NAME.train.inter`` also ``NAME.user``/``NAME.item``).
    on_bad_rows : {"error", "quarantine"}
        Malformed rows (wrong number of fields, invalid UTF-8, a missing user/item/time,
        a float field that is not a number) raise
        :class:`~streamrec.data.errors.DataFormatError` naming file, line and field, or are
        set aside in ``RawData.bad_rows``.

    Returns
    -------
    RawData
        ``events`` shape (n, 4 + extra): user_id, item_id, timestamp, value, then the
        other ``.inter`` columns; ``users``/``items`` keyed by ``user_id``/``item_id``.
    """
    p = Path(path)
    if p.is_dir():
        name, folder = p.name, p
        inter = p / f"{name}.inter"
        if not inter.exists():
            found = sorted(x.name for x in p.glob("*.inter"))
            raise FileNotFoundError(
                f"{inter}: no such file; a RecBole folder DIR must hold DIR/NAME.inter with NAME "
                f"the folder's name (.inter files here: {found or 'none'}); or pass the .inter file"
            )
    else:
        if p.suffix != ".inter":
            raise ValueError(f"{p}: expected a RecBole .inter file or a folder holding one")
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file")
        inter, folder, name = p, p.parent, p.name[: -len(".inter")]
    bad = BadRows(policy=on_bad_rows)
    events = _read_inter(inter, on_bad_rows, bad)
    files = [inter]
    sides: dict[str, pl.DataFrame | None] = {}
    for suffix, key in (("user", USER), ("item", ITEM)):
        side = _side_file(folder, name, suffix)
        sides[suffix] = None
        if side is not None:
            files.append(side)
            table = _read_side(side, key, on_bad_rows, bad)
            sides[suffix] = match_key_dtype(table, key, events[key])
    return RawData(events=events, users=sides["user"], items=sides["item"], name=name,
                   bad_rows=bad, files=files)


def _side_file(folder: Path, name: str, suffix: str) -> Path | None:
    candidates = [folder / f"{name}.{suffix}"]
    base, _, part = name.rpartition(".")
    if base and part in ("train", "valid", "test"):
        candidates.append(folder / f"{base}.{suffix}")
    return next((c for c in candidates if c.exists()), None)


def _read_atomic(path: Path, rejects: Rejects) -> tuple[pl.DataFrame, dict[str, str]]:
    """String columns of an atomic file (named without their types) and each column's type."""
    frame, names = read_delimited(path, rejects, sep="\t", header=True, quoting=False)
    types: dict[str, str] = {}
    renames: dict[str, str] = {}
    for raw in names:
        field, sep, ftype = raw.rpartition(":")
        if not sep or ftype not in RECBOLE_TYPES:
            raise DataFormatError(
                path, 1, raw, f"header field {raw!r} is not name:type with type in "
                f"{', '.join(RECBOLE_TYPES)}", "write the header as e.g. user_id:token")
        if field in types:
            raise DataFormatError(path, 1, field, "duplicate column name in the header",
                                  "give every column a distinct name")
        types[field] = ftype
        renames[raw] = field
    return frame.rename(renames), types


def _typed(frame: pl.DataFrame, col: str, ftype: str, rejects: Rejects) -> pl.DataFrame:
    """Column ``col`` (string) converted to its RecBole type in place; bad floats rejected."""
    if ftype == "token":
        return frame.with_columns(clean(frame[col]).alias(col))
    if ftype == "float":
        frame = parse_float(frame, col, "__f", rejects, dtype=pl.Float64)
        return frame.with_columns(pl.col("__f").alias(col)).drop("__f")
    seq = clean(frame[col]).str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
    if ftype == "token_seq":
        return frame.with_columns(seq.alias(col))
    nums = seq.list.eval(pl.element().cast(pl.Float64, strict=False))
    bad = (nums.list.eval(pl.element().is_null()).list.any()).fill_null(False)
    frame = rejects.take(frame.with_columns(nums.alias("__f")), bad, col, NOT_NUMBER)
    return frame.with_columns(pl.col("__f").alias(col)).drop("__f")


def _read_inter(path: Path, policy: BadRowPolicy, bad: BadRows) -> pl.DataFrame:
    rej = Rejects(path, policy)
    frame, types = _read_atomic(path, rej)
    for need in ("user_id", "item_id"):
        if need not in types:
            raise DataFormatError(path, 1, need, f"the header has no {need} column "
                                  f"(columns: {list(types)})",
                                  f"name the columns {need}:token in the header")
    frame = parse_id(frame, "user_id", "__user", rej, numeric=False)
    frame = parse_id(frame, "item_id", "__item", rej, numeric=False)
    if "timestamp" in types:
        frame = parse_time(frame, "timestamp", "__time", rej, unit="s")
    if "rating" in types:
        frame = parse_float(frame, "rating", "__value", rej)
    else:
        frame = frame.with_columns(pl.lit(1.0, dtype=pl.Float32).alias("__value"))
    extras = [c for c in types if c not in _CANONICAL]
    for col in extras:
        frame = _typed(frame, col, types[col], rej)
    rej.finish(bad)
    if "timestamp" not in types:  # the row order (of the rows kept)
        frame = frame.with_columns(pl.int_range(frame.height, dtype=pl.Int64).alias("__time"))
    taken = set(_CANONICAL.values())
    return frame.select(
        pl.col("__user").alias(USER), pl.col("__item").alias(ITEM),
        pl.col("__time").alias(TIME), pl.col("__value").alias(VALUE),
        *[pl.col(c).alias(f"{c}_src" if c in taken else c) for c in extras],
    )


def _read_side(path: Path, key: str, policy: BadRowPolicy, bad: BadRows) -> pl.DataFrame:
    rej = Rejects(path, policy)
    frame, types = _read_atomic(path, rej)
    if key not in types:
        raise DataFormatError(path, 1, key, f"the header has no {key} column (columns: "
                              f"{list(types)})", f"name the key column {key}:token")
    frame = parse_id(frame, key, "__key", rej, numeric=False)
    frame = dedupe_ids(frame, "__key", key, rej)
    others = [c for c in types if c != key]
    for col in others:
        frame = _typed(frame, col, types[col], rej)
    rej.finish(bad)
    return frame.select(pl.col("__key").alias(key), *others)


def write_recbole_inter(events: pl.DataFrame, path: str | Path) -> Path:
    """Write a canonical event frame as a RecBole ``.inter`` file.

    Columns written: ``user_id:token  item_id:token  rating:float  timestamp:float``
    (the format RecBole reads for ``NAME.{train,valid,test}.inter``).
    ``value`` becomes ``rating`` (1.0 when the frame has none; a null is written empty);
    ``timestamp`` is written as an integer (the row order when the frame has none).
    :func:`read_recbole` reads it back to the same frame.

    Parameters
    ----------
    events : pl.DataFrame, shape (n, k)
        Canonical frame with ``user_id`` and ``item_id``.
    path : str or Path
        The ``.inter`` file to write (parent folders are created).

    Returns
    -------
    Path
    """
    for col in (USER, ITEM):
        if col not in events.columns:
            raise ValueError(f"write_recbole_inter: the frame has no {col!r} column "
                             f"(columns: {events.columns})")
        if events[col].null_count():
            raise ValueError(f"write_recbole_inter: {events[col].null_count()} null {col!r} values")
        ids = events[col].cast(pl.String)
        bad = ids.str.contains(r"[\t\r\n]") | (ids.str.strip_chars() != ids) | (ids == "")
        if bad.any():
            row = int(bad.arg_true()[0])
            raise ValueError(f"write_recbole_inter: {col} {ids[row]!r} (row {row}) is empty or "
                             "holds a tab, newline or edge spaces, which RecBole cannot read back")
    n = events.height
    value = (events[VALUE].cast(pl.Float32) if VALUE in events.columns
             else pl.Series(VALUE, [1.0] * n, dtype=pl.Float32))
    time = (events[TIME].cast(pl.Int64) if TIME in events.columns
            else pl.Series(TIME, range(n), dtype=pl.Int64))
    out = pl.DataFrame({"u": events[USER].cast(pl.String), "i": events[ITEM].cast(pl.String),
                        "r": value, "t": time})
    buf = io.StringIO()
    buf.write("\t".join(_INTER_HEADER) + "\n")
    out.write_csv(buf, separator="\t", include_header=False, quote_style="never", null_value="")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(buf.getvalue(), encoding="utf-8")
    return p


__all__ = ["RECBOLE_TYPES", "read_recbole", "write_recbole_inter"]
