"""Side features, the two-tower model and the embedding plot."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import streamrec.models.neural.two_tower  # noqa: F401  (registers "two_tower")
from streamrec.data.dataset import Dataset
from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split
from streamrec.features.side import EntityFeatures, FeatureEncoder, SideFeatures, side_features
from streamrec.models.neural.two_tower import TwoTower
from streamrec.testing.conformance import check_recommender, tiny_interactions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
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


@pytest.fixture(scope="module")
def world():
    ds = prepare("synthetic:users=500,items=300,days=20,seed=0").dataset
    return ds, make_split(ds, "temporal_user")


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


def test_entity_features_validate() -> None:
    with pytest.raises(ValueError, match="cardinalit"):
        EntityFeatures(3, categorical=np.zeros((3, 2), np.int64), cardinalities=(2,))
    with pytest.raises(ValueError, match="codes"):
        EntityFeatures(3, categorical=np.array([[0], [1], [5]]), cardinalities=(3,))
    with pytest.raises(ValueError, match="shape"):
        EntityFeatures(3, numeric=np.zeros((4, 1)))
    e = EntityFeatures(3)
    assert e.is_empty and e.categorical.shape == (3, 0) and e.multi_hot.dtype == np.float32


# ---------------------------------------------------------------------------- side features
def test_side_features_on_the_synthetic_world(world) -> None:
    ds, sp = world
    side = side_features(ds, sp)
    assert side.n_users == len(sp.user_vocab) and side.n_items == len(sp.item_vocab)
    u, i = side.users, side.items
    assert {"tier", "platform", "country", "top_category"} <= set(u.cat_names)
    assert {"category", "creator_id", "length_seconds_bucket"} <= set(i.cat_names)
    assert "title" not in i.cat_names and "description" not in i.cat_names  # free text
    assert set(i.num_names) == {"length_seconds", "release_ts"}
    for e in (u, i):
        assert e.categorical.dtype == np.int64 and e.numeric.dtype == np.float32
        assert (e.categorical >= 0).all()
        assert (e.categorical < np.asarray(e.cardinalities)).all()
        assert np.isfinite(e.numeric).all() and np.abs(e.numeric).max() <= 5.0
    # nulls (platform/country, length_seconds in the world) get the unknown code 0
    plat = u.categorical[:, u.cat_names.index("platform")]
    row_of = ds.user_vocab.lookup(sp.user_vocab.ids)[0]
    is_null = ds.users["platform"].is_null().to_numpy()[row_of]
    assert is_null.any() and (plat[is_null] == 0).all() and (plat[~is_null] > 0).all()
    # rows follow the split's vocabulary: the category codes agree with the table
    cat = i.categorical[:, i.cat_names.index("category")]
    levels = dict(i.encoder.categorical)["category"]
    rows = ds.item_vocab.lookup(sp.item_vocab.ids)[0]
    want = ds.items["category"].to_numpy()[rows]
    assert all(levels[c - 1] == w for c, w in zip(cat, want, strict=True))


def test_unseen_and_null_values_map_to_unknown() -> None:
    table = pl.DataFrame({"user_id": [1, 2, 3, 4, 5, 6],
                          "tier": ["free", "free", "paid", "paid", None, "gold"],
                          "age": ["20", "30", "40", "35", None, "x"],
                          "tags": [["a", "b"], ["a"], ["b"], ["a"], None, ["b", "z"]]})
    enc = FeatureEncoder.fit(table, key="user_id", rows=np.arange(4), n_buckets=2)
    assert dict(enc.categorical)["tier"] == ("free", "paid")  # "gold" is not in rows 0-3
    new = pl.DataFrame({"user_id": [7, 8, 9], "tier": ["free", "vip", None],
                        "age": ["35", "old", None], "tags": [["a", "q"], [], None]})
    out = enc.transform(new)
    tier = out.categorical[:, out.cat_names.index("tier")]
    assert tier.tolist() == [1, 0, 0]  # unseen "vip" and null -> unknown
    assert out.numeric[1:, 0].tolist() == [0.0, 0.0]  # unparsable and null -> the mean
    assert out.categorical[1:, out.cat_names.index("age_bucket")].tolist() == [0, 0]
    assert out.multi_hot.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    assert out.multi_names == ("tags=a", "tags=b")
    # a missing column encodes as unknown instead of crashing
    assert (enc.transform(new.drop("tier")).categorical[:, 0] == 0).all()


def test_side_features_without_tables_and_with_missing_rows() -> None:
    events = pl.DataFrame({"user_id": np.repeat([1, 2, 3, 4], 5),
                           "item_id": np.tile([10, 11, 12, 13, 14], 4),
                           "timestamp": np.arange(20)})
    ds = Dataset.from_frames(events)
    sp = make_split(ds, "temporal_user")
    side = side_features(ds, sp)
    assert side.users.is_empty and side.items.is_empty
    users = pl.DataFrame({"user_id": [1, 2, 4], "tier": ["a", "b", "a"]})  # 3 has no row
    ds2 = Dataset.from_frames(events, users=users)
    side2 = side_features(ds2, make_split(ds2, "temporal_user"), min_count=1)
    tier = side2.users.categorical[:, 0]
    row3 = int(np.flatnonzero(make_split(ds2, "temporal_user").user_vocab.ids == 3)[0])
    assert tier[row3] == 0 and (np.delete(tier, row3) > 0).all()


def test_two_tower_on_the_synthetic_world_with_side_features(world) -> None:
    ds, sp = world
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


def test_benchmark_runner_passes_side_features(world) -> None:
    from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark

    ds, sp = world
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
@pytest.mark.skipif(not DATA.exists(), reason="../shared/data/ml-100k absent")
def test_two_tower_on_ml100k() -> None:
    from streamrec.data.interactions import Interactions
    from streamrec.eval.protocol import evaluate

    ds = prepare(f"recbole:{DATA}").dataset
    sp = make_split(ds, "temporal_user")
    side = side_features(ds, sp)
    assert side.users.cat_names == ("gender", "occupation", "age_bucket")
    assert side.items.multi_hot.shape == (1682, 19)
    m = TwoTower(epochs=12, patience=0, eval_every=100, device="cpu").fit(
        sp.train, valid=sp.valid, rng=0, side=side)
    ndcg = evaluate(m, sp.test, exclude=Interactions.concat([sp.train, sp.valid]), ks=(10,),
                    metrics=("ndcg",)).means()["ndcg@10"]
    assert ndcg > 0.09  # pop is ~0.07; the tuned defaults reach ~0.12 with early stopping
