"""The benchmark runner: tuning on valid only, seeds, results.json/report.md/PNG, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.data.clean import CleanConfig
from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark, search_points, tune_model
from streamrec.eval.report import leaderboard, write_report
from streamrec.models.zoo import spec

SPEC = "synthetic:users=300,items=120,days=12,seed=5"


@pytest.fixture(scope="module")
def split(prepared_split):
    return prepared_split(SPEC, on_bad_rows="quarantine",
                          clean=CleanConfig(keep_events=("play", "like")))[1]


def test_search_points_defaults_first_and_capped():
    pts = search_points("ease", 4, np.random.default_rng(0))
    assert pts[0] == {} and len(pts) == 4
    assert all(set(p) == {"lam"} for p in pts[1:])
    assert search_points("ease", 4, np.random.default_rng(0)) == pts  # seeded
    assert search_points("pop", 10, np.random.default_rng(0))[0] == {}


def test_tuning_uses_valid_only(split, monkeypatch):
    import streamrec.eval.benchmark as bm

    seen = []
    real = bm.evaluate

    def spy(model, test, **kw):
        seen.append(test)
        return real(model, test, **kw)

    monkeypatch.setattr(bm, "evaluate", spy)
    cfg = BenchmarkConfig(models=("ease",), tune=True, max_trials=3)
    params, trials = tune_model("ease", split, cfg)
    assert len(trials) == 3 and all(t is split.valid for t in seen)
    assert params == max(trials, key=lambda t: t.valid).params


def test_tune_seeds_average_the_valid_metric_of_stochastic_models(split, monkeypatch):
    import streamrec.eval.benchmark as bm

    fits = []
    real = bm._fit

    def spy(spec, params, train, valid, seed, *args):
        fits.append((spec.name, seed))
        return real(spec, params, train, valid, seed, *args)

    monkeypatch.setattr(bm, "_fit", spy)
    cfg = BenchmarkConfig(models=("ials", "ease"), tune=True, max_trials=2, tune_seeds=3)
    params, trials = tune_model("ials", split, cfg)
    assert fits == [("ials", s) for _ in range(2) for s in range(3)]  # 2 points x 3 seeds
    # each trial's value is the mean of its three seeds' valid NDCG@10
    point = trials[1].params
    each = [bm.evaluate_part(real(spec("ials"), point, split.train, split.valid, s)[0],
                             split.valid, split, "temporal_user", cfg, exclude=[split.train])
            .means()["ndcg@10"] for s in range(3)]
    assert trials[1].valid == pytest.approx(np.mean(each))
    fits.clear()
    tune_model("ease", split, cfg)  # deterministic: one fit per point whatever tune_seeds
    assert fits == [("ease", 0), ("ease", 0)]
    with pytest.raises(ValueError, match="tune_seeds"):
        BenchmarkConfig(models=("ease",), tune_seeds=0)


def test_grids_replace_the_declared_search_space(split):
    pts = search_points("ease", 10, np.random.default_rng(0), space={"lam": [3.0, 30.0]})
    assert pts == [{}, {"lam": 3.0}, {"lam": 30.0}]
    cfg = BenchmarkConfig(models=("ease",), tune=True, max_trials=10,
                          grids={"ease": {"lam": [3.0, 30.0]}})
    params, trials = tune_model("ease", split, cfg)
    assert [t.params for t in trials] == pts and params in pts
    fixed = BenchmarkConfig(models=("ease",), tune=True, grids={"ease": {"lam": [3.0]}},
                            params={"ease": {"lam": 5.0}})  # --params still win
    assert {t.params["lam"] for t in tune_model("ease", split, fixed)[1]} == {5.0}
    with pytest.raises(ValueError, match="non-empty lists"):
        BenchmarkConfig(models=("ease",), grids={"ease": {"lam": []}})
    with pytest.raises(ValueError, match="not benchmarked"):
        BenchmarkConfig(models=("ease",), grids={"pop": {}})


def test_run_and_report(split, tmp_path: Path):
    cfg = BenchmarkConfig(models=("pop", "ease", "ials"), seeds=2, tune=False)
    res = run_benchmark(split, cfg, protocol="temporal_user", data=SPEC)
    # deterministic models once, stochastic ones per seed
    assert [(r.model, r.seed) for r in res.runs] == [("pop", 0), ("ease", 0), ("ials", 0),
                                                      ("ials", 1)]
    paths = write_report(res, tmp_path)
    rows = json.loads(paths["results"].read_text())
    assert set(rows[0]) >= {"model", "params", "seed", "protocol", "metrics", "fit_seconds"}
    assert rows[0]["protocol"] == "temporal_user" and "ndcg@10" in rows[0]["metrics"]
    text = paths["report"].read_text()
    assert "95% CI" in text and "p t-test" in text and "| ials | streamrec | 2 |" in text
    assert paths["chart"].stat().st_size > 1000
    lines = leaderboard(res.runs)
    assert [ln.mean["ndcg@10"] for ln in lines] == sorted((ln.mean["ndcg@10"] for ln in lines),
                                                         reverse=True)
    best = lines[0]
    assert best.p_ttest is None and all(ln.p_ttest is not None for ln in lines[1:])
    assert all(ln.ci[0] <= ln.mean["ndcg@10"] + 1e-9 for ln in lines)


def test_torch_runs_record_training_curves(split, tmp_path: Path):
    """A torch model's row carries its valid curve (epoch, NDCG@10, wall seconds);
    report writes training.png; models without a history have no 'training'."""
    cfg = BenchmarkConfig(models=("pop", "bprmf"), seeds=1,
                          params={"bprmf": {"epochs": 3, "eval_every": 1, "patience": 0}})
    res = run_benchmark(split, cfg, protocol="temporal_user", data=SPEC)
    paths = write_report(res, tmp_path)
    rows = {r["model"]: r for r in json.loads(paths["results"].read_text())}
    assert "training" not in rows["pop"]
    tr = rows["bprmf"]["training"]
    assert tr["epochs"] == 3 and len(tr["losses"]) == 3 and len(tr["epoch_seconds"]) == 3
    assert [v[0] for v in tr["valid"]] == [1, 2, 3]
    secs = [v[2] for v in tr["valid"]]
    assert secs == sorted(secs) and secs[0] > 0
    assert paths["training"].stat().st_size > 1000
    assert "training.png" in paths["report"].read_text()


def test_cli_benchmark(tmp_path: Path):
    res = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--events", "play,like",
                                   "--models", "pop,ease", "--seeds", "1", "--tune",
                                   "--max-trials", "2", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "leaderboard" in res.output
    assert (tmp_path / "b" / "split" / "synthetic" / "synthetic.test.inter").exists()
    assert "## Tuning" in (tmp_path / "b" / "report.md").read_text()
    bad = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--models", "nope",
                                   "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "unknown model" in bad.output


def test_cli_benchmark_fixed_params(tmp_path: Path):
    res = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--events", "play,like",
                                   "--models", "ease,pop", "--params", '{"ease": {"lam": 7.0}}',
                                   "--against", "pop", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    report = (tmp_path / "b" / "report.md").read_text()
    assert "## Paired tests against pop" in report and "| ease | pop |" in report
    assert '## Fixed hyperparameters' in report and '"lam": 7.0' in report
    rows = json.loads((tmp_path / "b" / "results.json").read_text())
    assert rows[0]["params"]["lam"] == 7.0
    for bad, msg in (("{not json", "not valid JSON"), ('{"pop": {}}', "not in --models"),
                     ('{"ease": 3}', "must map model names"), (None, "--against names")):
        opts = ["--params", bad] if bad else ["--against", "ials"]
        out = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--models", "ease", *opts,
                                       "--out", str(tmp_path / "c")])
        assert out.exit_code == 2 and msg in out.output, out.output


def test_cli_benchmark_grid(tmp_path: Path):
    res = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--events", "play,like",
                                   "--models", "ease,pop", "--seeds", "1", "--tune",
                                   "--grid", '{"ease": {"lam": [3.0, 30.0]}}',
                                   "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    report = (tmp_path / "b" / "report.md").read_text()
    assert "## Search grids (--grid" in report and '"lam": [3.0, 30.0]' in report
    assert "| ease | 3 |" in report  # the defaults and the two grid points
    for bad, msg in (('{"ease": {"alpha": [1]}}', "has no parameter(s) alpha"),
                     ('{"ease": {"lam": 3}}', "non-empty lists"),
                     ('{"ials": {"factors": [8]}}', "not in --models")):
        out = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--models", "ease",
                                       "--tune", "--grid", bad, "--out", str(tmp_path / "c")])
        assert out.exit_code == 2 and msg in out.output, out.output
    out = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--models", "ease", "--grid",
                                   '{"ease": {"lam": [3.0]}}', "--out", str(tmp_path / "c")])
    assert out.exit_code == 2 and "add --tune" in out.output, out.output


def test_resume_reuses_matching_fits_and_adds_seeds(split, tmp_path: Path):
    from streamrec.eval.report import load_runs

    params = {"bprmf": {"epochs": 2, "factors": 8}}
    first = run_benchmark(split, BenchmarkConfig(models=("pop", "bprmf"), seeds=1,
                                                 params=params), protocol="temporal_user")
    write_report(first, tmp_path)
    done = load_runs(tmp_path)
    assert [(r.model, r.seed) for r in done] == [("pop", 0), ("bprmf", 0)]
    np.testing.assert_array_equal(done[1].result.per_user["ndcg@10"],
                                  first.runs[1].result.per_user["ndcg@10"])
    checkpoints = []
    more = run_benchmark(split, BenchmarkConfig(models=("pop", "bprmf"), seeds=2, params=params),
                         protocol="temporal_user", done=done,
                         on_run=lambda partial: checkpoints.append(len(partial.runs)))
    assert [(r.model, r.seed) for r in more.runs] == [("pop", 0), ("bprmf", 0), ("bprmf", 1)]
    assert more.runs[1] is done[1]  # reused, not refitted
    assert checkpoints == [3]  # one checkpoint: the one new fit
    # other hyperparameters: nothing is reused
    other = run_benchmark(split, BenchmarkConfig(models=("bprmf",), seeds=1,
                                                 params={"bprmf": {"epochs": 1, "factors": 8}}),
                          protocol="temporal_user", done=done)
    assert other.runs[0] is not done[1]


def test_recbole_peer_gets_an_absolute_split_dir(tmp_path, monkeypatch):
    """RecBole runs inside the split directory: a relative path there would nest."""
    import stat

    from streamrec.eval import benchmark as bm

    peers = tmp_path / "peers"
    peers.mkdir()
    (peers / "run_recbole.py").write_text("# stand-in\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"  # prints run_recbole.py's JSON line: the dir it got, its cwd
    fake.write_text('#!/bin/sh\nprintf \'{"system": "fake", "test": {"NDCG@10": 0.5}, '
                    '"seconds": 1.0, "params": {"dir": "%s", "cwd": "%s"}}\\n\' "$2" "$PWD"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("STREAMREC_PEERS_DIR", str(peers))
    split = tmp_path / "run" / "split"
    split.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    run = bm.run_recbole_peer(Path("run/split"), "ml_100k", "ease", "temporal_user", venv=venv)
    assert run.params["dir"] == str(split.resolve()) == run.params["cwd"]
    assert run.metrics == {"ndcg@10": 0.5} and run.system == "fake"
