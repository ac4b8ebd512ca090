"""The command line, end to end on small generated data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from streamrec.cli.main import app

runner = CliRunner()


def _run(*args: str, code: int = 0):
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, res.output
    return res


def test_every_command_has_help():
    for cmd in ([], ["data"], ["data", "generate"], ["data", "describe"], ["data", "ingest"],
                ["data", "split"], ["quickstart"]):
        out = _run(*cmd, "--help").output
        assert "Usage" in out


def test_generate_describe_split_recbole(tmp_path: Path):
    world = tmp_path / "world"
    _run("data", "generate", "--out", str(world), "--users", "300", "--items", "150",
         "--days", "10", "--seed", "3")
    for f in ("events.parquet", "users.parquet", "items.parquet", "world.json"):
        assert (world / f).exists()
    # the generated world has injected negative durations: default policy stops with file/field
    res = _run("data", "describe", "--data", f"events:{world}", "--json", code=2)
    assert "events.parquet" in res.output and "duration" in res.output
    res = _run("data", "describe", "--data", f"events:{world}", "--json", "--on-bad-rows",
               "quarantine", "--quarantine", str(tmp_path / "q.csv"))
    info = json.loads(res.stdout[res.stdout.index("{"):])
    truth = json.loads((world / "world.json").read_text())
    assert info["rejected_rows"] > 0
    assert (tmp_path / "q.csv").exists()
    assert info["interactions"] + info["rejected_rows"] == truth["truth"]["rows"]

    out = tmp_path / "split"
    _run("data", "split", "--data", f"events:{world}", "--protocol", "temporal_user",
         "--out", str(out), "--format", "recbole", "--name", "tiny", "--on-bad-rows", "quarantine",
         "--clean")
    for part in ("train", "valid", "test"):
        text = (out / "tiny" / f"tiny.{part}.inter").read_text().splitlines()
        assert text[0].split("\t") == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
        assert len(text) > 1


def test_events_csv_with_column_mapping_and_bad_rows(tmp_path: Path):
    p = tmp_path / "log.csv"
    p.write_text("who,what,when\n1,10,100\n2,11,oops\n1,12,300\n")
    res = _run("data", "describe", "--data", f"events:{p}", "--user-col", "who",
               "--item-col", "what", "--time-col", "when", code=2)
    assert "log.csv" in res.output and "line 3" in res.output and "when" in res.output
    q = tmp_path / "bad.csv"
    res = _run("data", "describe", "--data", f"events:{p}?user=who&item=what&time=when",
               "--on-bad-rows", "quarantine", "--quarantine", str(q), "--json")
    info = json.loads(res.stdout[res.stdout.index("{"):])
    assert info["interactions"] == 2 and info["rejected_rows"] == 1
    bad = pl.read_csv(q)
    assert bad["where"].to_list() == [f"{p}:3"]


def test_bad_spec_and_missing_path(tmp_path: Path):
    res = _run("data", "describe", "--data", "nonsense", code=2)
    assert "SPEC" in res.output
    res = _run("data", "describe", "--data", f"recbole:{tmp_path / 'nope'}", code=2)
    assert "no such file" in res.output


def test_quickstart_small(tmp_path: Path):
    res = _run("quickstart", "--workdir", str(tmp_path / "qs"), "--users", "400", "--items", "200",
               "--days", "12")
    assert "temporal_global" in res.output
    for part in ("train", "valid", "test"):
        assert (tmp_path / "qs" / "split" / f"{part}.parquet").exists()
    # the baselines are trained and the leaderboard printed and written
    assert "leaderboard" in res.output
    for model in ("pop", "itemknn", "ease", "ials", "bpr"):
        assert model in res.output
    rows = json.loads((tmp_path / "qs" / "report" / "results.json").read_text())
    assert {r["model"] for r in rows} == {"pop", "itemknn", "ease", "ials", "bpr"}
    assert all(0.0 <= r["metrics"]["ndcg@10"] <= 1.0 for r in rows)
    assert (tmp_path / "qs" / "report" / "leaderboard.png").stat().st_size > 1000
    # a trained, registered system: the four serving entries at the production alias
    from streamrec.serve.registry import ModelRegistry

    reg = ModelRegistry(tmp_path / "qs" / "registry")
    assert set(reg.names()) == {"retrieval", "ranker", "session", "catalog"}
    for name in reg.names():
        mv = reg.resolve(name, "production")
        reg.verify(mv)
    assert reg.resolve("ranker").manifest["metrics"]["test_auc"] > 0.5
    # the walk-through of `make demo` runs against it over real HTTP
    res = _run("demo", "--workdir", str(tmp_path / "qs"))
    for step in ("recommendations after the events", "cold start", "similar items",
                 "next items of the live session", "add a new item", "bad input", "metrics"):
        assert step in res.output, step
    assert '"changed": true' in res.output


def test_quickstart_finds_every_injected_anomaly(tmp_path: Path):
    from streamrec.quickstart import run_quickstart

    res = run_quickstart(tmp_path / "qs", users=600, items=300, days=15, seed=4, models=(),
                         serving=False)
    rows = {name: (injected, found) for name, injected, found, _ in res.anomaly_rows()}
    assert set(rows) == {"exact duplicate rows", "negative durations", "missing side values",
                         "bot users with events", "bot events"}
    for name, (injected, found) in rows.items():
        assert injected == found, name
    assert rows["exact duplicate rows"][0] > 0 and rows["negative durations"][0] > 0
    assert (tmp_path / "qs" / "quarantine.csv").exists()
