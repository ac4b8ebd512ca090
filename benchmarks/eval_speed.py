"""Speed of the full-ranking evaluator on an ML-1M-sized problem; prints one JSON object.

usage: python benchmarks/eval_speed.py [--repeats N] [--batch-size B] [--sweep]

6,040 users x 3,706 items; a tiny Recommender whose ``score`` returns precomputed random
float32 rows; ~20 random train items excluded per user, ~15 distinct test items per user;
ks=(10, 20) and all six ranking metrics. Reports the best and median wall seconds of N runs
of :func:`streamrec.eval.evaluate` (data generation is not timed); the target is <= 2 s on
2 CPU cores. ``--sweep`` also times batch sizes 512..4096.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from streamrec.data.interactions import Interactions
from streamrec.eval import RANKING_METRICS, evaluate
from streamrec.models.base import Recommender

N_USERS, N_ITEMS, N_TRAIN, N_TEST = 6040, 3706, 20, 15
TARGET_S = 2.0


class RandomScores(Recommender):
    """Returns rows of a precomputed random float32 score table."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train, *, valid=None, rng=None):
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        gen = np.random.default_rng(self.seed)
        self.table_ = gen.random((self.n_users_, self.n_items_), dtype=np.float32)
        return self

    def score(self, users, items=None):
        s = self.table_[np.asarray(users)]
        return s if items is None else s[:, items]

    def _get_state(self):
        return {"table_": self.table_}

    def _set_state(self, state):
        self.table_ = state["table_"]


def make_problem(seed: int = 0) -> tuple[RandomScores, Interactions, Interactions]:
    """Model, train (excluded) and test interactions: disjoint random items per user."""
    rng = np.random.default_rng(seed)
    # per user, N_TRAIN + N_TEST distinct items: the smallest keys of a random row
    picks = np.argpartition(rng.random((N_USERS, N_ITEMS)), N_TRAIN + N_TEST, axis=1)
    picks = picks[:, : N_TRAIN + N_TEST]
    users = np.repeat(np.arange(N_USERS), N_TRAIN + N_TEST).reshape(N_USERS, -1)
    mk = lambda u, i: Interactions.from_arrays(  # noqa: E731
        u.ravel(), i.ravel(), n_users=N_USERS, n_items=N_ITEMS
    )
    train = mk(users[:, :N_TRAIN], picks[:, :N_TRAIN])
    test = mk(users[:, N_TRAIN:], picks[:, N_TRAIN:])
    return RandomScores(seed).fit(train), train, test


def time_eval(model, train, test, repeats: int, batch_size: int | None) -> list[float]:
    kw = {} if batch_size is None else {"batch_size": batch_size}
    times = []
    for _ in range(repeats):  # a loop over repeats
        start = time.perf_counter()
        evaluate(model, test, exclude=train, ks=(10, 20), metrics=RANKING_METRICS, **kw)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="evaluator batch size (default: evaluate's own default)")
    parser.add_argument("--sweep", action="store_true", help="also time batch sizes 512..4096")
    args = parser.parse_args()

    model, train, test = make_problem()
    res = evaluate(model, test, exclude=train, ks=(10, 20))  # warm-up, and a sanity figure
    times = time_eval(model, train, test, args.repeats, args.batch_size)
    out: dict[str, object] = {
        "benchmark": "eval_speed",
        "problem": {"users": N_USERS, "items": N_ITEMS, "train_per_user": N_TRAIN,
                    "test_per_user": N_TEST, "ks": [10, 20], "metrics": list(RANKING_METRICS)},
        "batch_size": args.batch_size or evaluate.__kwdefaults__["batch_size"],
        "repeats": args.repeats,
        "best_s": round(min(times), 4),
        "median_s": round(statistics.median(times), 4),
        "target_s": TARGET_S,
        "meets_target": min(times) <= TARGET_S,
        "users_per_s": round(N_USERS / min(times)),
        "ndcg@10_random": round(res.means()["ndcg@10"], 5),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if args.sweep:
        out["sweep_best_s"] = {
            str(b): round(min(time_eval(model, train, test, args.repeats, b)), 4)
            for b in (512, 1024, 2048, 4096)
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
