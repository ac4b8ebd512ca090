"""Load-speed benchmark of the readers on ../shared/data; prints one JSON object.

usage: python benchmarks/load.py [--repeats N]

For each source: wall seconds of the best of N loads (and the median), rows, rows/s. A
source whose files are absent is reported as "missing".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from streamrec.data.dataset import RawData
from streamrec.data.sources import read_events, read_recbole, read_sasrec

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

CASES: dict[str, tuple[Path, Callable[[Path], RawData]]] = {
    "recbole_ml-100k": (DATA / "ml-100k", read_recbole),
    "events_ml-1m_ratings_reconstructed_csv": (
        DATA / "ml-1m" / "ratings_reconstructed.csv",
        lambda p: read_events(p, user_col="user", item_col="movie", time_col=""),
    ),
    "sasrec_ml-1m-seq": (DATA / "ml-1m-seq" / "ml-1m.txt", read_sasrec),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, object] = {
        "benchmark": "load",
        "cpus": os.cpu_count(),
        "polars_threads": pl.thread_pool_size(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "repeats": args.repeats,
        "results": {},
    }
    results: dict[str, object] = {}
    for name, (path, reader) in CASES.items():  # a loop over data sets
        if not path.exists():
            results[name] = "missing"
            continue
        times, rows = [], 0
        for _ in range(args.repeats):
            start = time.perf_counter()
            raw = reader(path)
            times.append(time.perf_counter() - start)
            rows = raw.events.height
        best = min(times)
        results[name] = {
            "path": str(path.relative_to(ROOT.parent)) if path.is_relative_to(ROOT.parent)
            else str(path),
            "seconds": round(best, 4),
            "seconds_median": round(statistics.median(times), 4),
            "rows": rows,
            "rows_per_s": round(rows / best),
            "bad_rows": raw.bad_rows.count,
        }
    out["results"] = results
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
