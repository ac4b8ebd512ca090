"""Single-query latency and recall of VectorIndex: exact (IndexFlatIP) vs HNSW.

Data: ``n_items`` clustered float32 vectors (``n_clusters`` gaussian clusters with random
centres and per-cluster scale) and ``n_queries`` queries drawn the same way (like user vectors
near the item clusters). Each query is searched alone (batch of 1, as the service does) with
``k`` results; latencies are wall times per call. Recall@k = |HNSW top-k ∩ exact top-k| / k,
averaged over the queries. faiss search runs on one thread; the HNSW build uses
``--build-threads``.

Prints one JSON object: n_items, dim, k, build_s (HNSW), exact_p50_ms, exact_p99_ms,
hnsw_p50_ms, hnsw_p99_ms, recall_at_k, plus the HNSW settings and the graph kept
(``--graph auto``: the one with the higher recall on 500 other queries; build_s then covers
both graphs).

Usage: python benchmarks/ann_speed.py [--items 200000] [--dim 64] [--k 200] [--queries 500]
       [--ef-search 256 [...]] [--hnsw-m 32] [--ef-construction 80] [--build-threads 2]
       [--graph auto|l2|ip]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import faiss
import numpy as np

from streamrec.retrieval.ann import VectorIndex


def clustered(n: int, dim: int, n_clusters: int, rng: np.random.Generator,
              centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors around ``n_clusters`` gaussian centres; returns (vectors, centres)."""
    if centres is None:
        centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    scale = rng.uniform(0.3, 0.8, n_clusters).astype(np.float32)
    c = rng.integers(0, len(centres), n)
    x = centres[c] + scale[c, None] * rng.standard_normal((n, dim)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), centres


def time_single(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Search one query at a time; returns (ids (q, k), latencies in ms (q,))."""
    for q in queries[:20]:  # warm-up
        index.search(q[None], k)
    ids = np.empty((len(queries), k), np.int64)
    lat = np.empty(len(queries))
    for i, q in enumerate(queries):
        t = time.perf_counter()
        ids[i] = index.search(q[None], k)[0][0]
        lat[i] = (time.perf_counter() - t) * 1e3
    return ids, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clusters", type=int, default=200)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[VectorIndex().ef_search],
                    help="one or more values (the first is reported at the top level)")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--graph", default="auto", choices=["auto", "l2", "ip"],
                    help="HNSW graph (auto: the higher recall on a separate sample of queries)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    items, centres = clustered(args.items, args.dim, args.clusters, rng)
    queries, _ = clustered(args.queries, args.dim, args.clusters, rng, centres)
    choose, _ = clustered(500, args.dim, args.clusters, rng, centres)  # not the measured ones

    exact = VectorIndex(exact_below=args.items + 1).build(items)
    faiss.omp_set_num_threads(args.build_threads)
    t = time.perf_counter()
    hnsw = VectorIndex(exact_below=0, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                       ef_search=args.ef_search[0], graph=args.graph, recall_k=args.k).build(
        items, queries=choose)
    build_s = time.perf_counter() - t
    faiss.omp_set_num_threads(1)

    truth, exact_lat = time_single(exact, queries, args.k)
    sweep = []
    for ef in args.ef_search:
        hnsw.set_ef_search(ef)
        found, hnsw_lat = time_single(hnsw, queries, args.k)
        hits = (found[:, :, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
        sweep.append({"ef_search": ef, "hnsw_p50_ms": round(float(np.median(hnsw_lat)), 3),
                      "hnsw_p99_ms": round(float(np.percentile(hnsw_lat, 99)), 3),
                      "recall_at_k": round(float(np.mean(hits / args.k)), 4)})
    out = {
        "n_items": args.items, "dim": args.dim, "k": args.k, "n_queries": args.queries,
        "clusters": args.clusters, "hnsw_m": args.hnsw_m, "ef_construction": args.ef_construction,
        "build_threads": args.build_threads, "build_s": round(build_s, 2),
        "graph": hnsw.graph_, "graph_recall_on_build_queries": hnsw.graph_recall_,
        "exact_p50_ms": round(float(np.median(exact_lat)), 3),
        "exact_p99_ms": round(float(np.percentile(exact_lat, 99)), 3),
        **sweep[0],
        "faiss": faiss.__version__, "cpu": platform.processor() or platform.machine(),
    }
    if len(sweep) > 1:
        out["sweep"] = sweep
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
