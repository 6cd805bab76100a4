"""Sync feeds.yaml into the ``feeds`` table: config columns follow the file, fetch state stays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db.models import Feed
from narrwatch.db.session import dialect_insert
from narrwatch.steps.poll.registry import FeedSpec, load_feeds_file


class UnknownFeedError(LookupError):
    """No feed with this id in the store (run a poll or `feeds sync` first)."""


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
