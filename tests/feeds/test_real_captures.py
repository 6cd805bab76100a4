"""Real feed captures (tests/feeds/real_captures, README there): every entry feedparser finds is
parsed and stored or counted as dropped with its reason, and at least 99 % of the date strings that
carry a date are read. The figures are printed next to feedparser alone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from feeds_support import LoopbackServer, write_feeds_file

from narrwatch.context import AppContext
from narrwatch.steps.poll.coverage import Coverage, measure
from narrwatch.steps.poll.poll import poll_feeds
from narrwatch.steps.poll.sync import sync_feeds

CAPTURES = Path(__file__).with_name("real_captures")
NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)


def capture_files() -> list[Path]:
    return sorted(path for path in CAPTURES.rglob("*") if path.is_file() and path.name != "README.md")


def test_the_set_is_at_least_30_files_from_5_repositories() -> None:
    files = capture_files()
    assert len(files) >= 30 and len({path.parent.name for path in files}) >= 5


def test_every_entry_parsed_and_99_percent_of_dates_read() -> None:
    total = Coverage()
    for path in capture_files():
        found = measure(path.read_bytes())
        assert found.narrwatch_entries + found.narrwatch_dropped == found.feedparser_entries, path.name
        total.add(found)
    print(
        f"\n{total.documents} documents: entries feedparser {total.feedparser_entries}, narrwatch "
        f"{total.narrwatch_entries} (+{total.narrwatch_dropped} dropped with a reason); date strings "
        f"{total.date_strings}: read by feedparser {total.read_by_feedparser} "
        f"({total.share(total.read_by_feedparser):.1%}), by narrwatch {total.read_by_narrwatch} "
        f"({total.share(total.read_by_narrwatch):.1%})"
    )
    assert total.share(total.read_by_narrwatch) >= 0.99
    assert total.read_by_narrwatch >= total.read_by_feedparser


@pytest.mark.db
def test_a_poll_of_every_capture_stores_or_accounts_for_each_entry(
    ctx: AppContext, server: LoopbackServer, tmp_path: Path
) -> None:
    files = capture_files()
    feeds = []
    for number, path in enumerate(files):
        url = server.serve(f"/{number}.xml", path.read_bytes(), 200, {"Content-Type": "application/xml"})
        feeds.append({"id": f"capture-{number}", "url": url})
    ctx.settings = ctx.settings.model_copy(
        update={
            "feeds_file": write_feeds_file(tmp_path / "feeds.yaml", feeds),
            "allow_private_networks": True,
            "fetch_per_host_delay_s": 0.0,
        }
    )
    sync_feeds(ctx, NOW)
    report = poll_feeds(ctx, NOW)
    found = sum(measure(path.read_bytes()).feedparser_entries for path in files)
    # Every kept entry is a sighting (also one of an article stored before, by URL or title); an
    # entry repeating an entry key of its own document is a duplicate without a sighting.
    accounted = (
        report.new_sightings
        + report.duplicates.get("entry_key", 0)
        + report.skipped_entries
        + report.tombstoned
        + sum(report.dropped_entries.values())
    )
    print(
        f"\npoll of {len(files)} captures: feedparser finds {found} entries; stored {report.new_sightings} "
        f"sightings ({report.new_articles} articles), duplicates {dict(report.duplicates)}, "
        f"skipped {report.skipped_entries}, dropped {dict(report.dropped_entries)}, failed feeds "
        f"{report.feeds_failed}"
    )
    assert report.feeds_failed == 0, report.failures
    assert accounted == found
