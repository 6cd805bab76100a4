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
    date_raw: str | None = None  # the feed's date string when no date could be read from it


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
    #: Entries feedparser found that are not in ``entries``, by reason ("over the entry cap", ...).
    dropped: dict[str, int] = field(default_factory=dict)
    n_found: int = 0  # entries feedparser found in the document
