"""The data options of the commands that read a SPEC (``data describe|ingest|split``,
``benchmark``, ``plot embeddings|attention``), declared once and handed to each command as
one :class:`DataOptions` by :func:`data_options`; :func:`prepare_data` turns them into a
cleaned, encoded dataset."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_type_hints

import typer
from rich.markup import escape

from streamrec.cli._ui import err_console, fail, progress_bar, spinner

if TYPE_CHECKING:
    from streamrec.data.clean import CleanConfig
    from streamrec.data.pipeline import Prepared

SPEC_HELP = (
    "Data SPEC: synthetic[:users=N,items=M,days=D,seed=S] | "
    "synthetic-sessions[:users=N,items=M,seed=S] | movielens:DIR | recbole:DIR | "
    "sasrec:FILE | events:FILE_OR_DIR[?user=COL&item=COL&time=COL&value=COL]"
)


BadRows = StrEnum("BadRows", ["error", "quarantine"])
Impossible = StrEnum("Impossible", ["clip", "quarantine"])


class Protocol(StrEnum):
    temporal_global = "temporal_global"
    temporal_user = "temporal_user"
    leave_last_out = "leave_last_out"
    random_user = "random_user"
    case_study = "case_study"
    session_temporal = "session_temporal"
    random = "random"  # click prediction: impressions shuffled (seed 42)
    temporal = "temporal"  # click prediction: oldest impressions train, newest test


DataOpt = Annotated[str, typer.Option("--data", "-d", help=SPEC_HELP)]
ProtocolOpt = Annotated[Protocol, typer.Option("--protocol", "-p", help="split protocol")]


@dataclass(frozen=True)
class DataOptions:
    """Where the data is, how to read it and how to clean it: one field per option, its
    annotation the option as ``--help`` shows it."""

    spec: DataOpt
    on_bad_rows: Annotated[BadRows, typer.Option(
        "--on-bad-rows", help="error: stop at the first malformed row (file, line, field); "
        "quarantine: set malformed rows aside in the quarantine file and go on")] = (
        BadRows.error)
    quarantine: Annotated[Path | None, typer.Option(
        help="where to write rows set aside (CSV); default: next to the output, "
        "or ./quarantine/NAME.csv")] = None
    clean: Annotated[bool, typer.Option(
        "--clean/--no-clean", help="run data.clean (duplicates, bots, impossible values, "
        "imputation, completion ratio)")] = False
    k_core: Annotated[int | None, typer.Option(help="keep users and items with >= K events")] = (
        None)
    rating_threshold: Annotated[float | None, typer.Option(
        help="keep only interactions with value >= T (implicit feedback)")] = None
    events: Annotated[str | None, typer.Option(
        help="keep only these event types, comma-separated (e.g. play,like: "
        "impressions and skips are not positive feedback)")] = None
    bot_rate: Annotated[float, typer.Option(
        help="cleaning: users above this many events per minute are bots")] = 30.0
    impossible: Annotated[Impossible, typer.Option(
        help="cleaning: clip impossible values or quarantine their rows")] = (
        Impossible.quarantine)
    user_col: Annotated[str | None, typer.Option(help="events logs: user id column")] = None
    item_col: Annotated[str | None, typer.Option(help="events logs: item id column")] = None
    time_col: Annotated[str | None, typer.Option(
        help="events logs: time column (epoch s/ms, ISO dates, or a rank)")] = None
    value_col: Annotated[str | None, typer.Option(help="events logs: rating/value column")] = None
    event_col: Annotated[str | None, typer.Option(help="events logs: event-type column")] = None

    def columns(self) -> dict[str, str | None]:
        """The column mapping of events logs (None: the reader's default)."""
        return {"user": self.user_col, "item": self.item_col, "time": self.time_col,
                "value": self.value_col, "event": self.event_col}

    def clean_config(self) -> CleanConfig | None:
        """The cleaning to run; None when --no-clean and no filter is asked for."""
        from streamrec.data.clean import CleanConfig

        keep = (tuple(e.strip() for e in self.events.split(",") if e.strip())
                if self.events else None)
        if not self.clean:
            if self.k_core is not None or self.rating_threshold is not None or keep is not None:
                # filters that are modelling choices still apply without the data-error steps
                return CleanConfig(dedupe=False, bot_events_per_minute=None, impute_missing=False,
                                   completion_ratio=False, impossible=self.impossible.value,
                                   k_core=self.k_core, rating_threshold=self.rating_threshold,
                                   keep_events=keep)
            return None
        return CleanConfig(bot_events_per_minute=self.bot_rate, impossible=self.impossible.value,
                           k_core=self.k_core, rating_threshold=self.rating_threshold,
                           keep_events=keep)


#: the optional groups of :func:`data_options`; --on-bad-rows and --clean are always given
_GROUPS = {"quarantine": ("quarantine",), "filters": ("k_core", "rating_threshold", "events"),
           "cleaning": ("bot_rate", "impossible"),
           "columns": ("user_col", "item_col", "time_col", "value_col", "event_col")}

F = TypeVar("F", bound=Callable[..., Any])


def data_options(*, clean: bool = False, quarantine: bool = True, filters: bool = False,
                 cleaning: bool = False, columns: bool = True) -> Callable[[F], F]:
    """Give a command the data options and call it with ``opts=DataOptions(...)``.

    ``--data`` comes first unless the command declares a ``data`` parameter of its own (its
    help, default and place are kept; the value still lands in ``opts.spec``). The chosen
    groups follow the command's own options in the order of :class:`DataOptions`:
    --on-bad-rows, --quarantine, --clean/--no-clean (default ``clean``), the filters
    --k-core --rating-threshold --events, the cleaning settings --bot-rate --impossible, and
    the events-log columns --user-col .. --event-col. Options left out keep their defaults.
    """
    wanted = {"quarantine": quarantine, "filters": filters, "cleaning": cleaning,
              "columns": columns}
    left_out = {name for group, names in _GROUPS.items() if not wanted[group] for name in names}
    hints = get_type_hints(DataOptions, include_extras=True)
    kw = inspect.Parameter.KEYWORD_ONLY
    shared = [inspect.Parameter(f.name, kw, annotation=hints[f.name],
                                default=clean if f.name == "clean" else f.default)
              for f in fields(DataOptions) if f.name != "spec" and f.name not in left_out]

    def decorate(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        own = [p.replace(kind=kw) for p in sig.parameters.values() if p.name != "opts"]
        head = ([] if "data" in sig.parameters
                else [inspect.Parameter("data", kw, annotation=hints["spec"])])

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            opts = DataOptions(spec=kwargs.pop("data"),
                               **{p.name: kwargs.pop(p.name) for p in shared})
            return func(**kwargs, opts=opts)

        params = [*head, *own, *shared]
        # typer reads the options from the signature: the command's own and the shared ones
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command  # type: ignore[return-value]

    return decorate


def prepare_data(opts: DataOptions, default_quarantine: Path | None = None) -> Prepared:
    """Read, clean and encode ``opts.spec`` with a progress display; write the rows set aside
    to --quarantine, else ``default_quarantine``, else ./quarantine/NAME.csv. Bad input
    (a malformed row, a bad SPEC, a missing file) ends the command with exit code 2."""
    from streamrec.data.errors import DataFormatError
    from streamrec.data.pipeline import prepare
    from streamrec.data.spec import SpecError, parse_spec

    read = {"on_bad_rows": opts.on_bad_rows.value, "columns": opts.columns(),
            "clean": opts.clean_config()}
    try:
        parsed = parse_spec(opts.spec)
        if parsed.kind in ("synthetic", "synthetic-sessions"):
            with progress_bar("generating synthetic world") as cb:
                prep = prepare(parsed, **read, progress=cb)
        else:
            with spinner(f"reading {parsed}"):
                prep = prepare(parsed, **read)
    except (DataFormatError, SpecError, FileNotFoundError, ValueError, KeyError) as exc:
        fail(str(exc))
    target = (opts.quarantine or default_quarantine
              or Path("quarantine") / f"{prep.dataset.name}.csv")
    written = prep.write_quarantine(target)
    if written is not None:
        err_console.print(f"[yellow]{len(prep.quarantine()):,} row(s) set aside -> "
                          f"{escape(str(written))}[/]")
    return prep
