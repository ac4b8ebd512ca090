"""Private helpers of the readers: bytes -> lines -> fields, and bad-row bookkeeping.

Every reader works on a polars frame with two bookkeeping columns next to the source
columns: ``__line`` (1-based line of the row in its file; the 1-based row for Parquet)
and, for text formats, ``__raw`` (the text of the line, for the quarantine file). A check
finds bad rows as a boolean mask (vectorised), hands them to :class:`Rejects` and goes on
with the rest; :meth:`Rejects.finish` then raises one :class:`DataFormatError` for the
earliest bad row (policy ``"error"``) or records them all in a :class:`BadRows`.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from streamrec.data.errors import BadRowPolicy, BadRows, DataFormatError

LINE, RAW = "__line", "__raw"
#: field name recorded for problems of a whole row (encoding, field count, JSON syntax)
ROW_FIELD = "(row)"
#: standard reasons (the quarantine file and ``BadRows.summary()`` group by them)
MISSING = "missing required field"
INVALID_UTF8 = "invalid UTF-8"
NOT_INT = "not an integer"
NOT_NUMBER = "not a number"
BAD_TIME = "unparseable time"
NEGATIVE_DURATION = "negative duration"
DUPLICATE_ID = "duplicate id"
INVALID_JSON = "invalid JSON (each line must be one JSON object)"

Encoding = Literal["utf-8", "latin-1", "auto"]
_UNIT_SEP = "\x1f"  # a byte that never occurs in the data files we read (checked)


def _first_line(part: pl.DataFrame) -> int:
    """The earliest source line of a frame of rejected rows (``line`` column)."""
    return int(part.select(pl.col("line").min()).item())


class Rejects:
    """Bad rows of one file, collected by vectorised checks.

    Parameters
    ----------
    path : Path
        The file the rows come from (named in errors and quarantine records).
    policy : {"error", "quarantine"}
    unit : str
        ``"line"`` for text files, ``"row"`` for Parquet.
    """

    def __init__(self, path: Path, policy: BadRowPolicy, *, unit: str = "line") -> None:
        if policy not in ("error", "quarantine"):
            raise ValueError(f'on_bad_rows must be "error" or "quarantine", got {policy!r}')
        self.path, self.policy, self.unit = Path(path), policy, unit
        self.parts: list[tuple[str, str, pl.DataFrame]] = []

    def take(self, df: pl.DataFrame, mask: pl.Series, field: str, reason: str) -> pl.DataFrame:
        """Set aside the rows of ``df`` where ``mask`` is true; return the others.

        Parameters
        ----------
        df : pl.DataFrame, shape (n, k)
            Must hold ``__line`` (and ``__raw`` for text; otherwise the source columns are
            JSON-encoded as the raw text).
        mask : pl.Series of bool, shape (n,)
            Nulls count as false.
        """
        mask = mask.fill_null(False)
        if not mask.any():
            return df
        bad = df.filter(mask)
        if RAW in bad.columns:
            raw = bad[RAW]
        else:
            src = [c for c in bad.columns if not c.startswith("__")]
            raw = bad.select(pl.struct(src).struct.json_encode()).to_series()
        self.parts.append((field, reason, pl.DataFrame({"line": bad[LINE], "raw": raw})))
        return df.filter(~mask)

    @property
    def count(self) -> int:
        return sum(part.height for _, _, part in self.parts)

    def finish(self, bad_rows: BadRows) -> None:
        """Raise for the earliest bad row (policy ``error``) or record every one in ``bad_rows``."""
        if not self.parts:
            return
        if self.policy == "error":
            field, reason, part = min(self.parts, key=lambda p: _first_line(p[2]))
            line = _first_line(part)
            more = self.count - 1
            extra = f" ({more} more bad row{'s' if more > 1 else ''} in this file)" if more else ""
            raise DataFormatError(
                self.path, line, field, reason + extra,
                "fix the row, or pass on_bad_rows='quarantine' (CLI: --on-bad-rows quarantine) "
                "to set bad rows aside and keep the rest",
                unit=self.unit,
            )
        for field, reason, part in self.parts:
            bad_rows.add(self.path, part["line"], field, reason, part["raw"])


def read_bytes(path: Path) -> bytes:
    """The file's bytes; gzip is undone (by suffix ``.gz`` or magic number); a UTF-8 BOM is cut."""
    data = Path(path).read_bytes()
    if path.suffix == ".gz" or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data


def to_utf8(data: bytes, encoding: Encoding = "utf-8") -> tuple[bytes, str]:
    """The file as UTF-8 bytes; with UTF-8, invalid sequences become U+FFFD.

    Returns
    -------
    data : bytes
        Valid UTF-8 (the input itself when it already is).
    used : str
        ``"utf-8"``, ``"latin-1"`` (``"auto"`` tries UTF-8, then latin-1, which decodes
        anything) or ``"utf-8-lossy"`` (lines to reject: :func:`bad_utf8_lines`).
    """
    if data.isascii():
        return data, "utf-8"
    if encoding == "latin-1":
        return data.decode("latin-1").encode("utf-8"), "latin-1"
    try:
        data.decode("utf-8")  # validation only
        return data, "utf-8"
    except UnicodeDecodeError:
        if encoding == "auto":
            return data.decode("latin-1").encode("utf-8"), "latin-1"
        return data.decode("utf-8", errors="replace").encode("utf-8"), "utf-8-lossy"


def split_lines(data: bytes) -> pl.Series:
    """Lines of UTF-8 ``data`` without terminators (``\\n`` or ``\\r\\n``); blank lines are null.

    Returns
    -------
    pl.Series of String, shape (n_lines,)
        Element ``k`` is line ``k + 1`` of the file.
    """
    if not data:
        return pl.Series(RAW, [], dtype=pl.String)
    if _UNIT_SEP.encode() not in data:
        # polars' CSV reader with a separator that never occurs: one column = the lines
        # (fast, multi-threaded; blank lines come back as nulls, so numbering is exact)
        return pl.read_csv(
            io.BytesIO(data), has_header=False, separator=_UNIT_SEP, quote_char=None,
            infer_schema=False, new_columns=[RAW], comment_prefix=None,
        ).to_series()
    parts = data.decode("utf-8").split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    s = pl.Series(RAW, parts, dtype=pl.String).str.strip_suffix("\r")
    return s.replace("", None)


def bad_utf8_lines(data: bytes, lines: pl.Series) -> np.ndarray:
    """0-based indices of lines whose bytes are not valid UTF-8 (vectorised).

    ``lines`` was decoded with ``errors="replace"``: a line is bad when it holds more U+FFFD
    than the file had real (encoded) U+FFFD characters on that line.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 0x0A)
    if len(arr) >= 3:
        real = np.flatnonzero((arr[:-2] == 0xEF) & (arr[1:-1] == 0xBF) & (arr[2:] == 0xBD))
    else:
        real = np.zeros(0, dtype=np.int64)
    real_per_line = np.bincount(np.searchsorted(newlines, real, side="right"),
                                minlength=len(lines))[: len(lines)]
    lossy = lines.fill_null("").str.count_matches("\ufffd", literal=True).to_numpy()
    return np.flatnonzero(lossy > real_per_line)


def read_lines(path: Path, rejects: Rejects, *, encoding: Encoding = "utf-8") -> pl.DataFrame:
    """Non-blank lines of a text file, with their 1-based numbers.

    Lines with invalid UTF-8 (when decoding as UTF-8) go to ``rejects``.

    Returns
    -------
    pl.DataFrame, shape (n, 2)
        ``__line`` (Int64) and ``__raw`` (String), blank lines left out (they are not rows).
    """
    data = read_bytes(path)
    utf8, used = to_utf8(data, encoding)
    lines = split_lines(utf8)
    df = pl.DataFrame({LINE: pl.int_range(1, len(lines) + 1, dtype=pl.Int64, eager=True),
                       RAW: lines})
    if used == "utf-8-lossy":
        bad = np.zeros(len(lines), dtype=bool)
        bad[bad_utf8_lines(data, lines)] = True
        df = rejects.take(df, pl.Series(bad), ROW_FIELD, INVALID_UTF8)
    return df.filter(pl.col(RAW).str.strip_chars().str.len_bytes() > 0)


def join_lines(lines: pl.Series) -> bytes:
    """The lines as one UTF-8 blob, each ending in ``\\n`` (written by polars, no Python str)."""
    buf = io.BytesIO()
    lines.to_frame().write_csv(buf, include_header=False, quote_style="never")
    return buf.getvalue()


_QUOTED = r'"(?:[^"]|"")*"'
_CHUNK = 4096  # lines per chunk when the lines polars cannot parse must be found


def field_counts(raw: pl.Series, sep: str, *, quoting: bool) -> pl.Series:
    """Number of ``sep``-separated fields of each line, shape (n,) (quote-aware when asked).

    With ``quoting``, a line with an unbalanced quote (a field spanning lines) counts -1.
    """
    s = raw
    if quoting:
        has_quote = s.str.contains('"', literal=True)
        if has_quote.any():
            stripped = s.str.replace_all(_QUOTED, "")
            s = pl.select(pl.when(has_quote).then(stripped).otherwise(s)).to_series()
            counts = s.str.count_matches(sep, literal=True).cast(pl.Int64) + 1
            unbalanced = s.str.contains('"', literal=True)
            return pl.select(pl.when(unbalanced).then(-1).otherwise(counts)).to_series()
    return s.str.count_matches(sep, literal=True).cast(pl.Int64) + 1


def _parse_csv(body: pl.Series, names: list[str], sep: str, quoting: bool) -> pl.DataFrame | None:
    """Lines -> string columns with polars' CSV reader; None when it fails or miscounts rows."""
    try:
        fields = pl.read_csv(
            io.BytesIO(join_lines(body)), has_header=False, separator=sep,
            quote_char='"' if quoting else None, infer_schema=False, new_columns=names,
            comment_prefix=None,
        )
    except pl.exceptions.PolarsError:
        return None
    return fields if fields.height == len(body) else None


def _unparseable(body: pl.Series, names: list[str], sep: str, quoting: bool) -> list[int]:
    """Indices of the lines polars cannot parse alone: chunks, halved while they fail."""
    stack = [(a, min(a + _CHUNK, len(body))) for a in range(0, len(body), _CHUNK)]
    stack.reverse()
    bad: list[int] = []
    while stack:  # only runs when some line is malformed
        a, b = stack.pop()
        if _parse_csv(body.slice(a, b - a), names, sep, quoting) is not None:
            continue
        if b - a == 1:
            bad.append(a)
        else:
            m = (a + b) // 2
            stack += [(m, b), (a, m)]
    return bad


def split_fields(
    lines: pl.DataFrame,
    names: list[str],
    sep: str,
    rejects: Rejects,
    *,
    quoting: bool = False,
    text: str = RAW,
) -> pl.DataFrame:
    """Split lines into string columns; lines with another number of fields are rejected.

    Parameters
    ----------
    lines : pl.DataFrame, shape (n, >=2)
        From :func:`read_lines` (without the header line).
    names : list of str
        Column names; their number is the expected field count.
    sep : str
        Separator (one or more characters, e.g. ``","``, ``"\\t"``, ``"::"``).
    quoting : bool
        Honour ``"``-quoted fields (CSV, RFC 4180); a quoted field may not span lines, and a
        line whose quotes polars cannot parse is rejected ("malformed quotes").
    text : str
        The column to split (default ``__raw``; a normalised copy may be given, the
        quarantine still records ``__raw``).

    Returns
    -------
    pl.DataFrame, shape (m, len(names) + 2)
        The columns (String as written; empty fields are null), ``__line`` and ``__raw``.
    """
    counts = field_counts(lines[text], sep, quoting=quoting)
    if quoting:
        lines = rejects.take(lines, counts < 0, ROW_FIELD,
                             "unbalanced quote (a quoted field may not span lines)")
        counts = counts.filter(counts >= 0)
    good = rejects.take(lines, counts != len(names), ROW_FIELD,
                        f"wrong number of fields (expected {len(names)}, separator {sep!r})")
    if len(sep) > 1:
        # polars wants a one-byte separator: "::" -> \x1f, so lines holding \x1f are bad
        good = rejects.take(good, good[text].str.contains(_UNIT_SEP, literal=True), ROW_FIELD,
                            "control character \\x1f in the line")
        body = good[text].str.replace_all(sep, _UNIT_SEP, literal=True)
        sep = _UNIT_SEP
    else:
        body = good[text]
    if good.height == 0:
        return pl.DataFrame({n: pl.Series([], dtype=pl.String) for n in names}).with_columns(
            pl.Series(LINE, [], dtype=pl.Int64), pl.Series(RAW, [], dtype=pl.String))
    fields = _parse_csv(body, names, sep, quoting)
    if fields is None:  # some line polars cannot parse (e.g. a stray quote inside a field)
        mask = pl.Series([False] * len(body)).scatter(_unparseable(body, names, sep, quoting), True)
        good = rejects.take(good, mask, ROW_FIELD,
                            'malformed quotes (quote whole fields: "a ""b"" c")')
        body = body.filter(~mask)
        fields = _parse_csv(body, names, sep, quoting) if len(body) else pl.DataFrame(
            {n: pl.Series([], dtype=pl.String) for n in names})
        if fields is None:
            raise DataFormatError(rejects.path, None, None,
                                  f"could not split the lines into {len(names)} fields",
                                  "check the file's separator and quoting")
    return fields.with_columns(good[LINE], good[RAW])


def sniff_separator(header: str, default: str = ",") -> str:
    """The separator of a delimited header line: tab, comma, semicolon or pipe (in that order)."""
    for sep in ("\t", ",", ";", "|"):
        if sep in header:
            return sep
    return default


def header_names(header: str, sep: str, path: Path, *, quoting: bool = True) -> list[str]:
    """Column names from a header line; duplicate or empty names are an error naming line 1."""
    if quoting and '"' in header:
        row = pl.read_csv(io.BytesIO(header.encode("utf-8")), has_header=False, separator=sep,
                          infer_schema=False).row(0)
        names = [("" if v is None else str(v)).strip() for v in row]
    else:
        names = [n.strip() for n in header.split(sep)]
    if any(not n for n in names):
        raise DataFormatError(path, 1, None, f"the header {header!r} has an empty column name",
                              "name every column in the first line")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataFormatError(path, 1, dup[0], "duplicate column name in the header",
                              "give every column a distinct name in the first line")
    return names


def read_delimited(
    path: Path,
    rejects: Rejects,
    *,
    sep: str | None,
    names: list[str] | None = None,
    header: bool = False,
    quoting: bool = False,
    encoding: Encoding = "utf-8",
) -> tuple[pl.DataFrame, list[str]]:
    """Read a delimited text file into string columns (see :func:`split_fields`).

    Parameters
    ----------
    sep : str or None
        Separator; None sniffs it from the header line (tab, comma, semicolon, pipe).
    names : list of str, optional
        Column names when the file has no header.
    header : bool
        The first non-blank line holds the column names.

    Returns
    -------
    frame : pl.DataFrame, shape (n, len(names) + 2)
    names : list of str
    """
    lines = read_lines(path, rejects, encoding=encoding)
    if header:
        if lines.height == 0:
            raise DataFormatError(path, None, None, "the file is empty (no header line)",
                                  "write the column names in the first line")
        head = str(lines[RAW][0])
        lines = lines.slice(1)
        sep = sep or sniff_separator(head)
        names = header_names(head, sep, path, quoting=quoting)
    if names is None or sep is None:
        raise ValueError("read_delimited needs names and sep when the file has no header")
    return split_fields(lines, names, sep, rejects, quoting=quoting), names
