"""iALS / BPR adapters over implicit, and biased MF for ratings."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.eval.protocol import evaluate
from streamrec.models import create
from streamrec.testing import tiny_interactions


def _low_rank_ratings(seed: int = 0, n_users: int = 200, n_items: int = 120, rank: int = 3,
                      density: float = 0.3, noise: float = 0.1):
    rng = np.random.default_rng(seed)
    p, q = rng.normal(0, 1, (n_users, rank)), rng.normal(0, 1, (n_items, rank))
    bu, bi = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    clean = 3.0 + bu[users] + bi[items] + np.einsum("nf,nf->n", p[users], q[items])
    ratings = clean + rng.normal(0, noise, len(users))
    test = rng.random(len(users)) < 0.2
    mk = lambda m: Interactions.from_arrays(users[m], items[m], values=ratings[m],  # noqa: E731
                                            n_users=n_users, n_items=n_items)
    return mk(~test), mk(test)


@pytest.mark.parametrize("name", ["ials", "bpr"])
def test_factor_models_beat_popularity_and_are_seeded(name):
    train, test = tiny_interactions(0)
    params = ({"factors": 4, "iterations": 10, "regularization": 1.0, "alpha": 1.0}  # 4 groups
              if name == "ials" else {"factors": 8, "iterations": 60, "learning_rate": 0.05})
    model = create(name, **params).fit(train, rng=1)
    again = create(name, **params).fit(train, rng=1)
    other = create(name, **params).fit(train, rng=2)
    users = np.arange(train.n_users)
    assert np.array_equal(model.score(users), again.score(users))
    assert not np.array_equal(model.score(users), other.score(users))
    ndcg = evaluate(model, test, exclude=train, ks=(10,)).means()["ndcg@10"]
    rand = create("pop").fit(train)  # popularity is the floor a factor model must clear here
    floor = evaluate(rand, test, exclude=train, ks=(10,)).means()["ndcg@10"]
    assert ndcg > floor


def test_ials_fold_in_recovers_trained_user_vectors():
    train, _ = tiny_interactions(0)
    model = create("ials", factors=8, iterations=15, regularization=0.1).fit(train, rng=0)
    x = sp.csr_array(train.to_csr())
    vecs = model.fold_in(x[:10])
    trained = model.user_factors_[:10]
    cos = np.sum(vecs * trained, 1) / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(trained, axis=1))
    assert cos.min() > 0.9
    items, scores = model.recommend_for_history(x[:3], k=5)
    assert items.shape == (3, 5) and np.all(np.diff(scores, axis=1) <= 0)
    assert not np.any(x[:3].toarray()[np.arange(3)[:, None], items])  # history excluded
    with pytest.raises(ValueError, match="columns"):
        model.fold_in(sp.csr_array((1, train.n_items + 1)))


def test_cold_users_score_zero_for_factor_models():
    train, _ = tiny_interactions(0)
    model = create("ials", factors=4, iterations=3).fit(train, rng=0)
    assert np.all(model.score(np.array([train.n_users + 5])) == 0.0)


def test_biased_mf_recovers_low_rank_ratings():
    train, test = _low_rank_ratings()
    model = create("biased_mf", factors=3, reg=0.01, iterations=25).fit(train, rng=0)
    res = model.evaluate_ratings(test)
    baseline = float(np.sqrt(np.mean((test.values - train.values.mean()) ** 2)))
    assert res["rmse"] < 0.35 * baseline
    assert res["rmse"] < 0.5  # noise 0.1; sparse observations leave some estimation error
    # predict agrees with score; cold pairs fall back to the biases
    pred = model.predict(test.users[:50], test.items[:50])
    full = model.score(test.users[:50])
    assert np.allclose(pred, full[np.arange(50), test.items[:50]], atol=1e-5)
    cold = model.predict(np.array([train.n_users + 1]), np.array([0]))
    assert cold[0] == pytest.approx(model.mu_ + model.item_bias_[0], abs=1e-5)
    with pytest.raises(ValueError, match="differ"):
        model.predict(np.array([0, 1]), np.array([0]))


def test_bpr_early_stopping_keeps_the_best_validated_factors():
    train, test = tiny_interactions(0)
    params = {"factors": 8, "learning_rate": 0.05, "iterations": 200, "eval_every": 10,
              "patience": 2}
    model = create("bpr", **params).fit(train, valid=test, rng=0)
    again = create("bpr", **params).fit(train, valid=test, rng=0)
    assert np.array_equal(model.item_factors_, again.item_factors_)
    assert model.best_iteration_ % 10 == 0 and model.best_iteration_ < 200
    # the first checkpoint (10 iterations, same seeds) is one the early-stopped fit compared
    first = create("bpr", **{**params, "iterations": 10, "patience": 0}).fit(train, valid=test,
                                                                            rng=0)
    assert first.best_iteration_ == 10
    from streamrec.metrics.full_ranking import ranking_ndcg

    def valid_ndcg(m):
        return ranking_ndcg(m.score, test, n_items=m.n_items_, exclude=train)

    assert valid_ndcg(model) >= valid_ndcg(first)


def test_ials_confidence_is_one_plus_alpha_r():
    from streamrec.factorization import confidence_matrix

    inter = Interactions.from_arrays(np.array([0, 0, 1]), np.array([0, 1, 1]),
                                     values=np.array([1.0, 3.0, 2.0]), n_users=2, n_items=2)
    lin = confidence_matrix(inter, binary=False, scheme="linear", alpha=2.0, eps=1.0).toarray()
    assert np.allclose(lin, [[3.0, 7.0], [0.0, 5.0]])  # 1 + 2r where observed
    binary = confidence_matrix(inter, binary=True, scheme="linear", alpha=2.0, eps=1.0).toarray()
    assert np.allclose(binary, [[3.0, 3.0], [0.0, 3.0]])
    log = confidence_matrix(inter, binary=False, scheme="log", alpha=1.0, eps=1.0).toarray()
    assert np.allclose(log[0], 1.0 + np.log1p([1.0, 3.0]))


def test_implicit_als_defaults_are_the_ials_models():
    import inspect

    from streamrec.factorization import implicit_als
    from streamrec.models.als import ImplicitALS

    sig = inspect.signature(implicit_als).parameters
    assert ImplicitALS().get_params() == {k: sig[k].default for k in ImplicitALS.param_names()}


def test_bpr_sampler_correction_adds_log_counts_to_the_item_bias():
    train, _ = tiny_interactions(0)
    params = {"factors": 8, "iterations": 20, "learning_rate": 0.05}
    raw = create("bpr", **params, sampler_correction=0.0).fit(train, rng=3)
    corrected = create("bpr", **params, sampler_correction=1.0).fit(train, rng=3)
    counts = np.bincount(train.items, minlength=train.n_items)  # binary pairs: one each
    # same seed, same training: only the bias column differs, by log n_i (0 for unseen)
    assert np.array_equal(raw.item_factors_[:, :-1], corrected.item_factors_[:, :-1])
    assert np.array_equal(raw.user_factors_, corrected.user_factors_)
    assert np.allclose(corrected.item_factors_[:, -1] - raw.item_factors_[:, -1],
                       np.log(np.maximum(counts, 1)), atol=1e-5)
    assert np.all(raw.user_factors_[:, -1] == 1.0)  # the bias enters every score
    with pytest.raises(ValueError, match="sampler_correction"):
        create("bpr", sampler_correction=-1.0).fit(train, rng=0)
