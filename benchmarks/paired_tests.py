"""Paired tests of every model of a finished benchmark run against reference models.

Reads ``RUN/per_user.npz`` (written by ``streamrec benchmark --out RUN``), averages each
model's per-user metric over its seeds, and prints one JSON object: for each (model,
reference) the two means, the difference, and the paired t-test and Wilcoxon p-values
(``streamrec benchmark --against`` puts the same table in report.md of a new run).

usage: python benchmarks/paired_tests.py RUN [--against ease,ials] [--metric ndcg@10]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from streamrec.eval.significance import paired_ttest, wilcoxon


def seed_averaged(arrays, model: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(users sorted, the metric averaged over the model's seeds, aligned with them)."""
    seeds = sorted({k.split("/")[1] for k in arrays.files if k.startswith(model + "/")})
    users = arrays[f"{model}/{seeds[0]}/users"]
    values = np.mean([arrays[f"{model}/{s}/{metric}"] for s in seeds], axis=0)
    order = np.argsort(users)
    return users[order], values[order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="output directory of streamrec benchmark")
    ap.add_argument("--against", default="ease,ials")
    ap.add_argument("--metric", default="ndcg@10")
    args = ap.parse_args()
    arrays = np.load(f"{args.run}/per_user.npz")
    models = sorted({k.split("/")[0] for k in arrays.files})
    refs = [m for m in args.against.split(",") if m]
    missing = [m for m in refs if m not in models]
    if missing:
        sys.exit(f"error: {', '.join(missing)} not in {args.run}/per_user.npz ({models})")
    rows = []
    for ref in refs:  # a loop over references
        ref_users, ref_values = seed_averaged(arrays, ref, args.metric)
        for model in models:
            if model == ref:
                continue
            users, values = seed_averaged(arrays, model, args.metric)
            if not np.array_equal(users, ref_users):
                sys.exit(f"error: {model} and {ref} were evaluated on different users")
            rows.append({"model": model, "against": ref,
                         "mean": round(float(values.mean()), 4),
                         "reference_mean": round(float(ref_values.mean()), 4),
                         "difference": round(float(values.mean() - ref_values.mean()), 4),
                         "p_ttest": float(f"{paired_ttest(values, ref_values).p_value:.3g}"),
                         "p_wilcoxon": float(f"{wilcoxon(values, ref_values).p_value:.3g}")})
    json.dump({"run": args.run, "metric": args.metric, "tests": rows}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
