"""Retrieve: the guarded fetch and the isolated parse of one feed, run for many feeds on a thread pool."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from narrwatch.context import AppContext
from narrwatch.domain.polling import (
    ErrorKind,
)
from narrwatch.domain.types import ParsedFeed

if TYPE_CHECKING:
    from narrwatch.steps.poll.extract import Extraction
    from narrwatch.steps.poll.fetch import FetchResult
from narrwatch.steps.poll.decide import FeedSnapshot, _canonical_or_none
from narrwatch.steps.poll.lookups import _existing_urls, _tombstoned_urls

log = logging.getLogger(__name__)


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
        from narrwatch.steps.poll.extract import ArticleExtractor
        from narrwatch.steps.poll.fetch import GuardedFetcher
        from narrwatch.steps.poll.isolate import IsolatedRunner, default_worker_count
        from narrwatch.steps.poll.parse import FeedParser

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
        from narrwatch.steps.poll.parse import FeedParseError, is_feed

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
