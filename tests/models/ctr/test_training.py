"""Click models fitted end to end: the registry's two kinds, logistic regression against
scikit-learn, save/load round trips, GBDT, ensembles, seeds and DCN-v2's embedded dense
fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from streamrec.data.ctr import CTRData, FeatureSchema, random_split
from streamrec.data.synthetic.clicks import ClickConfig, generate_clicks
from streamrec.eval.ctr import ctr_metrics, is_ctr_task
from streamrec.models.base import Model
from streamrec.models.ctr.base import CTRModel
from streamrec.models.zoo import available, create, get_class


# ---------------------------------------------------------------------------- models
def test_registry_kinds_keep_both_mlps():
    assert "mlp" in available() and "mlp" in available("ctr")
    assert not issubclass(get_class("mlp"), CTRModel)
    assert issubclass(get_class("mlp", "ctr"), CTRModel)
    assert "logistic" in available("ctr") and "logistic" not in available()
    with pytest.raises(KeyError, match="unknown ctr model"):
        get_class("ease", "ctr")
    assert is_ctr_task("synthetic-clicks", ("mlp",))
    assert is_ctr_task("synthetic", ("logistic", "mlp"))
    assert not is_ctr_task("synthetic", ("ease", "mlp"))


def test_logistic_matches_sklearn_and_round_trips(tmp_path: Path):
    d = generate_clicks(ClickConfig(n_samples=2000, seed=1))
    cat = np.random.default_rng(0).integers(0, 3, (2000, 1))
    d = CTRData(FeatureSchema(d.schema.dense, ("g",), (3,)), d.dense, cat, d.labels)
    m = create("logistic", kind="ctr").fit(d)
    x = (d.dense - d.dense.mean(0)) / d.dense.std(0)
    ref = LogisticRegression(C=1.0, max_iter=1000).fit(np.hstack([x, np.eye(3)[cat[:, 0]]]),
                                                        d.labels)
    np.testing.assert_allclose(m.predict_proba(d),
                               ref.predict_proba(np.hstack([x, np.eye(3)[cat[:, 0]]]))[:, 1],
                               atol=2e-4)
    m.save(tmp_path / "lr")
    back = Model.load(tmp_path / "lr")
    assert type(back) is type(m)
    np.testing.assert_array_equal(back.predict_proba(d), m.predict_proba(d))


def test_ctr_mlp_save_load_resolves_the_click_model(tmp_path: Path):
    d = generate_clicks(ClickConfig(n_samples=600, seed=2))
    sp = random_split(d, seed=0)
    m = create("mlp", kind="ctr", epochs=2, hidden=(8,)).fit(sp.train, valid=sp.valid, rng=0)
    m.save(tmp_path / "m")
    back = Model.load(tmp_path / "m")
    assert isinstance(back, CTRModel)
    np.testing.assert_array_equal(back.predict_proba(sp.test), m.predict_proba(sp.test))
    assert len(m.history_.valid) >= 1  # early stopping watched valid AUC


# ---------------------------------------------------------------------------- gbdt, ensembles
def test_gbdt_learns_nonlinear_effects_and_round_trips(tmp_path: Path):
    pytest.importorskip("lightgbm")
    sp = random_split(generate_clicks(ClickConfig(n_samples=3000, seed=5)), seed=0)
    lr = create("logistic", kind="ctr").fit(sp.train)
    gb = create("gbdt", kind="ctr", n_estimators=200, n_jobs=1).fit(sp.train, valid=sp.valid,
                                                                   rng=0)
    p = gb.predict_proba(sp.test)
    assert ctr_metrics(sp.test.labels, p)["auc"] > ctr_metrics(
        sp.test.labels, lr.predict_proba(sp.test))["auc"]
    assert gb.best_iteration_ <= 200
    gb.save(tmp_path / "gb")
    np.testing.assert_array_equal(Model.load(tmp_path / "gb").predict_proba(sp.test), p)


def test_ensembles_average_and_stack(tmp_path: Path):
    sp = random_split(generate_clicks(ClickConfig(n_samples=1500, seed=6)), seed=0)
    params = {"mlp": {"epochs": 2, "hidden": (8,)}}
    lr = create("logistic", kind="ctr").fit(sp.train)
    mlp = create("mlp", kind="ctr", epochs=2, hidden=(8,)).fit(sp.train, valid=sp.valid, rng=1)
    avg = create("ensemble", kind="ctr", members=("logistic", "mlp"), weights=(3.0, 1.0),
                 member_params=params).fit(sp.train, valid=sp.valid, rng=0)
    # members are fitted exactly as alone (member seeds come from the ensemble's rng)
    np.testing.assert_allclose(avg.models_[0].predict_proba(sp.test), lr.predict_proba(sp.test))
    p = avg.predict_proba(sp.test)
    np.testing.assert_allclose(p, 0.75 * avg.models_[0].predict_proba(sp.test)
                               + 0.25 * avg.models_[1].predict_proba(sp.test), rtol=1e-5)
    st = create("ensemble", kind="ctr", members=("logistic", "mlp"), method="stacking",
                member_params=params).fit(sp.train, rng=0)  # no valid: held-out share of train
    q = st.predict_proba(sp.test)
    assert q.shape == (len(sp.test),) and 0 < q.min() and q.max() < 1
    st.save(tmp_path / "st")
    np.testing.assert_array_equal(Model.load(tmp_path / "st").predict_proba(sp.test), q)
    assert np.all(mlp.predict_proba(sp.test) >= 0)
    with pytest.raises(ValueError, match="method"):
        create("ensemble", kind="ctr", method="vote").fit(sp.train)
    with pytest.raises(KeyError, match="unknown ctr model"):
        create("ensemble", kind="ctr", members=("logistic", "ease")).fit(sp.train)


def test_same_seed_same_click_model_with_dropout():
    sp = random_split(generate_clicks(ClickConfig(n_samples=800, seed=8)), seed=0)
    fit = lambda: create("mlp", kind="ctr", epochs=2, hidden=(16,), dropout=0.3).fit(  # noqa: E731
        sp.train, valid=sp.valid, rng=4).predict_proba(sp.test)
    np.testing.assert_array_equal(fit(), fit())


def test_dcn_v2_embed_dense_crosses_embedded_fields(tmp_path: Path):
    sp = random_split(generate_clicks(ClickConfig(n_samples=600, seed=9)), seed=0)
    m = create("dcn_v2", kind="ctr", embed_dense=True, embed_dim=4, hidden=(8,), n_cross=1,
               epochs=2).fit(sp.train, valid=sp.valid, rng=0)
    assert m.module_.cross.layers[0].in_features == 20 * 4  # 20 dense fields of 4
    p = m.predict_proba(sp.test)
    m.save(tmp_path / "dcn")
    np.testing.assert_array_equal(Model.load(tmp_path / "dcn").predict_proba(sp.test), p)
    raw = create("dcn_v2", kind="ctr", embed_dim=4, hidden=(8,), n_cross=1, epochs=1).fit(
        sp.train, rng=0)
    assert raw.module_.cross.layers[0].in_features == 20  # the paper: raw dense values
