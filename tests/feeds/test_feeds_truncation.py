"""A feed longer than the entry cap keeps its newest items, whatever its order, and says so."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from feeds_support import Item, LoopbackServer, rss, write_feeds_file
from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db.models import Article, Feed
from narrwatch.steps.poll.operate import feed_health
from narrwatch.steps.poll.parse import parse_document
from narrwatch.steps.poll.poll import poll_feeds
from narrwatch.steps.poll.sync import sync_feeds

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)
N_ITEMS, CAP = 400, 100


def items() -> list[Item]:
    """Oldest first: item i published i minutes after the first."""
    start = NOW - dt.timedelta(days=2)
    return [
        Item(
            f"Vest broj {i} o nečemu drugom",
            f"https://old-first.example/{i}",
            str(i),
            start + dt.timedelta(minutes=i),
        )
        for i in range(N_ITEMS)
    ]


@pytest.mark.parametrize("order", ["oldest first", "newest first"])
def test_parse_keeps_the_newest_entries_in_either_order(order: str) -> None:
    listed = items() if order == "oldest first" else list(reversed(items()))
    parsed = parse_document(rss(listed), {"content-type": "application/rss+xml"}, None, CAP)
    kept = {entry.guid for entry in parsed.entries}
    assert kept == {str(i) for i in range(N_ITEMS - CAP, N_ITEMS)}
    assert parsed.truncated and parsed.n_found == N_ITEMS
    assert parsed.dropped == {"older than the newest entries kept (entry cap)": N_ITEMS - CAP}


def test_poll_stores_the_newest_and_health_says_truncated(
    ctx: AppContext, server: LoopbackServer, tmp_path: Path
) -> None:
    url = server.serve("/long.xml", rss(items()))
    path = write_feeds_file(tmp_path / "feeds.yaml", [{"id": "long-feed", "url": url}])
    ctx.settings = ctx.settings.model_copy(
        update={
            "feeds_file": path,
            "parse_max_entries": CAP,
            "allow_private_networks": True,
            "fetch_per_host_delay_s": 0.0,
        }
    )
    sync_feeds(ctx, NOW)
    report = poll_feeds(ctx, NOW)
    assert report.new_articles == CAP
    assert report.dropped_entries == {"older than the newest entries kept (entry cap)": N_ITEMS - CAP}
    with ctx.transaction() as session:
        urls = set(session.scalars(select(Article.url)))
        feed = session.get(Feed, "long-feed")
        assert feed is not None
        note = feed.last_error
    assert urls == {f"https://old-first.example/{i}" for i in range(N_ITEMS - CAP, N_ITEMS)}
    assert note == (
        f"truncated: the document lists {N_ITEMS} entries; kept the {CAP} newest "
        "(raise NARRWATCH_PARSE_MAX_ENTRIES or poll more often)"
    )
    health = {row.id: row for row in feed_health(ctx, NOW)}
    assert (health["long-feed"].last_error or "").startswith("truncated:")
