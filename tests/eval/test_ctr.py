"""Click-prediction evaluation: the metrics, DeLong's test, MovieLens and the StreamRec world
as CTR splits, and the ``benchmark --task ctr`` contract (tuning included). The data types
are tested in tests/data/test_ctr.py, the click models in tests/models/ctr/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.eval.ctr import ctr_metrics, ctr_split, movielens_ctr
from streamrec.eval.significance import delong_test
from streamrec.models.zoo import create
from tests._paths import ML100K, needs_ml100k

runner = CliRunner()


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


@pytest.mark.slow
@needs_ml100k
def test_ml100k_as_ctr_logistic_near_recbole():
    from streamrec.eval.ctr import load_ctr_split

    sp = load_ctr_split(f"recbole:{ML100K}", "random")
    assert [len(p) for p in sp] == [80_000, 10_000, 10_000]
    assert 0.55 < sp.train.positive_rate < 0.56  # ratings >= 4 among 100K
    m = create("logistic", kind="ctr").fit(sp.train)
    # RecBole's context-aware quick start reports LR AUC 0.7765 on ML-100K
    assert 0.76 < ctr_metrics(sp.test.labels, m.predict_proba(sp.test))["auc"] < 0.79


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
