"""The main job on the embedded default data: generate → read → clean → split.

``streamrec quickstart`` calls :func:`run_quickstart` and prints its summary; later stages
(training, evaluation, registry, serving) are added here as they land.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamrec.data.clean import CleanConfig
from streamrec.data.pipeline import Prepared, prepare
from streamrec.data.spec import DataSpec
from streamrec.data.splits import Split, temporal_global, write_split


@dataclass
class QuickstartResult:
    world_info: dict
    prepared: Prepared
    split: Split
    data_dir: Path
    split_dir: Path

    def anomaly_rows(self) -> list[tuple[str, object]]:
        """(label, "injected → found") rows comparing the generator's truth with what
        reading and cleaning set aside."""
        truth = self.world_info.get("truth", {})
        injected = truth.get("anomalies", {})
        found: dict[str, int] = dict(self.prepared.raw.bad_rows.summary())
        if self.prepared.cleaning is not None:
            for step in self.prepared.cleaning.steps:
                found[step.step] = step.removed + step.changed
        rows: list[tuple[str, object]] = [(f"injected {k}", v) for k, v in injected.items()]
        rows += [(f"set aside: {k}", v) for k, v in found.items() if v]
        return rows


def run_quickstart(
    workdir: str | Path,
    *,
    users: int = 6_000,
    items: int = 2_500,
    days: int = 45,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> QuickstartResult:
    """Generate a world into ``workdir/data``, read it back with malformed rows quarantined,
    clean it, and write a temporal_global split to ``workdir/split``."""
    from streamrec.data.synthetic.world import WorldConfig, write_world

    workdir = Path(workdir)
    data_dir = workdir / "data"
    info = write_world(WorldConfig(n_users=users, n_items=items, n_days=days, seed=seed),
                       data_dir, progress=progress)
    prep = prepare(DataSpec("events", data_dir), on_bad_rows="quarantine", clean=CleanConfig())
    prep.write_quarantine(workdir / "quarantine.csv")
    split = temporal_global(prep.dataset, 0.1, 0.1)
    split_dir = workdir / "split"
    write_split(split, split_dir, name="synthetic")
    return QuickstartResult(info, prep, split, data_dir, split_dir)
