"""Offline quality of the served two-stage pipeline against its own first stage; prints JSON.

usage: python benchmarks/serving_quality.py [--users 4000] [--items 2000] [--days 40]
       [--test-share 0.1] [--max-users 1500] [--seed 0]

A synthetic world is cut at one time T (the last ``--test-share`` of its log is the future).
The serving entries are trained and registered on the events before T only
(:func:`streamrec.serve.bundle.build_system`, the quickstart's configuration), and the
engine answers at ``now = T`` for every user with a positive event (play, like, click)
after T who was seen before it. Relevant items: the user's positive items after T that
they had not consumed before T. Compared, on the same users and exclusions:

* ``pipeline``: ``Engine.recommend`` (retrieve -> rank -> policy, the service's answer);
* ``pipeline_no_policy``: the same candidates and ranker without category caps and
  exploration (``max_per_category=0, explore_slots=0``);
* ``retrieval_only``: the retrieval iALS alone (full ranking over the catalog);
* ``popular``: the 7-day popular list.

NDCG@10 / Recall@10 / HitRate@10 with :mod:`streamrec.eval.metrics`, mean over users and a
paired t-test of each against ``retrieval_only``; also the share of relevant items that the
candidate generator retrieved at all (``candidate_recall``).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--test-share", type=float, default=0.1)
    ap.add_argument("--max-users", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    world = generate_world(WorldConfig(n_users=args.users, n_items=args.items,
                                       n_days=args.days, seed=args.seed))
    events = _dedupe(world.events).filter(pl.col("user_id").is_not_null())
    cut = int(events["timestamp"].quantile(1.0 - args.test_share))
    past, future = events.filter(pl.col("timestamp") < cut), events.filter(
        pl.col("timestamp") >= cut)
    with tempfile.TemporaryDirectory() as tmp:
        build_system(past, world.users, world.items, Path(tmp) / "registry")
        fit_s = time.perf_counter() - t0
        models = load_models(ModelRegistry(Path(tmp) / "registry"))
        engine = Engine(models, clock=lambda: cut)
        no_policy = Engine(load_models(ModelRegistry(Path(tmp) / "registry")),
                           replace(EngineConfig(), policy=PolicyConfig(0, 0)),
                           clock=lambda: cut)
        # every candidate the first stage returns (no cut, no policy): candidate recall
        wide_engine = Engine(models, replace(EngineConfig(), policy=PolicyConfig(0, 0)),
                             clock=lambda: cut)
    st = engine.state
    pos = future.filter(pl.col("event").is_in(list(POSITIVE_EVENTS)))
    rows_u = st.users.lookup(pos["user_id"].to_numpy())
    rows_i = st.items.lookup(pos["item_id"].to_numpy())
    ok = (rows_u >= 0) & (rows_i >= 0) & (rows_u < st.base_seen.shape[0])
    truth = sp.csr_array((np.ones(int(ok.sum()), np.float32), (rows_u[ok], rows_i[ok])),
                         shape=(len(st.users), len(st.items)))
    truth.sum_duplicates()
    truth.data[:] = 1.0
    seen = sp.csr_array(st.base_seen, shape=truth.shape) if st.base_seen.shape == truth.shape \
        else _resize(st.base_seen, truth.shape)
    truth = sp.csr_array(truth - truth.multiply(seen))  # only items new to the user
    truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    users = users[st.u_n_ev[users] > 0]  # seen before the cut
    rng = np.random.default_rng(args.seed)
    if len(users) > args.max_users:
        users = np.sort(rng.choice(users, args.max_users, replace=False))
    ids = st.users.ids[users]
    k = 10
    lists: dict[str, np.ndarray] = {}
    cand_hits, n_rel = [], np.diff(truth.indptr)[users]
    for name, eng in (("pipeline", engine), ("pipeline_no_policy", no_policy)):
        out = np.full((len(users), k), -1, np.int64)
        t1 = time.perf_counter()
        for j, u in enumerate(ids.tolist()):  # a loop over evaluated users (one request each)
            got = st.items.lookup(np.array([it["item_id"] for it in
                                            eng.recommend(u, k)["items"]], np.int64))
            out[j, : len(got)] = got
        lists[name] = out
        if name == "pipeline":
            request_ms = 1e3 * (time.perf_counter() - t1) / len(users)
    # candidate recall: the relevant items among everything the first stage returned
    for j, u in enumerate(ids.tolist()):  # a loop over evaluated users
        got = st.items.lookup(np.array([it["item_id"] for it in
                                        wide_engine.recommend(u, 10_000)["items"]], np.int64))
        rel = truth.indices[truth.indptr[users[j]]: truth.indptr[users[j] + 1]]
        cand_hits.append(np.isin(rel, got).sum())
    # retrieval iALS alone and popularity, full ranking with the same exclusions
    scores = models.retrieval.score(users)
    scores[seen[users].nonzero()] = -np.inf
    lists["retrieval_only"] = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    pop = engine.popular
    pop_scores = np.full((len(users), len(st.items)), -np.inf)
    pop_scores[:, pop] = -np.arange(len(pop), dtype=np.float64)
    pop_scores[seen[users].nonzero()] = -np.inf
    lists["popular"] = np.argsort(-pop_scores, axis=1, kind="stable")[:, :k]

    per_user = {}
    for name, ranked in lists.items():
        hits = hit_matrix(ranked, truth[users])  # -1 pads short lists
        per_user[name] = {"ndcg@10": ndcg(hits, n_rel, k), "recall@10": recall(hits, n_rel, k),
                          "hit@10": hit_rate(hits, k)}
    result = {"benchmark": "serving_quality", "config": vars(args), "cut": cut,
              "users_evaluated": len(users), "fit_seconds": round(fit_s, 1),
              "request_ms_mean": round(request_ms, 3),
              "candidate_recall": round(float(np.sum(cand_hits) / n_rel.sum()), 4),
              "models": {}}
    base = per_user["retrieval_only"]["ndcg@10"]
    for name, m in per_user.items():
        row = {metric: round(float(np.nanmean(v)), 4) for metric, v in m.items()}
        if name != "retrieval_only":
            row["p_ndcg_vs_retrieval_only"] = float(paired_ttest(m["ndcg@10"], base).p_value)
        result["models"][name] = row
    print(json.dumps(result, indent=2))


def _resize(x: sp.csr_array, shape: tuple[int, int]) -> sp.csr_array:
    y = sp.csr_array(x)
    y.resize(shape)
    return y


if __name__ == "__main__":
    main()
