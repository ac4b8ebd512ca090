"""``streamrec plot``: item embeddings and attention maps of fitted models (the analysis is
:mod:`streamrec.eval.embeddings` and :mod:`streamrec.eval.attention`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from streamrec.cli._data import DataOptions, Protocol, ProtocolOpt, data_options, prepare_data
from streamrec.cli._ui import console, fail, kv_table, spinner

if TYPE_CHECKING:
    import numpy as np

plot_app = typer.Typer(help="Plots of fitted models.", no_args_is_help=True)
F = TypeVar("F", bound=Callable[..., Any])

#: the world ``plot attention`` trains on by default (small: seconds per epoch on 2 cores)
ATTENTION_DATA = "synthetic-sessions:users=3000,items=600"

PngOpt = Annotated[Path, typer.Option("--out", "-o", help="PNG file to write")]
SavedModelOpt = Annotated[Path | None, typer.Option(
    "--model-dir", help="a model saved with model.save(DIR), fitted on the train part of "
    "--data split by --protocol")]
SavedAttentionOpt = Annotated[Path | None, typer.Option(
    "--model-dir", help="a saved lstm_attention (model.save(DIR)) fitted on the train part "
    "of --data split by case_study (seed 0); default: train a small one now")]


def _plot_command(name: str) -> Callable[[F], F]:
    """A ``streamrec plot NAME`` command reading --data, --on-bad-rows and --clean."""
    def register(func: F) -> F:
        return plot_app.command(name=name)(data_options(quarantine=False, columns=False)(func))

    return register


@_plot_command("embeddings")
def plot_embeddings(
    out: PngOpt,
    model_dir: SavedModelOpt = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="instead of --model-dir: fit this model (e.g. two_tower, bprmf, "
        "ials) on the train part now, early stopping on valid")] = None,
    params: Annotated[str | None, typer.Option(
        help='with --model: hyperparameters as JSON, e.g. \'{"factors": 32, "epochs": 20}\'')
    ] = None,
    protocol: ProtocolOpt = Protocol.temporal_user,
    color_by: Annotated[str | None, typer.Option(
        "--color-by", help="item column to colour by (default: genres/class/category; the "
        "first token of multi-genre items)")] = None,
    max_items: Annotated[int, typer.Option(help="plot a random sample of at most this many "
                                           "items (t-SNE is quadratic)")] = 3000,
    seed: Annotated[int, typer.Option(help="seed of the fit, the sample and t-SNE")] = 0,
    *,
    opts: DataOptions,
) -> None:
    """Draw a model's item embeddings in 2-D: PCA and t-SNE side by side in one PNG,
    coloured by genre/category.

    Give either --model-dir (a saved model; --data and --protocol must reproduce the split it
    was trained on, so that item indices map to the right items) or --model NAME to fit one
    now. Works for models with item vectors: two_tower, bprmf, ials, mf...

    Example: streamrec plot embeddings --data recbole:path/to/ml-100k --model two_tower
    --params '{"epochs": 30}' --out items.png"""
    from streamrec.eval.embeddings import EmbeddingInputError, embedding_plot

    if (model_dir is None) == (model is None):
        fail("give exactly one of --model-dir and --model")
    prep = prepare_data(opts, out.parent / "quarantine.csv")
    try:
        shown = embedding_plot(prep.dataset, out, protocol=protocol.value, model_dir=model_dir,
                               model=model, params=json.loads(params) if params else None,
                               color_by=color_by, max_items=max_items, seed=seed,
                               data=opts.spec, step=spinner)
    except (json.JSONDecodeError, EmbeddingInputError) as exc:
        fail(str(exc))
    console.print(kv_table("embedding plot", [("model", shown.model_name),
                                              ("items", shown.n_items), ("dims", shown.dims),
                                              ("written", str(shown.path))]))


@_plot_command("attention")
def plot_attention_cmd(
    out: PngOpt,
    model_dir: SavedAttentionOpt = None,
    data: Annotated[str, typer.Option(
        "--data", "-d", help=f"data SPEC of sessions (every user is a session; default "
        f"{ATTENTION_DATA}; see `streamrec data --help`)")] = ATTENTION_DATA,
    sessions: Annotated[int, typer.Option(
        "--sessions", "-n", help="test sessions shown (rows), about a third of each pattern")] = 8,
    epochs: Annotated[int, typer.Option(
        help="training epochs without --model-dir (early stopping on valid)")] = 8,
    seed: Annotated[int, typer.Option(help="seed of the fit and of the sessions shown")] = 0,
    *,
    opts: DataOptions,
) -> None:
    """Draw the attention of an lstm_attention model over the items of test sessions: a
    heatmap PNG with one row per session and one column per position (the latest on the
    right), each cell annotated with its item's category.

    Every test session (case_study split, seed 0) is classified by its weights:
    recency-dominant (the latest item holds >= 50% of the weight), anchor-item (one earlier
    item, repeats summed, holds >= 35% and more than the latest), category-coherent (>= 80%
    on items of the latest item's category, spread over 2+ items with >= 10% each) or mixed.
    The figure shows a few sessions of each pattern; the shares of all test sessions are in
    its title and printed.

    Without --model-dir, trains a small lstm_attention (embed 32, hidden 64, 1 layer, the
    last 20 items, lr 0.01) on the case_study train part, with a progress bar; on the
    default --data (3,000 sessions, 600 items) that takes well under a minute on 2 CPU cores.

    Example: streamrec plot attention --out attention.png"""
    from streamrec.eval.attention import AttentionInputError, attention_study

    if sessions < 1:
        fail("--sessions must be >= 1")
    prep = prepare_data(opts, out.parent / "quarantine.csv")
    try:
        study = attention_study(prep.dataset, out, model_dir=model_dir, epochs=epochs,
                                sessions=sessions, seed=seed, data=opts.spec, step=spinner)
    except AttentionInputError as exc:
        fail(str(exc))
    console.print(_pattern_table(study.kind, study.shares, f"attention patterns of "
                                 f"{study.n_sessions:,} test sessions"))
    info: list[tuple[str, object]] = [
        ("model", str(model_dir) if not study.trained else f"{study.model_name} (trained now)")]
    if study.history is not None:
        info += [("epochs", len(study.history.losses)),
                 ("valid ndcg@10 (best)", study.history.best_value)]
    info += [("sessions shown", study.shown), ("positions", study.positions),
             ("written", str(study.path))]
    console.print(kv_table("attention plot", info))


def _pattern_table(kind: np.ndarray, shares: dict[str, float], title: str) -> Table:
    """Share and count of test sessions per attention pattern, with the rule of each."""
    import numpy as np

    rules = ("latest item >= 50% of the weight",
             "one earlier item (repeats summed) >= 35% and above the latest",
             ">= 80% on the latest item's category, 2+ items >= 10%",
             "none of the above")
    counts = np.bincount(kind, minlength=len(shares))
    t = Table(title=title, title_justify="left")
    for col in ("pattern", "share", "sessions", "rule"):
        t.add_column(col, justify="right" if col in ("share", "sessions") else "left")
    for i, (k, v) in enumerate(shares.items()):
        t.add_row(k, f"{v:.1%}", f"{int(counts[i]):,}", rules[i])
    return t
