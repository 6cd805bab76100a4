"""Persist: a feed's plan as upserts (articles on canonical URL, sightings on feed and entry key), with
the feed's health, schedule and one ``feed_fetches`` row in the same transaction."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Article, ArticleSighting, Feed, FeedFetch
from narrwatch.db.session import dialect_insert
from narrwatch.domain.polling import (
    ErrorKind,
    PollBounds,
    blend_item_gap,
    estimate_item_gap_s,
    next_poll_at,
)
from narrwatch.domain.types import ParsedFeed

if TYPE_CHECKING:
    from narrwatch.steps.poll.fetch import FetchResult
from narrwatch.steps.poll.decide import FeedPlan, FeedSnapshot, decide_entries, entry_keys, guids_unusable
from narrwatch.steps.poll.lookups import _existing_urls, _load_lookups
from narrwatch.steps.poll.retrieve import Retrieved

log = logging.getLogger(__name__)


MAX_REPORTED_FAILURES = 20


_INSERT_BATCH = 200


@dataclass
class PollReport:
    feeds_selected: int = 0
    feeds_due: int = 0
    feeds_polled: int = 0
    feeds_paused: int = 0
    feeds_new: int = 0
    feeds_unchanged: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    failures_by_kind: Counter[str] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    entries_seen: int = 0
    new_articles: int = 0
    new_sightings: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    tombstoned: int = 0
    skipped_entries: int = 0
    dropped_entries: Counter[str] = field(default_factory=Counter)  # found by feedparser, not kept
    undated_entries: int = 0
    full_text_fetched: int = 0
    full_text_failed: int = 0
    unknown_feed_ids: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def record_failure(self, feed_id: str, kind: ErrorKind, message: str) -> None:
        self.feeds_failed += 1
        self.failures_by_kind[kind.value] += 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures[feed_id] = f"{kind.value}: {message}"[:300]

    def merge(self, other: PollReport) -> None:
        """Add the counts of one feed's committed poll (kept apart until its transaction commits)."""
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, dict):
                for key, value in theirs.items():
                    if len(mine) < MAX_REPORTED_FAILURES:
                        mine[key] = value
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, item.name, mine + theirs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds_selected": self.feeds_selected,
            "feeds_due": self.feeds_due,
            "feeds_polled": self.feeds_polled,
            "feeds_paused": self.feeds_paused,
            "feeds_new": self.feeds_new,
            "feeds_unchanged": self.feeds_unchanged,
            "feeds_not_modified": self.feeds_not_modified,
            "feeds_failed": self.feeds_failed,
            "failures_by_kind": dict(self.failures_by_kind),
            "failures": dict(self.failures),
            "entries_seen": self.entries_seen,
            "new_articles": self.new_articles,
            "new_sightings": self.new_sightings,
            "duplicates": dict(self.duplicates),
            "tombstoned": self.tombstoned,
            "skipped_entries": self.skipped_entries,
            "dropped_entries": dict(self.dropped_entries),
            "undated_entries": self.undated_entries,
            "full_text_fetched": self.full_text_fetched,
            "full_text_failed": self.full_text_failed,
            "unknown_feed_ids": self.unknown_feed_ids[:50],
            "duration_s": round(self.duration_s, 3),
        }


def _rows_in_batches(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    # Bound parameters per statement stay far below SQLite's 32,766 and PostgreSQL's 65,535.
    for start in range(0, len(rows), _INSERT_BATCH):
        yield rows[start : start + _INSERT_BATCH]


def persist_plan(session: Session, feed_id: str, plan: FeedPlan, now: dt.datetime) -> tuple[int, int]:
    """Write a plan with upserts; returns (new articles, new sightings).

    An article another process stored since the lookups (same canonical URL) is not inserted again:
    the insert does nothing and the sighting points at the stored row.
    """
    stored: dict[str, int] = {}
    for batch in _rows_in_batches(plan.new_articles):
        result = session.execute(
            dialect_insert(session, Article.__table__)
            .values(list(batch))
            .on_conflict_do_nothing(index_elements=["canonical_url"])
            .returning(Article.id, Article.canonical_url)
        )
        stored.update({url: article_id for article_id, url in result})
    raced = [row["canonical_url"] for row in plan.new_articles if row["canonical_url"] not in stored]
    ids = {**_existing_urls(session, raced), **stored}
    sighting_rows = []
    for sighting in plan.sightings:
        article_id = sighting.article_id
        matched_by = sighting.matched_by
        if sighting.new_index is not None:
            url = plan.new_articles[sighting.new_index]["canonical_url"]
            article_id = ids[url]
            if url not in stored:
                matched_by = "canonical_url"
        sighting_rows.append(
            {
                "article_id": article_id,
                "feed_id": feed_id,
                "entry_key": sighting.entry_key,
                "url": sighting.url,
                "title": sighting.title,
                "matched_by": matched_by,
                "seen_at": now,
            }
        )
    new_sightings = 0
    for batch in _rows_in_batches(sighting_rows):
        # RETURNING, not rowcount: psycopg 3 reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        result = session.execute(
            dialect_insert(session, ArticleSighting.__table__)
            .values(list(batch))
            .on_conflict_do_nothing(index_elements=["feed_id", "entry_key"])
            .returning(ArticleSighting.id)
        )
        new_sightings += len(result.all())
    return len(stored), new_sightings


def _schedule(ctx: AppContext, feed: Feed, now: dt.datetime, error_kind: ErrorKind | None) -> None:
    bounds = PollBounds.from_settings(ctx.settings, feed.poll_overrides)
    when = next_poll_at(
        now, rules.poll_state(feed, error_kind), bounds, jitter_key=f"{feed.id}|{now.isoformat()}"
    )
    feed.next_poll_at = when
    feed.poll_interval_s = int((when - now).total_seconds())


def _retry_after_until(ctx: AppContext, now: dt.datetime, fetched: FetchResult | None) -> dt.datetime | None:
    seconds = fetched.retry_after_s if fetched is not None else None
    if not seconds:
        return None
    return now + dt.timedelta(seconds=min(seconds, ctx.settings.poll_max_backoff_s))


def _persist(ctx: AppContext, now: dt.datetime, outcome: Retrieved, report: PollReport) -> None:
    fetched = outcome.fetch
    status = fetched.status if fetched is not None else None
    with ctx.transaction() as session:
        feed = session.get(Feed, outcome.feed.id)
        if feed is None:
            return  # removed from the store while we fetched it
        feed.last_attempt_at = now
        feed.last_status = status
        feed.retry_after_until = _retry_after_until(ctx, now, fetched)
        fetch_row = FeedFetch(
            feed_id=feed.id, started_at=now, duration_ms=int(outcome.seconds * 1000), http_status=status
        )
        if outcome.error is not None:
            kind = outcome.error_kind or ErrorKind.SOFT
            feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
            feed.last_error = f"{kind.value}: {outcome.error}"[:2000]
            fetch_row.outcome, fetch_row.error = "error", feed.last_error
            _schedule(ctx, feed, now, kind)
            session.add(fetch_row)
            report.record_failure(feed.id, kind, outcome.error)
            return
        assert fetched is not None  # only a failure can come without a response
        feed.etag = fetched.etag
        feed.last_modified = fetched.last_modified
        if outcome.unchanged:
            fetch_row.outcome = "not_modified" if fetched.not_modified else "unchanged"
            if fetched.not_modified:
                report.feeds_not_modified += 1
            else:
                report.feeds_unchanged += 1
        else:
            _store_entries(ctx, session, feed, outcome, now, fetch_row, report)
        feed.consecutive_failures = 0
        # A truncated document is a success that lost items: health shows it until a full poll.
        if outcome.parsed is not None:
            feed.last_error = truncation_note(outcome.parsed)
        elif not (feed.last_error or "").startswith("truncated:"):
            feed.last_error = None  # an unchanged body keeps the note of the same truncated document
        fetch_row.error = feed.last_error
        feed.last_success_at = now
        _schedule(ctx, feed, now, None)
        session.add(fetch_row)


def _store_entries(
    ctx: AppContext,
    session: Session,
    feed: Feed,
    outcome: Retrieved,
    now: dt.datetime,
    fetch_row: FeedFetch,
    report: PollReport,
) -> None:
    """A changed document: decide its entries against the store, persist the plan, and update the
    feed's counters and cadence."""
    assert outcome.parsed is not None and outcome.fetch is not None
    parsed = outcome.parsed
    entries = list(parsed.entries)
    if not feed.guid_unreliable and guids_unusable(entries):
        log.warning("feed %s: GUIDs blank or repeated; keying its entries by link from now on", feed.id)
        feed.guid_unreliable = True
    keys = entry_keys(entries, feed.guid_unreliable)
    snapshot = FeedSnapshot.of(feed)
    plan = decide_entries(
        snapshot,
        entries,
        keys,
        _load_lookups(session, snapshot, entries, keys),
        now,
        dt.timedelta(days=ctx.settings.dedup_title_window_days),
        outcome.full_texts,
    )
    new_articles, new_sightings = persist_plan(session, feed.id, plan, now)
    feed.body_hash = outcome.fetch.body_sha256
    feed.items_total = (feed.items_total or 0) + new_sightings
    feed.undated_items_total = (feed.undated_items_total or 0) + plan.undated_new
    feed.mean_item_gap_s = blend_item_gap(feed.mean_item_gap_s, estimate_item_gap_s(plan.published, now))
    if new_sightings:
        feed.last_new_item_at = now
    fetch_row.outcome = "new" if new_sightings else "unchanged"
    fetch_row.n_entries = len(entries)
    fetch_row.n_new = new_articles
    fetch_row.n_undated = parsed.n_undated
    report.entries_seen += len(entries)
    report.new_articles += new_articles
    report.new_sightings += new_sightings
    report.duplicates.update(plan.duplicates)
    report.tombstoned += plan.tombstoned
    report.skipped_entries += plan.skipped
    report.dropped_entries.update(parsed.dropped)
    report.undated_entries += parsed.n_undated
    report.full_text_fetched += sum(1 for item in outcome.full_texts.values() if item.text)
    report.full_text_failed += sum(1 for item in outcome.full_texts.values() if not item.text)
    if new_sightings:
        report.feeds_new += 1
    else:
        report.feeds_unchanged += 1


def truncation_note(parsed: ParsedFeed) -> str | None:
    """The health note of a document cut to the entry cap, or None."""
    if not parsed.truncated:
        return None
    return (
        f"truncated: the document lists {parsed.n_found} entries; kept the {len(parsed.entries)} newest "
        "(raise NARRWATCH_PARSE_MAX_ENTRIES or poll more often)"
    )


def _persist_failure(ctx: AppContext, now: dt.datetime, outcome: Retrieved, message: str) -> None:
    """Record a feed whose store step failed, in a fresh transaction: its health must say why."""
    with ctx.transaction() as session:
        feed = session.get(Feed, outcome.feed.id)
        if feed is None:
            return
        feed.last_attempt_at = now
        feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
        feed.last_error = f"soft: {message}"[:2000]
        _schedule(ctx, feed, now, ErrorKind.SOFT)
        session.add(
            FeedFetch(
                feed_id=feed.id,
                started_at=now,
                duration_ms=int(outcome.seconds * 1000),
                outcome="error",
                http_status=outcome.fetch.status if outcome.fetch is not None else None,
                error=feed.last_error,
            )
        )


def _persist_safely(ctx: AppContext, now: dt.datetime, outcome: Retrieved, report: PollReport) -> None:
    for attempt in range(3):
        counted = PollReport()
        try:
            _persist(ctx, now, outcome, counted)
            report.merge(counted)  # only what was committed is counted
            return
        except OperationalError as exc:
            # SQLite answers "database is locked" at once when a read transaction must become a write
            # while another process writes; the work is idempotent, so retry it.
            if "locked" in str(exc) and attempt < 2:
                time.sleep(0.2 * (attempt + 1))
                continue
            message = f"store: {type(exc).__name__}: {str(exc).splitlines()[0]}"[:500]
        except Exception as exc:
            log.exception("storing feed %s failed", outcome.feed.id)
            message = f"store: {type(exc).__name__}: {exc}"[:500]
        report.record_failure(outcome.feed.id, ErrorKind.SOFT, message)
        try:
            _persist_failure(ctx, now, outcome, message)
        except Exception:
            log.exception("could not record the failure of feed %s", outcome.feed.id)
        return
