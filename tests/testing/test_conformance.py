"""Every registered model passes the shipped conformance suites, each behaviour its own test
(models x checks, ranking and click models); the suites catch bad models."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from streamrec.data.interactions import Interactions
from streamrec.models import available, create
from streamrec.models.ease import EASE
from streamrec.models.itemknn import ItemKNN
from streamrec.models.neural.trainer import seeded
from streamrec.models.popularity import Popularity
from streamrec.testing import (
    RECOMMENDER_CHECKS,
    RecommenderSuite,
    check_all,
    check_recommender,
    conformance_params,
    recommender_checks,
    tiny_interactions,
)
from streamrec.testing.ctr_conformance import (
    CTR_CHECKS,
    CTRSuite,
    ctr_checks,
    ctr_conformance_params,
    tiny_ctr_data,
)


def _cases(names: list[str], checks: Callable[[str], list[str]]) -> list:
    return [pytest.param(name, check, id=f"{name}-{check}")
            for name in names for check in checks(name)]


@pytest.fixture(scope="module")
def suites():
    """One suite per model (fitted once, on first need), shared by that model's checks."""
    cache: dict[tuple[str, str], RecommenderSuite | CTRSuite] = {}
    train, ctr_data = tiny_interactions()[0], tiny_ctr_data()

    def get(kind: str, name: str) -> RecommenderSuite | CTRSuite:
        if (kind, name) not in cache:
            if kind == "ctr":
                cache[kind, name] = CTRSuite(
                    lambda: create(name, kind="ctr", **ctr_conformance_params(name)),
                    ctr_data, name)
            else:
                cache[kind, name] = RecommenderSuite(
                    lambda: create(name, **conformance_params(name)), train)
        return cache[kind, name]

    return get


@pytest.mark.parametrize(("name", "check"), _cases(available(), recommender_checks))
def test_registered_model_conforms(suites, name, check):
    suites("ranking", name).check(check)


@pytest.mark.parametrize(("name", "check"), _cases(available("ctr"), ctr_checks))
def test_registered_ctr_model_conforms(suites, name, check):
    with seeded(0):  # dropout outside fit draws from torch's generator: keep it fixed
        try:
            suites("ctr", name).check(check)
        except ImportError as exc:
            pytest.skip(f"{name} needs an optional extra that is not installed: {exc}")


def test_the_checks_cover_the_suites():
    assert recommender_checks("ease") == [c for c in RECOMMENDER_CHECKS if c != "score_sequences"]
    assert recommender_checks("sasrec") == list(RECOMMENDER_CHECKS)
    assert ctr_checks("logistic") == [c for c in CTR_CHECKS if c != "same seed"]
    assert ctr_checks("mlp") == list(CTR_CHECKS)


def test_one_check_at_a_time_reports_each_failure():
    suite = RecommenderSuite(_Float64Pop)
    with pytest.raises(AssertionError, match="'score dtype'"):
        suite.check("score")
    with pytest.raises(AssertionError, match="'score dtype'"):  # needs the scores too
        suite.check("recommend")
    suite.check("fit validates input")  # independent checks still pass
    suite.check("fit")
    with pytest.raises(KeyError, match="unknown check"):
        suite.check("nope")


def test_a_failed_fit_fails_every_check_that_needs_it():
    suite = RecommenderSuite(_NoSelf)
    for check in ("fit", "score", "save/load"):
        with pytest.raises(AssertionError, match="'fit returns self'"):
            suite.check(check)


@pytest.mark.parametrize("factory", [
    lambda: Popularity(recency_half_life_days=7.0),
    lambda: ItemKNN(k=5, shrink=0.0, binary=False, weighting="bm25"),
    lambda: ItemKNN(k=50, weighting="tfidf", normalize=False),
    lambda: EASE(lam=100.0, binary=False),
], ids=["pop-recency", "itemknn-bm25", "itemknn-tfidf-raw", "ease-values"])
def test_classical_variants_conform(factory):
    check_recommender(factory)


def test_check_all_on_classical_models():
    check_all(["pop", "itemknn", "ease"])


def test_conformance_params_default_empty():
    assert conformance_params("no-such-model") == {}
    params = conformance_params("ease")
    params["lam"] = -1  # a copy: the table is not changed
    assert conformance_params("ease")["lam"] > 0


def test_tiny_interactions_shape_and_split():
    train, test = tiny_interactions(0)
    assert train.shape == test.shape == (60, 40)
    assert 400 < len(train) < 900 and len(test) == 120
    assert set(np.unique(train.values)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    pairs = lambda x: set(zip(x.users.tolist(), x.items.tolist(), strict=True))  # noqa: E731
    assert not pairs(train) & pairs(test)
    assert len(pairs(train)) == len(train)
    # test is each user's latest events
    last_train = np.full(60, -1, np.int64)
    np.maximum.at(last_train, train.users, train.timestamps)
    first_test = np.full(60, np.iinfo(np.int64).max)
    np.minimum.at(first_test, test.users, test.timestamps)
    assert (last_train <= first_test).all()
    again = tiny_interactions(0)[0]
    np.testing.assert_array_equal(again.items, train.items)
    assert not np.array_equal(tiny_interactions(1)[0].items, train.items)


# ---------------------------------------------------------------------------- broken models
class _Float64Pop(Popularity):
    name = ""  # unregistered: load() must find this class, not Popularity

    def score(self, users, items=None):
        return super().score(users, items).astype(np.float64)


class _IgnoresItems(Popularity):
    name = ""

    def score(self, users, items=None):
        return super().score(users)


class _ForgetsOnLoad(Popularity):
    name = ""

    def _set_state(self, state):
        super()._set_state(state)
        self.popularity_ = np.zeros_like(self.popularity_)


class _Random(Popularity):
    name = ""

    def fit(self, train: Interactions, *, valid=None, rng=None):
        super().fit(train)
        self.popularity_ = np.random.default_rng().random(self.n_items_).astype(np.float32)
        return self


class _NoSelf(Popularity):
    name = ""

    def fit(self, train, *, valid=None, rng=None):
        super().fit(train)


class _FalseSessions(Popularity):
    name = ""
    scores_sessions = False  # but it has score_sequences


@pytest.mark.parametrize(("cls", "check"), [
    (_Float64Pop, "score dtype"),
    (_IgnoresItems, "score(users, items)"),
    (_ForgetsOnLoad, "save/load"),
    (_Random, "same seed"),
    (_NoSelf, "fit returns self"),
    (_FalseSessions, "capabilities"),
])
def test_suite_catches_broken_models(cls, check):
    with pytest.raises(AssertionError, match=rf"{cls.__name__}.*'{re.escape(check)}'"):
        check_recommender(cls)


def test_check_all_reports_every_failure(monkeypatch):
    import streamrec.testing.conformance as conf

    monkeypatch.setattr(conf, "create", lambda name, **kw: _Float64Pop())
    with pytest.raises(AssertionError, match="(?s)pop:.*ease:"):
        check_all(["pop", "ease"])
