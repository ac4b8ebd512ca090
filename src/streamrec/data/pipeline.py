"""Read → clean → encode: the one path every command takes from a data SPEC to a Dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from streamrec.data.clean import CleanConfig, CleanResult, clean_raw
from streamrec.data.dataset import Dataset, RawData
from streamrec.data.errors import BadRowPolicy
from streamrec.data.spec import DataSpec, load_raw, parse_spec


@dataclass
class Prepared:
    """A dataset ready for splitting, with the account of everything set aside on the way.

    Attributes
    ----------
    dataset : Dataset
    raw : RawData
        What the reader produced (after cleaning when it ran); ``raw.bad_rows`` holds the rows
        the reader rejected.
    cleaning : CleanResult or None
        Per-step counts and the rows cleaning removed; None when cleaning was off.
    """

    dataset: Dataset
    raw: RawData
    cleaning: CleanResult | None = None

    def quarantine(self) -> pl.DataFrame:
        """Every row set aside: by the reader (malformed), by cleaning (data errors) and by
        the modelling filters (threshold, k-core). Columns: stage, reason, field, where, row."""
        parts = []
        bad = self.raw.bad_rows.frame()
        if len(bad):
            parts.append(bad.select(
                pl.lit("read").alias("stage"), "reason", "field",
                pl.format("{}:{}", "file", "line").alias("where"), pl.col("raw").alias("row"),
            ))
        if self.cleaning is not None:
            for frame in (self.cleaning.quarantine, self.cleaning.filtered):
                if not len(frame):
                    continue
                data_cols = [c for c in frame.columns if c not in ("reason", "step", "input_row")]
                parts.append(frame.select(
                    pl.col("step").alias("stage"), pl.col("reason"),
                    pl.lit(None, dtype=pl.String).alias("field"),
                    pl.format("event row {}", "input_row").alias("where"),
                    pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in data_cols],
                                  separator=",").alias("row"),
                ))
        if not parts:
            return pl.DataFrame(schema={"stage": pl.String, "reason": pl.String, "field": pl.String,
                                        "where": pl.String, "row": pl.String})
        return pl.concat(parts, how="vertical_relaxed")

    def write_quarantine(self, path: str | Path) -> Path | None:
        """Write :meth:`quarantine` as CSV when it is not empty; returns the path written."""
        q = self.quarantine()
        if not len(q):
            return None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        q.write_csv(path)
        return path


def prepare(
    spec: str | DataSpec,
    *,
    on_bad_rows: BadRowPolicy = "error",
    columns: dict[str, str | None] | None = None,
    clean: CleanConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Prepared:
    """Read a SPEC, optionally clean it, and encode it into a :class:`Dataset`."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    raw = load_raw(parsed, on_bad_rows=on_bad_rows, columns=columns, progress=progress)
    result = None
    if clean is not None:
        cleaned, result = clean_raw(raw, clean)
        cleaned.bad_rows, cleaned.files, cleaned.name = raw.bad_rows, raw.files, raw.name
        raw = cleaned
    return Prepared(Dataset.from_raw(raw), raw, result)
