"""Property-based fuzzing of the parse boundary: any bytes in, a valid ParsedFeed (or a clean
FeedParseError) out, within the time budget, with every invariant of the golden tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from feeds_support import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_feeds_parse_golden import check_invariants

from narrwatch.steps.poll.isolate import IsolatedRunner
from narrwatch.steps.poll.parse import FeedParseError, FeedParser, decode_document

FIXTURE_BODIES = [
    path.read_bytes() for path in sorted(FIXTURES.iterdir()) if not path.name.endswith(".expected.json")
]
BUDGET_S = 5.0

content_types = st.sampled_from(
    [
        "",
        "application/rss+xml",
        "text/xml; charset=windows-1251",
        "text/html; charset=utf-8",
        "application/xml; charset=bogus-charset",
        "text/plain",
    ]
)


@pytest.fixture(scope="module")
def parser() -> Iterator[FeedParser]:
    with IsolatedRunner(1) as runner:
        yield FeedParser(runner, timeout_s=BUDGET_S, max_entries=200)


def _parse_within_budget(parser: FeedParser, body: bytes, content_type: str) -> None:
    started = time.monotonic()
    try:
        parsed = parser.parse(
            body, {"Content-Type": content_type} if content_type else {}, "https://fuzz.example/f"
        )
    except FeedParseError:
        return  # a clean failure is a valid outcome; the worker is replaced
    assert time.monotonic() - started < BUDGET_S + 1
    check_invariants(parsed)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096), content_types)
def test_random_bytes(parser: FeedParser, body: bytes, content_type: str) -> None:
    _parse_within_budget(parser, body, content_type)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(FIXTURE_BODIES),
    st.integers(min_value=0, max_value=4000),
    st.integers(min_value=0, max_value=200),
    st.binary(max_size=64),
    content_types,
)
def test_mutated_fixtures(
    parser: FeedParser, body: bytes, position: int, cut: int, splice: bytes, content_type: str
) -> None:
    position = min(position, len(body))
    mutated = body[:position] + splice + body[position + cut :]
    _parse_within_budget(parser, mutated, content_type)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), content_types)
def test_decoding_never_fails(body: bytes, content_type: str) -> None:
    decoded = decode_document(body, {"content-type": content_type})
    assert isinstance(decoded.text, str)
    assert decoded.encoding
