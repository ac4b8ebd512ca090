"""The two-tower model (ids only and with side features) and the embedding plot; the side
features themselves are tested in tests/features/test_side.py."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import streamrec.models.neural.two_tower  # noqa: F401  (registers "two_tower")
from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split
from streamrec.features.side import EntityFeatures, SideFeatures, side_features
from streamrec.models.neural.two_tower import TwoTower
from streamrec.testing.conformance import check_recommender, tiny_interactions
from tests._paths import ML100K, needs_ml100k

SMALL = {"factors": 8, "epochs": 3, "batch_size": 64, "device": "cpu"}


def _tiny_side(n_users: int = 60, n_items: int = 40) -> SideFeatures:
    """Hand-built side features for tiny_interactions (4 taste groups / genres)."""
    u, i = np.arange(n_users), np.arange(n_items)
    users = EntityFeatures(n_users, categorical=np.stack([u % 4 + 1, u % 3], axis=1),
                           cardinalities=(5, 3), cat_names=("group", "tier"),
                           numeric=(u / n_users - 0.5)[:, None], num_names=("age",))
    items = EntityFeatures(n_items, categorical=(i % 4 + 1)[:, None], cardinalities=(5,),
                           cat_names=("genre",), multi_hot=np.eye(3, dtype=np.float32)[i % 3],
                           multi_names=("tag=a", "tag=b", "tag=c"))
    return SideFeatures(users, items)


def _with_side(side: SideFeatures, **params) -> TwoTower:
    """A TwoTower whose fit gets ``side`` (conformance calls fit(train, rng=...))."""
    model = TwoTower(**params)
    model.fit = functools.partial(TwoTower.fit, model, side=side)  # type: ignore[method-assign]
    return model


# ---------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("loss", ["softmax", "sampled_softmax", "bpr"])
def test_conformance_ids_only(loss: str) -> None:
    check_recommender(lambda: TwoTower(loss=loss, negatives=4, **SMALL))


@pytest.mark.parametrize("params", [{}, {"hidden": (16,), "loss": "bpr"},
                                    {"use_ids": False, "normalize": False}])
def test_conformance_with_side_features(params: dict) -> None:
    side = _tiny_side()
    check_recommender(lambda: _with_side(side, **{**SMALL, **params}))


def test_side_features_change_the_model_and_survive_save_load(tmp_path: Path) -> None:
    train, _ = tiny_interactions()
    users = np.arange(train.n_users)
    plain = TwoTower(**SMALL).fit(train, rng=0)
    side = TwoTower(hidden=(16,), **SMALL).fit(train, rng=0, side=_tiny_side())
    assert side.user_cat_.shape == (60, 2) and side.item_multi_.shape == (40, 3)
    assert not np.allclose(plain.score(users), side.score(users))
    side.save(tmp_path / "m")
    loaded = TwoTower.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(users), side.score(users))
    assert loaded.user_fields_ == ("group", "tier", "age")
    # the exported towers give the scores (ANN export)
    np.testing.assert_allclose(loaded.user_vectors(users) @ loaded.item_vectors().T,
                               side.score(users), rtol=1e-4, atol=1e-4)
    assert loaded.item_vectors().shape == (40, 8) and loaded.item_vectors().dtype == np.float32
    cold = loaded.user_vectors(np.array([60, 99]))
    assert cold.shape == (2, 8) and not cold.any()


def test_use_side_false_ignores_side_and_bad_side_is_rejected() -> None:
    train, _ = tiny_interactions()
    users = np.arange(train.n_users)
    a = TwoTower(**SMALL).fit(train, rng=0)
    b = TwoTower(use_side=False, **SMALL).fit(train, rng=0, side=_tiny_side())
    np.testing.assert_array_equal(a.score(users), b.score(users))
    with pytest.raises(ValueError, match="user rows"):
        TwoTower(**SMALL).fit(train, rng=0, side=_tiny_side(n_users=10))
    with pytest.raises(TypeError, match="SideFeatures"):
        TwoTower(**SMALL).fit(train, rng=0, side={"users": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="use_ids=False"):
        TwoTower(use_ids=False, **SMALL).fit(train, rng=0)
    with pytest.raises(ValueError, match="loss"):
        TwoTower(loss="hinge", **SMALL).fit(train, rng=0)


def test_out_of_range_codes_map_to_unknown() -> None:
    train, _ = tiny_interactions()
    side = _tiny_side()
    bad = np.array(side.users.categorical)
    bad[:5, 0] = 4  # still valid; now corrupt the stored copy after building
    feats = EntityFeatures(60, bad, (5, 3), side.users.cat_names)
    object.__setattr__(feats, "categorical", np.where(np.arange(60)[:, None] < 5, 99, bad))
    m = TwoTower(**SMALL).fit(train, rng=0, side=SideFeatures(feats, side.items))
    assert (m.user_cat_[:5] == 0).all()
    assert np.isfinite(m.score(np.arange(60))).all()










def test_two_tower_on_the_synthetic_world_with_side_features(side_world) -> None:
    ds, sp = side_world
    side = side_features(ds, sp)
    m = TwoTower(factors=16, epochs=2, batch_size=1024, device="cpu").fit(
        sp.train, valid=sp.valid, rng=0, side=side)
    s = m.score(np.arange(sp.n_users))
    assert s.shape == (sp.n_users, sp.n_items) and np.isfinite(s).all()
    # cold start: new users with an unseen tier and a missing column, from features alone
    new = ds.users.head(5).with_columns(pl.lit("vip").alias("tier")).drop("country")
    feats = side.users.encoder.transform(new)
    assert (feats.categorical[:, feats.cat_names.index("tier")] == 0).all()
    v = m.feature_vectors("user", feats)
    assert v.shape == (5, 16) and np.isfinite(v @ m.item_vectors().T).all()
    with pytest.raises(ValueError, match="widths"):
        m.feature_vectors("item", feats)


# ---------------------------------------------------------------------------- plot
def test_cli_plot_embeddings_writes_a_png(tmp_path: Path) -> None:
    from streamrec.cli.main import app

    runner = CliRunner()
    data = "synthetic:users=150,items=60,days=6,seed=1"
    out = tmp_path / "emb.png"
    res = runner.invoke(app, ["plot", "embeddings", "--data", data, "--model", "two_tower",
                              "--params", '{"factors": 8, "epochs": 2, "device": "cpu"}',
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 5_000
    # a saved factor model (bprmf: module_.item.weight) through --model-dir
    from streamrec.models.neural.bpr import BPRMF

    ds = prepare(data).dataset
    sp = make_split(ds, "temporal_user")
    BPRMF(factors=4, epochs=2, device="cpu").fit(sp.train, rng=0).save(tmp_path / "bpr")
    out2 = tmp_path / "bpr.png"
    res = runner.invoke(app, ["plot", "embeddings", "--data", data, "--model-dir",
                              str(tmp_path / "bpr"), "--out", str(out2)])
    assert res.exit_code == 0, res.output
    assert out2.stat().st_size > 5_000
    res = runner.invoke(app, ["plot", "embeddings", "--data", data, "--out", str(out2)])
    assert res.exit_code == 2 and "exactly one" in res.output
    res = runner.invoke(app, ["plot", "embeddings", "--data", data, "--model", "ease",
                              "--out", str(out2)])
    assert res.exit_code == 2 and "no item vectors" in res.output


def test_benchmark_runner_passes_side_features(side_world) -> None:
    from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark

    ds, sp = side_world
    cfg = BenchmarkConfig(models=("two_tower",), seeds=1, ks=(10,),
                          params={"two_tower": {"factors": 8, "epochs": 2, "device": "cpu"}})
    seen = []
    orig = TwoTower.fit

    def spy(self, train, **kw):
        seen.append(kw.get("side"))
        return orig(self, train, **kw)

    TwoTower.fit = spy  # type: ignore[method-assign]
    try:
        res = run_benchmark(sp, cfg, protocol="temporal_user", dataset=ds)
    finally:
        TwoTower.fit = orig  # type: ignore[method-assign]
    assert isinstance(seen[0], SideFeatures) and seen[0].n_items == len(sp.item_vocab)
    assert len(res.runs) == 1 and 0.0 <= res.runs[0].metrics["ndcg@10"] <= 1.0


# ---------------------------------------------------------------------------- ML-100K
@pytest.mark.slow
@needs_ml100k
def test_two_tower_on_ml100k(prepared_split) -> None:
    from streamrec.data.interactions import Interactions
    from streamrec.eval.protocol import evaluate

    ds, sp = prepared_split(f"recbole:{ML100K}")
    side = side_features(ds, sp)
    assert side.users.cat_names == ("gender", "occupation", "age_bucket")
    assert side.items.multi_hot.shape == (1682, 19)
    m = TwoTower(epochs=12, patience=0, eval_every=100, device="cpu").fit(
        sp.train, valid=sp.valid, rng=0, side=side)
    ndcg = evaluate(m, sp.test, exclude=Interactions.concat([sp.train, sp.valid]), ks=(10,),
                    metrics=("ndcg",)).means()["ndcg@10"]
    assert ndcg > 0.09  # pop is ~0.07; the tuned defaults reach ~0.12 with early stopping
