"""VectorIndex (faiss exact / HNSW) and CoVisitation candidates."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from streamrec.retrieval.ann import VectorIndex
from streamrec.retrieval.covisit import CoVisitation


def clustered(n: int, dim: int, n_clusters: int, seed: int) -> np.ndarray:
    """Points around ``n_clusters`` gaussian centres (the same centres for every ``seed``)."""
    centres = np.random.default_rng(12345).standard_normal((n_clusters, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, n_clusters, n)] + 0.4 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def brute_force(items: np.ndarray, queries: np.ndarray, k: int, metric: str = "ip",
                exclude: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    x, q = items.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        s = -((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    else:
        s = q @ x.T
    if exclude is not None:
        for i, e in enumerate(exclude):  # test oracle: a loop is fine here
            s[i, e] = -np.inf
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, axis=1)


# ---------------------------------------------------------------------------- VectorIndex


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_exact_matches_brute_force(metric: str) -> None:
    rng = np.random.default_rng(0)
    items = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    index = VectorIndex(metric=metric).build(items)
    assert index.is_exact and len(index) == 500 and index.dim == 16
    ids, scores = index.search(queries, 10)
    want_ids, want_scores = brute_force(items, queries, 10, metric)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (7, 10)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-4)
    # a single 1-d query is one row
    one_ids, _ = index.search(queries[0], 10)
    np.testing.assert_array_equal(one_ids, want_ids[:1])


def test_hnsw_recall_on_clustered_data() -> None:
    items = clustered(4000, 16, 20, seed=1)
    queries = clustered(50, 16, 20, seed=2)
    index = VectorIndex(exact_below=0, hnsw_m=16, ef_construction=80, ef_search=64).build(items)
    assert not index.is_exact
    ids, scores = index.search(queries, 20)
    want, _ = brute_force(items, queries, 20)
    recall = (ids[:, :, None] == want[:, None, :]).any(axis=2).mean()
    assert recall >= 0.95
    # scores are the exact inner products of the returned items, best first
    exact = np.einsum("qkd,qd->qk", items[ids].astype(np.float64), queries.astype(np.float64))
    np.testing.assert_allclose(scores, exact, rtol=1e-4, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("graph", ["l2", "ip"])
def test_both_graphs_return_exact_scores_best_first(graph: str) -> None:
    items = clustered(3000, 16, 20, seed=1)
    queries = clustered(40, 16, 20, seed=2)
    index = VectorIndex(exact_below=0, ef_search=64, graph=graph).build(items)
    assert index.graph_ == graph and (index.aug_norm_ is None) == (graph == "ip")
    ids, scores = index.search(queries, 20)
    want, _ = brute_force(items, queries, 20)
    assert (ids[:, :, None] == want[:, None, :]).any(axis=2).mean() >= 0.9
    exact = np.einsum("qkd,qd->qk", items[ids].astype(np.float64), queries.astype(np.float64))
    np.testing.assert_allclose(scores, exact, rtol=1e-4, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_auto_graph_keeps_the_one_with_the_higher_recall() -> None:
    import faiss

    # items of almost equal norm, queries much longer (each between two clusters): the case
    # the L2 reduction handles worse than an inner-product graph
    rng = np.random.default_rng(1)
    items = clustered(4000, 32, 50, seed=4)
    items = (0.3 * items / np.linalg.norm(items, axis=1, keepdims=True)
             * rng.uniform(0.9, 1.1, (4000, 1))).astype(np.float32)
    queries = 2.5 * (clustered(60, 32, 50, seed=5) + clustered(60, 32, 50, seed=41))
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # a deterministic graph build
    try:
        index = VectorIndex(exact_below=0, hnsw_m=8, ef_construction=16, ef_search=16,
                            recall_k=30).build(items, queries=queries)
    finally:
        faiss.omp_set_num_threads(threads)
    rec = index.graph_recall_
    assert set(rec) == {"l2", "ip"} and rec["ip"] > rec["l2"] + 0.03
    assert index.graph_ == "ip" and index.aug_norm_ is None
    ids, _ = index.search(queries, 30)  # the recorded recall is the index's own
    want, _ = brute_force(items, queries, 30)
    recall = (ids[:, :, None] == want[:, None, :]).any(axis=2).mean()
    assert recall == pytest.approx(rec[index.graph_], abs=1e-9)
    # without queries: the reduction, nothing measured; explicit graphs ignore queries
    plain = VectorIndex(exact_below=0, ef_search=20).build(items)
    assert plain.graph_ == "l2" and plain.graph_recall_ == {}
    ip = VectorIndex(exact_below=0, ef_search=20, graph="ip").build(items, queries=queries)
    assert ip.graph_ == "ip" and ip.graph_recall_ == {}
    with pytest.raises(ValueError, match="graph must be one of"):
        VectorIndex(graph="cosine").build(items)


@pytest.mark.parametrize("exact_below", [10_000, 0])
def test_add_makes_new_items_retrievable(exact_below: int) -> None:
    items = clustered(1000, 8, 10, seed=3)
    index = VectorIndex(exact_below=exact_below, ef_search=64).build(
        items, ids=np.arange(1000) * 2)  # labels need not be row numbers
    query = np.ones((1, 8), np.float32)
    top_norm = np.linalg.norm(items, axis=1).max()
    new = (query / np.linalg.norm(query) * top_norm * 1.1).astype(np.float32)  # the best match
    index.add(new, np.array([5001]))
    assert len(index) == 1001
    ids, scores = index.search(query, 5)
    assert ids[0, 0] == 5001
    np.testing.assert_allclose(scores[0, 0], float(new[0] @ query[0]), rtol=1e-5)
    assert set(ids[0, 1:]) <= set(range(0, 2000, 2))


def test_exclude_and_padding() -> None:
    rng = np.random.default_rng(4)
    items = rng.standard_normal((50, 6)).astype(np.float32)
    queries = rng.standard_normal((3, 6)).astype(np.float32)
    index = VectorIndex().build(items)
    full, _ = index.search(queries, 5)
    exclude = [full[0, :3], np.array([], np.int64), np.array([full[2, 0], 999])]
    ids, scores = index.search(queries, 5, exclude=exclude)
    want, want_scores = brute_force(items, queries, 5, exclude=[e[e < 50] for e in exclude])
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert not np.isin(ids[0], full[0, :3]).any()
    # asking for more than the catalogue pads with -1 / -inf
    ids, scores = index.search(queries[:1], 60, exclude=[np.arange(45)])
    assert (ids[0, :5] >= 45).all() and (ids[0, 5:] == -1).all()
    assert np.isneginf(scores[0, 5:]).all() and np.isfinite(scores[0, :5]).all()


@pytest.mark.parametrize(("exact_below", "graph"), [(10_000, "auto"), (0, "l2"), (0, "ip")])
def test_save_load_identical(tmp_path, exact_below: int, graph: str) -> None:
    items = clustered(800, 12, 8, seed=5)
    queries = clustered(10, 12, 8, seed=6)
    index = VectorIndex(exact_below=exact_below, ef_search=40, graph=graph).build(items)
    index.add(clustered(5, 12, 8, seed=7), np.arange(800, 805))
    index.save(tmp_path / "ann")
    loaded = VectorIndex.load(tmp_path / "ann")
    assert (loaded.is_exact, len(loaded), loaded.dim, loaded.ef_search, loaded.graph_) == (
        index.is_exact, 805, 12, 40, index.graph_)
    for a, b in zip(index.search(queries, 15), loaded.search(queries, 15), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.ids, np.arange(805))
    with pytest.raises(FileNotFoundError, match="params.json"):
        VectorIndex.load(tmp_path / "nothing")


def test_index_bad_input() -> None:
    items = np.random.default_rng(8).standard_normal((20, 4)).astype(np.float32)
    with pytest.raises(RuntimeError, match="build"):
        VectorIndex().search(items[:1], 3)
    index = VectorIndex().build(items)
    with pytest.raises(ValueError, match="dims"):
        index.search(np.ones((1, 5), np.float32), 3)
    with pytest.raises(ValueError, match="dims"):
        index.add(np.ones((1, 5), np.float32), np.array([100]))
    with pytest.raises(ValueError, match="already indexed"):
        index.add(np.ones((2, 4), np.float32), np.array([100, 3]))
    with pytest.raises(ValueError, match="duplicates"):
        index.add(np.ones((2, 4), np.float32), np.array([100, 100]))
    assert len(index) == 20  # failed adds changed nothing
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must be"):
            index.search(items[:1], k)
    with pytest.raises(ValueError, match="exclude"):
        index.search(items[:2], 3, exclude=[np.array([1])])
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((1, 4), np.nan, np.float32), 3)
    with pytest.raises(ValueError, match="duplicates"):
        VectorIndex().build(items[:2], ids=np.array([1, 1]))
    with pytest.raises(ValueError, match="metric"):
        VectorIndex(metric="dot").build(items)


def test_concurrent_search_and_add() -> None:
    items = clustered(2000, 8, 10, seed=9)
    index = VectorIndex(exact_below=0, ef_search=32).build(items)
    queries = clustered(20, 8, 10, seed=10)
    errors: list[BaseException] = []

    def searcher() -> None:
        try:
            for q in queries:
                ids, _ = index.search(q[None], 10)
                assert (ids >= 0).all()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for j in range(5):
        index.add(clustered(10, 8, 10, seed=20 + j), np.arange(2000 + 10 * j, 2010 + 10 * j))
    for t in threads:
        t.join()
    assert not errors and len(index) == 2050


# ---------------------------------------------------------------------------- CoVisitation


def toy_log() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User 0 watches 0, 1, 2, 1; user 1 watches 2, 0, 3 (rows shuffled)."""
    users = np.array([0, 0, 0, 0, 1, 1, 1])
    items = np.array([0, 1, 2, 1, 2, 0, 3])
    times = np.array([10, 20, 30, 40, 5, 6, 7])
    perm = np.array([6, 2, 0, 4, 3, 5, 1])
    return users[perm], items[perm], times[perm]


# window 2 by hand. user 0, offset 1: (0,1) (1,2) (2,1); offset 2: (0,2) (1,1: self, ignored).
# user 1, offset 1: (2,0) (0,3); offset 2: (2,3). Nothing across the user boundary.
TOY_COUNTS = np.array([[0, 1, 2, 1],
                       [1, 0, 2, 0],
                       [2, 2, 0, 1],
                       [1, 0, 1, 0]], dtype=np.float32)


def test_covisitation_hand_computed_counts() -> None:
    cv = CoVisitation(window=2, top_n=10, min_count=1).fit(*toy_log(), n_items=4)
    assert isinstance(cv.table_, sp.csr_array) and cv.table_.dtype == np.float32
    np.testing.assert_array_equal(cv.table_.toarray(), TOY_COUNTS)
    np.testing.assert_array_equal(cv.item_freq_, [2, 2, 2, 1])
    # window 1: consecutive only -> {0,1}:1 {1,2}:2 {0,2}:1 {0,3}:1
    one = CoVisitation(window=1, top_n=10, min_count=1).fit(*toy_log(), n_items=4)
    np.testing.assert_array_equal(one.table_.toarray(), [[0, 1, 1, 1], [1, 0, 2, 0],
                                                         [1, 2, 0, 0], [1, 0, 0, 0]])
    # min_count drops rare pairs
    two = CoVisitation(window=2, top_n=10, min_count=2).fit(*toy_log(), n_items=4)
    np.testing.assert_array_equal(two.table_.toarray(), np.where(TOY_COUNTS >= 2, TOY_COUNTS, 0))
    # normalised: count / sqrt(freq_a freq_b)
    norm = CoVisitation(window=2, top_n=10, min_count=1, normalize=True).fit(*toy_log(),
                                                                              n_items=4)
    freq = np.array([2, 2, 2, 1.0])
    np.testing.assert_allclose(norm.table_.toarray(), TOY_COUNTS / np.sqrt(np.outer(freq, freq)),
                               rtol=1e-6)


def test_covisitation_top_n_and_neighbours() -> None:
    cv = CoVisitation(window=2, top_n=1, min_count=1).fit(*toy_log(), n_items=4)
    # one neighbour per row; ties go to the lower item index
    np.testing.assert_array_equal(cv.table_.toarray(), [[0, 0, 2, 0], [0, 0, 2, 0],
                                                        [2, 0, 0, 0], [1, 0, 0, 0]])
    full = CoVisitation(window=2, top_n=50, min_count=1).fit(*toy_log(), n_items=4)
    ids, scores = full.neighbours(np.array([2, 3, 7, -1]), k=3)
    np.testing.assert_array_equal(ids, [[0, 1, 3], [0, 2, -1], [-1, -1, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(scores, [[2, 2, 1], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert ids.dtype == np.int64 and scores.dtype == np.float32


def test_covisitation_candidates_and_exclude() -> None:
    cv = CoVisitation(window=2, top_n=50, min_count=1, decay=0.5).fit(*toy_log(), n_items=4)
    # recent = [3, 1] (1 most recent): 0.5 * row3 + 1.0 * row1 -> item 0: 1.5, item 2: 2.5
    ids, scores = cv.candidates(np.array([3, 1]), k=3)
    np.testing.assert_array_equal(ids, [2, 0, -1])
    np.testing.assert_allclose(scores, [2.5, 1.5, 0.0])
    ids, scores = cv.candidates(np.array([3, 1]), k=3, exclude=np.array([2]))
    np.testing.assert_array_equal(ids, [0, -1, -1])
    np.testing.assert_allclose(scores, [1.5, 0.0, 0.0])
    ids, _ = cv.candidates(np.array([99]), k=2)  # unknown (newer) item: nothing
    np.testing.assert_array_equal(ids, [-1, -1])


def test_covisitation_save_load_and_errors(tmp_path) -> None:
    cv = CoVisitation(window=2, top_n=2, min_count=1, normalize=True).fit(*toy_log(), n_items=4)
    cv.save(tmp_path / "covisit.npz")
    assert [f.name for f in tmp_path.iterdir()] == ["covisit.npz"]
    loaded = CoVisitation.load(tmp_path / "covisit.npz")
    assert (loaded.window, loaded.top_n, loaded.normalize) == (2, 2, True)
    np.testing.assert_array_equal(loaded.table_.toarray(), cv.table_.toarray())
    for a, b in zip(cv.candidates(np.array([0, 2]), 3), loaded.candidates(np.array([0, 2]), 3),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="CoVisitation.save"):
        CoVisitation.load(tmp_path / "nothing.npz")
    users, items, times = toy_log()
    with pytest.raises(ValueError, match="outside"):
        CoVisitation().fit(users, items, times, n_items=3)
    with pytest.raises(ValueError, match="timestamps"):
        CoVisitation().fit(users, items, times[:-1], n_items=4)
    with pytest.raises(ValueError, match="window"):
        CoVisitation(window=0).fit(users, items, times, n_items=4)
    for k in (0, -2):
        with pytest.raises(ValueError, match="k must be"):
            cv.neighbours(np.array([0]), k)
        with pytest.raises(ValueError, match="k must be"):
            cv.candidates(np.array([0]), k)
    with pytest.raises(RuntimeError, match="fit"):
        CoVisitation().neighbours(np.array([0]), 1)


def test_covisitation_matches_loop_oracle_on_random_log() -> None:
    rng = np.random.default_rng(11)
    n, n_items, window = 400, 30, 3
    users, items = rng.integers(0, 20, n), rng.integers(0, n_items, n)
    times = rng.integers(0, 50, n)  # ties: input order decides
    cv = CoVisitation(window=window, top_n=n_items, min_count=1).fit(users, items, times,
                                                                     n_items=n_items)
    want = np.zeros((n_items, n_items))
    order = np.lexsort((times, users))
    for u in np.unique(users):  # test oracle: loops are fine here
        seq = items[order][users[order] == u]
        for i in range(len(seq)):
            for j in range(i + 1, min(i + window + 1, len(seq))):
                if seq[i] != seq[j]:
                    want[seq[i], seq[j]] += 1
                    want[seq[j], seq[i]] += 1
    np.testing.assert_array_equal(cv.table_.toarray(), want)
