"""Retention: delete articles past the retention period, leave a tombstone for each URL so it is never
stored again, and delete their points from the vector store. Safe to re-run; batched so a crash loses
at most one batch of work."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Article, Passage, Tombstone
from narrwatch.db.session import dialect_insert

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
                select(Article.id, Article.canonical_url, Article.published_at)
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
            rules.mark_counts_stale(session, (row.published_at.date() for row in rows))
            session.execute(delete(Article).where(Article.id.in_(ids)))
        report.articles_deleted += len(ids)
        report.batches += 1
    return report
