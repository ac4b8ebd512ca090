"""Every registered model passes the shipped conformance suite; the suite catches bad models."""

from __future__ import annotations

import re

import numpy as np
import pytest

from streamrec.data.interactions import Interactions
from streamrec.models import available, create
from streamrec.models.ease import EASE
from streamrec.models.itemknn import ItemKNN
from streamrec.models.popularity import Popularity
from streamrec.testing import check_all, check_recommender, conformance_params, tiny_interactions


@pytest.mark.parametrize("name", available())
def test_registered_model_conforms(name):
    check_recommender(lambda: create(name, **conformance_params(name)))


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


@pytest.mark.parametrize(("cls", "check"), [
    (_Float64Pop, "score dtype"),
    (_IgnoresItems, "score(users, items)"),
    (_ForgetsOnLoad, "save/load"),
    (_Random, "same seed"),
    (_NoSelf, "fit returns self"),
])
def test_suite_catches_broken_models(cls, check):
    with pytest.raises(AssertionError, match=rf"{cls.__name__}.*'{re.escape(check)}'"):
        check_recommender(cls)


def test_check_all_reports_every_failure(monkeypatch):
    import streamrec.testing.conformance as conf

    monkeypatch.setattr(conf, "create", lambda name, **kw: _Float64Pop())
    with pytest.raises(AssertionError, match="(?s)pop:.*ease:"):
        check_all(["pop", "ease"])
