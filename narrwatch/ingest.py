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
import hashlib
import logging
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import Article, ArticleSighting, Feed, FeedFetch, Tombstone
from db.session import dialect_insert
from narrwatch.context import AppContext
from narrwatch.domain.polling import (
    ErrorKind,
    HealthState,
    PollBounds,
    PollState,
    blend_item_gap,
    estimate_item_gap_s,
    feed_health_state,
    next_poll_at,
)
from narrwatch.domain.text import story_key as make_story_key
from narrwatch.domain.text import title_key as make_title_key
from narrwatch.domain.text import truncate
from narrwatch.domain.types import ParsedEntry, ParsedFeed
from narrwatch.domain.urls import UrlError, canonicalize_url
from narrwatch.feeds.registry import FeedSpec, load_feeds_file

if TYPE_CHECKING:
    from narrwatch.feeds.extract import Extraction
    from narrwatch.feeds.fetch import FetchResult

log = logging.getLogger(__name__)

#: FreshRSS's rule: when more than this share of a document's GUIDs are blank or repeated (with
#: different links), the feed's GUIDs are unusable and its entries are keyed by link from then on.
GUID_DEGRADE_SHARE = 0.05
MAX_TITLE_CHARS = 1_000
MAX_REPORTED_FAILURES = 20
_IN_CHUNK = 500
_INSERT_BATCH = 200


class UnknownFeedError(LookupError):
    """No feed with this id in the store (run a poll or `feeds sync` first)."""


# --- sync -----------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    total: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds": self.total,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "added_ids": self.added[:50],
            "removed_ids": self.removed[:50],
        }


def _config_columns(spec: FeedSpec, full_text_default: bool) -> dict[str, Any]:
    return {
        "outlet": spec.outlet_id,
        "name": spec.name,
        "url": spec.url,
        "country": spec.country,
        "languages": list(spec.languages),
        "group": spec.group,
        "state_affiliated": spec.state_affiliated,
        "tags": list(spec.tags),
        "full_text": spec.full_text if spec.full_text is not None else full_text_default,
        "poll_overrides": spec.poll.as_dict(),
        "in_config": True,
    }


def sync_feeds(ctx: AppContext, now: dt.datetime) -> SyncReport:
    """Upsert feeds.yaml into ``feeds``: config columns follow the file, fetch state and health are
    kept; a feed whose URL changed starts its conditional-GET state over; feeds no longer in the
    file are kept (their articles point at them) with ``in_config=False``."""
    config = load_feeds_file(ctx.settings.feeds_file)
    report = SyncReport(total=len(config.feeds))
    with ctx.transaction() as session:
        existing = {row.id: row for row in session.scalars(select(Feed))}
        new_rows = [
            {"id": spec.id, **_config_columns(spec, ctx.settings.full_text_default)}
            for spec in config.feeds
            if spec.id not in existing
        ]
        if new_rows:
            # Two ingest tasks may sync at once: insert-or-ignore, never check-then-insert.
            session.execute(
                dialect_insert(session, Feed.__table__)
                .values(new_rows)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            report.added = [row["id"] for row in new_rows]
        for spec in config.feeds:
            row = existing.get(spec.id)
            if row is None:
                continue
            columns = _config_columns(spec, ctx.settings.full_text_default)
            changed = {key: value for key, value in columns.items() if getattr(row, key) != value}
            if not changed:
                continue
            if "url" in changed:
                row.etag = row.last_modified = row.body_hash = None
                row.guid_unreliable = False
                row.next_poll_at = None
                row.consecutive_failures = 0
            for key, value in changed.items():
                setattr(row, key, value)
            report.updated.append(spec.id)
        configured = {spec.id for spec in config.feeds}
        for feed_id, row in existing.items():
            if feed_id not in configured and row.in_config:
                row.in_config = False
                report.removed.append(feed_id)
    return report


# --- poll report ----------------------------------------------------------------------------------


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


# --- retrieve + parse (worker threads) ------------------------------------------------------------


@dataclass(frozen=True)
class FeedSnapshot:
    """The fields of a feed row a worker thread needs; rows stay in the thread that loaded them."""

    id: str
    outlet: str
    url: str
    country: str
    languages: tuple[str, ...]
    full_text: bool
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    guid_unreliable: bool

    @classmethod
    def of(cls, row: Feed) -> FeedSnapshot:
        return cls(
            id=row.id,
            outlet=row.outlet,
            url=row.url,
            country=row.country,
            languages=tuple(row.languages or ()),
            full_text=row.full_text,
            etag=row.etag,
            last_modified=row.last_modified,
            body_hash=row.body_hash,
            guid_unreliable=row.guid_unreliable,
        )


@dataclass
class Retrieved:
    """Outcome of steps 1-2 for one feed."""

    feed: FeedSnapshot
    fetch: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    unchanged: bool = False
    full_texts: dict[str, Extraction] = field(default_factory=dict)  # by canonical URL
    seconds: float = 0.0


class _Poller:
    """The adapters of one poll: fetcher, isolated parser workers, extractor."""

    def __init__(self, ctx: AppContext) -> None:
        from narrwatch.feeds.extract import ArticleExtractor
        from narrwatch.feeds.fetch import GuardedFetcher
        from narrwatch.feeds.isolate import IsolatedRunner, default_worker_count
        from narrwatch.feeds.parse import FeedParser

        settings = ctx.settings
        self.ctx = ctx
        self.fetcher = GuardedFetcher(settings)
        self.runner = IsolatedRunner(
            default_worker_count(settings.fetch_concurrency), memory_limit_mb=settings.parse_max_memory_mb
        )
        self.parser = FeedParser(
            self.runner, timeout_s=settings.parse_timeout_s, max_entries=settings.parse_max_entries
        )
        self.extractor = ArticleExtractor(self.fetcher, self.runner, timeout_s=settings.parse_timeout_s)

    def close(self) -> None:
        self.runner.close()
        self.fetcher.close()

    def retrieve(self, feed: FeedSnapshot) -> Retrieved:
        started = time.monotonic()
        try:
            outcome = self._retrieve(feed)
        except Exception as exc:  # a bug for one feed must not cost the others their poll
            log.exception("poll of feed %s failed unexpectedly", feed.id)
            outcome = Retrieved(feed, error_kind=ErrorKind.SOFT, error=f"internal error: {exc!r}"[:500])
        outcome.seconds = time.monotonic() - started
        return outcome

    def _retrieve(self, feed: FeedSnapshot) -> Retrieved:
        from narrwatch.feeds.parse import FeedParseError, is_feed

        fetched = self.fetcher.fetch(feed.url, etag=feed.etag, last_modified=feed.last_modified)
        outcome = Retrieved(feed, fetch=fetched)
        if fetched.error is not None:
            outcome.error_kind, outcome.error = fetched.error.kind, f"fetch: {fetched.error.message}"
            return outcome
        if fetched.not_modified or (feed.body_hash and fetched.body_sha256 == feed.body_hash):
            outcome.unchanged = True
            return outcome
        try:
            parsed = self.parser.parse(fetched.body, fetched.headers, fetched.final_url)
        except FeedParseError as exc:
            outcome.error_kind, outcome.error = ErrorKind.SOFT, f"parse: {exc}"
            return outcome
        if not is_feed(parsed):
            reason = "; ".join(parsed.errors[-2:]) or "no entries"
            outcome.error_kind, outcome.error = ErrorKind.SOFT, f"parse: not a feed ({reason})"[:500]
            return outcome
        outcome.parsed = parsed
        if feed.full_text and self.ctx.settings.full_text_max_per_feed > 0:
            outcome.full_texts = self._full_texts(feed, parsed)
        return outcome

    def _full_texts(self, feed: FeedSnapshot, parsed: ParsedFeed) -> dict[str, Extraction]:
        """Extract the pages of entries not stored yet (read-only check; the decision comes later)."""
        links: dict[str, str] = {}
        for entry in parsed.entries:
            canonical = _canonical_or_none(entry.link)
            if canonical is not None and entry.link is not None:
                links.setdefault(canonical, entry.link)
        with self.ctx.sessions() as session:
            known = set(_existing_urls(session, list(links)))
            known |= set(_tombstoned_urls(session, list(links)))
        texts: dict[str, Extraction] = {}
        for canonical, link in links.items():
            if canonical in known:
                continue
            if len(texts) >= self.ctx.settings.full_text_max_per_feed:
                break
            texts[canonical] = self.extractor.extract(link)
        return texts


# --- decide + persist (calling thread) -------------------------------------------------------------


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _existing_urls(session: Session, urls: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(urls):
        rows = session.execute(
            select(Article.canonical_url, Article.id).where(Article.canonical_url.in_(chunk))
        )
        found.update(dict(rows.tuples().all()))
    return found


def _tombstoned_urls(session: Session, urls: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(urls):
        found.update(
            session.scalars(select(Tombstone.canonical_url).where(Tombstone.canonical_url.in_(chunk)))
        )
    return found


def _known_entry_keys(session: Session, feed_id: str, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(keys):
        found.update(
            session.scalars(
                select(ArticleSighting.entry_key).where(
                    ArticleSighting.feed_id == feed_id, ArticleSighting.entry_key.in_(chunk)
                )
            )
        )
    return found


def _titled_articles(
    session: Session, outlet: str, keys: Sequence[str]
) -> dict[str, list[tuple[int, dt.datetime]]]:
    found: dict[str, list[tuple[int, dt.datetime]]] = {}
    for chunk in _chunks(keys):
        rows = session.execute(
            select(Article.title_key, Article.id, Article.published_at).where(
                Article.outlet == outlet, Article.title_key.in_(chunk)
            )
        )
        for key, article_id, published in rows:
            found.setdefault(key, []).append((article_id, published))
    return found


def _digest_key(kind: str, source: str) -> str:
    return f"{kind}:{hashlib.sha1(source.encode('utf-8'), usedforsecurity=False).hexdigest()}"


def guids_unusable(entries: Sequence[ParsedEntry]) -> bool:
    """FreshRSS's test: more than 5% of the GUIDs blank, or repeated with different links."""
    if not entries:
        return False
    links_by_guid: dict[str, str | None] = {}
    bad = 0
    for entry in entries:
        if not entry.guid:
            bad += 1
        elif entry.guid in links_by_guid:
            if links_by_guid[entry.guid] != entry.link:
                bad += 1
        else:
            links_by_guid[entry.guid] = entry.link
    return bad / len(entries) > GUID_DEGRADE_SHARE


def entry_keys(entries: Sequence[ParsedEntry], use_links: bool) -> list[str]:
    """The per-feed identity of each entry: its GUID (a repeated GUID disambiguated by link, as
    Miniflux does), or its link when the feed's GUIDs are unusable, else a hash of title and date."""
    keys: list[str] = []
    first_link: dict[str, str | None] = {}
    for index, entry in enumerate(entries):
        if entry.guid and not use_links:
            if entry.guid not in first_link:
                first_link[entry.guid] = entry.link
            same_item = first_link[entry.guid] == entry.link  # a listed-twice item keeps its key
            source = entry.guid if same_item else f"{entry.guid}|{entry.link or index}"
            keys.append(_digest_key("guid", source))
        elif entry.link:
            try:
                source = canonicalize_url(entry.link)
            except UrlError:
                source = entry.link
            keys.append(_digest_key("link", source))
        else:
            when = entry.published or entry.updated
            keys.append(_digest_key("hash", f"{entry.title}|{when.isoformat() if when else ''}"))
    return keys


@dataclass(frozen=True)
class Lookups:
    """What the store already knows about one feed document's entries (read before deciding)."""

    known_entry_keys: frozenset[str]
    articles_by_url: dict[str, int]
    tombstoned_urls: frozenset[str]
    articles_by_title: dict[str, list[tuple[int, dt.datetime]]]  # title key -> (id, published)


@dataclass
class PlannedSighting:
    entry_key: str
    url: str
    title: str
    matched_by: str  # new | canonical_url | title
    article_id: int | None = None  # an article already stored
    new_index: int | None = None  # or one of the plan's new articles


@dataclass
class FeedPlan:
    """The decision for one feed document: new article rows and every sighting, nothing written yet."""

    new_articles: list[dict[str, Any]] = field(default_factory=list)
    sightings: list[PlannedSighting] = field(default_factory=list)
    published: list[dt.datetime] = field(default_factory=list)  # every date seen, for the cadence
    duplicates: Counter[str] = field(default_factory=Counter)
    tombstoned: int = 0
    skipped: int = 0
    undated_new: int = 0


def _article_text(entry: ParsedEntry, extraction: Extraction | None) -> tuple[str, str]:
    if extraction is not None and extraction.text:
        return extraction.text, extraction.extractor
    return entry.content or entry.summary or "", "feed"


def _canonical_or_none(link: str | None) -> str | None:
    if not link:
        return None
    try:
        return canonicalize_url(link)
    except UrlError:
        return None


def decide_entries(
    feed: FeedSnapshot,
    entries: Sequence[ParsedEntry],
    keys: Sequence[str],
    lookups: Lookups,
    now: dt.datetime,
    title_window: dt.timedelta,
    full_texts: dict[str, Extraction] | None = None,
) -> FeedPlan:
    """Each entry through the dedup layers: entry key -> canonical URL (tombstones refused) ->
    normalised title of the outlet within ``title_window``. No I/O: the store's view is in
    ``lookups``, and entries of the same document dedup against each other as they go."""
    from narrwatch.feeds.language import detect_language

    plan = FeedPlan()
    known_keys = set(lookups.known_entry_keys)
    by_url: dict[str, tuple[int | None, int | None]] = {
        url: (article_id, None) for url, article_id in lookups.articles_by_url.items()
    }
    by_title: dict[str, list[tuple[int | None, int | None, dt.datetime]]] = {
        key: [(article_id, None, published) for article_id, published in found]
        for key, found in lookups.articles_by_title.items()
    }
    for entry, key in zip(entries, keys, strict=True):
        stamp = entry.published or entry.updated
        if stamp is not None:
            plan.published.append(stamp)
        if key in known_keys:
            plan.duplicates["entry_key"] += 1
            continue
        known_keys.add(key)
        url = _canonical_or_none(entry.link)
        if url is None or entry.link is None:
            plan.skipped += 1
            continue
        if url in lookups.tombstoned_urls:
            plan.tombstoned += 1
            continue
        published, estimated = (stamp, False) if stamp is not None and stamp <= now else (now, True)
        title_key = make_title_key(entry.title)
        target = by_url.get(url)
        matched_by = "canonical_url"
        if target is None and title_key and title_window.total_seconds() > 0:
            for article_id, new_index, candidate_published in by_title.get(title_key, []):
                if abs(candidate_published - published) <= title_window:
                    target, matched_by = (article_id, new_index), "title"
                    break
        if target is None:
            title = truncate(entry.title or entry.summary or url, MAX_TITLE_CHARS)
            text, text_source = _article_text(entry, (full_texts or {}).get(url))
            detection = detect_language(f"{title}\n{text[:1000]}", feed.languages)
            plan.new_articles.append(
                {
                    "canonical_url": url,
                    "url": entry.link,
                    "feed_id": feed.id,
                    "outlet": feed.outlet,
                    "country": feed.country,
                    "language": detection.language,
                    "language_detector": detection.detector,
                    "title": title,
                    "title_key": title_key,
                    "summary": entry.summary,
                    "text": text,
                    "text_source": text_source,
                    "content_hash": hashlib.sha256(f"{title}\n{text}".encode()).hexdigest(),
                    "published_at": published,
                    "published_estimated": estimated,
                    "fetched_at": now,
                    "story_key": make_story_key(title, url),
                }
            )
            plan.undated_new += int(stamp is None)
            target, matched_by = (None, len(plan.new_articles) - 1), "new"
            by_url[url] = target
            if title_key:
                by_title.setdefault(title_key, []).append((None, target[1], published))
        else:
            plan.duplicates[matched_by] += 1
        plan.sightings.append(
            PlannedSighting(
                entry_key=key,
                url=entry.link,
                title=truncate(entry.title, MAX_TITLE_CHARS),
                matched_by=matched_by,
                article_id=target[0],
                new_index=target[1],
            )
        )
    return plan


def _load_lookups(
    session: Session, feed: FeedSnapshot, entries: Sequence[ParsedEntry], keys: Sequence[str]
) -> Lookups:
    urls = sorted({url for url in (_canonical_or_none(entry.link) for entry in entries) if url})
    title_keys = sorted({key for key in (make_title_key(entry.title) for entry in entries) if key})
    return Lookups(
        known_entry_keys=frozenset(_known_entry_keys(session, feed.id, keys)),
        articles_by_url=_existing_urls(session, urls),
        tombstoned_urls=frozenset(_tombstoned_urls(session, urls)),
        articles_by_title=_titled_articles(session, feed.outlet, title_keys),
    )


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


def _poll_state(feed: Feed, error_kind: ErrorKind | None) -> PollState:
    return PollState(
        consecutive_failures=feed.consecutive_failures,
        last_error_kind=error_kind,
        mean_item_gap_s=feed.mean_item_gap_s,
        retry_after_until=feed.retry_after_until,
        last_attempt_at=feed.last_attempt_at,
        last_success_at=feed.last_success_at,
        last_new_item_at=feed.last_new_item_at,
        paused=feed.paused or bool((feed.poll_overrides or {}).get("paused")),
    )


def _schedule(ctx: AppContext, feed: Feed, now: dt.datetime, error_kind: ErrorKind | None) -> None:
    bounds = PollBounds.from_settings(ctx.settings, feed.poll_overrides)
    when = next_poll_at(now, _poll_state(feed, error_kind), bounds, jitter_key=f"{feed.id}|{now.isoformat()}")
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
            assert outcome.parsed is not None
            parsed = outcome.parsed
            entries = list(parsed.entries)
            if not feed.guid_unreliable and guids_unusable(entries):
                log.warning(
                    "feed %s: GUIDs blank or repeated; keying its entries by link from now on", feed.id
                )
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
            feed.body_hash = fetched.body_sha256
            feed.items_total = (feed.items_total or 0) + new_sightings
            feed.undated_items_total = (feed.undated_items_total or 0) + plan.undated_new
            feed.mean_item_gap_s = blend_item_gap(
                feed.mean_item_gap_s, estimate_item_gap_s(plan.published, now)
            )
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


# --- health and operator actions --------------------------------------------------------------------


@dataclass(frozen=True)
class FeedHealth:
    id: str
    outlet: str
    group: str
    state: HealthState
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_new_item_at: dt.datetime | None
    consecutive_failures: int
    last_status: int | None
    last_error: str | None
    next_poll_at: dt.datetime | None
    items_total: int
    undated_items_total: int

    def as_dict(self) -> dict[str, Any]:
        return {
            key: (value.isoformat() if isinstance(value, dt.datetime) else value)
            for key, value in self.__dict__.items()
        }


def feed_health(ctx: AppContext, now: dt.datetime) -> list[FeedHealth]:
    """Health of every configured feed in the store, worst first."""
    order = {HealthState.DEGRADED: 0, HealthState.SILENT: 1, HealthState.PAUSED: 2, HealthState.OK: 3}
    rows: list[FeedHealth] = []
    with ctx.transaction() as session:
        for feed in session.scalars(select(Feed).where(Feed.in_config.is_(True))):
            bounds = PollBounds.from_settings(ctx.settings, feed.poll_overrides)
            rows.append(
                FeedHealth(
                    id=feed.id,
                    outlet=feed.outlet,
                    group=feed.group,
                    state=feed_health_state(now, _poll_state(feed, None), bounds),
                    last_attempt_at=feed.last_attempt_at,
                    last_success_at=feed.last_success_at,
                    last_new_item_at=feed.last_new_item_at,
                    consecutive_failures=feed.consecutive_failures or 0,
                    last_status=feed.last_status,
                    last_error=feed.last_error,
                    next_poll_at=feed.next_poll_at,
                    items_total=feed.items_total or 0,
                    undated_items_total=feed.undated_items_total or 0,
                )
            )
    return sorted(rows, key=lambda row: (order[row.state], row.id))


def _feed_row(session: Session, feed_id: str) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise UnknownFeedError(
            f"no feed {feed_id!r} in the store (is it in feeds.yaml? run `narrwatch feeds sync`)"
        )
    return feed


def set_paused(ctx: AppContext, feed_id: str, paused: bool) -> None:
    """Pause or resume polling of one feed (operator action; feeds.yaml `poll.paused` is separate)."""
    with ctx.transaction() as session:
        feed = _feed_row(session, feed_id)
        if not paused and (feed.poll_overrides or {}).get("paused"):
            raise ValueError(f"feed {feed_id!r} is paused in feeds.yaml (poll.paused): change it there")
        feed.paused = paused


def reset_feed(ctx: AppContext, feed_id: str) -> None:
    """Forget a feed's failures and backoff so the next poll takes it."""
    with ctx.transaction() as session:
        feed = _feed_row(session, feed_id)
        feed.consecutive_failures = 0
        feed.last_error = None
        feed.retry_after_until = None
        feed.next_poll_at = None
