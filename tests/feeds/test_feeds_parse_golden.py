"""Golden-file tests of the parser: each fixture next to the exact typed result it must give.

The fixtures in ``fixtures/`` were written for narrwatch. After a deliberate change of the parser,
regenerate the expectations with ``NARRWATCH_REGEN_GOLDEN=1 pytest tests/feeds/test_feeds_parse_golden.py``
and review the diff like code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from feeds_support import FIXTURES

from narrwatch.domain.types import ParsedFeed
from narrwatch.domain.urls import is_http_url
from narrwatch.steps.poll.isolate import IsolatedRunner
from narrwatch.steps.poll.parse import MAX_TITLE_CHARS, FeedParser, is_feed

REGENERATE = os.environ.get("NARRWATCH_REGEN_GOLDEN") == "1"

CASES: dict[str, tuple[dict[str, str], str]] = {
    "rss20.xml": ({"Content-Type": "application/rss+xml"}, "https://vesti.example.rs/feed/"),
    "atom.xml": ({"Content-Type": "application/atom+xml"}, "https://portal.example.hr/feed.atom"),
    "rdf.xml": ({"Content-Type": "application/rdf+xml"}, "https://agencija.example.mk/rss"),
    "cdata.xml": ({"Content-Type": "application/rss+xml"}, "https://cdata.example.ba/rss"),
    "media_rss.xml": ({"Content-Type": "application/rss+xml"}, "https://tv.example.al/rss"),
    "cyrillic.xml": (
        {"Content-Type": "application/rss+xml; charset=utf-8"},
        "https://vesti.example.rs/ci/rss",
    ),
    "windows1251.xml": ({"Content-Type": "application/rss+xml"}, "https://vesti.example.rs/ci/rss"),
    "iso8859_5.xml": ({"Content-Type": "application/rss+xml"}, "https://vesti.example.rs/ci/rss"),
    "windows1250.xml": ({"Content-Type": "application/rss+xml"}, "https://regija.example.hr/rss"),
    "iso8859_2.xml": ({"Content-Type": "text/xml; charset=ISO-8859-2"}, "https://regija.example.hr/rss"),
    "utf8_wrong_declaration.xml": ({"Content-Type": "application/rss+xml"}, "https://regija.example.hr/rss"),
    "koi8r.xml": ({"Content-Type": "application/rss+xml"}, "https://novosti.example.ru/rss"),
    "undeclared_cp1251.xml": ({"Content-Type": "text/xml"}, "https://vesti.example.rs/ci/rss"),
    "dates.xml": ({"Content-Type": "application/rss+xml"}, "https://datumi.example.rs/rss"),
    "duplicate_guids.xml": ({"Content-Type": "application/rss+xml"}, "https://dupli.example.me/rss"),
    "not_a_feed.html": ({"Content-Type": "text/html; charset=utf-8"}, "https://vesti.example.rs/404"),
}


@pytest.fixture(scope="module")
def parser() -> Iterator[FeedParser]:
    with IsolatedRunner(1) as runner:
        yield FeedParser(runner, timeout_s=10, max_entries=2000)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def as_golden(parsed: ParsedFeed) -> dict[str, Any]:
    return {
        "title": parsed.title,
        "link": parsed.link,
        "language": parsed.language,
        "version": parsed.extra.get("version"),
        "encoding": parsed.extra.get("encoding"),
        "n_undated": parsed.n_undated,
        "truncated": parsed.truncated,
        "errors": list(parsed.errors),
        "entries": [
            {
                "title": entry.title,
                "link": entry.link,
                "guid": entry.guid,
                "summary": entry.summary,
                "content": entry.content,
                "published": _iso(entry.published),
                "updated": _iso(entry.updated),
                "author": entry.author,
                "language": entry.language,
            }
            for entry in parsed.entries
        ],
    }


def check_invariants(parsed: ParsedFeed) -> None:
    """What every parse must give, whatever the input (feedparser's everything_is_unicode, and ours)."""
    assert isinstance(parsed.title, str) and "\x00" not in parsed.title
    for entry in parsed.entries:
        for text in (entry.title, entry.summary, entry.content):
            assert isinstance(text, str) and "\x00" not in text
        assert len(entry.title) <= MAX_TITLE_CHARS + 1
        assert "<script" not in entry.title.lower() and "<b>" not in entry.title
        assert entry.link is None or is_http_url(entry.link)
        for when in (entry.published, entry.updated):
            assert when is None or (when.tzinfo is not None and when.utcoffset() == dt.timedelta(0))
    assert parsed.n_undated == sum(1 for e in parsed.entries if e.published is None and e.updated is None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(parser: FeedParser, name: str) -> None:
    headers, base_url = CASES[name]
    parsed = parser.parse((FIXTURES / name).read_bytes(), headers, base_url)
    check_invariants(parsed)
    actual = as_golden(parsed)
    expected_path = FIXTURES / (Path(name).stem + ".expected.json")
    if REGENERATE:
        expected_path.write_text(json.dumps(actual, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_every_fixture_has_a_case() -> None:
    fixtures = {path.name for path in FIXTURES.iterdir() if not path.name.endswith(".expected.json")}
    assert fixtures == set(CASES)


def test_encodings_of_the_region_give_the_same_text(parser: FeedParser) -> None:
    """windows-1251, ISO-8859-5 and undeclared windows-1251 all read as the UTF-8 original."""
    reference = parser.parse((FIXTURES / "cyrillic.xml").read_bytes(), {}, None)
    for name in ("windows1251.xml", "iso8859_5.xml", "undeclared_cp1251.xml"):
        parsed = parser.parse((FIXTURES / name).read_bytes(), dict(CASES[name][0]), None)
        assert [e.title for e in parsed.entries] == [e.title for e in reference.entries], name
        assert [e.summary for e in parsed.entries] == [e.summary for e in reference.entries], name
    latin = {
        name: parser.parse((FIXTURES / name).read_bytes(), dict(CASES[name][0]), None).entries[0].summary
        for name in ("windows1250.xml", "iso8859_2.xml", "utf8_wrong_declaration.xml")
    }
    assert len(set(latin.values())) == 1
    assert "Đurđica Šimić" in latin["windows1250.xml"]


def test_not_a_feed_is_reported(parser: FeedParser) -> None:
    parsed = parser.parse((FIXTURES / "not_a_feed.html").read_bytes(), {"Content-Type": "text/html"}, None)
    assert not is_feed(parsed)
    assert any("not a feed" in error for error in parsed.errors)
