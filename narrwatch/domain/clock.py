"""Days and instants, one way everywhere: days are UTC calendar days, instants are aware UTC."""

from __future__ import annotations

import datetime as dt


def day_start(day: dt.date) -> dt.datetime:
    """00:00 UTC of ``day``."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of ``day`` in UTC: what a step means by "that day"."""
    start = day_start(day)
    return start, start + dt.timedelta(days=1)


def iso_utc(value: str) -> dt.datetime:
    """An ISO 8601 time as aware UTC (naive means UTC); ValueError when it is not one."""
    parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
