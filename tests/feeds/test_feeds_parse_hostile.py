"""Hostile feed documents: each is parsed in a fresh isolated worker, within 10 s and under 200 MB
(the worker's peak resident size, measured by the worker), with no file or network access.

The slow-drip server and the gzip/deflate bombs are fetch-side cases: see test_feeds_fetch.py
(`test_slow_drip_*`, `test_decompression_bombs_*`, also measured: time and traced memory).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from feeds_support import Item, LoopbackServer, rss

from narrwatch.domain.types import ParsedFeed
from narrwatch.steps.poll.isolate import IsolatedRunner, TaskFailed
from narrwatch.steps.poll.parse import MAX_AUTHOR_FIELD_CHARS, MAX_TITLE_CHARS, FeedParseError, FeedParser

TIME_LIMIT_S = 10.0
MEMORY_LIMIT = 200 * 1024 * 1024


@dataclass
class Outcome:
    parsed: ParsedFeed
    seconds: float
    peak_rss_bytes: int


def parse_hostile(body: bytes, headers: dict[str, str] | None = None) -> Outcome:
    """Parse in a fresh worker so that its peak RSS belongs to this document alone."""
    with IsolatedRunner(1, memory_limit_mb=1024) as runner:
        parser = FeedParser(runner, timeout_s=TIME_LIMIT_S, max_entries=2000)
        started = time.monotonic()
        parsed = parser.parse(body, headers or {}, "https://hostile.example/feed")
        seconds = time.monotonic() - started
    outcome = Outcome(parsed, seconds, parser.last_peak_rss_bytes)
    assert outcome.seconds < TIME_LIMIT_S
    assert 0 < outcome.peak_rss_bytes < MEMORY_LIMIT
    return outcome


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """A valid feed file with a secret in it: no hostile document may make the parser read it."""
    path = tmp_path / "canary.xml"
    path.write_bytes(rss([Item("CANARY-SECRET-TITLE", "https://canary.example/1", "canary")]))
    yield path


def _assert_no_canary(parsed: ParsedFeed) -> None:
    dump = repr(parsed)
    assert "CANARY-SECRET" not in dump


def test_billion_laughs() -> None:
    entities = (
        '<!ENTITY lol "lol"><!ENTITY lol1 "'
        + "&lol;" * 10
        + '">'
        + "".join(f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">' for i in range(2, 10))
    )
    document = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{entities}\n]>\n<rss version="2.0"><channel>'
        "<title>&lol9;</title><item><title>Laughs &lol9;</title><link>https://x.example/1</link></item>"
        "</channel></rss>"
    )
    outcome = parse_hostile(document.encode())
    assert len(outcome.parsed.entries) == 1
    assert "lollol" not in outcome.parsed.entries[0].title


def test_quadratic_blowup() -> None:
    document = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{"A" * 100_000}">]><rss version="2.0"><channel>'
        f"<title>t</title><item><title>{'&a;' * 20_000}</title><link>https://x.example/1</link></item>"
        "</channel></rss>"
    )
    outcome = parse_hostile(document.encode())
    assert len(outcome.parsed.entries[0].title) <= MAX_TITLE_CHARS + 1
    assert "AAAAAAAAAA" not in outcome.parsed.entries[0].title


def test_external_entity_to_a_local_file_is_not_read(canary: Path) -> None:
    document = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{canary}">]>'
        '<rss version="2.0"><channel><title>x</title><item><title>Leak: &xxe;</title>'
        "<link>https://x.example/1</link></item></channel></rss>"
    )
    outcome = parse_hostile(document.encode())
    _assert_no_canary(outcome.parsed)


def test_external_dtd_and_parameter_entities_are_not_fetched(server: LoopbackServer) -> None:
    dtd_url = server.serve(
        "/evil.dtd", b'<!ENTITY leak "from-the-network">', headers={"Content-Type": "text/plain"}
    )
    document = (
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{dtd_url}" '
        f'[<!ENTITY % remote SYSTEM "{dtd_url}"> %remote;]>'
        '<rss version="2.0"><channel><title>x</title><item><title>&leak;</title>'
        "<link>https://x.example/1</link></item></channel></rss>"
    )
    outcome = parse_hostile(document.encode())
    assert server.hits("/evil.dtd") == 0
    assert "from-the-network" not in repr(outcome.parsed)


def test_a_body_that_is_a_local_path_is_not_opened(canary: Path) -> None:
    outcome = parse_hostile(str(canary).encode())
    _assert_no_canary(outcome.parsed)
    assert outcome.parsed.entries == ()


def test_a_body_that_is_a_url_is_not_fetched(server: LoopbackServer) -> None:
    url = server.serve("/internal-admin", rss([Item("INTERNAL-ADMIN", "https://internal.example/1")]))
    for body in (url.encode(), f"  {url}\n".encode()):
        outcome = parse_hostile(body)
        assert "INTERNAL-ADMIN" not in repr(outcome.parsed)
    assert server.hits("/internal-admin") == 0


def test_ten_thousand_items_are_capped() -> None:
    items = [
        Item(f"Vest broj {index} o događajima dana", f"https://x.example/{index}", f"g{index}")
        for index in range(10_000)
    ]
    outcome = parse_hostile(rss(items))
    assert len(outcome.parsed.entries) == 2000
    assert outcome.parsed.truncated
    assert outcome.parsed.entries[0].title == "Vest broj 0 o događajima dana"


def test_huge_title_is_capped() -> None:
    outcome = parse_hostile(rss([Item("Naslov " * 150_000, "https://x.example/1")]))  # ~1 MB
    title = outcome.parsed.entries[0].title
    assert len(title) <= MAX_TITLE_CHARS + 1 and title.startswith("Naslov Naslov")


def test_invalid_utf8_and_nul_bytes() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>N\x00UL</title>'
        b"<item><title>Bad \xff\xfe bytes \xc3\x28 and N\x00UL \x01\x02</title><link>https://x.example/1</link>"
        b"<description>ok \x00\x00 text \xed\xa0\x80 surrogate</description></item></channel></rss>"
    )
    outcome = parse_hostile(body)
    entry = outcome.parsed.entries[0]
    for text in (entry.title, entry.summary, outcome.parsed.title):
        assert "\x00" not in text and "\x01" not in text
    assert "bytes" in entry.title and "NUL" in entry.title


@pytest.mark.parametrize("cdata", [False, True])
def test_pathological_author_field(cdata: bool) -> None:
    """feedparser's author regex is quadratic (kurtmckee/feedparser#562): 200 KB would take minutes."""
    author = "a." * 100_000
    value = f"<![CDATA[{author}]]>" if cdata else author
    body = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>t</title>'
        f"<link>https://x.example/1</link><author>{value}</author><dc:creator xmlns:dc="
        f'"http://purl.org/dc/elements/1.1/">{value}</dc:creator></item></channel></rss>'
    ).encode()
    outcome = parse_hostile(body)
    assert outcome.seconds < 5
    author_text = outcome.parsed.entries[0].author or ""
    assert len(author_text) <= MAX_AUTHOR_FIELD_CHARS


def test_binary_garbage_is_not_a_feed() -> None:
    outcome = parse_hostile(bytes(range(256)) * 400)
    assert outcome.parsed.entries == ()
    assert any("not a feed" in error for error in outcome.parsed.errors)


def test_the_time_budget_kills_a_stuck_parse_and_the_next_parse_works() -> None:
    with IsolatedRunner(1) as runner:
        started = time.monotonic()
        with pytest.raises(TaskFailed) as caught:
            runner.run("time:sleep", (30,), timeout_s=0.5)
        assert caught.value.reason == "timeout"
        assert time.monotonic() - started < 3
        parser = FeedParser(runner, timeout_s=5, max_entries=10)
        assert len(parser.parse(rss([Item("Posle", "https://x.example/1")]), {}, None).entries) == 1


def test_the_memory_cap_stops_an_exploding_task_and_the_next_task_works() -> None:
    with IsolatedRunner(1, memory_limit_mb=300) as runner:
        with pytest.raises(TaskFailed) as caught:
            runner.run("builtins:bytearray", (2 * 1024 * 1024 * 1024,), timeout_s=10)
        assert caught.value.reason == "memory"
        assert runner.run("builtins:len", ("abc",), timeout_s=10).value == 3


def test_a_crashed_worker_is_reported_as_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # workers can import feeds_support
    with IsolatedRunner(1) as runner:
        parser = FeedParser(runner, timeout_s=5, max_entries=10)
        with pytest.raises(TaskFailed) as caught:
            runner.run("os:_exit", (3,), timeout_s=5)
        assert caught.value.reason == "crashed"
        parser.TARGET = "feeds_support:crash_worker"
        with pytest.raises(FeedParseError, match="parser crashed"):
            parser.parse(b"<rss/>", {}, None)


def test_feedparser_uses_the_expat_driver() -> None:
    """feedparser prefers libxml2 when its bindings are installed, and every guarantee above was
    checked against expat (research/anchors-style-reliability.md, Part 2b)."""
    import xml.sax

    import feedparser.api

    reader = xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS)
    assert type(reader).__module__ == "xml.sax.expatreader"
