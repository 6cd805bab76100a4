"""Tables and progress for the CLI, through one library (rich).

Progress bars appear only on a terminal: in DAG task logs, CI and pipes nothing is drawn, so logs
stay readable. Tables print everywhere; off a terminal without colour and wide enough not to wrap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

T = TypeVar("T")


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream)
    return Console(file=stream, width=400, color_system=None, soft_wrap=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], title: str | None) -> object:
    from rich import box
    from rich.table import Table

    table = Table(*headers, title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    return table


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None) -> None:
    """A table with one header row; cells as given (the caller formats numbers)."""
    _console().print(_table(headers, rows, title))


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None) -> str:
    """The table as plain text (no colour), for callers that print through typer or log it."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=400, color_system=None, soft_wrap=True).print(_table(headers, rows, title))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def progress_wanted() -> bool:
    """Draw progress only for a person at a terminal: never in CI, under Airflow or in a pipe."""
    if os.environ.get("CI") or os.environ.get("AIRFLOW_CTX_DAG_ID"):
        return False
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: int | None) -> Iterator[ProgressTask]:
    """A progress bar on stderr (or nothing off a terminal); call ``advance(n)`` as work is done."""
    if not progress_wanted():
        yield ProgressTask(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as bar:
        yield ProgressTask(bar, bar.add_task(description, total=total))


class ProgressTask:
    """One task of a progress display; does nothing when no display is shown."""

    def __init__(self, bar: Progress | None, task_id: TaskID | None) -> None:
        self._bar = bar
        self._task_id = task_id

    def advance(self, amount: int = 1) -> None:
        if self._bar is not None and self._task_id is not None:
            self._bar.advance(self._task_id, amount)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            yield item
            self.advance()
