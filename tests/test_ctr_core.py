"""Click prediction: CTRData, splits, the case-study generator, logistic regression, DeLong's
test, MovieLens as CTR and the ``benchmark --task ctr`` contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.data.ctr import CTRData, FeatureSchema, random_split, temporal_split
from streamrec.data.spec import SpecError, click_config_from_options, load_raw
from streamrec.data.synthetic.clicks import ClickConfig, generate_clicks
from streamrec.eval.ctr import ctr_metrics, ctr_split, is_ctr_task, movielens_ctr
from streamrec.eval.significance import delong_test
from streamrec.models.base import Model
from streamrec.models.ctr.base import CTRModel
from streamrec.models.registry import available, create, get_class

runner = CliRunner()


def _data(n: int = 50, seed: int = 0) -> CTRData:
    rng = np.random.default_rng(seed)
    schema = FeatureSchema(("a", "b"), ("c",), (4,))
    return CTRData(schema, rng.standard_normal((n, 2)), rng.integers(0, 4, (n, 1)),
                   labels=(rng.random(n) < 0.4).astype(np.float32),
                   timestamps=rng.permutation(n))


# ---------------------------------------------------------------------------- data
def test_ctrdata_errors_name_row_and_field():
    schema = FeatureSchema(("a", "b"), ("c",), (4,))
    dense = np.zeros((3, 2))
    with pytest.raises(ValueError, match="categorical row 1, field 'c': code 4"):
        CTRData(schema, dense, np.array([[0], [4], [1]]))
    bad = dense.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="dense row 2, field 'b'"):
        CTRData(schema, bad, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        CTRData(schema, dense, np.zeros((3, 1)), labels=np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        CTRData(schema, np.zeros((3, 3)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="item_field"):
        FeatureSchema((), ("c",), (3,), item_field="d")


def test_schema_round_trip_and_take():
    d = _data()
    s = FeatureSchema(("a",), ("u", "i"), (3, 7), n_history_items=7, item_field="i")
    assert FeatureSchema.from_array(s.to_array()) == s
    part = d.take(np.array([3, 1]))
    np.testing.assert_array_equal(part.dense, d.dense[[3, 1]])
    np.testing.assert_array_equal(part.labels, d.labels[[3, 1]])
    assert len(d.take(d.labels == 1)) == int(d.labels.sum())


def test_splits_partition_rows():
    d = _data(101)
    sp = random_split(d, (0.6, 0.2, 0.2), seed=1)
    assert [len(p) for p in sp] == [61, 20, 20]
    rows = np.concatenate([p.timestamps for p in sp])
    assert sorted(rows) == list(range(101))  # every row exactly once
    again = random_split(d, (0.6, 0.2, 0.2), seed=1)
    np.testing.assert_array_equal(again.test.timestamps, sp.test.timestamps)
    t = temporal_split(d, (0.8, 0.1, 0.1))
    assert t.train.timestamps.max() < t.valid.timestamps.min() <= t.valid.timestamps.max() < \
        t.test.timestamps.min()
    with pytest.raises(ValueError, match="sum"):
        random_split(d, (0.5, 0.2, 0.2))


# ---------------------------------------------------------------------------- generator
def test_click_generator_is_the_documented_model():
    cfg = ClickConfig(n_samples=4000, seed=7)
    d = generate_clicks(cfg)
    assert d.dense.shape == (4000, 20) and d.schema.dense[0] == "x0"
    x = d.dense.astype(np.float64)
    logit = (cfg.bias + x[:, 4:12] @ np.asarray(cfg.main) + cfg.interaction * x[:, 0] * x[:, 1]
             + cfg.square * (x[:, 2] ** 2 - 1) + cfg.periodic * np.sin(np.pi * x[:, 3]))
    np.testing.assert_allclose(d.truth, 1 / (1 + np.exp(-logit)), rtol=1e-5)
    assert abs(d.labels.mean() - d.truth.mean()) < 0.03  # Bernoulli(p)
    np.testing.assert_array_equal(generate_clicks(cfg).labels, d.labels)  # seeded
    assert click_config_from_options({"n": "100", "seed": "3", "main": "1/2"}) == ClickConfig(
        n_samples=100, seed=3, main=(1.0, 2.0))
    with pytest.raises(SpecError, match="unknown synthetic-clicks option"):
        click_config_from_options({"rows": "3"})
    with pytest.raises(SpecError, match="click models"):
        load_raw("synthetic-clicks")


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


# ---------------------------------------------------------------------------- metrics
def test_ctr_metrics_agree_with_sklearn():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(float)
    p = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.15, 500), 0.01, 0.99)
    m = ctr_metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["logloss"] == pytest.approx(log_loss(y, p))
    assert m["ap"] == pytest.approx(average_precision_score(y, p))
    assert 0.0 <= m["ece"] <= 1.0


def test_delong_matches_auc_and_bootstrap_se():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.35).astype(int)
    a = y + rng.normal(0, 1.0, 400)
    b = 0.5 * a + y * 0.2 + rng.normal(0, 1.0, 400)
    r = delong_test(y, a, b)
    assert r.auc_a == pytest.approx(roc_auc_score(y, a))
    assert r.auc_b == pytest.approx(roc_auc_score(y, b))
    diffs = []
    for _ in range(400):  # a loop over bootstrap resamples (the reference)
        idx = rng.integers(0, 400, 400)
        diffs.append(roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx]))
    assert r.se == pytest.approx(np.std(diffs), rel=0.2)
    same = delong_test(y, a, a)
    assert same.p_value == 1.0 and same.z == 0.0
    assert same.ci_a.low < same.auc_a < same.ci_a.high
    with pytest.raises(ValueError, match="two positive"):
        delong_test(np.array([1, 0, 0]), np.zeros(3), np.zeros(3))


# ---------------------------------------------------------------------------- MovieLens as CTR
def _tiny_recbole(root: Path) -> Path:
    d = root / "tiny"
    d.mkdir()
    rng = np.random.default_rng(0)
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for k in range(300):  # a loop over generated ratings (test data)
        rows.append(f"{k % 20 + 1}\t{k % 15 + 1}\t{int(rng.integers(1, 6))}\t{1000 + k}")
    (d / "tiny.inter").write_text("\n".join(rows) + "\n")
    users = ["user_id:token\tage:token\tgender:token"] + [
        f"{u}\t{20 + u}\t{'MF'[u % 2]}" for u in range(1, 21)]
    (d / "tiny.user").write_text("\n".join(users) + "\n")
    items = ["item_id:token\tclass:token_seq"] + [
        f"{i}\t{['Drama', 'Comedy Drama', 'Action'][i % 3]}" for i in range(1, 16)]
    (d / "tiny.item").write_text("\n".join(items) + "\n")
    return d


def test_movielens_as_ctr(tmp_path: Path):
    from streamrec.data.pipeline import prepare

    ds = prepare(f"recbole:{_tiny_recbole(tmp_path)}").dataset
    d = movielens_ctr(ds)
    assert len(d) == 300
    np.testing.assert_array_equal(d.labels, (ds.interactions.values >= 4).astype(np.float32))
    assert d.schema.categorical[:2] == ("user_id", "item_id")
    assert "user_gender" in d.schema.categorical
    assert any(n.startswith("item_class=") for n in d.schema.dense)
    sp = ctr_split(d, "random", ratios=(0.5, 0.25, 0.25))
    j = d.schema.categorical.index("item_id")
    seen = set(sp.train.categorical[:, j])
    assert set(sp.test.categorical[:, j]) <= seen | {0}  # unseen ids -> unknown code

    from streamrec.eval.ctr import add_train_profiles

    prof = add_train_profiles(sp)
    names = prof.train.schema.dense
    assert names[:len(d.schema.dense)] == d.schema.dense
    assert {"user_count", "item_count", "user_share_Drama"} <= set(names)
    # computed from train rows only: a user's share is the same in every part
    k = names.index("user_share_Drama")
    u = d.schema.categorical.index("user_id")
    by_user = {}
    for part in prof:  # a loop over train, valid, test
        for code, v in zip(part.categorical[:, u], part.dense[:, k], strict=True):
            assert by_user.setdefault(code, v) == v
    # and it is the share of Drama among the user's train items (standardised)
    tr = sp.train
    drama = tr.dense[:, tr.schema.dense.index("item_class=Drama")]
    raw = np.array([drama[tr.categorical[:, u] == c].mean() for c in tr.categorical[:, u]])
    z = prof.train.dense[:, k]
    np.testing.assert_allclose(z, (raw - raw.mean()) / raw.std(), atol=1e-5)


# ---------------------------------------------------------------------------- CLI contract
def test_benchmark_ctr_contract_and_resume(tmp_path: Path):
    out = tmp_path / "clicks"
    args = ["benchmark", "--data", "synthetic-clicks:n=1500", "--protocol", "random",
            "--models", "logistic,mlp", "--seeds", "1", "--params",
            '{"mlp": {"epochs": 2, "hidden": [16]}}', "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "results.json").read_text())
    by = {r["model"]: r for r in rows}
    assert set(by) == {"logistic", "mlp", "oracle"}
    for r in rows:
        assert {"auc", "logloss", "ap"} <= set(r["metrics"])
    assert by["oracle"]["metrics"]["auc"] > by["logistic"]["metrics"]["auc"]
    report = (out / "report.md").read_text()
    assert "p DeLong" in report and "share of gap" in report
    # a second run with --resume reuses both fits (identical rows, no refit)
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    assert "resuming: 2 earlier" in res.output
    again = {r["model"]: r for r in json.loads((out / "results.json").read_text())}
    assert again["mlp"]["fit_seconds"] == by["mlp"]["fit_seconds"]
    assert again["mlp"]["metrics"] == by["mlp"]["metrics"]


def test_benchmark_rejects_mismatched_protocol(tmp_path: Path):
    res = runner.invoke(app, ["benchmark", "--data", "synthetic-clicks:n=200", "--protocol",
                              "temporal_user", "--models", "logistic", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "--protocol random or temporal" in res.output
    res = runner.invoke(app, ["benchmark", "--data", "synthetic-clicks:n=200", "--protocol",
                              "random", "--models", "ease", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown model(s) ease for ctr" in res.output


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


@pytest.mark.slow
def test_ml100k_as_ctr_logistic_near_recbole():
    ml100k = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
    if not ml100k.exists():
        pytest.skip(f"{ml100k} is absent")
    from streamrec.eval.ctr import load_ctr_split

    sp = load_ctr_split(f"recbole:{ml100k}", "random")
    assert [len(p) for p in sp] == [80_000, 10_000, 10_000]
    assert 0.55 < sp.train.positive_rate < 0.56  # ratings >= 4 among 100K
    m = create("logistic", kind="ctr").fit(sp.train)
    # RecBole's context-aware quick start reports LR AUC 0.7765 on ML-100K
    assert 0.76 < ctr_metrics(sp.test.labels, m.predict_proba(sp.test))["auc"] < 0.79


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


def test_streamrec_impressions_as_ctr_split():
    from streamrec.eval.ctr import load_ctr_split

    sp = load_ctr_split("synthetic:users=250,items=120,days=10", "temporal")
    assert sp.train.timestamps.max() <= sp.valid.timestamps.min()
    assert sp.valid.timestamps.max() <= sp.test.timestamps.min()
    s = sp.train.schema
    assert len(s.dense) == 18 and s.item_field == "item_id"  # 18 numeric + tier, platform
    assert {"user_subscription_tier", "user_platform"} <= set(s.categorical)
    assert sp.test.history is not None and sp.test.history.shape[1] == 20
    m = create("din", kind="ctr", epochs=1, hidden=(8,), att_hidden=(4,)).fit(
        sp.train, valid=sp.valid, rng=0)
    assert m.predict_proba(sp.test).shape == (len(sp.test),)
    with pytest.raises(ValueError, match="protocols"):
        load_ctr_split("synthetic:users=10", "temporal_user")


def test_ctr_tuning_with_tune_seeds_averages_seeds(tmp_path: Path, monkeypatch):
    import streamrec.eval.ctr as ctr_eval

    fits = []
    real = ctr_eval._ctr_fit

    def spy(spec, params, split, seed):
        fits.append((spec.name, seed))
        return real(spec, params, split, seed)

    monkeypatch.setattr(ctr_eval, "_ctr_fit", spy)
    out = tmp_path / "tuned"
    res = runner.invoke(app, [
        "benchmark", "--data", "synthetic-clicks:n=1200", "--protocol", "random",
        "--models", "logistic,mlp", "--seeds", "1", "--tune", "--max-trials", "2",
        "--tune-seeds", "2", "--params", '{"mlp": {"epochs": 2, "hidden": [8]}}',
        "--out", str(out)])
    assert res.exit_code == 0, res.output
    tuning = [f for f in fits if f[0] == "mlp"][:-1]  # the last mlp fit is the test fit
    assert tuning == [("mlp", 0), ("mlp", 1), ("mlp", 0), ("mlp", 1)]  # 2 points x 2 seeds
    assert [f for f in fits if f[0] == "logistic"][:2] == [("logistic", 0), ("logistic", 0)]
    assert "mean over seeds 0–1" in (out / "report.md").read_text()


def test_ctr_tuning_searches_the_grid_given(tmp_path: Path):
    out = tmp_path / "grid"
    res = runner.invoke(app, [
        "benchmark", "--data", "synthetic-clicks:n=1200", "--protocol", "random",
        "--models", "logistic", "--seeds", "1", "--tune", "--grid",
        '{"logistic": {"C": [0.5, 2.0]}}', "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = (out / "report.md").read_text()
    assert "| logistic | 3 |" in report  # defaults + the two values, not the declared four
    assert '"C": [0.5, 2.0]' in report
