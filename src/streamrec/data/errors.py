"""Bad input: errors that name the file, line and field, and quarantine of bad rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

BadRowPolicy = Literal["error", "quarantine"]


class DataFormatError(ValueError):
    """A malformed input row: names the file, 1-based line, field and what to do."""

    def __init__(
        self, path: str | Path, line: int | None, field: str | None, reason: str, hint: str = "",
        *, unit: str = "line",
    ) -> None:
        self.path, self.line, self.field, self.reason = str(path), line, field, reason
        self.unit = unit  # "line" for text files, "row" for Parquet (1-based either way)
        where = f"{path}" + (f", {unit} {line}" if line is not None else "")
        what = f", field {field!r}" if field else ""
        hint = hint or "fix the row, or pass --on-bad-rows quarantine to set bad rows aside"
        super().__init__(f"{where}{what}: {reason}. {hint}")


@dataclass
class BadRows:
    """Collects rejected rows (never dropped silently) and writes them to a quarantine file.

    Each entry keeps the source file, the 1-based line number in that file, the field at
    fault, the reason, and the raw text of the row.
    """

    policy: BadRowPolicy = "error"
    rows: list[pl.DataFrame] = field(default_factory=list)

    def add(self, path: str | Path, lines: pl.Series | list[int], field_name: str,
            reason: str, raw: pl.Series | list[str] | None = None) -> None:
        """Record bad rows; with policy ``error`` raise for the first one instead."""
        lines_s = pl.Series("line", lines, dtype=pl.Int64)
        if len(lines_s) == 0:
            return
        if self.policy == "error":
            raise DataFormatError(path, int(lines_s[0]), field_name,
                                  f"{reason}" + (f" ({len(lines_s)} such rows)" if len(lines_s) > 1 else ""))
        raw_s = (pl.Series("raw", raw, dtype=pl.String) if raw is not None
                 else pl.Series("raw", [None] * len(lines_s), dtype=pl.String))
        self.rows.append(pl.DataFrame({
            "file": pl.Series([str(path)] * len(lines_s), dtype=pl.String),
            "line": lines_s,
            "field": pl.Series([field_name] * len(lines_s), dtype=pl.String),
            "reason": pl.Series([reason] * len(lines_s), dtype=pl.String),
            "raw": raw_s,
        }))

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.rows)

    def frame(self) -> pl.DataFrame:
        """All quarantined rows: file, line, field, reason, raw."""
        if not self.rows:
            return pl.DataFrame(schema={"file": pl.String, "line": pl.Int64, "field": pl.String,
                                        "reason": pl.String, "raw": pl.String})
        return pl.concat(self.rows).sort(["file", "line"])

    def summary(self) -> dict[str, int]:
        """Counts per reason."""
        if not self.rows:
            return {}
        df = self.frame().group_by("reason").len().sort("reason")
        return dict(zip(df["reason"].to_list(), df["len"].to_list(), strict=True))

    def write(self, path: str | Path) -> Path | None:
        """Write the quarantine file (CSV); nothing is written when there are no bad rows."""
        if not self.rows:
            return None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().write_csv(path)
        return path
