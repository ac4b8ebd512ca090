"""Readers of raw interaction data; each returns a :class:`~streamrec.data.dataset.RawData`.

=============  ===========================================  =================================
kind           reader                                       reads
=============  ===========================================  =================================
``movielens``  :func:`~.movielens.read_movielens`           MovieLens 100K/1M/10M/20M/25M dirs
``recbole``    :func:`~.recbole.read_recbole`               RecBole atomic ``.inter``/.user/.item
``sasrec``     :func:`~.sequences.read_sasrec`              ``user item`` sequence files
``events``     :func:`~.events.read_events`                 CSV/TSV, Parquet, JSONL logs
=============  ===========================================  =================================

Every reader takes ``on_bad_rows="error" | "quarantine"``: a malformed row raises a
:class:`~streamrec.data.errors.DataFormatError` naming the file, the 1-based line (row for
Parquet), the field and what to do, or is recorded in ``RawData.bad_rows`` with its raw text.
No row is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamrec.data.dataset import RawData
from streamrec.data.errors import BadRowPolicy
from streamrec.data.sources.events import COLUMN_NAMES, read_events
from streamrec.data.sources.movielens import read_movielens
from streamrec.data.sources.recbole import read_recbole, write_recbole_inter
from streamrec.data.sources.sequences import read_sasrec

READERS: dict[str, Callable[..., RawData]] = {
    "movielens": read_movielens,
    "recbole": read_recbole,
    "sasrec": read_sasrec,
    "events": read_events,
}


def read_source(
    kind: str, path: str | Path, *, on_bad_rows: BadRowPolicy = "error", **columns: object
) -> RawData:
    """Read ``path`` with the reader of ``kind``.

    Parameters
    ----------
    kind : {"movielens", "recbole", "sasrec", "events"}
    path : str or Path
    on_bad_rows : {"error", "quarantine"}
    **columns
        Options of :func:`read_events` (``user_col``, ..., ``time_unit``, ``users_path``,
        ``items_path``); only the ``events`` kind takes any (None values are ignored).

    Returns
    -------
    RawData
    """
    if kind not in READERS:
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(READERS)}"
                         + (" (synthetic data is made by streamrec.data.spec.load_raw)"
                            if kind == "synthetic" else ""))
    options = {k: v for k, v in columns.items() if v is not None}
    if options and kind != "events":
        raise ValueError(f"the {kind} reader takes no options, got {sorted(options)}; "
                         "column options are for the events kind")
    return READERS[kind](path, on_bad_rows=on_bad_rows, **options)


__all__ = [
    "COLUMN_NAMES",
    "READERS",
    "read_events",
    "read_movielens",
    "read_recbole",
    "read_sasrec",
    "read_source",
    "write_recbole_inter",
]
