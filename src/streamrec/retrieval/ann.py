"""Nearest-neighbour retrieval over item vectors with faiss: exact for small catalogues, HNSW above.

:class:`VectorIndex` answers "the ``k`` items with the largest inner product with this query"
(stage 1 of the online service: the user vector is the query). Catalogues with fewer than
``exact_below`` items are searched exhaustively (``IndexFlatIP``: exact, about 2 ms per query at
200K x 64 on one core); larger ones use an HNSW graph (``IndexHNSWFlat``). Both sit inside an
``IndexIDMap2`` so that results are item labels (indices), not faiss row numbers, and the labels
are saved with the index.

Why HNSW for inner product runs on an L2 graph: an HNSW graph built with
``METRIC_INNER_PRODUCT`` is poorly connected on clustered data (inner product is not a metric:
a few large-norm items are everyone's neighbours). On 200K x 64 vectors in 200 clusters its
recall@200 stops at about 0.85 however large ``ef_search`` is. The index therefore uses the
standard reduction of maximum inner product search to nearest-neighbour search (Bachrach et al.,
RecSys 2014): every item gets one extra coordinate ``sqrt(R**2 - |x|**2)`` (``R``: 1.2 x the
largest norm at build time), queries get ``0``, so that ``|q - x|**2 = |q|**2 + R**2 - 2 q.x``
ranks items exactly as ``q.x`` does, and the graph is an ordinary L2 graph (recall@200 0.98 on
the same data). Scores are recomputed exactly as ``q.x`` from the stored vectors. Items added
later with a norm above ``R`` get ``0`` as extra coordinate: their scores are still exact but
the graph finds them less reliably (a warning is logged; rebuild to fix). With
``metric="cosine"`` the vectors are unit length and the graph is L2 directly.

Which graph wins depends on the data. When the item norms hardly vary (e.g. the load
benchmark's generated factors: norms 0.29-0.38, queries about 7 times longer), the reduction
puts every query far outside the sphere the items lie on and the L2 graph's greedy search
goes astray: recall@100 0.54 at ``ef_search`` 256, against 0.80 for an inner-product graph
on the same 200K x 64 vectors. ``graph="auto"`` (the default) therefore builds both graphs
when :meth:`VectorIndex.build` is given sample ``queries`` (user vectors) and keeps the one
with the higher recall@``recall_k`` on them against exact search (``graph_recall_`` records
both); without queries it builds the L2 reduction.

Concurrency: :meth:`VectorIndex.search` may be called from many request threads at once (faiss
releases the GIL while searching, so they run in parallel); :meth:`VectorIndex.add` (an admin
thread adding new items) waits until running searches are done and blocks new ones while it
writes (a writer-preferring readers-writer lock).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import faiss
import numpy as np

__all__ = ["ReadWriteLock", "VectorIndex"]

log = logging.getLogger(__name__)

_METRICS = ("ip", "cosine", "l2")
_GRAPHS = ("auto", "l2", "ip")
_INDEX_FILE = "index.faiss"
_PARAMS_FILE = "params.json"
_FORMAT = 1
_NORM_HEADROOM = 1.2  # R = this x the largest item norm at build (inner-product HNSW)


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class VectorIndex:
    """Top-k maximum inner product search over item vectors (faiss).

    Exact (``IndexFlatIP``) for catalogues smaller than ``exact_below`` items, HNSW
    (``IndexHNSWFlat`` over an L2 reduction of inner product, see the module docstring) from
    ``exact_below`` items up. The kind is chosen by :meth:`build` and kept by :meth:`add`
    (rebuild to switch).

    Parameters
    ----------
    metric : {"ip", "cosine", "l2"}
        ``"ip"``: score = inner product. ``"cosine"``: vectors and queries are L2-normalised
        first (zero vectors stay zero), score = cosine. ``"l2"``: score = minus the squared
        Euclidean distance. In every case a higher score is better.
    exact_below : int
        Catalogues with fewer items are searched exactly; ``0`` always builds HNSW.
    hnsw_m : int
        HNSW graph degree (links per node per layer; memory ~ ``n * hnsw_m * 8`` bytes).
    ef_construction : int
        HNSW candidate list size while inserting (build time vs graph quality).
    ef_search : int
        HNSW candidate list size while searching (faiss never returns fewer than ``k``
        results for it, but recall keeps rising with ``ef_search`` above ``k``). The default,
        256, gives recall@200 of about 0.98 at about 0.4 ms per single query (p50, exact
        search: 2 ms) on 200K x 64 clustered vectors, one thread (``benchmarks/ann_speed.py``).
    graph : {"auto", "l2", "ip"}
        The HNSW graph of ``metric="ip"``: ``"l2"`` the norm-augmented reduction, ``"ip"`` an
        inner-product graph, ``"auto"`` the one with the higher recall on the ``queries``
        passed to :meth:`build` (``"l2"`` when none are passed). Ignored by other metrics
        and by exact indexes.
    recall_k : int
        ``k`` of the recall that ``graph="auto"`` compares.

    Attributes
    ----------
    index_ : faiss.IndexIDMap2
        The faiss index (labels = item ids).
    is_exact_ : bool
    dim_ : int
        Item vector dimension ``d`` (the faiss index has ``d + 1`` for the L2 reduction).
    aug_norm_ : float or None
        ``R`` of the inner-product reduction; ``None`` unless the index is the L2 reduction.
    graph_ : str
        ``"exact"``, ``"l2"`` (an L2 graph: the reduction, or cosine/L2 metrics) or ``"ip"``.
    graph_recall_ : dict
        Recall@``recall_k`` of each graph on the build queries (``graph="auto"`` with
        queries), else empty.
    labels_sorted_ : ndarray of int64, shape (n,)
        The indexed labels, ascending.
    """

    def __init__(self, *, metric: str = "ip", exact_below: int = 50_000, hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 256, graph: str = "auto",
                 recall_k: int = 100) -> None:
        self.metric = metric
        self.exact_below = exact_below
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.graph = graph
        self.recall_k = recall_k
        self._lock = ReadWriteLock()

    # ------------------------------------------------------------------ building

    def build(self, vectors: np.ndarray, ids: np.ndarray | None = None, *,
              queries: np.ndarray | None = None) -> Self:
        """Index ``vectors``, replacing any previous content.

        Parameters
        ----------
        vectors : ndarray of float, shape (n, d)
            Item vectors; converted to C-contiguous float32. Must be finite.
        ids : ndarray of int, shape (n,), optional
            Label of each row (distinct, ``>= 0``); default ``arange(n)``.
        queries : ndarray of float, shape (q, d), optional
            Sample queries (e.g. a few hundred user vectors) on which ``graph="auto"``
            compares the two graphs of an inner-product HNSW index.

        Returns
        -------
        VectorIndex
            ``self``.
        """
        self._check_params()
        x = self._as_vectors(vectors, "build", None)
        n, d = x.shape
        if d == 0:
            raise ValueError("VectorIndex.build: vectors have 0 columns; pass shape (n, d), d >= 1")
        labels = np.arange(n, dtype=np.int64) if ids is None else self._as_ids(ids, n, "build")
        if ids is not None and len(np.unique(labels)) != n:
            raise ValueError("VectorIndex.build: ids contain duplicates; every item needs its "
                             "own label")
        exact = n < self.exact_below
        recalls: dict[str, float] = {}
        if exact:
            metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
            index, aug_norm, graph = faiss.IndexIDMap2(faiss.IndexFlat(d, metric)), None, "exact"
            if n:
                index.add_with_ids(x, labels)
        elif self.metric != "ip":
            index, aug_norm = self._hnsw(x, labels, "l2", None)
            graph = "l2"
        else:
            top = float(np.sqrt((x.astype(np.float64) ** 2).sum(axis=1).max())) if n else 0.0
            aug = _NORM_HEADROOM * top if top > 0 else 1.0
            graph = "l2" if self.graph == "auto" and queries is None else self.graph
            if graph != "auto":
                index, aug_norm = self._hnsw(x, labels, graph, aug)
            else:  # both graphs, scored against exact search on the sample queries
                q = self._as_vectors(queries, "build (queries)", d)
                k = max(1, min(self.recall_k, n))
                truth = _exact_top(x, labels, q, k)
                built = {g: self._hnsw(x, labels, g, aug) for g in ("l2", "ip")}
                for g, (idx, a) in built.items():
                    _, found = idx.search(_augment(q, a, query=True), k)  # (q, k) labels
                    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2)
                    recalls[g] = float(hits.mean())
                graph = "ip" if recalls["ip"] > recalls["l2"] else "l2"
                index, aug_norm = built[graph]
                log.info("VectorIndex.build: recall@%d on %d queries: L2 reduction %.3f, "
                         "inner-product graph %.3f; keeping %s", k, len(q), recalls["l2"],
                         recalls["ip"], graph)
        with self._lock.write():
            self.index_ = index
            self.is_exact_ = exact
            self.dim_ = d
            self.aug_norm_ = aug_norm
            self.graph_ = graph
            self.graph_recall_ = recalls
            self.labels_sorted_ = np.sort(labels)
        return self

    def _hnsw(self, x: np.ndarray, labels: np.ndarray, graph: str,
              aug: float | None) -> tuple[faiss.IndexIDMap2, float | None]:
        """An HNSW index over ``x``: an L2 graph (augmented by ``aug`` when given) or an
        inner-product graph (``graph="ip"``); returns it and its ``aug_norm``."""
        n, d = x.shape
        aug_norm = aug if graph == "l2" else None
        metric = faiss.METRIC_INNER_PRODUCT if graph == "ip" else faiss.METRIC_L2
        inner = faiss.IndexHNSWFlat(d + (aug_norm is not None), self.hnsw_m, metric)
        inner.hnsw.efConstruction = self.ef_construction
        inner.hnsw.efSearch = self.ef_search
        index = faiss.IndexIDMap2(inner)
        if n:
            index.add_with_ids(_augment(x, aug_norm), labels)
        return index, aug_norm

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add items; they are searchable as soon as this returns (exact and HNSW alike).

        Blocks new searches while it writes and waits for running ones to finish.

        Parameters
        ----------
        vectors : ndarray of float, shape (m, d)
        ids : ndarray of int, shape (m,)
            New labels: distinct, ``>= 0`` and not already in the index.
        """
        self._check_fitted("add")
        x = self._as_vectors(vectors, "add", self.dim_)
        labels = self._as_ids(ids, len(x), "add")
        if len(x) == 0:
            return
        if len(np.unique(labels)) != len(labels):
            raise ValueError("VectorIndex.add: ids contain duplicates")
        xa = _augment(x, self.aug_norm_)
        if self.aug_norm_ is not None:
            n_over = int((xa[:, -1] == 0).sum())
            if n_over:
                log.warning("VectorIndex.add: %d of %d new item(s) have a norm above the "
                            "build-time bound %.3g; HNSW finds them less reliably until the "
                            "index is rebuilt", n_over, len(x), self.aug_norm_)
        with self._lock.write():
            known = self.labels_sorted_
            if len(known):
                pos = np.searchsorted(known, labels).clip(max=len(known) - 1)
                clash = labels[known[pos] == labels]
                if len(clash):
                    raise ValueError(f"VectorIndex.add: {len(clash)} id(s) already indexed "
                                     f"(e.g. {clash[:5].tolist()}); ids must be new, rebuild "
                                     "to replace vectors")
            self.index_.add_with_ids(xa, labels)
            self.labels_sorted_ = np.sort(np.concatenate([known, labels]))

    # ------------------------------------------------------------------ searching

    def search(self, queries: np.ndarray, k: int, *,
               exclude: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items per query, best first.

        Parameters
        ----------
        queries : ndarray of float, shape (q, d) or (d,)
            One query vector per row (a 1-d array is one query).
        k : int
            Results per query, ``>= 1``.
        exclude : sequence of q int arrays, optional
            ``exclude[i]``: labels never returned for query ``i`` (e.g. items already seen).
            The search over-fetches ``k + max_i len(exclude[i])`` and filters.

        Returns
        -------
        ids : ndarray of int64, shape (q, k)
            Item labels, best first; ``-1`` pads rows with fewer than ``k`` results.
        scores : ndarray of float32, shape (q, k)
            Score of each result (see ``metric``); ``-inf`` where ``ids == -1``.
        """
        self._check_fitted("search")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
            raise ValueError(f"VectorIndex.search: k must be a positive int, got {k!r}")
        k = int(k)
        q = self._as_vectors(np.atleast_2d(queries), "search", self.dim_)
        n_q = len(q)
        excl = None
        if exclude is not None:
            if len(exclude) != n_q:
                raise ValueError(f"VectorIndex.search: exclude has {len(exclude)} entries for "
                                 f"{n_q} queries; pass one array per query")
            excl = [np.asarray(e, dtype=np.int64).ravel() for e in exclude]
            if not any(len(e) for e in excl):
                excl = None
        fetch = k + (max(len(e) for e in excl) if excl is not None else 0)
        # an L2 graph of "ip"/"cosine" scores by distance: rescore exactly; an IP graph and
        # exact indexes return the scores themselves
        rescore = self.graph_ == "l2" and self.metric != "l2"
        with self._lock.read():
            fetch = max(1, min(fetch, self.index_.ntotal))
            dist, ids = self.index_.search(_augment(q, self.aug_norm_, query=True), fetch)
            found = ids >= 0
            if rescore and found.any():  # exact q.x from the stored vectors (L2 graph)
                vecs = self.index_.reconstruct_batch(ids[found])[:, : self.dim_]
        if self.metric == "l2":
            scores = -dist
        elif rescore:
            scores = np.full(ids.shape, -np.inf, np.float32)
            if found.any():
                rows = np.nonzero(found)[0]
                scores[found] = np.einsum("nd,nd->n", vecs, q[rows])
        else:
            scores = dist
        scores = np.where(found, scores, -np.inf).astype(np.float32, copy=False)
        keep = found
        if excl is not None:
            keep = keep & ~_excluded(ids, excl)
        if rescore:  # the graph's order is the score order up to float error (and over-norm items)
            order = np.lexsort((ids, -scores, ~keep), axis=1)
        elif fetch == k and keep.all():
            return ids.astype(np.int64, copy=False), scores
        else:  # compact kept results to the front of each row, order kept (best first)
            order = np.argsort(~keep, axis=1, kind="stable")
        order = order[:, :k]
        kept = np.take_along_axis(keep, order, axis=1)
        out_ids = np.where(kept, np.take_along_axis(ids, order, axis=1), -1)
        out_scores = np.where(kept, np.take_along_axis(scores, order, axis=1), -np.inf)
        if out_ids.shape[1] < k:  # fewer items than k in the index
            pad = k - out_ids.shape[1]
            out_ids = np.pad(out_ids, ((0, 0), (0, pad)), constant_values=-1)
            out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return out_ids.astype(np.int64, copy=False), out_scores.astype(np.float32, copy=False)

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        """Number of indexed items (0 before :meth:`build`)."""
        return int(self.index_.ntotal) if hasattr(self, "index_") else 0

    @property
    def dim(self) -> int:
        """Item vector dimension ``d``."""
        self._check_fitted("dim")
        return int(self.dim_)

    @property
    def is_exact(self) -> bool:
        """Whether searches are exhaustive (``IndexFlat``) rather than HNSW."""
        self._check_fitted("is_exact")
        return bool(self.is_exact_)

    @property
    def ids(self) -> np.ndarray:
        """Indexed labels, ascending; ndarray of int64, shape (n,)."""
        self._check_fitted("ids")
        return self.labels_sorted_.copy()

    def set_ef_search(self, ef_search: int) -> None:
        """Change ``ef_search`` of a built HNSW index (no effect on an exact one)."""
        if int(ef_search) < 1:
            raise ValueError(f"VectorIndex.set_ef_search: must be >= 1, got {ef_search}")
        self.ef_search = int(ef_search)
        if hasattr(self, "index_") and not self.is_exact_:
            with self._lock.write():
                faiss.downcast_index(self.index_.index).hnsw.efSearch = self.ef_search

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write ``path/index.faiss`` (faiss binary format, labels included) and
        ``path/params.json`` (hyperparameters and layout). No pickle."""
        self._check_fitted("save")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            faiss.write_index(self.index_, str(path / _INDEX_FILE))
            params = {"format": _FORMAT, "class": type(self).__name__, "metric": self.metric,
                      "exact_below": self.exact_below, "hnsw_m": self.hnsw_m,
                      "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                      "is_exact": self.is_exact_, "dim": self.dim_, "aug_norm": self.aug_norm_,
                      "graph": self.graph, "recall_k": self.recall_k, "graph_": self.graph_,
                      "graph_recall": self.graph_recall_, "n_items": int(self.index_.ntotal)}
        (path / _PARAMS_FILE).write_text(json.dumps(params, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an index written by :meth:`save`."""
        path = Path(path)
        params_file, index_file = path / _PARAMS_FILE, path / _INDEX_FILE
        for f in (params_file, index_file):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: missing; expected a directory written by "
                                        "VectorIndex.save")
        params = json.loads(params_file.read_text())
        if params.get("class") != cls.__name__ or params.get("format") != _FORMAT:
            raise ValueError(f"{params_file}: not a VectorIndex save (format {_FORMAT}); got "
                             f"class={params.get('class')!r} format={params.get('format')!r}")
        self = cls(metric=params["metric"], exact_below=params["exact_below"],
                   hnsw_m=params["hnsw_m"], ef_construction=params["ef_construction"],
                   ef_search=params["ef_search"], graph=params.get("graph", "auto"),
                   recall_k=params.get("recall_k", 100))
        index = faiss.read_index(str(index_file))
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{index_file}: expected a faiss IndexIDMap2, got "
                             f"{type(index).__name__}")
        aug = params["aug_norm"]
        if int(index.ntotal) != params["n_items"] or int(index.d) != params["dim"] + (aug is not None):
            raise ValueError(f"{index_file}: holds {index.ntotal} x {index.d} vectors, which "
                             f"does not match {params_file}")
        if not params["is_exact"]:
            faiss.downcast_index(index.index).hnsw.efSearch = self.ef_search
        self.index_ = index
        self.is_exact_ = bool(params["is_exact"])
        self.dim_ = int(params["dim"])
        self.aug_norm_ = None if aug is None else float(aug)
        # saves before the graph choice: exact, or an L2 graph
        self.graph_ = params.get("graph_", "exact" if self.is_exact_ else "l2")
        self.graph_recall_ = dict(params.get("graph_recall", {}))
        self.labels_sorted_ = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
        return self

    # ------------------------------------------------------------------ helpers

    def _check_params(self) -> None:
        if self.metric not in _METRICS:
            raise ValueError(f"VectorIndex: metric must be one of {_METRICS}, got "
                             f"{self.metric!r}")
        if self.graph not in _GRAPHS:
            raise ValueError(f"VectorIndex: graph must be one of {_GRAPHS}, got {self.graph!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "recall_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"VectorIndex: {name} must be >= 1, got {getattr(self, name)}")
        if self.exact_below < 0:
            raise ValueError(f"VectorIndex: exact_below must be >= 0, got {self.exact_below}")

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "index_"):
            raise RuntimeError(f"VectorIndex.{what}: call build (or load) first")

    def _as_vectors(self, vectors: np.ndarray, what: str, dim: int | None) -> np.ndarray:
        x = np.asarray(vectors)
        if x.ndim != 2:
            raise ValueError(f"VectorIndex.{what}: vectors must be 2-d (n, d), got shape "
                             f"{x.shape}")
        if dim is not None and x.shape[1] != dim:
            raise ValueError(f"VectorIndex.{what}: vectors have {x.shape[1]} dims but the index "
                             f"has {dim}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
            raise ValueError(f"VectorIndex.{what}: {len(bad)} row(s) with NaN/inf (e.g. rows "
                             f"{bad[:5].tolist()}); fix or drop them")
        if self.metric == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        return x

    @staticmethod
    def _as_ids(ids: np.ndarray, n: int, what: str) -> np.ndarray:
        labels = np.asarray(ids)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"VectorIndex.{what}: ids must have shape ({n},) to match the "
                             f"vectors, got {labels.shape}")
        if len(labels) and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"VectorIndex.{what}: ids must be integers, got {labels.dtype}")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if len(labels) and labels.min() < 0:
            raise ValueError(f"VectorIndex.{what}: ids must be >= 0 (-1 marks a missing "
                             "result)")
        return labels


def _augment(x: np.ndarray, aug_norm: float | None, *, query: bool = False) -> np.ndarray:
    """Append the inner-product reduction coordinate: (n, d) -> (n, d + 1), or ``x`` unchanged.

    Items get ``sqrt(max(R**2 - |x|**2, 0))``, queries ``0``.
    """
    if aug_norm is None:
        return x
    if query:
        extra = np.zeros((len(x), 1), np.float32)
    else:
        sq = (x.astype(np.float64) ** 2).sum(axis=1)
        extra = np.sqrt(np.maximum(aug_norm**2 - sq, 0.0))[:, None].astype(np.float32)
    return np.ascontiguousarray(np.hstack([x, extra]), dtype=np.float32)


def _exact_top(x: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Labels of the ``k`` largest inner products of each query with ``x``, (q, k)."""
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    _, rows = flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return labels[rows]


def _excluded(ids: np.ndarray, exclude: list[np.ndarray]) -> np.ndarray:
    """Mask of ``ids[i, j] in exclude[i]``; shape of ``ids`` (q, f). Vectorised over queries."""
    n_q = len(ids)
    lens = np.fromiter((len(e) for e in exclude), np.int64, count=n_q)
    ex_rows = np.repeat(np.arange(n_q, dtype=np.int64), lens)
    ex_labels = np.concatenate(exclude)
    # dense ranks of the labels involved, so (row, label) pairs become one int64 key
    uniq, inv = np.unique(np.concatenate([ids.ravel(), ex_labels]), return_inverse=True)
    width = len(uniq)
    res_keys = np.repeat(np.arange(n_q, dtype=np.int64), ids.shape[1]) * width + inv[: ids.size]
    ex_keys = ex_rows * width + inv[ids.size:]
    return np.isin(res_keys, ex_keys).reshape(ids.shape)
