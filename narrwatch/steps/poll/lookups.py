"""What the dedup decision needs to know from the store, read in one transaction per feed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import Article, ArticleSighting, Tombstone
from narrwatch.domain.text import title_key as make_title_key
from narrwatch.domain.types import ParsedEntry
from narrwatch.steps.poll.decide import FeedSnapshot, Lookups, _canonical_or_none

_IN_CHUNK = 500


def _existing_urls(session: Session, urls: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in rules.chunked(urls, _IN_CHUNK):
        rows = session.execute(
            select(Article.canonical_url, Article.id).where(Article.canonical_url.in_(chunk))
        )
        found.update(dict(rows.tuples().all()))
    return found


def _tombstoned_urls(session: Session, urls: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in rules.chunked(urls, _IN_CHUNK):
        found.update(
            session.scalars(select(Tombstone.canonical_url).where(Tombstone.canonical_url.in_(chunk)))
        )
    return found


def _known_entry_keys(session: Session, feed_id: str, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in rules.chunked(keys, _IN_CHUNK):
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
    for chunk in rules.chunked(keys, _IN_CHUNK):
        rows = session.execute(
            select(Article.title_key, Article.id, Article.published_at).where(
                Article.outlet == outlet, Article.title_key.in_(chunk)
            )
        )
        for key, article_id, published in rows:
            found.setdefault(key, []).append((article_id, published))
    return found


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
