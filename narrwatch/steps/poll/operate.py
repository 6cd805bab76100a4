"""What operators see and do to feeds: health (by the one rule in ``narrwatch.db.rules``), pause,
resume, reset."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Feed
from narrwatch.domain.polling import (
    HealthState,
)
from narrwatch.steps.poll.sync import UnknownFeedError


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
    """Health of every configured feed in the store, worst first (``rules.feed_health``)."""
    with ctx.transaction() as session:
        return [
            FeedHealth(
                id=row.feed.id,
                outlet=row.feed.outlet,
                group=row.feed.group,
                state=row.state,
                last_attempt_at=row.feed.last_attempt_at,
                last_success_at=row.feed.last_success_at,
                last_new_item_at=row.feed.last_new_item_at,
                consecutive_failures=row.feed.consecutive_failures or 0,
                last_status=row.feed.last_status,
                last_error=row.feed.last_error,
                next_poll_at=row.feed.next_poll_at,
                items_total=row.feed.items_total or 0,
                undated_items_total=row.feed.undated_items_total or 0,
            )
            for row in rules.feed_health(session, ctx.settings, now)
        ]


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
