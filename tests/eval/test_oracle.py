"""The generator's Bayes-optimal ranking ("oracle") in session benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.data.pipeline import prepare
from streamrec.data.splits import TEST, assign_case_study, case_study
from streamrec.data.synthetic.sessions import SessionConfig, generate_sessions, oracle_hit_mass
from streamrec.eval.oracle import oracle_next_item, world_rows
from streamrec.eval.protocol import evaluate_next_item
from streamrec.eval.report import ORACLE_SYSTEM, best_streamrec, leaderboard
from streamrec.models.sequential.base import next_item_examples
from streamrec.models.zoo import create

SPEC = "synthetic-sessions:users=600,items=120"


@pytest.fixture(scope="module")
def world():
    return generate_sessions(SessionConfig(n_users=600, n_items=120), 0)


@pytest.fixture(scope="module")
def split(world):
    return case_study(world.dataset)


def _fit(name: str, world, split):
    kw = {}
    if name == "pop_last_category":
        ids = np.asarray(split.item_vocab.ids[: split.train.n_items], dtype=np.int64)
        kw["item_categories"] = world.world_item_category[ids]
    return create(name).fit(split.train, valid=split.valid, **kw)


def test_oracle_examples_match_next_item_protocol(world, split):
    res = oracle_next_item(world, split, batch_size=97)
    _, targets, owners = next_item_examples(split.test, 1)
    assert np.array_equal(res.users, owners)
    assert len(res.per_user["hit@10"]) == len(targets)
    # batch size does not change anything
    again = oracle_next_item(world, split, batch_size=4096)
    for k, v in res.per_user.items():
        assert np.array_equal(v, again.per_user[k])
    # with cold="keep" the test part keeps the dataset's row order
    rows = np.flatnonzero(assign_case_study(world.dataset.interactions) == TEST)
    ext = split.user_vocab.ids[split.test.users]
    assert np.array_equal(world_rows(world, ext, split.test.timestamps), rows)


def test_oracle_beats_baselines_and_matches_hit_mass(world, split):
    oracle = oracle_next_item(world, split)
    hit = oracle.per_user["hit@10"]
    for name in ("pop", "markov", "pop_last_category"):
        res = evaluate_next_item(_fit(name, world, split), split.test, ks=(10, 20))
        assert np.array_equal(res.users, oracle.users)  # the same examples, paired
        assert hit.mean() >= res.per_user["hit@10"].mean(), name
        assert oracle.means()["ndcg@10"] >= res.means()["ndcg@10"], name
    # the expected hit of the Bayes-optimal top 10 is its probability mass
    order = split.test.chronological_order()
    u = split.test.users[order]
    first = np.r_[True, u[1:] != u[:-1]]
    rows = order[~first]
    w_rows = world_rows(world, split.user_vocab.ids[split.test.users[rows]],
                        split.test.timestamps[rows])
    probs = world.next_item_probs(w_rows, item_ids=split.item_vocab.ids[: split.train.n_items])
    mass = oracle_hit_mass(probs.astype(np.float64), 10)
    se = np.sqrt((mass * (1 - mass)).sum()) / len(mass)
    assert abs(hit.mean() - mass.mean()) < 4 * se + 1e-9


def test_oracle_needs_its_own_world(split):
    other = generate_sessions(SessionConfig(n_users=600, n_items=120), 1)
    with pytest.raises(ValueError, match="session world"):
        oracle_next_item(other, split)


def test_cli_pipeline_keeps_the_world_rows(world):
    ds = prepare(SPEC).dataset
    for col in ("users", "items", "timestamps"):
        assert np.array_equal(getattr(ds.interactions, col), getattr(world.dataset.interactions, col))


def test_cli_benchmark_adds_oracle_and_ratio(tmp_path: Path):
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["benchmark", "--data", SPEC, "--protocol", "case_study",
                                   "--models", "pop,markov,pop_last_category", "--seeds", "1",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "hit@10 / oracle" in res.output
    rows = json.loads((out / "results.json").read_text())
    oracle = [r for r in rows if r["model"] == "oracle"]
    assert len(oracle) == 1 and oracle[0]["system"] == ORACLE_SYSTEM
    best_hit = max(r["metrics"]["hit@10"] for r in rows if r["system"] == "streamrec")
    assert oracle[0]["metrics"]["hit@10"] >= best_hit
    report = (out / "report.md").read_text()
    assert "hit@10 / oracle" in report
    assert "paired tests against the best StreamRec model, **oracle**" not in report
    assert "| oracle | generator |" in report and "Paired tests against oracle" in report
    oracle_row = next(ln for ln in report.splitlines() if ln.startswith("| oracle |"))
    assert "| 1.000 |" in oracle_row
    per_user = np.load(out / "per_user.npz")
    assert len(per_user["oracle/0/hit@10"]) == len(per_user["markov/0/hit@10"])


def test_leaderboard_best_is_never_the_oracle(world, split):
    from streamrec.eval.benchmark import Run

    runs = []
    for name in ("pop", "markov"):
        r = evaluate_next_item(_fit(name, world, split), split.test)
        runs.append(Run(name, "streamrec", {}, 0, "case_study", r.means(), 0.0, result=r))
    o = oracle_next_item(world, split)
    runs.append(Run("oracle", ORACLE_SYSTEM, {}, 0, "case_study", o.means(), 0.0, result=o))
    lines = leaderboard(runs, "ndcg@10", n_boot=50)
    assert lines[0].model == "oracle"
    best = best_streamrec(lines)
    assert best is not None and best.model == "markov"
    assert best.p_ttest is None and lines[0].p_ttest is not None
