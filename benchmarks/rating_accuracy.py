"""Rating prediction: NeuralMF side by side with biased MF (ALS) on the same split.

Both are tuned on the valid ratings (RMSE; each model's declared grid, at most
``--max-trials`` points, defaults first), then fitted on train with ``--seeds`` seeds and
scored on the test ratings: RMSE and MAE, mean and std over seeds. Test pairs with a user or
item unseen in train get each model's cold fallback (global mean plus the known bias). NeuralMF
early-stops on valid RMSE. Prints one JSON object.

usage: python benchmarks/rating_accuracy.py [--data SPEC] [--protocol temporal_user]
                                            [--seeds 3] [--max-trials 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split
from streamrec.eval.benchmark import search_points
from streamrec.eval.metrics import mae, rmse
from streamrec.models.zoo import create

MODELS = ("biased_mf", "neural_mf")


def fit(name: str, params: dict, split, seed: int):
    model = create(name, **params)
    kw = {"valid": split.valid} if name == "neural_mf" else {}
    model.fit(split.train, rng=np.random.default_rng(seed), **kw)
    return model


def errors(model, part) -> tuple[float, float]:
    pred = model.predict(part.users, part.items)
    return rmse(part.values, pred), mae(part.values, pred)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="recbole:../shared/data/ml-100k")
    ap.add_argument("--protocol", default="temporal_user")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-trials", type=int, default=12)
    args = ap.parse_args()
    split = make_split(prepare(args.data).dataset, args.protocol)
    out: dict = {"data": args.data, "protocol": args.protocol, "seeds": args.seeds,
                 "test_ratings": len(split.test), "models": {}}
    for name in MODELS:  # a loop over models
        start = time.perf_counter()
        trials = []
        for point in search_points(name, args.max_trials, np.random.default_rng(0)):
            trials.append((errors(fit(name, point, split, 0), split.valid)[0], point))
        best_valid, best = min(trials, key=lambda t: t[0])
        runs = [errors(fit(name, best, split, seed), split.test) for seed in range(args.seeds)]
        r, m = [x[0] for x in runs], [x[1] for x in runs]
        out["models"][name] = {
            "params": best, "valid_rmse": round(best_valid, 4), "trials": len(trials),
            "test_rmse": round(statistics.mean(r), 4),
            "test_rmse_std": round(statistics.pstdev(r), 4),
            "test_mae": round(statistics.mean(m), 4),
            "test_mae_std": round(statistics.pstdev(m), 4),
            "wall_s": round(time.perf_counter() - start, 1)}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
