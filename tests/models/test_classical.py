"""Hand-checked tests of the classical models: popularity, ItemKNN, EASE."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import streamrec.models.itemknn as itemknn_mod
from streamrec.data.interactions import Interactions
from streamrec.models import Recommender, available, create, get_class
from streamrec.models.ease import EASE
from streamrec.models.itemknn import ItemKNN
from streamrec.models.popularity import Popularity

DAY = 86_400


def toy() -> Interactions:
    """4 users x 3 items: u0 {0,1}, u1 {0,1,2}, u2 {1,2}, u3 {0}."""
    users = [0, 0, 1, 1, 1, 2, 2, 3]
    items = [0, 1, 0, 1, 2, 1, 2, 0]
    return Interactions.from_arrays(users, items, n_users=4, n_items=3)


def random_inter(seed: int, n_users: int = 30, n_items: int = 12, density: float = 0.3) -> Interactions:
    gen = np.random.default_rng(seed)
    u, i = np.nonzero(gen.random((n_users, n_items)) < density)
    vals = gen.integers(1, 6, size=len(u)).astype(np.float32)
    return Interactions.from_arrays(u, i, values=vals, n_users=n_users, n_items=n_items)


def test_builtin_models_are_registered():
    assert {"pop", "itemknn", "ease"} <= set(available())
    assert get_class("pop") is Popularity
    assert get_class("itemknn") is ItemKNN
    assert get_class("ease") is EASE
    for cls in (Popularity, ItemKNN, EASE):
        assert cls.stochastic is False


# ---------------------------------------------------------------------------- popularity
def test_pop_counts_every_interaction():
    inter = Interactions.from_arrays([0, 1, 2, 0, 1, 2], [2, 2, 2, 0, 0, 1], n_users=3, n_items=4)
    model = Popularity().fit(inter)
    np.testing.assert_array_equal(model.score(np.array([0]))[0], [2, 1, 3, 0])
    s = model.score(np.array([0, 1, 2]))
    assert s.dtype == np.float32 and s.shape == (3, 4)
    assert (s == s[0]).all()


def test_pop_recency_half_life():
    # item 0 seen now, item 1 one half-life (10 days) earlier, item 2 twice that, twice
    ts = np.array([100 * DAY, 90 * DAY, 80 * DAY, 80 * DAY])
    inter = Interactions.from_arrays([0, 1, 2, 3], [0, 1, 2, 2], timestamps=ts, n_users=4, n_items=3)
    s = Popularity(recency_half_life_days=10.0).fit(inter).score(np.array([0]))[0]
    np.testing.assert_allclose(s, [1.0, 0.5, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match="recency_half_life_days"):
        Popularity(recency_half_life_days=0.0).fit(inter)


def test_pop_cold_users_and_item_subset():
    inter = Interactions.from_arrays([0, 1, 1], [1, 1, 2], n_users=2, n_items=3)
    model = Popularity().fit(inter)
    np.testing.assert_array_equal(model.score(np.array([5, 100])), [[0, 2, 1], [0, 2, 1]])
    np.testing.assert_array_equal(model.score(np.array([0]), np.array([2, 1])), [[1, 2]])
    rec = model.recommend(np.array([0, 9]), k=2)
    np.testing.assert_array_equal(rec.items, [[1, 2], [1, 2]])


# ---------------------------------------------------------------------------- ItemKNN
def test_itemknn_cosine_with_shrink_by_hand():
    # columns: i0 = (1,1,0,1), i1 = (1,1,1,0), i2 = (0,1,1,0)
    # dots: (0,1) = 2, (0,2) = 1, (1,2) = 2; norms sqrt(3), sqrt(3), sqrt(2); shrink 1
    model = ItemKNN(k=10, shrink=1.0).fit(toy())
    s01 = 2 / (3 + 1)
    s02 = 1 / (np.sqrt(6) + 1)
    s12 = 2 / (np.sqrt(6) + 1)
    expected = np.array([[0, s01, s02], [s01, 0, s12], [s02, s12, 0]])
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-6)
    # u3 has only item 0: scores are row 0 of S; u0 has items 0 and 1
    np.testing.assert_allclose(model.score(np.array([3]))[0], [0, s01, s02], rtol=1e-6)
    np.testing.assert_allclose(model.score(np.array([0]))[0], [s01, s01, s02 + s12], rtol=1e-6)


def test_itemknn_raw_cooccurrence_without_normalize():
    model = ItemKNN(k=10, normalize=False).fit(toy())
    np.testing.assert_allclose(model.similarity_.toarray(), [[0, 2, 1], [2, 0, 2], [1, 2, 0]])


def test_itemknn_keeps_top_k_neighbours_per_item():
    # k=1 on the toy: target 0 keeps i1 (0.5 > 0.29), target 1 keeps i2 (0.58 > 0.5),
    # target 2 keeps i1 (0.58 > 0.29)
    s = ItemKNN(k=1, shrink=1.0).fit(toy()).similarity_.toarray()
    assert (s != 0).sum(axis=0).tolist() == [1, 1, 1]
    assert s[1, 0] > 0 and s[2, 1] > 0 and s[1, 2] > 0


def dense_topk_similarity(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    dots = x.T @ x
    norms = np.sqrt(np.diag(dots))
    sim = dots / (np.outer(norms, norms) + shrink)
    np.fill_diagonal(sim, 0.0)
    out = np.zeros_like(sim)
    for j in range(sim.shape[1]):  # reference implementation: one column at a time
        top = np.argsort(-sim[:, j], kind="stable")[:k]
        out[top, j] = sim[top, j]
    return out


def test_itemknn_pruning_matches_dense_reference_and_blocks(monkeypatch):
    inter = random_inter(3, n_users=80, n_items=25, density=0.25)
    x = inter.to_csr().toarray().astype(np.float64)
    ref = dense_topk_similarity(x, k=4, shrink=5.0)
    one_block = ItemKNN(k=4, shrink=5.0).fit(inter)
    monkeypatch.setattr(itemknn_mod, "_BLOCK_ENTRIES", 25 * 3)  # blocks of 3 target items
    blocked = ItemKNN(k=4, shrink=5.0).fit(inter)
    # ties could pick different neighbours; random data at this density has none in the top-4
    np.testing.assert_allclose(one_block.similarity_.toarray(), ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(blocked.similarity_.toarray(), one_block.similarity_.toarray())
    assert ((one_block.similarity_.toarray() != 0).sum(axis=0) <= 4).all()


def test_itemknn_tfidf_is_cosine_of_weighted_matrix():
    inter = random_inter(5)
    x = inter.to_csr().toarray().astype(np.float64)
    idf = np.log(x.shape[1] / (1.0 + x.sum(axis=1)))
    w = np.sqrt(x) * np.maximum(idf, 0)[:, None]
    ref = dense_topk_similarity(w, k=x.shape[1], shrink=2.0)
    model = ItemKNN(k=100, shrink=2.0, weighting="tfidf").fit(inter)
    np.testing.assert_allclose(model.similarity_.toarray(), ref, rtol=1e-5, atol=1e-7)


def test_itemknn_bm25_by_formula():
    inter = random_inter(6)
    x = inter.to_csr().toarray().astype(np.float64)
    n_items = x.shape[1]
    k1, b = 1.2, 0.75
    idf = np.maximum(np.log(n_items) - np.log1p(x.sum(axis=1)), 0)  # per user
    item_len = x.sum(axis=0)
    norm = (1 - b) + b * item_len / item_len.mean()
    w = np.where(x > 0, x * (k1 + 1) / (k1 * norm[None, :] + x), 0) * idf[:, None]
    ref = dense_topk_similarity(w, k=n_items, shrink=0.0)
    model = ItemKNN(k=100, shrink=0.0, weighting="bm25").fit(inter)
    np.testing.assert_allclose(model.similarity_.toarray(), ref, rtol=1e-5, atol=1e-7)


def test_itemknn_binary_false_uses_values_to_score():
    inter = Interactions.from_arrays([0, 0, 1, 1], [0, 1, 0, 1], values=[5, 1, 2, 2],
                                     n_users=2, n_items=3)
    model = ItemKNN(k=5, shrink=0.0, binary=False).fit(inter)
    np.testing.assert_array_equal(model.X_.toarray(), [[5, 1, 0], [2, 2, 0]])
    s = model.similarity_.toarray()
    np.testing.assert_allclose(model.score(np.array([0]))[0], np.array([5, 1, 0]) @ s, rtol=1e-6)


def test_itemknn_rejects_bad_hyperparameters():
    for params in ({"k": 0}, {"shrink": -1.0}, {"weighting": "bm26"}):
        with pytest.raises(ValueError):
            ItemKNN(**params).fit(toy())


# ---------------------------------------------------------------------------- EASE
def test_ease_closed_form_matches_direct_inverse():
    inter = random_inter(7, n_users=40, n_items=10)
    lam = 3.0
    x = inter.to_csr().toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + lam * np.eye(10))
    b = np.eye(10) - p / np.diag(p)[None, :]
    model = EASE(lam=lam).fit(inter)
    assert model.B_.dtype == np.float32 and model.B_.shape == (10, 10)
    assert (np.diag(model.B_) == 0).all()
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.B_, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(40)), x @ b, rtol=1e-4, atol=1e-5)


def test_ease_solves_the_constrained_least_squares():
    # stationarity: (X^T X + lam I) B - X^T X = -diag(mu), i.e. zero off the diagonal
    inter = random_inter(8, n_users=30, n_items=8)
    x = inter.to_csr().toarray().astype(np.float64)
    lam = 5.0
    b = EASE(lam=lam).fit(inter).B_.astype(np.float64)
    grad = (x.T @ x + lam * np.eye(8)) @ b - x.T @ x
    off = grad - np.diag(np.diag(grad))
    assert np.abs(off).max() < 1e-3


def test_ease_binary_false_and_bad_lambda():
    inter = random_inter(9)
    x = inter.to_csr(values="values").toarray()
    model = EASE(lam=10.0, binary=False).fit(inter)
    np.testing.assert_array_equal(model.X_.toarray(), x)
    with pytest.raises(ValueError, match="lam"):
        EASE(lam=0.0).fit(inter)


# ---------------------------------------------------------------------------- shared
@pytest.mark.parametrize("name", ["itemknn", "ease"])
def test_cold_users_score_zero(name):
    model = create(name).fit(toy())
    s = model.score(np.array([4, 50, 0]))
    assert s.shape == (3, 3) and s.dtype == np.float32
    assert (s[:2] == 0).all() and (s[2] != 0).any()
    np.testing.assert_array_equal(model.score(np.array([0]))[0], s[2])


@pytest.mark.parametrize("name", ["pop", "itemknn", "ease"])
def test_score_rejects_bad_indices(name):
    model = create(name).fit(toy())
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        model.score(np.array([0]), np.array([3]))
    with pytest.raises(IndexError, match="negative user"):
        model.score(np.array([-1]))
    with pytest.raises(TypeError, match="Interactions"):
        create(name).fit(sp.csr_array(np.eye(3)))


@pytest.mark.parametrize("model", [
    Popularity(recency_half_life_days=30.0),
    ItemKNN(k=2, shrink=3.0, binary=False, weighting="bm25", normalize=True),
    EASE(lam=7.5, binary=False),
])
def test_save_load_roundtrip_non_default_params(model, tmp_path):
    inter = random_inter(10)
    model.fit(inter)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    users = np.arange(35)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


def test_unfitted_model_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        EASE().score(np.array([0]))
