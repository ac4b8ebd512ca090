"""What ``streamrec benchmark`` does, without the console: check a request
(:func:`plan_benchmark`), then run it on a prepared dataset (:func:`run_ranking`: the split,
the models, the peers on the same split files and, on synthetic sessions, the generator's
oracle) or on click impressions (:func:`run_click`), writing the report after every test fit.

Progress is shown through :class:`Hooks` (quiet by default)::

    plan = plan_benchmark("synthetic-sessions", "case_study", "pop,gru4rec", seeds=1)
    outcome = run_ranking(plan, prepare("synthetic-sessions").dataset, Path("runs/s"))
    outcome.paths["report"]
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamrec.eval.benchmark import BenchmarkConfig, BenchmarkResult, Run

if TYPE_CHECKING:
    import numpy as np

    from streamrec.data.dataset import Dataset
    from streamrec.data.splits import Split

__all__ = ["QUIET", "BenchmarkInputError", "BenchmarkOutcome", "BenchmarkPlan", "Hooks",
           "item_categories", "model_grids", "model_params", "oracle_run", "plan_benchmark",
           "recbole_name", "run_click", "run_ranking"]

class BenchmarkInputError(ValueError):
    """A request that cannot run: unknown models, a protocol of the other task, bad JSON,
    unreadable click data. The message says what to change."""


def _no_progress(done: int, total: int, description: str | None = None) -> None:
    return None


def _quiet_bar(description: str) -> AbstractContextManager[Callable[..., None]]:
    return nullcontext(_no_progress)


@dataclass(frozen=True)
class Hooks:
    """How a run shows its progress.

    Attributes
    ----------
    progress : callable
        ``progress(description)`` -> context manager yielding ``cb(done, total, what)``.
    step : callable
        ``step(description)`` -> context manager around work of unknown length.
    note : callable
        ``note(text)``: something worth saying (e.g. that earlier fits are reused).
    warn : callable
        ``warn(what, why)``: something skipped, the run goes on.
    """

    progress: Callable[[str], AbstractContextManager[Callable[..., None]]] = _quiet_bar
    step: Callable[[str], AbstractContextManager[Any]] = nullcontext
    note: Callable[[str], None] = lambda text: None
    warn: Callable[[str, str], None] = lambda what, why: None


QUIET = Hooks()


@dataclass(frozen=True)
class BenchmarkPlan:
    """A checked request: the task, what to fit, and the metric of the leaderboard."""

    data: str
    protocol: str
    ctr: bool
    config: BenchmarkConfig
    metric: str


@dataclass
class BenchmarkOutcome:
    """The result with its oracle and peer rows, the files written and the test size."""

    result: BenchmarkResult
    paths: dict[str, Path]
    metric: str
    n_test: int


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(m.strip() for m in (text or "").split(",") if m.strip())


def plan_benchmark(data: str, protocol: str, models: str, *, task: str = "auto", seeds: int = 3,
                   tune: bool = False, max_trials: int = 24, tune_seeds: int = 1,
                   params: str | None = None, grid: str | None = None,
                   metric: str = "ndcg@10", against: str | None = None,
                   refit: str = "train") -> BenchmarkPlan:
    """Check a request as the command line gives it (comma-separated names, JSON texts).

    ``task`` is ``ranking``, ``ctr`` or ``auto`` (ctr for synthetic-clicks data or models
    that exist only as click models). Raises :class:`BenchmarkInputError`.
    """
    from streamrec.data.spec import SpecError
    from streamrec.eval.ctr import CTR_METRICS, CTR_PROTOCOLS, is_ctr_task
    from streamrec.models.zoo import available

    names = _names(models)
    try:
        ctr = task == "ctr" or (task == "auto" and is_ctr_task(data, names))
    except SpecError as exc:
        raise BenchmarkInputError(str(exc)) from None
    kind = "ctr" if ctr else "ranking"
    unknown = [m for m in names if m not in available(kind)]
    if unknown:
        raise BenchmarkInputError(f"unknown model(s) {', '.join(unknown)} for {kind}; "
                                  f"available: {', '.join(available(kind))}")
    if ctr != (protocol in CTR_PROTOCOLS):
        use = (f"click models use --protocol {' or '.join(CTR_PROTOCOLS)}" if ctr else
               "ranking models use temporal_global, temporal_user, leave_last_out, random_user, "
               "case_study or session_temporal")
        raise BenchmarkInputError(f"protocol {protocol} is for "
                                  f"{'ranking' if ctr else 'click prediction'}; {use}")
    fixed = model_params(params, names)
    grids = model_grids(grid, names, kind)
    if grids and not tune:
        raise BenchmarkInputError("--grid is what --tune searches; add --tune (or fix single "
                                  "values with --params)")
    refs = _names(against)
    if any(m not in names for m in refs):
        raise BenchmarkInputError(f"--against names models not in --models: "
                                  f"{', '.join(m for m in refs if m not in names)}")
    config = BenchmarkConfig(models=names, seeds=seeds, tune=tune, max_trials=max_trials,
                             params=fixed, against=refs, tune_seeds=tune_seeds, grids=grids,
                             tune_metric="auc" if ctr else metric)
    if ctr:
        metric = metric if metric in CTR_METRICS else "auc"
    else:
        config = replace(config, refit=refit)
    return BenchmarkPlan(data, protocol, ctr, config, metric)


def model_params(text: str | None, names: Sequence[str],
                 option: str = "--params") -> dict[str, dict]:
    """``--params`` (or ``option``) JSON -> {model: {param: value}}, checked against the
    chosen models."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkInputError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise BenchmarkInputError(f"{option} must map model names to objects, e.g. "
                                  '\'{"neumf": {"epochs": 20}}\'')
    extra = sorted(set(value) - set(names))
    if extra:
        raise BenchmarkInputError(f"{option} names models not in --models: {', '.join(extra)}")
    return value


def model_grids(text: str | None, names: Sequence[str], kind: str) -> dict[str, dict]:
    """``--grid`` JSON -> {model: {param: [values]}}: models among ``names``, parameters
    their constructors take, every value list non-empty."""
    from streamrec.models.zoo import create

    grids = model_params(text, names, option="--grid")
    for model, grid in grids.items():
        known = create(model, kind).get_params()
        unknown = sorted(set(grid) - set(known))
        if unknown:
            raise BenchmarkInputError(f"--grid: {model} has no parameter(s) "
                                      f"{', '.join(unknown)}; it takes {', '.join(sorted(known))}")
        bad = [k for k, v in grid.items() if not isinstance(v, list) or not v]
        if bad:
            raise BenchmarkInputError(f"--grid: {model}'s {', '.join(bad)} must be non-empty "
                                      'lists of values, e.g. {"lr": [0.001, 0.003]}')
    return grids


def recbole_name(name: str) -> str:
    """RecBole treats some names (``ml-100k``) as its bundled examples and looks for them
    in its own package; underscores keep the split files found where they are written."""
    return name.replace("-", "_")


def _earlier_runs(out: Path, resume: bool, hooks: Hooks) -> list[Run]:
    from streamrec.eval.report import load_runs

    done = load_runs(out) if resume else []
    if done:
        hooks.note(f"resuming: {len(done)} earlier test fit(s) in {out / 'results.json'}")
    return done


def run_ranking(plan: BenchmarkPlan, dataset: Dataset, out: Path, *, resume: bool = False,
                peers: Sequence[str] = (), peer_models: str | None = None,
                hooks: Hooks = QUIET) -> BenchmarkOutcome:
    """Split ``dataset`` by the plan's protocol (also written as RecBole files under
    OUT/split for the peers), benchmark the models, add the peers' rows and, on
    synthetic-sessions data with a session protocol, the generator's oracle row; write
    OUT/results.json, OUT/report.md and OUT/leaderboard.png."""
    from streamrec.data.spec import parse_spec
    from streamrec.data.splits import make_split, write_split
    from streamrec.eval.benchmark import SESSION_PROTOCOLS, run_benchmark
    from streamrec.eval.report import write_report

    sp = make_split(dataset, plan.protocol)
    name = recbole_name(dataset.name)
    split_dir = out / "split"
    write_split(sp, split_dir, name=name, fmt="recbole")
    done = _earlier_runs(out, resume, hooks)
    with hooks.progress("benchmark") as cb:
        result = run_benchmark(sp, plan.config, protocol=plan.protocol, data=plan.data,
                               item_categories=item_categories(dataset, sp),
                               progress=lambda what, d, total: cb(d, total, what),
                               dataset=dataset, done=done,
                               on_run=lambda partial: write_report(partial, out,
                                                                   metric=plan.metric))
    for peer in peers:
        result.runs += _peer_runs(peer, plan, split_dir, name, peer_models, hooks)
    if plan.protocol in SESSION_PROTOCOLS and parse_spec(plan.data).kind == "synthetic-sessions":
        with hooks.step("oracle: the generator's Bayes-optimal ranking"):
            result.runs.append(oracle_run(plan.data, sp, plan.config, plan.protocol))
    paths = write_report(result, out, metric=plan.metric)
    return BenchmarkOutcome(result, paths, plan.metric, len(sp.test))


def _peer_runs(peer: str, plan: BenchmarkPlan, split_dir: Path, name: str,
               peer_models: str | None, hooks: Hooks) -> list[Run]:
    """The runs of one peer system on the split files; a model it cannot run is skipped
    with a warning (a missing peers venv must not cost the benchmark already done)."""
    from streamrec.eval.benchmark import RECBOLE_MODELS, run_recbole_peer

    todo = ([m.strip() for m in peer_models.split(",")] if peer_models
            else [m for m in plan.config.models if m in RECBOLE_MODELS])
    # one run per RecBole model (bpr and bprmf are both RecBole's BPR)
    todo = list({RECBOLE_MODELS.get(m, m): m for m in reversed(todo)}.values())[::-1]
    runs = []
    for m in todo:
        with hooks.step(f"{peer} {m}"):
            try:
                runs.append(run_recbole_peer(split_dir, name, m, plan.protocol))
            except (FileNotFoundError, RuntimeError) as exc:
                hooks.warn(f"peer {peer} {m} skipped", str(exc))
    return runs


def run_click(plan: BenchmarkPlan, out: Path, *, resume: bool = False,
              hooks: Hooks = QUIET) -> BenchmarkOutcome:
    """Load the plan's click impressions (encoders fitted on train only), benchmark the
    click models and write the report. Unreadable data raises :class:`BenchmarkInputError`."""
    from streamrec.data.spec import SpecError
    from streamrec.eval.ctr import load_ctr_split, run_ctr_benchmark
    from streamrec.eval.report import write_report

    with hooks.step(f"loading {plan.data} (features fitted on train only)"):
        try:
            sp = load_ctr_split(plan.data, plan.protocol)
        except (SpecError, FileNotFoundError, ValueError) as exc:
            raise BenchmarkInputError(str(exc)) from None
    done = _earlier_runs(out, resume, hooks)
    with hooks.progress("benchmark") as cb:
        result = run_ctr_benchmark(sp, plan.config, protocol=plan.protocol, data=plan.data,
                                   progress=lambda what, d, total: cb(d, total, what),
                                   done=done,
                                   on_run=lambda partial: write_report(partial, out,
                                                                       metric=plan.metric))
    paths = write_report(result, out, metric=plan.metric)
    return BenchmarkOutcome(result, paths, plan.metric, len(sp.test))


def oracle_run(data: str, sp: Split, config: BenchmarkConfig, protocol: str) -> Run:
    """The ``oracle`` Run of a synthetic-sessions benchmark: the world regenerated from the
    SPEC's options (deterministic), ranked by its exact next-item distribution on ``sp.test``."""
    from streamrec.data.spec import parse_spec, session_config_from_options
    from streamrec.data.synthetic.sessions import generate_sessions
    from streamrec.eval.oracle import oracle_next_item
    from streamrec.eval.report import ORACLE_SYSTEM

    parsed = parse_spec(data)
    start = time.perf_counter()
    cfg, seed = session_config_from_options(parsed.options)
    world = generate_sessions(cfg, seed)
    generated = time.perf_counter()
    res = oracle_next_item(world, sp, ks=config.ks, batch_size=config.batch_size)
    return Run("oracle", ORACLE_SYSTEM, {"seed": seed, **parsed.options}, 0, protocol,
               res.means(), generated - start, time.perf_counter() - generated, res)


def item_categories(dataset: Dataset, sp: Split) -> np.ndarray | None:
    """Category code per train item index (first genre/category token), or None."""
    import numpy as np
    import polars as pl

    items = dataset.items
    if items is None:
        return None
    col = next((c for c in ("category", "genres", "genre", "class") if c in items.columns), None)
    if col is None:
        return None
    c = pl.col(col)
    if isinstance(items.schema[col], pl.List):  # token_seq columns arrive as lists
        c = c.list.first()
    first = items.select(pl.col("item_id"), c.cast(pl.String).str.split(by=" ").list.first()
                         .str.split("|").list.first().alias("cat"))
    ids = pl.DataFrame({"item_id": sp.item_vocab.decode(np.arange(sp.train.n_items))})
    ids = ids.with_columns(pl.col("item_id").cast(first.schema["item_id"]))
    cats = ids.join(first, on="item_id", how="left")["cat"].fill_null("?")
    return cats.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
