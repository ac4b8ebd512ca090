"""NCF family (GMF, MLP, NeuMF): conformance, vectorised scoring, NeuMF pre-training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamrec.eval.protocol import evaluate
from streamrec.models.neural import ncf
from streamrec.models.neural.ncf import GMF, MLP, NeuMF
from streamrec.models.zoo import create
from streamrec.testing.conformance import check_recommender, tiny_interactions
from tests._paths import ML100K, needs_ml100k

SMALL = {"factors": 8, "epochs": 3, "batch_size": 256, "patience": 0}
SMALL_MLP = {**SMALL, "layers": (16, 8)}


@pytest.mark.parametrize(("cls", "params"), [
    (GMF, SMALL),
    (MLP, SMALL_MLP),
    (NeuMF, SMALL_MLP),
    (NeuMF, {**SMALL_MLP, "pretrain": True, "dropout": 0.1, "loss": "bpr"}),
])
def test_ncf_models_pass_conformance(cls, params):
    check_recommender(lambda: cls(**params))


def test_registered_names():
    assert type(create("gmf")) is GMF
    assert type(create("mlp")) is MLP
    assert type(create("neumf")) is NeuMF


def test_score_all_matches_pairwise_logits_whatever_the_chunk(monkeypatch):
    train, _ = tiny_interactions()
    model = NeuMF(**SMALL_MLP, dropout=0.2).fit(train, rng=0)
    users = torch.arange(train.n_users)
    items = torch.arange(train.n_items).expand(train.n_users, -1)  # (U, I)
    with torch.no_grad():
        pairwise = model.module_.logits(users, items).numpy()  # (U, I)
    full = model.score(np.arange(train.n_users))
    np.testing.assert_allclose(full, pairwise, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(ncf, "_CHUNK_ELEMENTS", 1)  # one user per chunk
    np.testing.assert_allclose(model.score(np.arange(train.n_users)), full, rtol=1e-5,
                               atol=1e-6)


def test_init_from_pretrained_is_the_alpha_weighted_combination():
    train, _ = tiny_interactions()
    gmf = GMF(**SMALL).fit(train, rng=1)
    mlp = MLP(**SMALL_MLP).fit(train, rng=2)
    neumf = NeuMF(**SMALL_MLP, alpha=0.3)
    neumf.n_users_, neumf.n_items_ = train.n_users, train.n_items
    module = ncf._init_from_pretrained(neumf._build_module(), gmf.module_, mlp.module_, 0.3)
    users = np.arange(train.n_users)
    with torch.no_grad():
        got = module.eval().score_all(torch.from_numpy(users)).numpy()
    want = 0.3 * gmf.score(users) + 0.7 * mlp.score(users)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pretrained_fit_starts_neumf_from_its_branches(monkeypatch):
    """Inside ``fit(pretrain=True)`` the freshly built NeuMF scores as α·GMF + (1-α)·MLP."""
    train, _ = tiny_interactions()
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    build = NeuMF._build_module

    def spy(self):
        module = build(self)
        gmf, mlp = self._init_branches
        users = torch.arange(self.n_users_)
        with torch.no_grad():
            got = module.eval().score_all(users).numpy()
            want = (0.5 * gmf.eval().score_all(users) + 0.5 * mlp.eval().score_all(users))
        seen.append((got, want.numpy()))
        return module

    monkeypatch.setattr(NeuMF, "_build_module", spy)
    model = NeuMF(**SMALL_MLP, pretrain=True).fit(train, rng=0)
    assert len(seen) == 1
    np.testing.assert_allclose(*seen[0], rtol=1e-5, atol=1e-5)
    assert set(model.pretrain_summary_) == {"gmf", "mlp"}
    assert model._init_branches is None  # the branch models are not kept after fit


def test_ncf_learns_the_tiny_groups():
    train, test = tiny_interactions()
    pop = evaluate(create("pop").fit(train), test, exclude=train, ks=(10,)).means()["ndcg@10"]
    for model in (GMF(factors=8, epochs=40, lr=0.01, patience=0),
                  NeuMF(factors=8, layers=(16, 8), epochs=40, lr=0.01, patience=0)):
        model.fit(train, rng=0)
        assert evaluate(model, test, exclude=train, ks=(10,)).means()["ndcg@10"] > pop


@pytest.mark.parametrize("bad", [{"loss": "mse"}, {"negatives": 0}, {"layers": ()},
                                 {"dropout": 1.0}, {"sampler": "nope"}, {"alpha": 1.5}])
def test_bad_hyperparameters_are_rejected(bad):
    train, _ = tiny_interactions()
    with pytest.raises(ValueError, match="neumf"):
        NeuMF(**{**SMALL_MLP, **bad}).fit(train, rng=0)




@pytest.mark.slow
@needs_ml100k
def test_neumf_on_ml100k_beats_recbole(prepared_split):
    from streamrec.data.interactions import Interactions

    sp = prepared_split(f"recbole:{ML100K}")[1]
    model = NeuMF().fit(sp.train, valid=sp.valid, rng=0)
    seen = Interactions.concat([sp.train, sp.valid])
    ndcg = evaluate(model, sp.test, exclude=seen, ks=(10,), metrics=("ndcg",)).means()
    assert ndcg["ndcg@10"] >= 0.118  # RecBole NeuMF: 0.1162 on the same split
