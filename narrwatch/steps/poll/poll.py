"""Feed ingestion use cases: sync feeds.yaml into the store, and poll the feeds that are due.

One poll of one feed is four small steps (Miniflux's shape, Media Cloud's decide/apply split):

1. retrieve: the guarded fetch (conditional GET; a 304 or an unchanged body hash ends here);
2. parse: feedparser in an isolated worker under its time budget (plus full text when the feed asks);
3. decide (:func:`decide_entries`, pure over what the feed's transaction read first): each entry
   against the layered dedup keys: entry key (GUID, or the link once a feed's GUIDs proved
   unusable, FreshRSS-style) -> canonical URL (tombstoned URLs are never stored again) ->
   normalised title of the outlet within ``dedup_title_window_days``;
4. persist (:func:`persist_plan`): articles by upsert on ``canonical_url`` and sightings by upsert
   on ``(feed, entry key)``, so two processes polling two feeds of one outlet at once still store
   each article once; the feed's health and schedule and one ``feed_fetches`` row go into the
   same transaction.

Steps 1-2 run for many feeds at once on a thread pool (``fetch_concurrency``; the fetcher keeps
one request at a time per host); steps 3-4 run one feed at a time in the calling thread. A failing
feed is recorded (``feed_fetches`` row, ``last_error``, backoff) and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed

from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db.models import Feed
from narrwatch.steps.poll.decide import FeedSnapshot
from narrwatch.steps.poll.persist import PollReport, _persist_safely
from narrwatch.steps.poll.retrieve import _Poller

log = logging.getLogger(__name__)


def _in_shard(feed_id: str, shard: int, shards: int) -> bool:
    return zlib.crc32(feed_id.encode("utf-8")) % shards == shard


def _select_feeds(
    ctx: AppContext,
    now: dt.datetime,
    report: PollReport,
    *,
    group: str | None,
    shard: int | None,
    shards: int | None,
    feed_ids: list[str] | None,
    force: bool,
) -> list[FeedSnapshot]:
    with ctx.transaction() as session:
        query = select(Feed).where(Feed.in_config.is_(True)).order_by(Feed.id)
        if group is not None:
            query = query.where(Feed.group == group)
        if feed_ids:
            query = query.where(Feed.id.in_(feed_ids))
        rows = list(session.scalars(query))
        if feed_ids:
            found = {row.id for row in rows}
            report.unknown_feed_ids = [feed_id for feed_id in feed_ids if feed_id not in found]
        selected: list[FeedSnapshot] = []
        for row in rows:
            if shards is not None and shard is not None and not _in_shard(row.id, shard, shards):
                continue
            report.feeds_selected += 1
            if row.paused or (row.poll_overrides or {}).get("paused"):
                report.feeds_paused += 1
                continue
            if force or row.next_poll_at is None or row.next_poll_at <= now:
                selected.append(FeedSnapshot.of(row))
        return selected


def poll_feeds(
    ctx: AppContext,
    now: dt.datetime,
    *,
    group: str | None = None,
    shard: int | None = None,
    shards: int | None = None,
    feed_ids: list[str] | None = None,
    force: bool = False,
) -> PollReport:
    """Poll the due, unpaused feeds (all of them with ``force``), optionally one group, one shard of
    ``shards`` (by a stable hash of the feed id) or the given ids. Returns counts, never articles."""
    if (shard is None) != (shards is None):
        raise ValueError("give shard and shards together")
    if shards is not None and shard is not None and not 0 <= shard < shards:
        raise ValueError(f"shard must be in 0..{shards - 1}")
    started = time.monotonic()
    report = PollReport()
    due = _select_feeds(
        ctx, now, report, group=group, shard=shard, shards=shards, feed_ids=feed_ids, force=force
    )
    report.feeds_due = len(due)
    if due:
        poller = _Poller(ctx)
        try:
            with ThreadPoolExecutor(
                max_workers=min(ctx.settings.fetch_concurrency, len(due)), thread_name_prefix="narrwatch-poll"
            ) as pool:
                futures = [pool.submit(poller.retrieve, feed) for feed in due]
                for future in as_completed(futures):
                    _persist_safely(ctx, now, future.result(), report)
                    report.feeds_polled += 1
        finally:
            poller.close()
    report.duration_s = time.monotonic() - started
    return report
