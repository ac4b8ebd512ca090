"""SASRec-style sequence files: one ``user item`` pair a line, each user's items in time order.

This is the format of the data files of SASRec and its successors (e.g. ``ml-1m.txt``): two
integer ids separated by spaces or tabs. The files carry no time, so ``timestamp`` is the
0-based position of the row within its user's history (the file order).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from streamrec.data.dataset import ITEM, TIME, USER, VALUE, RawData
from streamrec.data.errors import BadRowPolicy, BadRows
from streamrec.data.sources._columns import parse_id
from streamrec.data.sources._text import RAW, Rejects, read_lines, split_fields


def read_sasrec(path: str | Path, *, on_bad_rows: BadRowPolicy = "error") -> RawData:
    """Read a SASRec-style ``user item`` file.

    Parameters
    ----------
    path : str or Path
        The text file; its stem becomes ``RawData.name`` (``ml-1m.txt`` -> ``"ml-1m"``).
    on_bad_rows : {"error", "quarantine"}
        Malformed lines (not exactly two fields, a non-integer id, invalid UTF-8) raise
        :class:`~streamrec.data.errors.DataFormatError` naming file, line and field
        (``user`` or ``item``), or are set aside in ``RawData.bad_rows``. Positions are
        counted over the rows kept.

    Returns
    -------
    RawData
        ``events`` shape (n, 4): user_id, item_id (Int64), timestamp (Int64 position of the
        row in the user's history, 0-based), value (Float32, 1.0).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file (read_sasrec takes a 'user item' text file)")
    bad = BadRows(policy=on_bad_rows)
    rej = Rejects(p, on_bad_rows)
    lines = read_lines(p, rej)
    # space or tab separated, any run of them; leading/trailing blanks ignored
    body = lines[RAW].str.strip_chars(" \t")
    if bool(body.str.contains(r"\t|  ").any()):
        body = body.str.replace_all(r"[ \t]+", " ")
    frame = split_fields(lines.with_columns(body.alias("__text")), ["user", "item"], " ", rej,
                         text="__text")
    frame = parse_id(frame, "user", USER, rej, numeric=True)
    frame = parse_id(frame, "item", ITEM, rej, numeric=True)
    rej.finish(bad)
    events = frame.select(
        USER, ITEM,
        pl.int_range(pl.len(), dtype=pl.Int64).over(USER).alias(TIME),
        pl.lit(1.0, dtype=pl.Float32).alias(VALUE),
    )
    return RawData(events=events, name=p.name.split(".")[0] or p.stem, bad_rows=bad, files=[p])


__all__ = ["read_sasrec"]
