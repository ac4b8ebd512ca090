"""``streamrec features``: the 20 StreamRec click features and their ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from streamrec.cli._ui import console, fail, kv_table, progress_bar, spinner

features_app = typer.Typer(
    help="The 20 point-in-time StreamRec click features (user, item, context, "
    "collaborative) computed for every impression of a synthetic world, and their ranking by "
    "mutual information with the click label.",
    no_args_is_help=True,
)

DEFAULT_DATA = "synthetic:users=2000,items=800,days=30"


@features_app.command(name="rank")
def rank(
    data: Annotated[str, typer.Option(
        "--data", "-d", help="synthetic[:users=N,items=M,days=D,seed=S] (the features need the "
        "synthetic world's impressions, users and items tables)")] = DEFAULT_DATA,
    top: Annotated[int, typer.Option(help="show the TOP features (all are written)")] = 20,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="directory for feature_ranking.json and feature_ranking.png")] = None,
    max_rows: Annotated[int, typer.Option(
        help="estimate MI on a random sample of at most this many impressions")] = 100_000,
    seed: Annotated[int, typer.Option(help="seed of the sample and the MI estimator")] = 0,
) -> None:
    """Rank the 20 StreamRec features by mutual information (MI) with the click.

    Generates the synthetic world, labels every impression (clicked or not), computes the 20
    features from the events strictly before each impression (the collaborative score from an
    ALS model trained on the first 30% of the window; only the impressions after that cutoff
    are ranked), and estimates each feature's MI with the label (scikit-learn
    mutual_info_classif: kNN estimate for numeric features, counts for the two categorical
    ones). MI is in nats; 0 means no dependence. A high MI says a feature is informative on
    its own, not that a model needs it (redundant features share MI).

    Example: streamrec features rank --data synthetic:users=3000,items=1000,days=30 --out runs/fr
    """
    from streamrec.data.spec import SpecError, parse_spec, world_config_from_options
    from streamrec.data.synthetic.world import generate_world
    from streamrec.features.selection import frame_matrix, rank_features
    from streamrec.features.streamrec import FEATURES, streamrec_impressions

    try:
        spec = parse_spec(data)
        if spec.kind != "synthetic":
            raise SpecError(f"features rank needs synthetic[:users=..,items=..,days=..] data "
                            f"(impressions with users and items tables), got {data!r}")
        cfg = world_config_from_options(spec.options)
        with progress_bar("generating synthetic world") as cb:
            world = generate_world(cfg, progress=cb)
        with spinner("computing the 20 features"):
            frame = streamrec_impressions(world, history_len=0)
        X, discrete = frame_matrix(frame, FEATURES)
        y = frame["label"].to_numpy()
        if len(set(y.tolist())) < 2:
            raise ValueError("every impression has the same label; use a larger world")
        with spinner("estimating mutual information"):
            ranking = rank_features(X, y, FEATURES, discrete_mask=discrete, seed=seed,
                                    max_rows=max_rows)
    except (SpecError, ValueError) as exc:
        fail(str(exc))

    is_discrete = dict(zip(FEATURES, discrete.tolist(), strict=True))
    table = Table(title=f"features by mutual information with the click ({data})",
                  title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("feature", style="cyan")
    table.add_column("MI (nats)", justify="right")
    table.add_column("kind")
    for k, (name, mi) in enumerate(ranking[:top], start=1):
        table.add_row(str(k), name, f"{mi:.4f}", "categorical" if is_discrete[name] else "numeric")
    console.print(table)
    rows = [("impressions ranked", frame.height), ("click rate", float(frame["label"].mean())),
            ("MI sample rows", min(frame.height, max_rows))]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        doc = {"data": data, "rows": frame.height,
               "positive_rate": float(frame["label"].mean()),
               "sample_rows": min(frame.height, max_rows), "seed": seed,
               "ranking": [{"feature": n, "mi": mi, "discrete": is_discrete[n]}
                           for n, mi in ranking]}
        (out / "feature_ranking.json").write_text(json.dumps(doc, indent=2))
        _bar_chart(ranking, out / "feature_ranking.png", title=f"MI with the click · {data}")
        rows += [("written", str(out / "feature_ranking.json")),
                 ("chart", str(out / "feature_ranking.png"))]
    console.print(kv_table("feature ranking", rows))


def _bar_chart(ranking: list[tuple[str, float]], path: Path, *, title: str) -> Path:
    """A horizontal bar chart of the ranking (highest at the top) as PNG (Agg canvas)."""
    from matplotlib.figure import Figure

    names = [n for n, _ in ranking][::-1]
    values = [v for _, v in ranking][::-1]
    fig = Figure(figsize=(8, 0.32 * len(ranking) + 1.2), dpi=110, layout="constrained")
    ax = fig.subplots()
    ax.barh(names, values, color="#3b78b0")
    ax.set_xlabel("mutual information with the click (nats)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    fig.savefig(path, format="png")
    return path
