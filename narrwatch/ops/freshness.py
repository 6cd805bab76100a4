"""The freshness check behind the daily watchdog and `narrwatch status`: are articles still arriving,
and how many watched feeds fail? Feed states come from the one health rule (``narrwatch.db.rules``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from narrwatch.context import AppContext
from narrwatch.db.models import Article


@dataclass
class FreshnessReport:
    now: dt.datetime
    last_fetched_at: dt.datetime | None
    last_published_at: dt.datetime | None
    active_feeds: int
    failing_feeds: list[str]
    problems: list[str]

    @property
    def failing_share(self) -> float:
        return len(self.failing_feeds) / self.active_feeds if self.active_feeds else 0.0

    def as_dict(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "now": self.now.isoformat(),
            "last_fetched_at": iso(self.last_fetched_at),
            "last_published_at": iso(self.last_published_at),
            "active_feeds": self.active_feeds,
            "failing_feeds": len(self.failing_feeds),
            "failing_share": round(self.failing_share, 3),
            "problems": self.problems,
        }


def check_freshness(ctx: AppContext, now: dt.datetime) -> FreshnessReport:
    """Are articles still arriving, and do most feeds still answer? Judged as of ``now``.

    Only articles stored at or before ``now`` count, so replaying an old day judges that day. A feed
    is failing when its health (``narrwatch feeds health``) is degraded: several polls in a row
    failed, or it never succeeded. Paused feeds and feeds removed from feeds.yaml are not active.
    """
    from narrwatch.domain.polling import HealthState
    from narrwatch.steps.poll.operate import feed_health

    settings = ctx.settings
    with ctx.transaction() as session:
        last_fetched, last_published = session.execute(
            select(func.max(Article.fetched_at), func.max(Article.published_at)).where(
                Article.fetched_at <= now
            )
        ).one()
    active = [row for row in feed_health(ctx, now) if row.state is not HealthState.PAUSED]
    failing = sorted(row.id for row in active if row.state is HealthState.DEGRADED)
    report = FreshnessReport(
        now=now,
        last_fetched_at=last_fetched,
        last_published_at=last_published,
        active_feeds=len(active),
        failing_feeds=failing,
        problems=[],
    )
    if not active:
        report.problems.append("no active feed (all paused or none synced from the feeds file)")
    if last_fetched is None:
        report.problems.append("no article has been stored yet")
    else:
        silence_h = (now - last_fetched).total_seconds() / 3600
        if silence_h > settings.freshness_max_silence_h:
            report.problems.append(
                f"no new article for {silence_h:.1f} h (last stored {last_fetched.isoformat()}; "
                f"limit NARRWATCH_FRESHNESS_MAX_SILENCE_H={settings.freshness_max_silence_h:g})"
            )
    if active and report.failing_share > settings.freshness_max_failing_feed_share:
        shown = ", ".join(failing[:10]) + (" ..." if len(failing) > 10 else "")
        report.problems.append(
            f"{len(failing)} of {len(active)} active feeds are failing ({shown}; limit "
            f"NARRWATCH_FRESHNESS_MAX_FAILING_FEED_SHARE={settings.freshness_max_failing_feed_share:g})"
        )
    return report
