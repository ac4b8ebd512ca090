"""Speed and memory of the synthetic world generator; prints one JSON object.

usage: python benchmarks/generate.py [--quick] [--cpus N] [--only NAME ...]

Each figure runs in its own subprocess pinned to ``--cpus`` cores (default 2, the target
machine) with thread pools capped to the same number, so that its peak RSS
(``ru_maxrss`` of that process: interpreter, imports and all) is its own. Figures:

``default_world``      the CLI default (5,000 users x 2,000 items x 60 days), write_world
``10M_events_write``   about 10M events (40,000 users x 20,000 items x 60 days), write_world
                       to Parquet; target <= 60 s and <= 4 GB peak RSS on 2 cores
``10M_events_memory``  the same world with generate_world (everything in memory)
``5M_users_200K_items``  5,000,000 users x 200,000 items x 2 days streamed to Parquet
                       (bounded memory: one chunk of users at a time)

``--quick`` runs only ``default_world`` and a 1,000-user world.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIGURES: dict[str, tuple[str, dict[str, int]]] = {
    "small_world": ("write", {"n_users": 1_000, "n_items": 500, "n_days": 30}),
    "default_world": ("write", {"n_users": 5_000, "n_items": 2_000, "n_days": 60}),
    "10M_events_write": ("write", {"n_users": 40_000, "n_items": 20_000, "n_days": 60}),
    "10M_events_memory": ("memory", {"n_users": 40_000, "n_items": 20_000, "n_days": 60}),
    "5M_users_200K_items": ("write", {"n_users": 5_000_000, "n_items": 200_000, "n_days": 2}),
}
QUICK = ("small_world", "default_world")
TARGETS = {"10M_events_write": {"max_seconds": 60.0, "max_peak_rss_gb": 4.0},
           "10M_events_memory": {"max_seconds": 60.0, "max_peak_rss_gb": 4.0}}


def _child(spec: str) -> None:
    """Run one figure in this process and print its JSON line."""
    args = json.loads(spec)
    from streamrec.data.synthetic.world import WorldConfig, generate_world, write_world

    config = WorldConfig(**args["config"])
    start = time.perf_counter()
    if args["mode"] == "write":
        info = write_world(config, Path(args["out"]))
        rows = int(info["rows"])
        size = sum(p.stat().st_size for p in Path(args["out"]).rglob("*") if p.is_file())
    else:
        world = generate_world(config)
        rows = world.events.height
        size = int(world.events.estimated_size())
        info = world.truth
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "mode": args["mode"],
        "config": args["config"],
        "chunk_users": config.effective_chunk_users,
        "events": rows,
        "seconds": round(seconds, 2),
        "events_per_second": round(rows / seconds),
        "peak_rss_gb": round(peak_kb / 1024**2, 3),
        "bytes": size,
        "churned_users": info["truth"]["churned_users"],
        "anomalies": info["truth"]["anomalies"],
    }))


def _run(name: str, cpus: int, tmp: Path) -> dict[str, object]:
    mode, config = FIGURES[name]
    spec = json.dumps({"mode": mode, "config": config, "out": str(tmp / name)})
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "POLARS_MAX_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(cpus)
    available = sorted(os.sched_getaffinity(0))
    pin = available[:cpus]

    def preexec() -> None:
        os.sched_setaffinity(0, pin)

    proc = subprocess.run([sys.executable, __file__, "--child", spec], env=env, text=True,
                          capture_output=True, preexec_fn=preexec, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    target = TARGETS.get(name)
    if target is not None:
        result["target"] = target
        result["meets_target"] = (result["seconds"] <= target["max_seconds"]
                                  and result["peak_rss_gb"] <= target["max_peak_rss_gb"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the small sizes")
    parser.add_argument("--cpus", type=int, default=2, help="cores each figure may use")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="run these figures")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    names = args.only or (QUICK if args.quick else tuple(FIGURES))
    cpus = max(1, min(args.cpus, len(os.sched_getaffinity(0))))
    out: dict[str, object] = {
        "benchmark": "generate",
        "cpus": cpus,
        "machine_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="streamrec-bench-") as tmp:
        for name in names:  # a loop over figures, each in its own process
            out["results"][name] = _run(name, cpus, Path(tmp))  # type: ignore[index]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
