"""Offline quality of the served two-stage pipeline against its own first stage; prints JSON.

usage: python benchmarks/serving_quality.py [--users 4000] [--items 2000] [--days 40]
       [--max-users 1500] [--seed 0]

A synthetic world's log is cut twice in time: at 80% (validation) and at 90% (test). For
each cut the serving entries are trained and registered on the events before it only
(:func:`streamrec.serve.bundle.build_system`, the quickstart's configuration) and the
engine answers at ``now = cut`` for the users with a positive event (play, like, click) in
the window after the cut (up to the next cut, or the end) who were seen before it.
Relevant items: the user's positive items in that window they had not consumed before.

The ``blend`` weight of the final order (``EngineConfig.blend``: click probability vs the
retrieval model's score) is chosen on the validation cut only, from 0 to 1 by 0.25, then
the test cut reports:

* ``pipeline_blend_0``: ``Engine.recommend`` with the ranker alone;
* ``pipeline_blend_chosen``: with the chosen blend; ``..._no_policy``: without category caps
  and exploration;
* ``retrieval_only``: the retrieval iALS alone (full ranking over the catalog);
* ``popular``: the 7-day popular list.

NDCG@10 / Recall@10 / HitRate@10 from :mod:`streamrec.eval.metrics` (mean over users, the
same exclusions everywhere), a paired t-test of each against ``retrieval_only``, and the
share of relevant items that the candidate generator retrieved at all
(``candidate_recall``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from streamrec.data.synthetic.world import WorldConfig, generate_world
from streamrec.eval.metrics import hit_matrix, hit_rate, ndcg, recall
from streamrec.eval.significance import paired_ttest
from streamrec.features.streamrec import _dedupe
from streamrec.serve.bundle import build_system
from streamrec.serve.engine import Engine, EngineConfig, load_models
from streamrec.serve.features import POSITIVE_EVENTS
from streamrec.serve.policy import PolicyConfig
from streamrec.serve.registry import ModelRegistry

K = 10
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
NO_POLICY = PolicyConfig(0, 0)


def _truth(window: pl.DataFrame, state, seen: sp.csr_array) -> sp.csr_array:
    """(n_users, n_items) 0/1: positives in ``window`` the user had not consumed before."""
    pos = window.filter(pl.col("event").is_in(list(POSITIVE_EVENTS)))
    u = state.users.lookup(pos["user_id"].to_numpy())
    i = state.items.lookup(pos["item_id"].to_numpy())
    ok = (u >= 0) & (i >= 0)
    truth = sp.csr_array((np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=seen.shape)
    truth.sum_duplicates()
    truth.data[:] = 1.0
    truth = sp.csr_array(truth - truth.multiply(seen))
    truth.eliminate_zeros()
    return truth


def _served(engine: Engine, user_ids: np.ndarray, k: int) -> np.ndarray:
    out = np.full((len(user_ids), k), -1, np.int64)
    for j, u in enumerate(user_ids.tolist()):  # a loop over evaluated users (one request each)
        got = engine.state.items.lookup(np.array(
            [it["item_id"] for it in engine.recommend(u, k)["items"]], np.int64))
        out[j, : len(got)] = got
    return out


def evaluate_cut(events: pl.DataFrame, world, cut: int, end: int, configs: dict[str, EngineConfig],
                 max_users: int, rng: np.random.Generator) -> dict:
    """Train on ``events`` before ``cut``, answer at ``cut``, score on ``[cut, end)``."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        build_system(events.filter(pl.col("timestamp") < cut), world.users, world.items,
                     Path(tmp) / "registry")
        fit_s = time.perf_counter() - t0
        models = load_models(ModelRegistry(Path(tmp) / "registry"))
        engines = {name: Engine(models, cfg, clock=lambda: cut) for name, cfg in configs.items()}
        wide = Engine(models, replace(EngineConfig(), policy=NO_POLICY), clock=lambda: cut)
    st = wide.state
    seen = sp.csr_array(st.base_seen)
    seen.resize((len(st.users), len(st.items)))
    window = events.filter((pl.col("timestamp") >= cut) & (pl.col("timestamp") < end))
    truth = _truth(window, st, seen)
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    users = users[(st.u_n_ev[users] > 0) & (users < models.retrieval.n_users_)]
    if len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    ids = st.users.ids[users]
    n_rel = np.diff(truth.indptr)[users]
    lists = {name: _served(eng, ids, K) for name, eng in engines.items()}
    every = _served(wide, ids, 10_000)  # every candidate of the first stage
    cand_hits = sum(int(np.isin(truth.indices[truth.indptr[u]: truth.indptr[u + 1]],
                                every[j]).sum()) for j, u in enumerate(users))
    scores = models.retrieval.score(users)
    scores[seen[users].nonzero()] = -np.inf
    lists["retrieval_only"] = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    pop_scores = np.full((len(users), len(st.items)), -np.inf)
    pop_scores[:, wide.popular] = -np.arange(len(wide.popular), dtype=np.float64)
    pop_scores[seen[users].nonzero()] = -np.inf
    lists["popular"] = np.argsort(-pop_scores, axis=1, kind="stable")[:, :K]
    per_user = {}
    for name, ranked in lists.items():
        hits = hit_matrix(ranked, truth[users])
        per_user[name] = {"ndcg@10": ndcg(hits, n_rel, K), "recall@10": recall(hits, n_rel, K),
                          "hit@10": hit_rate(hits, K)}
    rows = {}
    base = per_user["retrieval_only"]["ndcg@10"]
    for name, m in per_user.items():
        row = {metric: round(float(np.nanmean(v)), 4) for metric, v in m.items()}
        if name != "retrieval_only":
            row["p_ndcg_vs_retrieval_only"] = float(paired_ttest(m["ndcg@10"], base).p_value)
        rows[name] = row
    return {"cut": cut, "users_evaluated": len(users), "fit_seconds": round(fit_s, 1),
            "candidate_recall": round(cand_hits / max(int(n_rel.sum()), 1), 4), "models": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--max-users", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    world = generate_world(WorldConfig(n_users=args.users, n_items=args.items,
                                       n_days=args.days, seed=args.seed))
    events = _dedupe(world.events).filter(pl.col("user_id").is_not_null())
    ts = events["timestamp"]
    cut_valid, cut_test = int(ts.quantile(0.8)), int(ts.quantile(0.9))
    end = int(ts.max()) + 1

    valid = evaluate_cut(events, world, cut_valid, cut_test,
                         {f"pipeline_blend_{b}": EngineConfig(blend=b) for b in BLENDS},
                         args.max_users, rng)
    chosen = max(BLENDS, key=lambda b: valid["models"][f"pipeline_blend_{b}"]["ndcg@10"])
    test = evaluate_cut(events, world, cut_test, end, {
        "pipeline_blend_0": EngineConfig(blend=0.0),
        "pipeline_blend_chosen": EngineConfig(blend=chosen),
        "pipeline_blend_chosen_no_policy": EngineConfig(blend=chosen, policy=NO_POLICY),
    }, args.max_users, rng)
    print(json.dumps({"benchmark": "serving_quality", "config": vars(args),
                      "blend_chosen_on_valid": chosen,
                      "valid_ndcg@10": {b: valid["models"][f"pipeline_blend_{b}"]["ndcg@10"]
                                        for b in BLENDS}
                      | {"retrieval_only": valid["models"]["retrieval_only"]["ndcg@10"]},
                      "test": test}, indent=2))


if __name__ == "__main__":
    main()
