"""What every command group shares: reading --now and --date, and opening the application context."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from narrwatch.domain.clock import iso_utc


class UsageError(Exception):
    """A mistake in what the user asked for: printed without a traceback."""


def parse_now(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        return iso_utc(value)
    except ValueError as exc:
        raise UsageError(f"--now: {value!r} is not an ISO 8601 date-time") from exc


def parse_day(value: str | None, now: dt.datetime) -> dt.date:
    if value is None:
        return now.date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"--date: {value!r} is not a YYYY-MM-DD date") from exc


@contextmanager
def app_context() -> Iterator[Any]:
    """The application context for one command, closed (Qdrant lock released) when it ends."""
    from narrwatch.context import AppContext

    ctx = AppContext.from_settings()
    try:
        yield ctx
    finally:
        ctx.close()
