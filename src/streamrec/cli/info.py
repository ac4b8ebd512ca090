"""``streamrec version`` and ``streamrec models``."""

from __future__ import annotations

from streamrec import __version__
from streamrec.cli._ui import console


def version() -> None:
    """Print the StreamRec version."""
    console.print(__version__)


def list_models() -> None:
    """List the registered models (ranking, then click prediction: task "ctr") with their
    default hyperparameters and tuning grid."""
    from rich.table import Table

    from streamrec.models.zoo import available, get_class

    t = Table(title="models", title_justify="left")
    for c in ("name", "task", "class", "defaults", "tuning grid"):
        t.add_column(c)
    for kind in ("ranking", "ctr"):
        for n in available(kind):
            cls = get_class(n, kind)
            t.add_row(n, kind, cls.__name__, fmt_params(cls().get_params()),
                      fmt_params(getattr(cls, "search_space", {})))
    console.print(t)


def fmt_params(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())
