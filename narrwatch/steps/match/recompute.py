"""Recompute the matches of seeds that changed since their window was last matched (maintenance)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from narrwatch.context import AppContext
from narrwatch.db.models import Article, Match, MatchState, NarrativeVersion


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
    from narrwatch.steps.match import match as matching
    from narrwatch.steps.match.versions import sync_narratives

    sync_narratives(ctx, now)
    start = now - dt.timedelta(days=ctx.settings.recompute_window_days)
    report = RecomputeReport(window_start=start, window_end=now)
    report.changed = outdated_seed_versions(ctx, start, now)
    report.stale_articles = stale_match_states(ctx, start, now)
    if report.changed or report.stale_articles:
        report.match = matching.match_articles(ctx, start, now, now, recompute=True).as_dict()
    return report
