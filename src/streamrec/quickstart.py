"""The main job on the embedded default data: generate → read → clean → split → benchmark.

``streamrec quickstart`` calls :func:`run_quickstart` and prints its summary. With
``serving=True`` (the default) it then trains the serving models on the whole cleaned log
and registers them in ``workdir/registry`` (:func:`streamrec.serve.bundle.build_system`), so
``streamrec serve --registry workdir/registry`` can serve them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from streamrec.data.clean import CleanConfig
from streamrec.data.pipeline import Prepared, prepare
from streamrec.data.spec import DataSpec
from streamrec.data.splits import Split, temporal_global, write_split

#: event types that count as positive feedback for ranking (impressions, clicks without a
#: play and skips do not)
POSITIVE_EVENTS = ("play", "like")
#: the baselines the quickstart trains (defaults, one seed)
QUICKSTART_MODELS = ("pop", "itemknn", "ease", "ials", "bpr")


@dataclass
class QuickstartResult:
    world_info: dict
    prepared: Prepared
    split: Split
    data_dir: Path
    split_dir: Path
    benchmark: object | None = None  # streamrec.eval.benchmark.BenchmarkResult
    report: dict[str, Path] | None = None
    registry: Path | None = None
    registered: dict | None = None  # entry name -> ModelVersion

    def anomaly_rows(self) -> list[tuple[str, int, int, str]]:
        """``(anomaly, injected, found, where)`` comparing the generator's truth (world.json)
        with what reading and cleaning set aside or repaired."""
        injected = self.world_info.get("truth", {}).get("anomalies", {})
        bad = self.prepared.raw.bad_rows.summary()
        cleaning = self.prepared.cleaning
        if cleaning is None:
            return []
        dedupe, bots, impute = (cleaning.step(n) for n in ("drop_duplicates", "drop_bots",
                                                           "impute_missing"))
        bot_ids = self.world_info["truth"].get("bot_user_ids", [])
        q = cleaning.quarantine
        # a duplicated bot row is removed by dedupe before the bot step sees it
        bot_dupes = (q.filter((pl.col("step") == "drop_duplicates")
                              & pl.col("user_id").is_in(bot_ids)).height if q.height else 0)
        missing = sum(injected.get(k, 0) for k in ("null_country", "null_platform",
                                                   "null_length_seconds"))
        return [
            ("exact duplicate rows", injected.get("duplicate_rows", 0), dedupe.removed,
             "drop_duplicates -> quarantine"),
            ("negative durations", injected.get("negative_durations", 0),
             bad.get("negative duration", 0), "rejected while reading -> quarantine"),
            ("missing side values", missing, impute.changed, "impute_missing (+ flag column)"),
            ("bot users with events", injected.get("bot_users_active", 0),
             bots.details.get("bot_users", 0), "drop_bots"),
            ("bot events", injected.get("bot_events", 0), bots.removed + bot_dupes,
             f"drop_bots (+{bot_dupes:,} duplicated, removed by dedupe)"),
        ]


def run_quickstart(
    workdir: str | Path,
    *,
    users: int = 6_000,
    items: int = 2_500,
    days: int = 45,
    seed: int = 0,
    models: tuple[str, ...] = QUICKSTART_MODELS,
    progress: Callable[[int, int], None] | None = None,
    stage_progress: Callable[[str, int, int], None] | None = None,
    serving: bool = True,
    serving_config: object | None = None,
    serving_progress: Callable[[str], None] | None = None,
) -> QuickstartResult:
    """Generate a world into ``workdir/data``, read it back with malformed rows quarantined,
    clean it, keep the positive events (plays, likes), write a temporal_global split to
    ``workdir/split``, then fit ``models`` at their defaults on train and evaluate them on
    test (full ranking, users and items seen in train; report in ``workdir/report``).
    ``models=()`` stops after the split. ``progress(done, total)`` follows the generator,
    ``stage_progress(what, done, total)`` the training and evaluation. With ``serving``,
    the serving models (:class:`streamrec.serve.bundle.BuildConfig` ``serving_config``) are
    fitted on the whole cleaned log (every event type) and registered in
    ``workdir/registry`` with the production alias; ``serving_progress(step)`` names each
    step."""
    from streamrec.data.synthetic.world import WorldConfig, write_world

    workdir = Path(workdir)
    data_dir = workdir / "data"
    info = write_world(WorldConfig(n_users=users, n_items=items, n_days=days, seed=seed),
                       data_dir, progress=progress)
    prep = prepare(DataSpec("events", data_dir), on_bad_rows="quarantine",
                   clean=CleanConfig(keep_events=POSITIVE_EVENTS))
    prep.write_quarantine(workdir / "quarantine.csv")
    # a production-like time cut; users/items first seen after it are cold-start cases,
    # which the ranking leaderboard leaves to the serving fallbacks
    split = temporal_global(prep.dataset, 0.1, 0.1, cold="drop")
    split_dir = workdir / "split"
    write_split(split, split_dir, name="synthetic")
    res = QuickstartResult(info, prep, split, data_dir, split_dir)
    if models:
        from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark
        from streamrec.eval.report import write_report

        cfg = BenchmarkConfig(models=tuple(models), seeds=1)
        res.benchmark = run_benchmark(split, cfg, protocol="temporal_global",
                                      data="synthetic (quickstart)", progress=stage_progress)
        res.report = write_report(res.benchmark, workdir / "report")
    if serving:
        from streamrec.serve.bundle import build_system

        full = prepare(DataSpec("events", data_dir), on_bad_rows="quarantine",
                       clean=CleanConfig())
        metrics = {}
        if res.benchmark is not None:
            rows = [r for r in res.benchmark.runs if r.model == "ials"]
            if rows:
                metrics["retrieval"] = {k: float(v) for k, v in rows[0].metrics.items()
                                        if isinstance(v, int | float)}
        res.registry = workdir / "registry"
        res.registered = build_system(
            full.raw.events, full.raw.users, full.raw.items, res.registry,
            config=serving_config, metrics=metrics,
            split={"protocol": "temporal_global", "ratios": [0.8, 0.1, 0.1],
                   "note": "metrics from the quickstart benchmark; models refitted on the "
                           "whole log"},
            progress=serving_progress)
    return res
