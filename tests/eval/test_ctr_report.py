"""The click-prediction case study report (``streamrec report ctr``) on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.data.synthetic.clicks import ClickConfig, generate_clicks
from streamrec.eval.ctr import ctr_metrics, ctr_split
from streamrec.eval.ctr_report import case_study_report, confusion, f1_threshold, gap_share
from streamrec.eval.metrics import auc
from streamrec.models.zoo import create

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models on a busy machine
runner = CliRunner()
N = 1500
SECTIONS = ("## (a) Logistic regression vs MLP", "## (b) Architecture search",
            "## (c) Learning-rate sensitivity", "## (d) Error analysis", "## (e) Calibration")
PNGS = ("architecture.png", "learning_rates.png", "errors.png", "calibration.png")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, one_torch_thread):
    data = generate_clicks(ClickConfig(n_samples=N, seed=3))
    out = tmp_path_factory.mktemp("ctr_report")
    paths = case_study_report(out, data=data, seeds=(0,), epochs=2,
                              hidden_grid=((16,), (128, 64, 32)), lrs=(0.01, 0.001), lr_epochs=2)
    return data, paths, json.loads(paths["json"].read_text())


def test_confusion_counts_and_rates():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.4, 0.5, 0.5])
    c = confusion(y, p, 0.5)  # predicted: 1 1 0 1 0 0 1 1
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (3, 2, 2, 1)
    assert c["fpr"] == pytest.approx(2 / 4) and c["fnr"] == pytest.approx(1 / 4)
    assert c["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))


def test_f1_threshold_is_the_brute_force_best():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(float)
    p = np.round(np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, 300), 0, 1), 2)  # ties
    t = f1_threshold(y, p)
    best = max(confusion(y, p, v)["f1"] for v in np.unique(p))
    assert confusion(y, p, t)["f1"] == pytest.approx(best)
    with pytest.raises(ValueError, match="positive"):
        f1_threshold(np.zeros(3), p[:3])


def test_gap_share():
    assert gap_share(0.75, 0.70, 0.80) == pytest.approx(0.5)
    assert gap_share(0.70, 0.70, 0.80) == 0.0
    assert np.isnan(gap_share(0.7, 0.8, 0.8))


def test_report_files_and_sections(tiny):
    _, paths, doc = tiny
    out = paths["report"].parent
    for name in ("report.md", "ctr_report.json", *PNGS):  # a loop over expected files
        assert (out / name).stat().st_size > 0, name
    assert set(paths) == {"report", "json", "architecture", "learning_rates", "errors",
                          "calibration"}
    md = paths["report"].read_text()
    for section in SECTIONS:  # a loop over sections
        assert section in md
    assert ("does **not** beat" in md) == (not doc["mlp_beats_logistic"])
    assert "without early stopping" in md and "oracle" in md


def test_json_numbers_match_recomputation(tiny):
    data, _, doc = tiny
    split = ctr_split(data, "random")
    lr = create("logistic", kind="ctr").fit(split.train, valid=split.valid, rng=0)
    expect = ctr_metrics(split.test.labels, lr.predict_proba(split.test))
    for k, v in expect.items():  # a loop over metrics
        assert doc["models"]["logistic"][k]["mean"] == pytest.approx(v, abs=1e-9)
    oracle = doc["models"]["oracle"]["auc"]["mean"]
    assert oracle == pytest.approx(auc(split.test.labels, split.test.truth))
    mlp = doc["models"]["mlp"]["auc"]["mean"]
    share = doc["models"]["mlp"]["gap_share"]["mean"]
    assert share == pytest.approx((mlp - expect["auc"]) / (oracle - expect["auc"]))
    assert doc["mlp_beats_logistic"] == (mlp > expect["auc"])
    (dl,) = doc["delong_mlp_vs_logistic"]
    assert dl["auc_mlp"] == pytest.approx(mlp) and 0.0 <= dl["p_value"] <= 1.0
    assert doc["data"]["test"] == len(split.test) and doc["data"]["n"] == N


def test_json_architecture_lr_errors_calibration(tiny):
    _, _, doc = tiny
    arch = doc["architecture"]
    assert [a["hidden"] for a in arch] == [[16], [128, 64, 32]]
    assert arch[0]["params"] == 20 * 16 + 16 + 16 + 1
    default = arch[1]  # the default MLP's fit is reused: same test AUC as section (a)
    assert default["test_auc"]["mean"] == pytest.approx(doc["models"]["mlp"]["auc"]["mean"])
    for a in arch:  # a loop over architectures
        assert a["gap_train_test"]["mean"] == pytest.approx(
            a["train_auc"]["mean"] - a["test_auc"]["mean"])
        assert 1 <= a["epochs_run"]["mean"] <= 2
    sweep = doc["learning_rates"]
    assert [s["lr"] for s in sweep] == [0.01, 0.001]
    for s in sweep:  # a loop over learning rates
        assert len(s["loss_curve"]) == len(s["valid_curve"]) == 2  # fixed epochs, no stopping
        assert s["final_valid_auc"]["mean"] == pytest.approx(s["valid_curve"][-1])
    test_n = doc["data"]["test"]
    for r in doc["errors"]["test"]:  # a loop over thresholds
        assert r["tp"] + r["fp"] + r["tn"] + r["fn"] == test_n
        assert r["fpr"] == pytest.approx(r["fp"] / (r["fp"] + r["tn"]))
        assert r["fnr"] == pytest.approx(r["fn"] / (r["fn"] + r["tp"]))
    assert [r["name"] for r in doc["errors"]["test"]] == ["0.5", "max F1 on valid"]
    for name in ("logistic", "mlp", "oracle"):  # a loop over calibrated models
        c = doc["calibration"][name]
        assert sum(c["counts"]) == test_n
        assert c["ece"] == pytest.approx(doc["models"][name]["ece"]["mean"])


def test_cli_report_ctr_tiny(tmp_path: Path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["report", "ctr", "--data", "synthetic-clicks:n=800,seed=2",
                              "--epochs", "1", "--lr-epochs", "1", "--lrs", "0.01",
                              "--hidden", "8", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "oracle" in res.output and "report.md" in res.output
    doc = json.loads((out / "ctr_report.json").read_text())
    assert doc["data"]["n"] == 800 and doc["config"]["hidden_grid"] == [[8]]


@pytest.mark.parametrize("args, message", [
    (["--data", "synthetic:users=10"], "synthetic-clicks"),
    (["--data", "synthetic-clicks:bogus=1"], "bogus"),
    (["--lrs", "fast"], "--lrs"),
    (["--hidden", "64-x"], "--hidden"),
])
def test_cli_report_ctr_rejects_bad_options(tmp_path: Path, args: list[str], message: str):
    res = runner.invoke(app, ["report", "ctr", *args, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "r").exists()


def test_cli_help_has_an_example():
    res = runner.invoke(app, ["report", "ctr", "--help"])
    assert res.exit_code == 0 and "streamrec report ctr --out" in res.output
