"""Typed values that cross the boundaries between steps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParsedEntry:
    """One feed item after parsing: plain text only, dates aware UTC or None."""

    title: str
    link: str | None
    guid: str | None
    summary: str  # plain text
    content: str  # plain text (content:encoded etc.), may be ""
    published: dt.datetime | None
    updated: dt.datetime | None
    author: str | None
    language: str | None  # as declared by the entry or feed


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None
    language: str | None
    entries: tuple[ParsedEntry, ...]
    errors: tuple[str, ...] = ()
    n_undated: int = 0
    truncated: bool = False
    extra: dict[str, str] = field(default_factory=dict)
