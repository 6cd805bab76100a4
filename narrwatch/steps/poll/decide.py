"""Decide: each parsed entry against the layered dedup keys, as a plan of rows to write.

Pure over what the feed's transaction read first (``Lookups``): entry key (GUID, or the link once a
feed's GUIDs proved unusable) -> canonical URL (tombstoned URLs are never stored again) -> normalised
title of the outlet within the dedup window (Serbian Cyrillic and Latin titles are one title).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from narrwatch.db.models import Feed
from narrwatch.domain.text import story_key as make_story_key
from narrwatch.domain.text import title_key as make_title_key
from narrwatch.domain.text import truncate
from narrwatch.domain.types import ParsedEntry
from narrwatch.domain.urls import UrlError, canonicalize_url

if TYPE_CHECKING:
    from narrwatch.steps.poll.extract import Extraction


#: FreshRSS's rule: when more than this share of a document's GUIDs are blank or repeated (with
#: different links), the feed's GUIDs are unusable and its entries are keyed by link from then on.
GUID_DEGRADE_SHARE = 0.05


MAX_TITLE_CHARS = 1_000


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
    plan = FeedPlan()
    known_keys = set(lookups.known_entry_keys)
    by_url: dict[str, _Target] = {
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
        target, matched_by = by_url.get(url), "canonical_url"
        if target is None and title_key and title_window.total_seconds() > 0:
            target, matched_by = _same_title(by_title.get(title_key, []), published, title_window)
        if target is None:
            row = _new_article(feed, entry, url, published, estimated, now, title_key, full_texts)
            plan.new_articles.append(row)
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


#: An article a sighting points at: (stored article id, or index into the plan's new articles).
_Target = tuple[int | None, int | None]


def _same_title(
    candidates: Sequence[tuple[int | None, int | None, dt.datetime]],
    published: dt.datetime,
    title_window: dt.timedelta,
) -> tuple[_Target | None, str]:
    """The first article with the same normalised title published within ``title_window``."""
    for article_id, new_index, candidate_published in candidates:
        if abs(candidate_published - published) <= title_window:
            return (article_id, new_index), "title"
    return None, "canonical_url"


def _new_article(
    feed: FeedSnapshot,
    entry: ParsedEntry,
    url: str,
    published: dt.datetime,
    estimated: bool,
    now: dt.datetime,
    title_key: str,
    full_texts: dict[str, Extraction] | None,
) -> dict[str, Any]:
    """The ``articles`` row for an entry seen for the first time."""
    from narrwatch.steps.poll.language import detect_language

    title = truncate(entry.title or entry.summary or url, MAX_TITLE_CHARS)
    text, text_source = _article_text(entry, (full_texts or {}).get(url))
    detection = detect_language(f"{title}\n{text[:1000]}", feed.languages)
    return {
        "canonical_url": url,
        "url": entry.link,
        "feed_id": feed.id,
        "outlet": feed.outlet,
        "country": feed.country,
        "language": detection.language,
        "language_detector": detection.detector,
        "script": detection.script,
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
