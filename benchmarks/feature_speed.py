"""Time the 20 StreamRec features on a synthetic world with at least 1M impressions.

Prints one JSON object: world generation, labelling and feature wall times (s) reported
separately (plus the feature step's CPU time, all threads: less sensitive to other load on the
machine), rows per second, and the sizes. The feature time covers all 20 features (the MF fit of
``collaborative_score`` included) and the DIN history, for every impression; the MF model is
trained on the clicks of the first 30% of the window (``FeatureConfig.mf_share``) and the
features are computed for the (>= 1M) impressions after that cutoff.

Usage: python benchmarks/feature_speed.py [--users 7600] [--items 2000] [--days 60]
       [--min-impressions 1000000] [--history-len 20] [--mf-share 0.3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import polars as pl

from streamrec.data.synthetic.world import WorldConfig, generate_world
from streamrec.features.streamrec import (
    FeatureConfig,
    _dedupe,
    impressions_from_events,
    resolve_mf_cutoff,
    streamrec_features,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=7600)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-impressions", type=int, default=1_000_000)
    ap.add_argument("--history-len", type=int, default=20)
    ap.add_argument("--mf-share", type=float, default=0.3,
                    help="MF cutoff: this share of the way through the impressions")
    args = ap.parse_args()

    t = time.perf_counter()
    world = generate_world(WorldConfig(n_users=args.users, n_items=args.items,
                                       n_days=args.days, seed=args.seed))
    t_generate = time.perf_counter() - t

    t = time.perf_counter()
    events = _dedupe(world.events)
    imp = impressions_from_events(events, dedupe=False)
    t_label = time.perf_counter() - t
    cfg = FeatureConfig(mf_share=args.mf_share)
    cutoff = resolve_mf_cutoff(imp, cfg.mf_share)
    n_after = int((imp["timestamp"] >= cutoff).sum())
    if n_after < args.min_impressions:
        raise SystemExit(f"only {n_after:,} impressions after the MF cutoff; raise --users "
                         "or --days")
    t, cpu = time.perf_counter(), time.process_time()
    frame = streamrec_features(events, world.users, world.items, imp, mf_cutoff=cutoff,
                               history_len=args.history_len, config=cfg)
    t_features = time.perf_counter() - t
    cpu_features = time.process_time() - cpu
    mf_rows = int(((events["event"] == "click") & (events["timestamp"] < cutoff)).sum())

    print(json.dumps({
        "benchmark": "feature_speed",
        "world": {"users": args.users, "items": args.items, "days": args.days,
                  "events": world.events.height, "impressions": imp.height},
        "rows_featurised": frame.height,
        "features": 20,
        "history_len": args.history_len,
        "mf_cutoff": cutoff,
        "mf_train_clicks": mf_rows,
        "seconds": {"generate_world": round(t_generate, 2),
                    "dedupe_and_label": round(t_label, 2),
                    "features": round(t_features, 2),
                    "features_cpu": round(cpu_features, 2)},
        "rows_per_second": round(frame.height / t_features),
        "goal_seconds": 30.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "polars": pl.__version__, "load_avg_1m": round(os.getloadavg()[0], 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
