"""Keeping the store healthy: retention with tombstones, recomputing matches of edited seeds, and the
freshness check behind the daily watchdog and `narrwatch status`.

Each function takes the context and the logical ``now`` and returns a small report; the maintenance
and daily DAGs and the CLI call them through ``narrwatch.pipeline``. All of them are safe to re-run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, func, select

from db.models import Article, Match, MatchState, NarrativeVersion, Passage, Tombstone
from db.session import dialect_insert
from narrwatch.context import AppContext

#: Articles deleted per transaction: a crash loses at most one batch of work, and a first run over a
#: large store does not hold one huge transaction (or one huge Qdrant delete).
RETENTION_BATCH = 500


@dataclass
class RetentionReport:
    enabled: bool
    cutoff: dt.datetime | None = None
    articles_deleted: int = 0
    points_deleted: int = 0
    batches: int = 0
    dry_run: bool = False  # counted what would go (articles_deleted, points_deleted), deleted nothing

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat() if self.cutoff else None
        return data


def apply_retention(
    ctx: AppContext, now: dt.datetime, *, batch: int = RETENTION_BATCH, dry_run: bool = False
) -> RetentionReport:
    """Delete articles published before ``now - retention_days``, tombstone them, drop their points.

    In each batch the Qdrant points are deleted first and the SQL rows (with the tombstones) are
    committed after: if the commit fails, the rerun finds the same articles and deletes their (already
    gone) points again, which is harmless. The other order could leave points whose ids nobody
    knows any more. Passages, embeddings, sightings, matches, verdicts and cluster memberships go
    with their article (ON DELETE CASCADE); daily counts and flags are aggregates and stay, so the
    rising baseline keeps its history. With ``dry_run`` the same articles and points are counted
    and nothing is deleted. ``retention_days`` is at least ``MIN_RETENTION_DAYS`` (the settings
    refuse less), so a slip of one digit cannot empty the store.
    """
    from narrwatch.config import MIN_RETENTION_DAYS

    days = ctx.settings.retention_days
    if not days:
        return RetentionReport(enabled=False, dry_run=dry_run)
    if days < MIN_RETENTION_DAYS:  # settings refuse it; a value set in code must not slip through
        raise ValueError(f"retention_days {days} is below the minimum of {MIN_RETENTION_DAYS}")
    report = RetentionReport(enabled=True, cutoff=now - dt.timedelta(days=days), dry_run=dry_run)
    if dry_run:
        with ctx.transaction() as session:
            old = select(Article.id).where(Article.published_at < report.cutoff)
            report.articles_deleted = session.scalar(select(func.count()).select_from(old.subquery())) or 0
            report.points_deleted = (
                session.scalar(select(func.count()).select_from(Passage).where(Passage.article_id.in_(old)))
                or 0
            )
        return report
    while True:
        with ctx.transaction() as session:
            rows = session.execute(
                select(Article.id, Article.canonical_url)
                .where(Article.published_at < report.cutoff)
                .order_by(Article.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            ids = [row.id for row in rows]
            points: dict[str, list[str]] = defaultdict(list)
            for collection, point_id in session.execute(
                select(Passage.collection, Passage.point_id).where(Passage.article_id.in_(ids))
            ):
                points[collection].append(point_id)
            for collection, point_ids in points.items():
                ctx.vector_store.delete(collection, point_ids)
                report.points_deleted += len(point_ids)
            session.execute(
                dialect_insert(session, Tombstone)
                .values(
                    [
                        {
                            "canonical_url": row.canonical_url,
                            "article_id": row.id,
                            "deleted_at": now,
                            "reason": "retention",
                        }
                        for row in rows
                    ]
                )
                .on_conflict_do_nothing()
            )
            session.execute(delete(Article).where(Article.id.in_(ids)))
        report.articles_deleted += len(ids)
        report.batches += 1
    return report


@dataclass
class RecomputeReport:
    window_start: dt.datetime
    window_end: dt.datetime
    changed: dict[str, list[int]] = field(default_factory=dict)  # seed -> outdated versions in use
    stale_articles: int = 0  # scored against other seeds than the newest scoring run used
    match: dict[str, Any] | None = None  # the match step's summary, when it ran

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "changed": self.changed,
            "stale_articles": self.stale_articles,
            "match": self.match,
        }


def outdated_seed_versions(ctx: AppContext, start: dt.datetime, end: dt.datetime) -> dict[str, list[int]]:
    """Seeds with matches in ``[start, end)`` made by a version older than the seed's newest one."""
    newest = (
        select(NarrativeVersion.narrative_id, func.max(NarrativeVersion.version).label("version"))
        .group_by(NarrativeVersion.narrative_id)
        .subquery()
    )
    with ctx.transaction() as session:
        rows = session.execute(
            select(NarrativeVersion.narrative_id, NarrativeVersion.version)
            .join(Match, Match.narrative_version_id == NarrativeVersion.id)
            .join(newest, newest.c.narrative_id == NarrativeVersion.narrative_id)
            .where(
                Match.published_at >= start,
                Match.published_at < end,
                NarrativeVersion.version < newest.c.version,
            )
            .distinct()
            .order_by(NarrativeVersion.narrative_id, NarrativeVersion.version)
        ).all()
    changed: dict[str, list[int]] = defaultdict(list)
    for narrative_id, version in rows:
        changed[narrative_id].append(version)
    return dict(changed)


def stale_match_states(ctx: AppContext, start: dt.datetime, end: dt.datetime) -> int:
    """Articles published in ``[start, end)`` scored against other seeds than the newest scoring.

    The newest match state says which seeds (versions, thresholds, new seeds) matching uses now;
    articles of the window scored before a change carry another key. This also catches what no
    stored match shows: a new seed, or thresholds changed by calibration.
    """
    with ctx.transaction() as session:
        newest = session.execute(
            select(MatchState.collection, MatchState.seeds_key)
            .order_by(MatchState.matched_at.desc())
            .limit(1)
        ).first()
        if newest is None:
            return 0
        stale = session.scalar(
            select(func.count())
            .select_from(MatchState)
            .join(Article, Article.id == MatchState.article_id)
            .where(
                MatchState.collection == newest.collection,
                MatchState.seeds_key != newest.seeds_key,
                Article.published_at >= start,
                Article.published_at < end,
            )
        )
    return int(stale or 0)


def recompute_changed_narratives(ctx: AppContext, now: dt.datetime) -> RecomputeReport:
    """Recompute the window's matches when seeds changed since the stored matches were made.

    The seed files are synced first, so an edited file becomes a new version even when no process
    run happened since. Matching's own window is short (``match_window_days``); this carries an edit
    back over ``recompute_window_days`` so the rising baseline counts with the new definition. The
    model is loaded only when something changed, and after a recompute the window holds only
    current matches, so the next run finds nothing to do.
    """
    from narrwatch import matching

    matching.sync_narratives(ctx, now)
    start = now - dt.timedelta(days=ctx.settings.recompute_window_days)
    report = RecomputeReport(window_start=start, window_end=now)
    report.changed = outdated_seed_versions(ctx, start, now)
    report.stale_articles = stale_match_states(ctx, start, now)
    if report.changed or report.stale_articles:
        report.match = matching.match_articles(ctx, start, now, now, recompute=True).as_dict()
    return report


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
    from narrwatch.ingest import feed_health

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
