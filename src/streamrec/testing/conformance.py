"""The conformance suite every registered :class:`~streamrec.models.base.Recommender` passes.

Runs in about a second per model on :func:`tiny_interactions`::

    from streamrec.testing import check_recommender, conformance_params
    from streamrec.models import create

    check_recommender(lambda: create("ease", **conformance_params("ease")))

Each failed check raises ``AssertionError`` naming the model and the check.
:func:`check_recommender` stops at the first failure; a test suite can run each check on its
own (:data:`RECOMMENDER_CHECKS`, :class:`RecommenderSuite`), as ``tests/testing/test_conformance.py``
does, so that every failing behaviour of every model is reported.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.data.interactions import Interactions
from streamrec.models.base import Recommender
from streamrec.models.capabilities import ItemVectors
from streamrec.models.zoo import ModelSpec, available, create
from streamrec.testing._suite import Suite

__all__ = [
    "CONFORMANCE_PARAMS",
    "RECOMMENDER_CHECKS",
    "RecommenderSuite",
    "check_all",
    "check_recommender",
    "conformance_params",
    "recommender_checks",
    "tiny_interactions",
]

#: Small/fast hyperparameters per registry name, used by the conformance tests so that every
#: model runs in about a second on tiny data (e.g. few factors and iterations). Models not
#: listed run with their defaults. Add an entry when a model's defaults are too slow, e.g.
#: ``"ials": {"factors": 8, "iterations": 3}`` (use the model's own parameter names).
CONFORMANCE_PARAMS: dict[str, dict[str, Any]] = {
    "itemknn": {"k": 10},
    "ease": {"lam": 10.0},
    "bprmf": {"factors": 8, "epochs": 5, "batch_size": 64, "lr": 0.01},
    "gmf": {"factors": 8, "epochs": 3, "batch_size": 256},
    "mlp": {"factors": 8, "layers": (16, 8), "epochs": 3, "batch_size": 256},
    "neumf": {"factors": 8, "layers": (16, 8), "epochs": 3, "batch_size": 256},
    "multvae": {"hidden": 32, "latent": 8, "epochs": 4, "batch_size": 32, "lr": 0.01},
    "multdae": {"hidden": 32, "latent": 8, "epochs": 4, "batch_size": 32, "lr": 0.01},
    "cdae": {"hidden": 16, "epochs": 4, "batch_size": 32, "lr": 0.01},
    "two_tower": {"factors": 8, "epochs": 3, "batch_size": 64},
    "neural_mf": {"embed": 8, "hidden": (16,), "epochs": 5, "batch_size": 128},
    "lstm_attention": {"embed": 8, "hidden": 16, "attn": 8, "max_len": 8, "epochs": 3,
                       "batch_size": 16},
    "gru4rec": {"embed": 8, "hidden": 16, "max_len": 8, "epochs": 3, "batch_size": 16},
    "sasrec": {"dim": 8, "max_len": 8, "epochs": 3, "batch_size": 16},
}

_N_USERS, _N_ITEMS, _N_GROUPS = 60, 40, 4
_DAY = 86_400
_T0 = 1_600_000_000  # 2020-09-13, seconds


def conformance_params(name: str) -> dict[str, Any]:
    """Hyperparameters for running model ``name`` in the conformance suite (default ``{}``)."""
    return dict(CONFORMANCE_PARAMS.get(name, {}))


def tiny_interactions(seed: int = 0) -> tuple[Interactions, Interactions]:
    """A small structured implicit/explicit data set, split per user by time.

    60 users in 4 taste groups, 40 items in 4 genres with a popularity skew; each user has
    8-16 distinct items, mostly from their group's genre, rated 1-5 (higher in genre), at
    increasing timestamps over 60 days. Each user's latest 2 interactions are the test part.

    Parameters
    ----------
    seed : int

    Returns
    -------
    train, test : Interactions
        Both in the same index spaces (60 users x 40 items); no (user, item) pair repeats.
    """
    gen = np.random.default_rng(seed)
    group = np.arange(_N_USERS) % _N_GROUPS  # (U,)
    genre = np.arange(_N_ITEMS) % _N_GROUPS  # (I,)
    popularity = -0.08 * np.arange(_N_ITEMS)  # (I,) earlier items more popular
    affinity = np.where(group[:, None] == genre[None, :], 2.5, 0.0)  # (U, I)
    logits = affinity + popularity[None, :] + gen.gumbel(size=(_N_USERS, _N_ITEMS))
    n_per_user = gen.integers(8, 17, size=_N_USERS)  # (U,)
    rank = np.argsort(np.argsort(-logits, axis=1), axis=1)  # (U, I) 0 = most wanted
    u, i = np.nonzero(rank < n_per_user[:, None])  # Gumbel top-n: a sample without repeats
    order = np.argsort(rank[u, i] + gen.random(len(u)), kind="stable")  # wanted first...
    t = np.empty(len(u), dtype=np.int64)
    # ...in time order: each user's interactions get increasing random times over 60 days
    t[order] = np.sort(_T0 + gen.integers(0, 60 * _DAY, size=len(u)))
    in_genre = group[u] == genre[i]
    ratings = np.clip(np.rint(3.0 + 1.2 * in_genre + gen.normal(0.0, 0.8, len(u))), 1, 5)
    full = Interactions(u, i, t, ratings.astype(np.float32), n_users=_N_USERS, n_items=_N_ITEMS)
    srt = full.sort_by_user_time()
    counts = srt.user_counts()
    pos_from_end = np.repeat(np.cumsum(counts), counts) - np.arange(len(srt)) - 1
    return srt.take(pos_from_end >= 2), srt.take(pos_from_end < 2)


# ---------------------------------------------------------------------------- checks
class RecommenderSuite(Suite):
    """The conformance checks of the recommender built by ``factory``, on ``train``."""

    BASE = Recommender
    CHECKS = {
        "fit validates input": "check_validation",
        "fit": "check_fit",
        "score": "check_score",
        "score(users, items)": "check_items_subset",
        "cold users": "check_cold_users",
        "recommend": "check_recommend",
        "recommend batch_size": "check_batch_size",
        "save/load": "check_save_load",
        "same seed": "check_same_seed",
        "score_sequences": "check_sequences",
        "capabilities": "check_capabilities",
    }

    def __init__(self, factory: Callable[[], Recommender], train: Interactions | None = None,
                 name: str = "") -> None:
        super().__init__(factory, name)
        self.train = tiny_interactions()[0] if train is None else train
        self.users = np.arange(self.train.n_users, dtype=np.int64)
        self._scores: np.ndarray | None = None

    def applicable(self) -> list[str]:
        """Every check; ``score_sequences`` only for models declaring ``scores_sessions``."""
        sessions = self.fresh().scores_sessions
        return [c for c in self.CHECKS if c != "score_sequences" or sessions]

    # ------------------------------------------------------------------ helpers
    def close(self, a: np.ndarray, b: np.ndarray, check: str, what: str) -> None:
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=False):
            why = (f"max abs difference {np.abs(a - b).max()}" if a.shape == b.shape
                   else f"shapes {a.shape} vs {b.shape}")
            raise self.fail(check, f"{what} ({why})")

    def fit(self, model: Recommender) -> Recommender:
        """``model.fit(train, rng=0)``; models declaring ``uses_item_categories`` also get
        the tiny data's genres (item index modulo 4)."""
        spec = ModelSpec.of(model.name, model.kind, type(model))
        extra = spec.fit_kwargs(item_categories=np.arange(self.train.n_items) % _N_GROUPS)
        return model.fit(self.train, rng=0, **extra)

    def check_fitted_state(self, model: Recommender) -> None:
        train = self.train
        for attr in ("n_users_", "n_items_"):
            self.expect(hasattr(model, attr), "fitted state", f"fit did not set {attr}")
        self.expect(model.n_items_ == train.n_items and model.n_users_ == train.n_users,
                    "fitted state", f"n_users_/n_items_ = {model.n_users_}/{model.n_items_}, "
                    f"train has {train.n_users}/{train.n_items}")

    @property
    def scores(self) -> np.ndarray:
        """``score`` of every train user, checked once (shape, dtype, finite values)."""
        if self._scores is None:
            self._scores = self.guard("score shape", self._checked_scores)
        return self._scores

    def _checked_scores(self) -> np.ndarray:
        model, users = self.fitted, self.users
        s = model.score(users)
        self.expect(isinstance(s, np.ndarray), "score type", f"score returned {type(s).__name__}")
        self.expect(s.shape == (len(users), model.n_items_), "score shape",
                    f"score(users) has shape {s.shape}, expected {(len(users), model.n_items_)}")
        self.expect(s.dtype == np.float32, "score dtype", f"score returned {s.dtype}, not float32")
        self.expect(bool(np.isfinite(s).all()), "score finite",
                    f"{int((~np.isfinite(s)).sum())} non-finite scores")
        return s

    # ------------------------------------------------------------------ the checks
    def check_validation(self) -> None:
        model = self.fresh()
        try:
            model.fit(self.train.to_csr(), rng=0)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        except Exception as exc:  # any other error means the input was not validated
            raise self.fail("fit validates input", f"fit(csr matrix) raised {exc!r}, "
                            "expected a TypeError naming the expected input") from exc
        raise self.fail("fit validates input",
                        "fit accepted a scipy matrix instead of Interactions (expected TypeError)")

    def check_fit(self) -> None:
        self.fitted  # noqa: B018  (fitting is the check: _fit_model)

    def check_score(self) -> None:
        self.scores  # noqa: B018  (computing them is the check: _checked_scores)

    def check_items_subset(self) -> None:
        model, users, scores = self.fitted, self.users, self.scores
        gen = np.random.default_rng(1)
        items = gen.permutation(model.n_items_)[: max(1, model.n_items_ // 3)]  # unsorted
        items = np.concatenate([items, items[:2]])  # with repeats
        sub = model.score(users, items)
        self.expect(sub.dtype == np.float32, "score(users, items)",
                    f"score(users, items) returned {sub.dtype}, not float32")
        self.close(sub, scores[:, items], "score(users, items)",
                   "score(users, items) differs from score(users)[:, items]")
        half = users[::2]
        self.close(model.score(half), scores[half], "score rows independent",
                   "a user's scores depend on which other users are scored with them")

    def check_cold_users(self) -> None:
        model = self.fitted
        cold = np.array([model.n_users_, model.n_users_ + 7], dtype=np.int64)
        s = model.score(cold)
        self.expect(s.shape == (2, model.n_items_) and s.dtype == np.float32, "cold users",
                    f"score(cold users) gave shape {s.shape} dtype {s.dtype}")
        self.expect(bool(np.isfinite(s).all()), "cold users", "cold users get non-finite scores")

    def check_recommend(self) -> None:
        model, users, scores = self.fitted, self.users, self.scores
        k = 5
        seen = self.train.to_csr()
        rec = model.recommend(users, k=k, exclude=seen)
        check = "recommend"
        self.expect(rec.items.shape == (len(users), k), check,
                    f"items shape {rec.items.shape}, expected {(len(users), k)}")
        n_unseen = model.n_items_ - np.diff(seen.indptr)  # (U,)
        want = np.minimum(k, n_unseen)
        got = (rec.items >= 0).sum(axis=1)
        self.expect(bool(np.array_equal(got, want)), check,
                    f"returned fewer than k items for users {users[got != want][:5].tolist()}")
        valid = rec.items >= 0
        srt = np.sort(np.where(valid, rec.items, -1 - np.arange(k)[None, :]), axis=1)
        self.expect(bool((np.diff(srt, axis=1) != 0).all()), check, "repeated items in a list")
        rows = np.broadcast_to(users[:, None], rec.items.shape)[valid]
        hit_seen = seen[rows, rec.items[valid]] != 0
        self.expect(not bool(np.any(hit_seen)), check, "recommended items the user has in train")
        self.expect(bool(np.all(rec.scores[:, 1:] <= rec.scores[:, :-1])), check,
                    "lists are not sorted by descending score")
        self.close(rec.scores[valid], scores[rows, rec.items[valid]], check,
                   "recommend's scores differ from score()")
        masked = scores.copy()
        masked[seen.nonzero()] = -np.inf
        kth = np.sort(masked, axis=1)[:, ::-1][np.arange(len(users)), np.maximum(want - 1, 0)]
        self.expect(bool(np.all(rec.scores[np.arange(len(users)), np.maximum(want - 1, 0)]
                                >= kth - 1e-6)), check, "the lists are not the top-k unseen items")

    def check_batch_size(self) -> None:
        model, users = self.fitted, self.users
        seen = self.train.to_csr()
        a = model.recommend(users, k=5, exclude=seen, batch_size=1)
        b = model.recommend(users, k=5, exclude=seen, batch_size=1000)
        self.expect(bool(np.array_equal(a.items, b.items)), "recommend batch_size",
                    "recommend(batch_size=1) and recommend(batch_size=1000) give different items")
        self.close(a.scores, b.scores, "recommend batch_size",
                   "recommend(batch_size=1) and recommend(batch_size=1000) give different scores")

    def check_save_load(self) -> None:
        model, scores = self.fitted, self.scores
        check = "save/load"
        with tempfile.TemporaryDirectory(prefix="streamrec-conformance-") as tmp:
            path = Path(tmp) / "model"
            model.save(path)
            manifest = json.loads((path / "manifest.json").read_text())
            self.expect(manifest.get("name") == model.name, check,
                        f"manifest name {manifest.get('name')!r}, model name {model.name!r}")
            try:
                with np.load(path / "arrays.npz", allow_pickle=False) as z:
                    for key in z.files:
                        np.asarray(z[key])  # loading each array is the check
            except ValueError as exc:
                raise self.fail(check, f"arrays.npz needs pickle: {exc}") from exc
            loaded = type(model).load(path)
            # registered models also load through the base class (the registry finds the class)
            also = Recommender.load(path) if model.name else loaded
        self.expect(type(loaded) is type(model) and type(also) is type(model), check,
                    f"load gave {type(loaded).__name__}/{type(also).__name__}, "
                    f"expected {type(model).__name__}")
        self.expect(loaded.get_params() == model.get_params(), check,
                    f"hyperparameters changed: {loaded.get_params()} != {model.get_params()}")
        again = loaded.score(self.users)
        self.expect(again.dtype == scores.dtype and bool(np.array_equal(again, scores)), check,
                    "the loaded model's scores differ from the saved model's")

    def check_sequences(self) -> None:
        """Sequence models: ``score(users)`` is ``score_sequences`` of their histories, and a
        live session given as a plain list scores like the same items in an array."""
        model: Any = self.fitted
        check = "score_sequences"
        if hasattr(model, "histories"):  # the models that keep per-user histories
            hist = model.histories(self.users)
            self.close(model.score_sequences(hist), self.scores, check,
                       "score_sequences(histories) differs from score(users)")
        session = [3, 1, 4, 1, 5][: max(1, min(5, model.n_items_))]
        as_list = model.score_sequences([session, []])
        padded = np.full((2, 8), -1, dtype=np.int64)
        padded[0, -len(session):] = session
        self.expect(as_list.shape == (2, model.n_items_) and as_list.dtype == np.float32,
                    check, f"score_sequences(list) gave shape {as_list.shape}")
        self.close(as_list, model.score_sequences(padded), check,
                   "a list session and the same padded array score differently")

    def check_same_seed(self) -> None:
        other = self.fit(self.fresh())
        self.expect(bool(np.array_equal(other.score(self.users), self.scores)), "same seed",
                    "two fits with rng=0 give different scores")

    def check_capabilities(self) -> None:
        """The declared capabilities hold: the flags match the methods and signatures, item
        vectors and attention weights have their shapes."""
        model: Any = self.fitted
        check = "capabilities"
        fit_params = inspect.signature(model.fit).parameters
        for flag, holds in (("scores_sessions", callable(getattr(model, "score_sequences", None))),
                            ("has_attention", callable(getattr(model, "attention", None))),
                            ("uses_side_features", "side" in fit_params),
                            ("uses_item_categories", "item_categories" in fit_params)):
            self.expect(getattr(model, flag) == holds, check,
                        f"{flag} is {getattr(model, flag)} but the model "
                        f"{'has' if holds else 'lacks'} what it declares")
        if isinstance(model, ItemVectors):
            v = model.item_vectors()
            self.expect(isinstance(v, np.ndarray) and v.ndim == 2 and len(v) == model.n_items_
                        and v.dtype == np.float32 and bool(np.isfinite(v).all()), check,
                        "item_vectors() is not a finite float32 array of shape (n_items, D)")
        if model.has_attention:
            hist = model.histories(self.users[:6])
            w = np.asarray(model.attention(hist))
            sums = w.sum(axis=1)
            self.expect(w.shape == hist.shape and bool(np.allclose(sums[sums > 0], 1.0,
                                                                   atol=1e-4)), check,
                        f"attention gave shape {w.shape} (histories {hist.shape}) or rows "
                        "that do not sum to 1")


def recommender_checks(name: str) -> list[str]:
    """The conformance checks that apply to registered model ``name``."""
    from streamrec.models.zoo import spec

    sessions = spec(name).scores_sessions
    return [c for c in RECOMMENDER_CHECKS if c != "score_sequences" or sessions]


#: every check name, in the order :func:`check_recommender` runs them
RECOMMENDER_CHECKS: tuple[str, ...] = tuple(RecommenderSuite.CHECKS)


def check_recommender(factory: Callable[[], Recommender], *,
                      train: Interactions | None = None) -> None:
    """Run every conformance check on the model built by ``factory``.

    Checks: fit rejects non-Interactions and returns ``self``; ``score`` has shape
    (U, n_items_), dtype float32, finite values, and agrees with ``score(users, items)``;
    cold users get finite scores; ``recommend`` returns ``k`` distinct unseen items sorted by
    score, the true top-k, independent of ``batch_size``; ``save``/``load`` (no pickle) gives
    identical scores; two fits with ``rng=0`` give identical scores; sequence models score
    live sessions; the declared capabilities hold.

    Parameters
    ----------
    factory : callable () -> Recommender
        Builds a fresh, unfitted model (called several times).
    train : Interactions, optional
        Default: the train part of :func:`tiny_interactions`.

    Raises
    ------
    AssertionError
        On the first failed check, naming the model and the check.
    """
    RecommenderSuite(factory, train).run_all()


def check_all(names: Iterable[str] | None = None) -> None:
    """Run :func:`check_recommender` on registered models (default: all of them).

    Raises
    ------
    AssertionError
        Listing every model that failed and why.
    """
    train = tiny_interactions()[0]
    failures: list[str] = []
    for name in available() if names is None else list(names):
        try:
            check_recommender(lambda n=name: create(n, **conformance_params(n)), train=train)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:  # a crash is a failure of that model, reported with the rest
            failures.append(f"{name}: raised {exc!r}")
    if failures:
        raise AssertionError("conformance failed for:\n" + "\n".join(failures))
