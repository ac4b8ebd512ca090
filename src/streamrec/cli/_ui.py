"""Console helpers shared by the CLI commands: progress bars, tables and the one way a
command refuses its input (:func:`fail`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)
for _c in (console, err_console):
    if not _c.is_terminal:  # pipes, files, CI logs: rich's 80-column default wraps tables
        _c.width = max(_c.width, 160)


def fail(message: str, *, label: str = "error", code: int = 2) -> NoReturn:
    """Print ``LABEL: MESSAGE`` on stderr and exit with ``code`` (2: bad input or a refused
    request; the message is plain text, escaped here so that brackets in paths survive)."""
    err_console.print(f"[bold red]{label}:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code) from None


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[..., None]]:
    """A progress bar driven by a ``callback(done, total, description=None)``; yields the
    callback (a new description relabels the bar, e.g. for the next stage)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as prog:
        task = prog.add_task(description, total=None)

        def update(done: int, total: int, description: str | None = None) -> None:
            if description is not None:
                prog.update(task, description=description)
            prog.update(task, completed=done, total=total)

        yield update


@contextmanager
def spinner(description: str) -> Iterator[None]:
    """A spinner with elapsed time for work of unknown length."""
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as prog:
        prog.add_task(description, total=None)
        yield


def kv_table(title: str, rows: list[tuple[str, object]]) -> Table:
    """A two-column table of labelled values (numbers formatted with thousands separators)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="cyan")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, fmt(value))
    return table


def fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(fmt, value))
    return "" if value is None else str(value)
