"""The shared pieces of the command line: the data options, ``fail`` and the benchmark
request checks (no data is read)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from streamrec.cli._data import BadRows, DataOptions, data_options
from streamrec.cli._ui import fail
from streamrec.cli.main import app
from streamrec.eval.run_benchmark import BenchmarkInputError, plan_benchmark

SHARED = ["on_bad_rows", "quarantine", "clean", "k_core", "rating_threshold", "events",
          "bot_rate", "impossible", "user_col", "item_col", "time_col", "value_col", "event_col"]


def _params(*path: str) -> list[tuple[str, object]]:
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return [(p.name, p.default) for p in cmd.params]


def test_data_options_are_declared_once_and_placed_as_before():
    names = [n for n, _ in _params("data", "ingest")]
    assert names == ["data", "out", *SHARED]
    assert dict(_params("data", "ingest"))["clean"] is True
    describe = _params("data", "describe")
    assert [n for n, _ in describe] == ["data", "as_json", "on_bad_rows", "quarantine", "clean",
                                        "user_col", "item_col", "time_col", "value_col",
                                        "event_col"]
    assert dict(describe)["clean"] is False
    bench = [n for n, _ in _params("benchmark")]
    assert bench[0] == "data" and "quarantine" not in bench and "bot_rate" not in bench
    assert bench[-9:] == ["clean", "k_core", "rating_threshold", "events", *SHARED[-5:]]
    # plot attention keeps its own --data (default and place) before its own options
    attention = [n for n, _ in _params("plot", "attention")]
    assert attention == ["out", "model_dir", "data", "sessions", "epochs", "seed",
                         "on_bad_rows", "clean"]
    assert dict(_params("plot", "attention"))["data"].startswith("synthetic-sessions")


def test_data_options_reach_the_command_as_one_object():
    seen: list[DataOptions] = []
    mini = typer.Typer()

    @mini.command()
    @data_options(filters=True, columns=False)
    def show(n: int = 1, *, opts: DataOptions) -> None:
        seen.append(opts)

    res = CliRunner().invoke(mini, ["--data", "x", "--k-core", "3", "--on-bad-rows",
                                    "quarantine"])
    assert res.exit_code == 0, res.output
    assert seen == [DataOptions("x", on_bad_rows=BadRows.quarantine, k_core=3)]


def test_clean_config_filters_without_cleaning():
    assert DataOptions("x").clean_config() is None
    cfg = DataOptions("x", k_core=5, events="play, like").clean_config()
    assert cfg.k_core == 5 and cfg.keep_events == ("play", "like") and cfg.dedupe is False
    cfg = DataOptions("x", clean=True, bot_rate=10.0).clean_config()
    assert cfg.bot_events_per_minute == 10.0 and cfg.dedupe is True


def test_fail_prints_one_escaped_line_and_exits():
    mini = typer.Typer()

    @mini.command()
    def boom(code: int = 2) -> None:
        fail("bad [path]/x", label="refused" if code == 2 else "tampered", code=code)

    res = CliRunner().invoke(mini, [])
    assert res.exit_code == 2 and res.output.strip() == "refused: bad [path]/x"
    res = CliRunner().invoke(mini, ["--code", "1"])
    assert res.exit_code == 1 and res.output.startswith("tampered: bad [path]/x")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"models": "nope"}, "unknown model(s) nope for ranking"),
    ({"protocol": "random"}, "ranking models use temporal_global"),
    ({"params": "{bad"}, "--params is not valid JSON"),
    ({"params": '{"pop": 1}'}, "--params must map model names to objects"),
    ({"params": '{"ease": {}}'}, "--params names models not in --models: ease"),
    ({"grid": '{"pop": {}}'}, "add --tune"),
    ({"grid": '{"pop": {"nope": [1]}}', "tune": True}, "pop has no parameter(s) nope"),
    ({"against": "ease"}, "--against names models not in --models: ease"),
    ({"data": "nonsense"}, "cannot read data SPEC"),
])
def test_plan_benchmark_refuses_with_the_reason(kwargs, message):
    args = {"data": "synthetic", "protocol": "temporal_user", "models": "pop"} | kwargs
    with pytest.raises(BenchmarkInputError) as info:
        plan_benchmark(args.pop("data"), args.pop("protocol"), args.pop("models"), **args)
    assert message in str(info.value)


def test_plan_benchmark_picks_the_task_and_metric():
    plan = plan_benchmark("synthetic-clicks", "random", "logistic", metric="ndcg@10")
    assert plan.ctr and plan.metric == "auc" and plan.config.tune_metric == "auc"
    plan = plan_benchmark("synthetic", "temporal_user", "pop,ease", against="ease",
                          refit="train+valid")
    assert not plan.ctr and plan.config.against == ("ease",)
    assert plan.config.refit == "train+valid"
