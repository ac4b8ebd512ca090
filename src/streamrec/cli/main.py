"""The ``streamrec`` command line (typer): the app assembled from one module per command
group. Every command has ``--help``. Data is named by a SPEC (see ``streamrec data --help``).

The modules import only typer and rich at the top; each command imports what it runs, so
that ``streamrec --help`` stays fast.
"""

from __future__ import annotations

import typer

from streamrec.cli.benchmark import benchmark
from streamrec.cli.data import data_app
from streamrec.cli.features import features_app
from streamrec.cli.info import list_models, version
from streamrec.cli.plot import plot_app
from streamrec.cli.quickstart import quickstart
from streamrec.cli.registry import registry_app
from streamrec.cli.report import report_app
from streamrec.cli.serve import demo, serve

app = typer.Typer(
    name="streamrec",
    help="StreamRec: an end-to-end deep-learning recommender system for content streaming.\n\n"
    "Start with `streamrec quickstart`, which generates a synthetic StreamRec world, cleans "
    "it, splits it and prints a summary.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
# `streamrec --help` lists the commands in the order registered here, then the groups
app.command(name="serve")(serve)
app.command(name="demo")(demo)
app.command()(version)
app.command()(benchmark)
app.command(name="models")(list_models)
app.command()(quickstart)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(report_app, name="report")
app.add_typer(registry_app, name="registry")
app.add_typer(plot_app, name="plot")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
