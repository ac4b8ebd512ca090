"""Generic engagement logs: CSV/TSV/TXT (optionally gzipped), Parquet, JSON Lines.

The columns that play the canonical roles are given (``user_col=...``) or found by their
usual names (see :data:`COLUMN_NAMES`; the first name present wins, exact case first).

Rules
-----
- user and item are required in every row; ids become Int64 when every id is an integer
  written canonically, else String.
- time, when a column is mapped, is required in every row and parsed to Int64 seconds:
  integers are seconds (epoch milli/micro/nanoseconds are recognised by magnitude with
  ``time_unit="auto"``), ISO-8601 strings are parsed (UTC unless zoned), and a rank such as
  ``chrono_rank`` stays the integer it is. An *auto-detected* time column with missing
  values is not used (a warning is logged): the timestamp is then the row order, as when
  there is no time column at all, and the source column is kept (``timestamp_src``).
  Pass ``time_col`` explicitly to require it (rows without a time become bad rows).
- value (rating) is optional per row: an empty value stays null in the frame (the
  :class:`~streamrec.data.dataset.Dataset` reads a null value as 1.0); a value that is
  present but not a number is a bad row. Without a value column every value is 1.0.
- duration (seconds watched) is optional per row; negative or non-numeric is a bad row.
- every other column is carried through (text columns typed as Int64, Float64 or
  String); a carried column whose name is a canonical one is renamed ``NAME_src``.
- bad rows raise :class:`~streamrec.data.errors.DataFormatError` naming file, line (row for
  Parquet) and field, or are quarantined, with ``on_bad_rows="quarantine"``: missing user,
  item or (mapped) time, unparseable time, non-numeric value or duration, negative duration,
  invalid UTF-8, a wrong number of fields (CSV), a line that is not one JSON object (JSONL).
- blank lines are not rows (skipped; line numbers still count them). A CSV header line is
  required; ``"``-quoted fields may hold separators but not line breaks.
- JSONL values are typed by polars; when a key's values do not mix across lines (an
  object here, a list there) every column is read as text.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import polars as pl

from streamrec.data.dataset import EVENT, ITEM, TIME, USER, VALUE, RawData
from streamrec.data.errors import BadRowPolicy, BadRows, DataFormatError
from streamrec.data.sources._columns import (
    TimeUnit,
    clean,
    dedupe_ids,
    infer_column,
    match_key_dtype,
    parse_float,
    parse_id,
    parse_time,
)
from streamrec.data.sources._text import (
    INVALID_JSON,
    LINE,
    RAW,
    ROW_FIELD,
    Rejects,
    join_lines,
    read_delimited,
    read_lines,
)

logger = logging.getLogger(__name__)

DURATION = "duration"
#: names looked for, in order, when a role's column is not given
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "user", "userId", "uid", "visitor_id"),
    "item": ("item_id", "item", "movie", "movieId", "movie_id", "iid", "content_id"),
    "time": ("timestamp", "time", "ts", "event_time", "datetime"),
    "value": ("value", "rating", "score"),
    "event": ("event", "event_type", "action"),
    "duration": ("duration", "watch_time", "watch_seconds", "duration_s"),
}
_CANONICAL = (USER, ITEM, TIME, VALUE, EVENT, DURATION)
TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": None}
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_JSON_CHUNK = 4096  # lines per chunk when a JSONL file has bad lines to find


def file_format(path: Path) -> str:
    """``"csv"``, ``"parquet"`` or ``"jsonl"`` from the suffix (``.gz`` looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in TEXT_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES and path.suffix.lower() != ".gz":
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise ValueError(
        f"{path}: unknown log format {path.suffix!r}; use .csv/.tsv/.txt (optionally .gz), "
        ".parquet/.pq or .jsonl/.ndjson"
    )


def read_frame(path: Path, rejects: Rejects) -> pl.DataFrame:
    """The source columns of a log file plus ``__line`` (and ``__raw`` for text formats).

    CSV/TSV need a header line; the separator is the suffix's (``.txt``: sniffed) and
    ``"``-quoted fields are honoured. Every CSV column is String here.
    """
    fmt = file_format(path)
    if fmt == "parquet":
        df = _read_parquet(path)
        return df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias(LINE))
    if fmt == "jsonl":
        return _read_jsonl(path, rejects)
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    sep = TEXT_SUFFIXES[suffixes[-1]]
    frame, _ = read_delimited(path, rejects, sep=sep, header=True, quoting=True)
    return frame


def _read_parquet(path: Path) -> pl.DataFrame:
    """The whole Parquet file; a truncated, empty or non-Parquet file is a
    :class:`DataFormatError` naming it (not a polars traceback)."""
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        size = path.stat().st_size if path.exists() else 0
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataFormatError(
            path, None, None, f"not a readable Parquet file ({size:,} bytes: {reason})",
            "the file is truncated or not Parquet; write it again, or convert it to CSV/JSONL",
        ) from exc


def _ndjson(lines: pl.DataFrame, schema: dict[str, type[pl.DataType]] | None = None
            ) -> pl.DataFrame | None:
    """Parse lines as JSON objects (one row per line), or None when polars cannot.

    With ``schema`` (every column String) nested values come back as their JSON text.
    """
    try:
        df = pl.read_ndjson(io.BytesIO(join_lines(lines[RAW])), infer_schema_length=None, schema=schema)
    except pl.exceptions.PolarsError:
        return None
    if df.height != lines.height:
        return None
    return df.with_columns(lines[LINE], lines[RAW])


def _json_keys(path: Path, lines: pl.DataFrame) -> list[str]:
    """Top-level keys of all lines (first-seen order), from chunks parsed on their own.

    A chunk whose values do not mix is halved until its parts parse.
    """
    keys: dict[str, None] = {}
    stack = [(a, min(a + _JSON_CHUNK, lines.height)) for a in range(0, lines.height, _JSON_CHUNK)]
    stack.reverse()
    while stack:
        a, b = stack.pop()
        df = _ndjson(lines.slice(a, b - a))
        if df is not None:
            keys.update(dict.fromkeys(c for c in df.columns if c not in (LINE, RAW)))
        elif b - a > 1:
            m = (a + b) // 2
            stack += [(m, b), (a, m)]
        else:  # valid JSON object that polars cannot read alone: never expected
            raise DataFormatError(path, int(lines[LINE][a]), None, "JSON object polars cannot read",
                                  "simplify the line's values")
    return list(keys)


def _read_jsonl(path: Path, rejects: Rejects) -> pl.DataFrame:
    """JSON Lines: one object a line; lines that are not are rejected (vectorised checks).

    When a key's values have types that do not mix across lines (an object here, a list
    there), every column is read as text (nested values as their JSON).
    """
    lines = read_lines(path, rejects)
    # cheap screen first: truncated lines, arrays, scalars
    not_object = ~lines[RAW].str.contains(r"^\s*\{.*\}\s*$")
    lines = rejects.take(lines, not_object, ROW_FIELD, INVALID_JSON)
    if lines.height == 0:
        return pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64), RAW: pl.Series([], dtype=pl.String)})
    whole = _ndjson(lines)
    if whole is not None:
        return whole
    # some line is not valid JSON: find them all at once (json_path_match is null for those)
    invalid = lines[RAW].str.json_path_match("$").is_null()
    lines = rejects.take(lines, invalid, ROW_FIELD, INVALID_JSON)
    if lines.height == 0:
        return lines
    whole = _ndjson(lines)
    if whole is not None:
        return whole
    keys = _json_keys(path, lines)
    whole = _ndjson(lines, schema=dict.fromkeys(keys, pl.String))
    if whole is None:
        raise DataFormatError(path, None, None, "the JSON lines could not be read as text columns",
                              "check that every line is one flat JSON object")
    logger.warning("%s: JSON values of mixed types across lines; every column read as text", path)
    return whole


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in columns:
            return name
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def resolve_columns(
    path: Path, columns: list[str], given: dict[str, str | None]
) -> tuple[dict[str, str | None], set[str]]:
    """Source column of each role: the given one (must exist) or the first usual name present.

    Returns
    -------
    mapping : dict role -> column or None
    detected : set of roles whose column was auto-detected
    """
    mapping: dict[str, str | None] = {}
    detected: set[str] = set()
    for role, names in COLUMN_NAMES.items():
        col = given.get(role)
        if col == "":  # explicitly none
            mapping[role] = None
            continue
        if col is not None:
            if col not in columns:
                raise DataFormatError(
                    path, None, col, f"no such column (given as {role}_col); the file's columns "
                    f"are {columns}", f"pass {role}_col= one of the columns above")
            mapping[role] = col
        else:
            mapping[role] = _find(columns, names)
            if mapping[role] is not None:
                detected.add(role)
    for role in ("user", "item"):
        if mapping[role] is None:
            raise DataFormatError(
                path, None, None, f"no {role} column found (looked for {list(COLUMN_NAMES[role])}); "
                f"the file's columns are {columns}", f"pass {role}_col= naming the {role} column")
    used = [c for c in mapping.values() if c is not None]
    dup = sorted({c for c in used if used.count(c) > 1})
    if dup:
        roles = [r for r, c in mapping.items() if c == dup[0]]
        raise DataFormatError(path, None, dup[0], f"column mapped to several roles {roles}",
                              "map each role to its own column")
    return mapping, detected


def read_events(
    path: str | Path,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    value_col: str | None = None,
    event_col: str | None = None,
    duration_col: str | None = None,
    time_unit: TimeUnit = "auto",
    users_path: str | Path | None = None,
    items_path: str | Path | None = None,
    on_bad_rows: BadRowPolicy = "error",
) -> RawData:
    """Read a generic engagement log (see the module docstring for the rules).

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.tsv``/``.txt`` (header line required; ``.gz`` allowed), ``.parquet``/``.pq``
        or ``.jsonl``/``.ndjson``.
    user_col, item_col, time_col, value_col, event_col, duration_col : str, optional
        Source column of each role; None auto-detects from :data:`COLUMN_NAMES`; ``""``
        means "no such column" (e.g. ``time_col=""``: the timestamp is the row order).
        A given column that does not exist is an error listing the file's columns.
    time_unit : {"auto", "s", "ms", "us", "ns"}
        Unit of numeric times; ``"auto"`` detects ms/us/ns by magnitude.
    users_path, items_path : str or Path, optional
        Side tables (any of the three formats) keyed by the same id column name as the
        log's (or a usual user/item id name); ids are required and unique.
    on_bad_rows : {"error", "quarantine"}

    Returns
    -------
    RawData
        ``events``: user_id, item_id, timestamp (Int64), value (Float32, null where empty),
        [event (String)], [duration (Float32)], then the other columns; name = file stem.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    bad = BadRows(policy=on_bad_rows)
    rej = Rejects(p, on_bad_rows, unit="row" if file_format(p) == "parquet" else "line")
    frame = read_frame(p, rej)
    source = [c for c in frame.columns if not c.startswith("__")]
    given = {"user": user_col, "item": item_col, "time": time_col, "value": value_col,
             "event": event_col, "duration": duration_col}
    mapping, detected = resolve_columns(p, source, given)
    tcol = mapping["time"]
    if tcol is not None and "time" in detected and _mostly_empty(p, frame, tcol):
        mapping["time"] = None
    frame = _parse_roles(frame, mapping, rej, time_unit)
    rej.finish(bad)
    events = _canonical(frame, mapping, source)
    files = [p]
    sides: dict[str, pl.DataFrame | None] = {"user": None, "item": None}
    for role, side_path, key in (("user", users_path, USER), ("item", items_path, ITEM)):
        if side_path is not None:
            sp = Path(side_path)
            files.append(sp)
            table = _read_side(sp, role, str(mapping[role]), key, on_bad_rows, bad)
            sides[role] = match_key_dtype(table, key, events[key])
    return RawData(events=events, users=sides["user"], items=sides["item"],
                   name=p.name.split(".")[0] or p.stem, bad_rows=bad, files=files)


def _mostly_empty(path: Path, frame: pl.DataFrame, tcol: str) -> bool:
    """Whether an auto-detected time column has empty rows (then it is not the time)."""
    n_missing = int(clean(frame[tcol]).is_null().sum())
    if n_missing:
        logger.warning(
            "%s: auto-detected time column %r is empty in %d of %d rows; not used as time "
            "(timestamp = row order). Pass time_col=%r to require it.",
            path, tcol, n_missing, frame.height, tcol)
    return n_missing > 0


def _parse_roles(frame: pl.DataFrame, mapping: dict[str, str | None], rej: Rejects,
                 time_unit: TimeUnit) -> pl.DataFrame:
    """The parsed role columns (``__user``, ``__item``, ``__time``, ...) added to ``frame``;
    unparsable rows go to ``rej``."""
    frame = parse_id(frame, str(mapping["user"]), "__user", rej, numeric=False)
    frame = parse_id(frame, str(mapping["item"]), "__item", rej, numeric=False)
    if mapping["time"] is not None:
        frame = parse_time(frame, mapping["time"], "__time", rej, unit=time_unit)
    if mapping["value"] is not None:
        frame = parse_float(frame, mapping["value"], "__value", rej)
    if mapping["duration"] is not None:
        frame = parse_float(frame, mapping["duration"], "__duration", rej, nonnegative=True)
    return frame


def _canonical(frame: pl.DataFrame, mapping: dict[str, str | None], source: list[str],
               ) -> pl.DataFrame:
    """The canonical event columns (the row order as time when there is no time column,
    1.0 as value when there is no value column), then the other source columns."""
    mapped = {c for c in mapping.values() if c is not None}
    extras = [c for c in source if c not in mapped]
    out = [pl.col("__user").alias(USER), pl.col("__item").alias(ITEM),
           (pl.col("__time") if mapping["time"] is not None
            else pl.int_range(pl.len(), dtype=pl.Int64)).alias(TIME),
           (pl.col("__value") if mapping["value"] is not None
            else pl.lit(1.0, dtype=pl.Float32)).alias(VALUE)]
    if mapping["event"] is not None:
        out.append(pl.col(mapping["event"]).cast(pl.String).str.strip_chars()
                   .replace("", None).alias(EVENT))
    if mapping["duration"] is not None:
        out.append(pl.col("__duration").alias(DURATION))
    return frame.select(*out, *_extras(frame, extras))


def _extras(frame: pl.DataFrame, extras: list[str]) -> list[pl.Series]:
    """Carried columns, text ones typed, canonical names suffixed with ``_src``."""
    out = []
    for col in extras:
        name = f"{col}_src" if col in _CANONICAL else col
        out.append(infer_column(frame[col]).alias(name))
    return out


def _read_side(path: Path, role: str, log_col: str, key: str, policy: BadRowPolicy,
               bad: BadRows) -> pl.DataFrame:
    """A users/items table keyed by ``log_col`` (or a usual id name) -> keyed by ``key``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (given as {role}s_path)")
    rej = Rejects(path, policy, unit="row" if file_format(path) == "parquet" else "line")
    frame = read_frame(path, rej)
    source = [c for c in frame.columns if not c.startswith("__")]
    src = log_col if log_col in source else _find(source, (key, *COLUMN_NAMES[role]))
    if src is None:
        raise DataFormatError(path, None, None,
                              f"no {role} id column (looked for {[log_col, *COLUMN_NAMES[role]]}); "
                              f"the file's columns are {source}",
                              f"name the id column {log_col!r} as in the log")
    frame = parse_id(frame, src, "__key", rej, numeric=False)
    frame = dedupe_ids(frame, "__key", src, rej)
    rej.finish(bad)
    others = [c for c in source if c != src]
    out = []
    for col in others:
        out.append(infer_column(frame[col]).alias(f"{col}_src" if col == key else col))
    return frame.select(pl.col("__key").alias(key), *out)


__all__ = ["COLUMN_NAMES", "read_events"]
