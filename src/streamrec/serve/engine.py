"""The recommendation engine behind the service: retrieve -> rank -> policy, on live state.

:class:`Models` is one consistent set of registry versions (retrieval, ranker, session,
catalog) loaded from disk (:mod:`streamrec.serve.loaders`); :class:`Engine` holds the current :class:`Models` and the online
state (:class:`~streamrec.serve.features.FeatureState` plus the users' folded-in vectors)
and answers requests. A promotion builds a new :class:`Models` off to the side and swaps
one reference (:meth:`Engine.swap`), so requests in flight finish on the old set and none
fails. Events reach the state through :meth:`Engine.apply_events` (the queue consumer).

Stages of :meth:`Engine.recommend`:

1. **retrieve** — ANN over the item vectors with the user's (folded-in) vector, the
   co-visitation neighbours of the user's recent items, the popular items of the last
   7 days and the new items (content vectors); each candidate keeps its first
   :class:`Source`.
2. **rank** — the 20 StreamRec features of every candidate at request time (plus the ids
   and click history) -> the CTR model's click probability.
3. **policy** — drop seen items, cap items per category, reserve exploration slots for new
   items (:mod:`streamrec.serve.policy`).

Users with no vector and no history (cold start) skip the ranker's personal signals only
in what the features say; with no candidates from the personal sources they get the
popular items, or the popular items of the onboarding genres they chose.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from streamrec.retrieval.ann import ReadWriteLock
from streamrec.serve.features import HOUR, POSITIVE_EVENTS
from streamrec.serve.layout import CatalogLayout
from streamrec.serve.loaders import ENTRY_LOADERS, Models, load_entry, load_models
from streamrec.serve.policy import PolicyConfig, apply_policy
from streamrec.serve.ranker import SlateEncoder

if TYPE_CHECKING:
    from streamrec.models.als import ImplicitALS

__all__ = ["ENTRY_LOADERS", "Engine", "EngineConfig", "Models", "Source", "UnknownIdError",
           "load_entry", "load_models"]

DAY = 86_400


class Source(IntEnum):
    """Where a candidate came from (the response's ``source``, in lower case)."""

    ANN = 0  # the index's nearest items to the user's vector
    COVISIT = 1  # co-visitation neighbours of the user's recent items
    POPULAR = 2  # the most played items of the last 7 days
    NEW = 3  # new items (released or added within new_item_days), the exploration pool
    ONBOARDING = 4  # the popular items of the genres a cold-start user chose


_SOURCE_LABELS = tuple(s.name.lower() for s in Source)


@dataclass(frozen=True)
class _User:
    """What a request knows of its user."""

    row: int  # -1: unknown to the catalog
    vec: np.ndarray | None  # retrieval vector (trained or folded in), None: cold
    recent: np.ndarray  # latest positive item rows, oldest first
    seen: np.ndarray  # item rows already consumed (never recommended again)

    @property
    def cold(self) -> bool:
        """No vector and no history: only the popular and new items know anything."""
        return self.vec is None and len(self.recent) == 0


class UnknownIdError(LookupError):
    """An id the catalog does not know (the service answers 404/422 with this message)."""


@dataclass(frozen=True)
class EngineConfig:
    """Candidate counts and policy of :meth:`Engine.recommend`.

    Attributes
    ----------
    n_ann, n_covisit, n_popular, n_new : int
        Candidates from each source (before the union; about 200 after it, the batch the
        ranker's latency target is set for).
    recent_for_covisit : int
        How many of the user's latest items seed the co-visitation candidates.
    new_item_days : int
        Items released (or added) less than this many days ago are "new" (exploration).
    blend : float
        Order by ``(1 - blend) * percentile(click probability) + blend *
        percentile(user . item vector)`` within the candidates (0: the ranker alone; users
        without a vector always get the ranker alone). The click model predicts clicks on
        impressions, the retrieval model what users play: the mix serves both. The
        default 0.5 was chosen on a validation time cut of the synthetic world
        (``benchmarks/serving_quality.py``).
    policy : PolicyConfig
    """

    n_ann: int = 100
    n_covisit: int = 50
    n_popular: int = 50
    n_new: int = 20
    blend: float = 0.5
    recent_for_covisit: int = 10
    new_item_days: int = 7
    policy: PolicyConfig = field(default_factory=PolicyConfig)


class _Vectors:
    """Per-user vectors of one factor model: trained rows, replaced by fold-ins."""

    def __init__(self, model: ImplicitALS) -> None:
        self.model = model
        self.folded: dict[int, np.ndarray] = {}

    def get(self, row: int) -> np.ndarray | None:
        v = self.folded.get(row)
        if v is not None:
            return v
        if 0 <= row < self.model.n_users_:
            return self.model.user_factors_[row]
        return None

    def fold(self, rows: np.ndarray, histories: sp.csr_array) -> None:
        """Refit the vectors of ``rows`` from their histories (items beyond the model's are
        ignored); users with an empty history keep what they had."""
        x = sp.csr_array(histories[:, : self.model.n_items_])
        has = np.diff(x.indptr) > 0
        if not has.any():
            return
        vecs = self.model.fold_in(x[np.flatnonzero(has)])
        self.folded.update(zip(rows[has].tolist(), vecs, strict=True))


class Engine:
    """Models + online state + the three request paths.

    Parameters
    ----------
    models : Models
    config : EngineConfig
    clock : callable() -> int, optional
        Request time (s); defaults to the wall clock.
    """

    def __init__(self, models: Models, config: EngineConfig | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.config = config or EngineConfig()
        self.clock = clock or (lambda: int(time.time()))
        # requests read under the shared side; events, new items and swaps write under the
        # exclusive side, so a request never sees a half-applied batch
        self.lock = ReadWriteLock()
        catalog = CatalogLayout(models.catalog_dir)
        self.state = catalog.read_state()
        self.items = catalog.read_items()
        self.sessions: OrderedDict[int, list[int]] = OrderedDict()
        self.max_sessions = 100_000
        self.added_at: dict[int, int] = {}  # item row -> time added through the service
        self.live_users: set[int] = set()  # rows with positive events since start-up
        self._lists_at: int | None = None  # when popular/fresh were last computed
        self._install(models)

    # ------------------------------------------------------------------ models
    def _install(self, models: Models) -> None:
        n = len(self.state.items)
        vecs = models.item_vectors
        if len(vecs) < n:  # items added after training: their content vectors
            extra = models.projector.transform(self.items[len(vecs):n])
            models.item_vectors = np.concatenate([vecs, extra.astype(np.float32)])
            models.index.add(extra.astype(np.float32), np.arange(len(vecs), n))
        self.models = models
        self.slate = SlateEncoder(models.encoder, self.state.items.ids)
        self.user_vecs = _Vectors(models.retrieval)
        self.mf_vecs = _Vectors(models.mf)
        self._lists_at = None  # recompute the lists (and their vectors) for these models
        self._refresh_popular()

    def swap(self, models: Models) -> dict[str, str]:
        """Install a newly loaded model set; returns the previous versions."""
        with self.lock.write():
            old = self.models.versions
            self._install(models)
            # users whose history changed live get fresh vectors from the new models
            self._fold(np.fromiter(self.live_users, np.int64, len(self.live_users)))
            return old

    @property
    def versions(self) -> dict[str, str]:
        return dict(self.models.versions)

    def _refresh_popular(self, now: int | None = None) -> None:
        """The popular list (plays in the last 7 days; all-time plays break ties) and the new
        items (released or added within ``new_item_days``), recomputed at most once a
        second."""
        now = self.clock() if now is None else now
        if self._lists_at == now:
            return
        st = self.state
        n = len(st.items)
        recent = st.refresh_trending(now)  # plays in the last 168 hours
        score = recent + 1e-6 * st.i_play[:n]
        self.popular = _top(score, max(self.config.n_popular, 1000))
        rows = np.arange(n)
        fresh = rows[self._is_new(rows, now)]
        vecs = self.models.item_vectors
        fresh = fresh[fresh < len(vecs)]
        self.fresh = (fresh, vecs[fresh])  # one assignment: rows and vectors agree
        self._lists_at = now

    def refresh_if_stale(self, now: int | None = None) -> bool:
        """Recompute the popular/new lists and the trending snapshot when a new hour has
        begun or they are over a minute old; returns whether it did.

        The service's consumer thread calls this while the queue is idle, and a request
        calls it before reading the new items: without events nothing else refreshes them,
        and after an hour boundary every request would compute its candidates' trending
        scores from the hourly buckets (about 1 ms each at 200K items)."""
        now = self.clock() if now is None else now
        at = self._lists_at
        if at is not None and now // HOUR == at // HOUR and now - at <= 60:
            return False
        self._refresh_popular(now)
        return True

    # ------------------------------------------------------------------ lookups
    def item_row(self, item_id: int) -> int:
        row = self.state.items.row(item_id)
        if row < 0:
            raise UnknownIdError(f"unknown item_id {item_id}: not in the catalog")
        return row

    def unknown_items(self, item_ids: np.ndarray | list[int]) -> np.ndarray:
        """The ids of ``item_ids`` the catalog does not know (ids outside int64 included)."""
        try:
            ids = np.asarray(item_ids, dtype=np.int64)
        except OverflowError as exc:
            raise UnknownIdError(f"item ids must fit in 64-bit integers: {exc}") from exc
        return np.unique(ids[self.state.items.lookup(ids) < 0])

    def _is_new(self, rows: np.ndarray, now: int) -> np.ndarray:
        rel = self.state.i_release[rows]
        new = (rel > now - self.config.new_item_days * DAY) & (rel <= now)
        if self.added_at:
            new |= np.isin(rows, np.fromiter(self.added_at, np.int64, len(self.added_at)))
        return new

    # ------------------------------------------------------------------ recommend
    def recommend(self, user_id: int, k: int = 10, *, platform: str | None = None,
                  genres: list[str] | None = None, now: int | None = None,
                  timings: dict[str, float] | None = None) -> dict[str, Any]:
        """Top-``k`` items for a user (see the module docstring for the stages).

        Returns
        -------
        dict with ``items`` (list of {item_id, score (the blended order), p_click, source,
        stage}), ``versions`` and ``cold_start`` (no vector and no history).
        """
        with self.lock.read():
            return self._recommend(user_id, k, platform=platform, genres=genres, now=now,
                                   timings=timings)

    def _recommend(self, user_id: int, k: int, *, platform: str | None,
                   genres: list[str] | None, now: int | None,
                   timings: dict[str, float] | None) -> dict[str, Any]:
        m = self.models  # one consistent set for the whole request
        now = self.clock() if now is None else now
        t0 = time.perf_counter()
        user = self._user(user_id)
        codes = self._genre_codes(genres)
        rows, sources = self._candidates(m, user, codes, now)
        t1 = time.perf_counter()
        if len(rows) == 0:
            return {"items": [], "versions": dict(m.versions), "cold_start": user.cold}
        probs = self._rank(m, user.row, user_id, rows, now, platform)
        t2 = time.perf_counter()
        final = self._blend(m, rows, probs, user.vec)
        order = np.argsort(-final, kind="stable")
        picked, explored = self._select(rows[order], k, codes, user.seen, now)
        pos = order[picked]
        t3 = time.perf_counter()
        if timings is not None:
            timings.update(retrieve=t1 - t0, rank=t2 - t1, policy=t3 - t2)
        ids = self.state.items.ids[rows[pos]]
        out = [{"item_id": int(i), "score": float(f), "p_click": float(p),
                "source": _SOURCE_LABELS[s], "stage": "explore" if e else "ranked"}
               for i, f, p, s, e in zip(ids.tolist(), final[pos].tolist(), probs[pos].tolist(),
                                        sources[pos].tolist(), explored.tolist(), strict=True)]
        return {"items": out, "versions": dict(m.versions), "cold_start": user.cold}

    def _user(self, user_id: int) -> _User:
        st = self.state
        row = st.users.row(user_id)
        return _User(row, self.user_vecs.get(row) if row >= 0 else None, st.history(row),
                     st.seen(row))

    def _genre_codes(self, genres: list[str] | None) -> list[int]:
        """Category codes of the chosen onboarding genres the catalog knows (empty: not an
        onboarding request)."""
        cats = self.state.categories
        return [cats.index(g) + 1 for g in genres if g in cats] if genres else []

    def _candidates(self, m: Models, user: _User, codes: list[int], now: int,
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate rows not seen by the user, sorted, and the :class:`Source` of each
        (the first source, in the order gathered, that found it)."""
        cfg = self.config
        parts: list[tuple[np.ndarray, Source]] = []
        if user.vec is not None:
            # over-fetch for the seen items filtered out below (bounded for heavy users)
            n = cfg.n_ann + min(len(user.seen), 4 * cfg.n_ann)
            ids, _ = m.index.search(user.vec[None, :], n)
            parts.append((ids[0][ids[0] >= 0], Source.ANN))
        if len(user.recent):
            ids, _ = m.covisit.candidates(user.recent[-cfg.recent_for_covisit:], cfg.n_covisit)
            ids = np.asarray(ids).reshape(-1)
            parts.append((ids[ids >= 0], Source.COVISIT))
        pop = self.popular  # read before the refresh below, like the new items after it
        if codes:
            pop = pop[np.isin(self.state.i_cat[pop], codes)]
        parts.append((pop[: cfg.n_popular], Source.ONBOARDING if codes else Source.POPULAR))
        self.refresh_if_stale(now)  # no events lately: new items still age out
        new = self._new_candidates(user.vec, codes)
        if len(new):
            parts.append((new, Source.NEW))
        rows = np.concatenate([ids for ids, _ in parts]).astype(np.int64)
        sources = np.concatenate([np.full(len(ids), int(src)) for ids, src in parts])
        rows, first = np.unique(rows, return_index=True)
        sources = sources[first]
        keep = ~np.isin(rows, user.seen)
        return rows[keep], sources[keep]

    def _new_candidates(self, vec: np.ndarray | None, codes: list[int]) -> np.ndarray:
        """Up to ``n_new`` new items: the closest to the user's vector first (in list order
        without one), of the chosen genres only for an onboarding request."""
        n_new = self.config.n_new
        fresh, fresh_vecs = self.fresh
        if codes:
            keep = np.isin(self.state.i_cat[fresh], codes)
            fresh, fresh_vecs = fresh[keep], fresh_vecs[keep]
        if len(fresh) and vec is not None:  # argpartition to the n_new best, then sort
            s = fresh_vecs @ vec
            if len(s) > n_new:
                part = np.argpartition(-s, n_new - 1)[:n_new]
                fresh, s = fresh[part], s[part]
            fresh = fresh[np.argsort(-s, kind="stable")]
        return fresh[:n_new]

    def _blend(self, m: Models, rows: np.ndarray, probs: np.ndarray, vec: np.ndarray | None,
               ) -> np.ndarray:
        """The order score: the click probabilities, mixed with the retrieval model's
        preference (``EngineConfig.blend``) for users with a vector."""
        blend = self.config.blend
        if blend > 0 and vec is not None:
            affinity = m.item_vectors[rows] @ vec
            return (1.0 - blend) * _percentile(probs) + blend * _percentile(affinity)
        return probs

    def _select(self, ranked: np.ndarray, k: int, codes: list[int], seen: np.ndarray,
                now: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`apply_policy` on the ranked rows: positions picked, and which explore."""
        policy = self.config.policy
        if codes and policy.max_per_category:  # a few chosen genres fill the list
            policy = replace(policy, max_per_category=max(
                policy.max_per_category, -(-k // len(codes))))
        return apply_policy(ranked, self.state.i_cat[ranked].astype(np.int64),
                            self._is_new(ranked, now), k, policy, seen=seen)

    def _rank(self, m: Models, row: int, user_id: int, rows: np.ndarray, now: int,
              platform: str | None) -> np.ndarray:
        mf_vec = self.mf_vecs.get(row) if row >= 0 else None
        collab = np.zeros(len(rows), np.float64)
        if mf_vec is not None:
            ok = rows < m.mf.n_items_
            collab[ok] = m.mf.item_factors_[rows[ok]] @ mf_vec
        feats = self.state.feature_arrays(row, rows, now, platform=platform,
                                          collaborative=collab)
        data = self.slate.encode(feats, rows, user_id)
        return np.asarray(m.ranker.predict_proba(data), np.float64)

    # ------------------------------------------------------------------ other routes
    def similar(self, item_id: int, k: int = 10) -> dict[str, Any]:
        """Items whose vectors are closest to ``item_id``'s (cosine; itself excluded)."""
        with self.lock.read():
            return self._similar(item_id, k)

    def _similar(self, item_id: int, k: int) -> dict[str, Any]:
        m = self.models
        row = self.item_row(item_id)
        vec = m.item_vectors[row]
        if len(m.item_vectors) <= 50_000:  # exact cosine over the catalog
            ids = np.delete(np.arange(len(m.item_vectors)), row)
        else:  # inner-product candidates from the index, re-ranked by cosine
            ids, _ = m.index.search(vec[None, :], 20 * k + 1, exclude=[np.array([row])])
            ids = ids[0][ids[0] >= 0]
        cand = m.item_vectors[ids]
        norms = np.linalg.norm(cand, axis=1) * max(float(np.linalg.norm(vec)), 1e-12)
        cos = (cand @ vec) / np.maximum(norms, 1e-12)
        top = np.argsort(-cos, kind="stable")[:k]
        out = [{"item_id": int(i), "score": float(s)}
               for i, s in zip(self.state.items.ids[ids[top]].tolist(), cos[top].tolist(),
                               strict=True)]
        return {"items": out, "versions": {"retrieval": m.versions["retrieval"]}}

    def session_next(self, session_id: int, k: int = 10, *, items: list[int] | None = None,
                     ) -> dict[str, Any]:
        """Next items of a live session: its items so far (given, or the events the service
        received for ``session_id``) through the sequence model."""
        with self.lock.read():
            return self._session_next(session_id, k, items)

    def _session_next(self, session_id: int, k: int, items: list[int] | None,
                      ) -> dict[str, Any]:
        m = self.models
        if items:
            missing = self.unknown_items(items)
            if len(missing):
                raise UnknownIdError(f"unknown item_id(s) {missing[:10].tolist()}")
            seq = self.state.items.lookup(np.asarray(items)).tolist()
        else:
            seq = list(self.sessions.get(session_id, []))
        seq_model = [r for r in seq if r < m.session.n_items_]
        if seq_model:
            scores = m.session.score_sequences([seq_model])[0].astype(np.float64)
            source = "session"
        else:  # an empty session: popular items
            scores = np.zeros(m.session.n_items_)
            scores[self.popular[self.popular < len(scores)]] = np.linspace(
                1.0, 0.5, int((self.popular < len(scores)).sum()))
            source = "popular"
        scores[np.asarray(seq, np.int64)[np.asarray(seq) < len(scores)]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        top = top[np.isfinite(scores[top])]
        out = [{"item_id": int(i), "score": float(s)}
               for i, s in zip(self.state.items.ids[top].tolist(), scores[top].tolist(),
                               strict=True)]
        return {"items": out, "source": source, "session_length": len(seq),
                "versions": {"session": m.versions["session"]}}

    # ------------------------------------------------------------------ writes
    def apply_events(self, events: pl.DataFrame) -> int:
        """Fold consumed events into the state, then refresh what derives from it (see
        :meth:`apply_state` and :meth:`refresh_derived`); returns the number applied."""
        n = self.apply_state(events)
        if n:
            self.refresh_derived(events)
        return n

    def apply_state(self, events: pl.DataFrame) -> int:
        """Fold consumed events into the counters and histories; returns the number applied.

        All or nothing: the batch is checked and looked up before the first counter moves,
        so a failure leaves the state as it was and the batch can be applied again."""
        with self.lock.write():  # requests never see half of a batch's counters
            return self.state.apply(events)

    def refresh_derived(self, events: pl.DataFrame) -> None:
        """Re-fold the touched users' vectors, extend the live sessions and refresh the
        popular lists after :meth:`apply_state`. A retry after a failure re-folds the same
        users; a live session may then list the batch's items twice."""
        # this replaces whole values (a user's vector, a session list, the popular
        # lists): requests read the old or the new one, so it runs outside the exclusive
        # lock; a swap meanwhile refolds every live user with its own models
        pos = events.filter(pl.col("event").is_in(list(POSITIVE_EVENTS)))
        touched = np.unique(self.state.users.lookup(pos["user_id"].to_numpy()))
        touched = touched[touched >= 0]
        self.live_users.update(touched.tolist())
        self._fold(touched)
        self._update_sessions(pos)
        self._refresh_popular()

    def _fold(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        st = self.state
        n_items = len(st.items)
        base = st.base_seen
        hist = _histories(rows, base, st.recent, n_items)
        self.user_vecs.fold(rows, hist)
        clicks = _histories(rows, self.models.base_clicks, st.clicked, n_items)
        self.mf_vecs.fold(rows, clicks)

    def _update_sessions(self, pos: pl.DataFrame) -> None:
        pos = pos.filter(pl.col("session_id").is_not_null()).sort("timestamp")
        if not pos.height:
            return
        rows = self.state.items.lookup(pos["item_id"].to_numpy())
        grouped = (pl.DataFrame({"s": pos["session_id"], "r": rows})
                   .group_by("s", maintain_order=True).agg("r"))
        for s, r in grouped.iter_rows():  # per session of the batch, not per event
            cur = self.sessions.pop(s, [])
            self.sessions[s] = (cur + r)[-50:]
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)

    def add_items(self, items: pl.DataFrame, *, now: int | None = None) -> np.ndarray:
        """Add (or update) catalog items; new ones get vectors from their content and are
        retrievable at once. ``now`` is when they were added (default: the clock; a replay
        passes the logged time). Returns their rows."""
        items = items.unique("item_id", keep="last", maintain_order=True)
        with self.lock.write():
            m = self.models
            n_before = len(self.state.items)
            rows = self.state.upsert_items(items)
            new = rows >= n_before
            if new.any():
                added = items.filter(pl.Series(new))
                self.items = pl.concat([self.items, added.select(
                    [c for c in added.columns if c in self.items.columns])],
                    how="diagonal_relaxed")
                vecs = m.projector.transform(added).astype(np.float32)
                m.item_vectors = np.concatenate([m.item_vectors, vecs])
                m.index.add(vecs, rows[new])
                self.slate.update_items(self.state.items.ids)
                now = self.clock() if now is None else now
                self.added_at.update(dict.fromkeys(rows[new].tolist(), now))
                self._lists_at = None  # the new items join the exploration pool now
                self._refresh_popular(now)
            return rows


def _top(score: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` largest scores, best first, ties by index: the first ``m`` of a
    stable ``argsort(-score)`` without sorting everything (a partition, then the few)."""
    if m >= len(score):
        return np.argsort(-score, kind="stable")
    thr = np.partition(score, len(score) - m)[len(score) - m]  # the m-th largest
    cand = np.flatnonzero(score >= thr)
    return cand[np.argsort(-score[cand], kind="stable")][:m]


def _percentile(x: np.ndarray) -> np.ndarray:
    """Rank of each value among ``x`` scaled to [0, 1] (ties broken by position), (n,)."""
    n = len(x)
    out = np.empty(n, np.float64)
    out[np.argsort(x, kind="stable")] = np.arange(n) / max(n - 1, 1)
    return out


def _histories(rows: np.ndarray, base: sp.csr_array, live: np.ndarray, n_items: int,
               ) -> sp.csr_array:
    """(len(rows), n_items) 0/1 csr: each user's base items plus live history items."""
    inside = np.flatnonzero(rows < base.shape[0])
    sub = base[rows[inside]]  # the base rows of the users that have one
    r_base = inside[np.repeat(np.arange(len(inside)), np.diff(sub.indptr))]
    lv = live[rows]
    r_live, c = np.nonzero(lv >= 0)
    r_all = np.concatenate([r_base, r_live])
    c_all = np.concatenate([sub.indices, lv[r_live, c]]).astype(np.int64)
    out = sp.csr_array((np.ones(len(r_all), np.float32), (r_all, c_all)),
                       shape=(len(rows), n_items))
    out.sum_duplicates()
    out.data[:] = 1.0
    return out
