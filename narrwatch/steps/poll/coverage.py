"""How much of a feed document narrwatch reads, next to feedparser alone: entries and date strings.

Used by the real-capture test (tests/feeds/test_real_captures.py) and bench/feed_captures.py. A
date string "carries a date" when it has a digit in it; feedparser "read" it when it filled the
matching ``*_parsed`` field with a plausible time, narrwatch when feedparser or the dateparser
fallback (narrwatch.steps.poll.dates) did.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import feedparser

from narrwatch.steps.poll.dates import read_date
from narrwatch.steps.poll.parse import _to_utc, parse_document

DATE_KEYS = ("published", "updated", "created")


@dataclass
class Coverage:
    documents: int = 0
    feedparser_entries: int = 0
    narrwatch_entries: int = 0
    narrwatch_dropped: int = 0  # counted with a reason (ParsedFeed.dropped)
    date_strings: int = 0  # carrying a date
    read_by_feedparser: int = 0
    read_by_narrwatch: int = 0

    def add(self, other: Coverage) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def share(self, read: int) -> float:
        return read / self.date_strings if self.date_strings else 1.0


def measure(body: bytes, content_type: str = "application/xml", max_entries: int = 2000) -> Coverage:
    found = feedparser.parse(io.BytesIO(body))
    coverage = Coverage(documents=1, feedparser_entries=len(found.entries))
    for entry in found.entries:
        for key in DATE_KEYS:
            raw = entry.get(key)
            if not isinstance(raw, str) or not any(ch.isdigit() for ch in raw):
                continue
            coverage.date_strings += 1
            by_feedparser = _to_utc(entry.get(f"{key}_parsed")) is not None
            coverage.read_by_feedparser += by_feedparser
            coverage.read_by_narrwatch += by_feedparser or read_date(raw) is not None
    parsed = parse_document(body, {"content-type": content_type}, None, max_entries)
    coverage.narrwatch_entries = len(parsed.entries)
    coverage.narrwatch_dropped = sum(parsed.dropped.values())
    return coverage
