"""``predict_proba`` latency of every click model on a batch of candidates (the ranking stage
of a request): median and p90 over repeated calls, after warm-up. Prints one JSON object.

The models are fitted briefly (gbdt: 100 and its default 1,000 rounds, reported apart: a
forest's latency grows with its trees) on synthetic data shaped like the StreamRec impressions (20
dense features, 4 categorical fields, a 20-item history for DIN); latency does not depend
on how well they are trained. Torch runs with ``--threads`` intra-op threads (default 1: a
200-row batch is too small to split across threads, and a serving worker should not fight
its siblings for cores).

usage: python benchmarks/ctr_latency.py [--candidates 200] [--repeats 300] [--threads 1]
                                        [--models logistic,mlp,...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from streamrec.data.ctr import CTRData, FeatureSchema
from streamrec.models.zoo import available, create
from streamrec.testing.ctr_conformance import ctr_conformance_params

N_DENSE, CARDS, N_ITEMS, HIST = 20, (4, 5, 2000, 4097), 2000, 20


def _data(n: int, rng: np.random.Generator) -> CTRData:
    schema = FeatureSchema(tuple(f"f{j}" for j in range(N_DENSE)),
                           ("tier", "platform", "item_id", "user_id"), CARDS,
                           n_history_items=N_ITEMS, item_field="item_id")
    cat = np.stack([rng.integers(0, c, n) for c in CARDS], axis=1)
    hist = rng.integers(0, N_ITEMS, (n, HIST))
    x = rng.standard_normal((n, N_DENSE)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(np.float32)
    return CTRData(schema, x, cat, labels=y, history=hist)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default=",".join(available("ctr")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    train, batch = _data(2000, rng), _data(args.candidates, rng)
    out: dict[str, object] = {"candidates": args.candidates, "repeats": args.repeats,
                              "torch_threads": args.threads, "cpu_count": os.cpu_count(),
                              "load_average_1m": os.getloadavg()[0], "models": {}}
    runs: list[tuple[str, str, dict]] = []
    for name in args.models.split(","):  # a loop over models
        params = ctr_conformance_params(name)  # small, fast-to-fit settings...
        params.pop("user_field", None)
        params.pop("item_field", None)
        if name == "gbdt":  # ...but a forest costs per tree: 100 and the default 1,000 rounds
            runs += [(f"gbdt@{t}", name, {"n_estimators": t, "n_jobs": 1, "patience": 0})
                     for t in (100, 1000)]
        else:
            runs.append((name, name, params))
    for label, name, params in runs:  # a loop over (model, settings)
        model = create(name, kind="ctr", **params).fit(train, rng=0)
        for _ in range(20):  # a loop over warm-up calls
            model.predict_proba(batch)
        times = []
        for _ in range(args.repeats):  # a loop over timed calls
            t0 = time.perf_counter()
            model.predict_proba(batch)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        out["models"][label] = {"median_ms": round(statistics.median(times), 3),
                               "p90_ms": round(times[int(0.9 * len(times))], 3),
                               "goal_ms": 2.0, "met": statistics.median(times) <= 2.0}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
