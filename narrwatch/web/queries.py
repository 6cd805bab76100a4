"""What the pages read: plain queries over the store, no rule of their own.

Which matches count is ``db.rules.counted_matches_query``; the day's report is
``steps.report.collect.collect_report_data``; feed health is ``steps.poll.operate.feed_health``.
This module only adds what a page needs around them: days to navigate, outlet names, stored counts
per slice, pages of rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import (
    Article,
    Cluster,
    ClusterMember,
    DailyCount,
    Feed,
    Match,
    NarrativeVersion,
    RisingFlag,
    SeedHead,
    Verdict,
)
from narrwatch.db.rules import counted_matches_query, latest_verdict_subquery
from narrwatch.domain.clock import day_start
from narrwatch.domain.rising import DayCount

# --- days ---------------------------------------------------------------------------------------


def latest_day(session: Session) -> dt.date | None:
    """The newest day the detector counted: what "Today" shows when no day is asked for."""
    day = session.scalar(select(func.max(DailyCount.day)))
    return day if isinstance(day, dt.date) else None


@dataclass(frozen=True)
class DayNav:
    day: dt.date
    previous: dt.date | None
    next: dt.date | None


def day_nav(session: Session, day: dt.date) -> DayNav:
    previous = session.scalar(select(func.max(DailyCount.day)).where(DailyCount.day < day))
    following = session.scalar(select(func.min(DailyCount.day)).where(DailyCount.day > day))
    return DayNav(day, previous, following)


@dataclass(frozen=True)
class ArchiveDay:
    day: dt.date
    n_flags: int
    n_subjects: int


def archive(session: Session, limit: int = 90) -> list[ArchiveDay]:
    counted = session.execute(
        select(DailyCount.day, func.count(func.distinct(DailyCount.subject_id)))
        .where(DailyCount.dimension == "all")
        .group_by(DailyCount.day)
        .order_by(DailyCount.day.desc())
        .limit(limit)
    ).all()
    flags = dict(
        session.execute(
            select(RisingFlag.day, func.count(func.distinct(RisingFlag.subject_id))).group_by(RisingFlag.day)
        ).all()
    )
    return [ArchiveDay(day, int(flags.get(day, 0)), int(n)) for day, n in counted]


# --- outlets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutletInfo:
    slug: str
    name: str
    country: str
    state_affiliated: bool


def outlets(session: Session) -> dict[str, OutletInfo]:
    """Every outlet of the store by slug, named as feeds.yaml names its (first) feed."""
    found: dict[str, OutletInfo] = {}
    for feed in session.scalars(select(Feed).order_by(Feed.outlet, Feed.id)):
        if feed.outlet not in found:
            found[feed.outlet] = OutletInfo(feed.outlet, feed.name, feed.country, bool(feed.state_affiliated))
        elif feed.state_affiliated and not found[feed.outlet].state_affiliated:
            info = found[feed.outlet]
            found[feed.outlet] = OutletInfo(info.slug, info.name, info.country, True)
    return found


# --- per country and language -------------------------------------------------------------------


@dataclass(frozen=True)
class SliceRow:
    value: str
    n_articles: int  # seed matches counted in the slice (an article matching two seeds counts twice)
    n_outlets: int  # the largest distinct-outlet count of one seed in the slice
    seeds: list[tuple[str, int]]  # (seed id, outlets), most outlets first
    flagged: bool


def breakdown(session: Session, day: dt.date, dimension: str) -> list[SliceRow]:
    """The detector's stored counts of the day for one dimension (country or language)."""
    rows = session.scalars(
        select(DailyCount).where(
            DailyCount.day == day, DailyCount.dimension == dimension, DailyCount.subject_kind == "narrative"
        )
    ).all()
    flagged = {
        value
        for (value,) in session.execute(
            select(RisingFlag.dimension_value).where(RisingFlag.day == day, RisingFlag.dimension == dimension)
        )
    }
    grouped: dict[str, list[DailyCount]] = defaultdict(list)
    for row in rows:
        if row.n_articles:
            grouped[row.dimension_value].append(row)
    result = [
        SliceRow(
            value=value,
            n_articles=sum(row.n_articles for row in items),
            n_outlets=max(row.n_outlets for row in items),
            seeds=sorted(((row.subject_id, row.n_outlets) for row in items), key=lambda s: (-s[1], s[0])),
            flagged=value in flagged,
        )
        for value, items in grouped.items()
    ]
    result.sort(key=lambda row: (not row.flagged, -row.n_articles, row.value))
    return result


# --- a narrative --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    day: dt.date
    n_outlets: int
    n_articles: int
    baseline: float | None  # trailing mean of distinct outlets over the baseline window before the day
    flagged: bool


def _stored_counts(
    session: Session, kind: str, subject_id: str, first: dt.date, end: dt.date
) -> dict[dt.date, DayCount]:
    """A subject's stored overall counts on [first, end]; a cluster's as detection tests it on ``end``:
    the union of the clusters merged into it by then."""
    if kind == "cluster" and subject_id.isdigit():
        merged_into = rules.merge_map(session, day_start(end + dt.timedelta(days=1)))
        days = [first + dt.timedelta(days=i) for i in range((end - first).days + 1)]
        group = rules.cluster_groups([subject_id], merged_into)[subject_id]
        counts, _ = rules.stored_cluster_days(session, days, merged_into, group, dimensions=("all",))
        return counts.get((subject_id, "all", "all"), {})
    rows = session.scalars(
        select(DailyCount).where(
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == "all",
            DailyCount.day >= first,
            DailyCount.day <= end,
        )
    )
    return {row.day: DayCount(row.n_articles, row.n_stories, row.n_outlets) for row in rows}


def timeline(
    session: Session, kind: str, subject_id: str, end: dt.date, days: int, baseline_days: int
) -> list[TimelinePoint]:
    first = end - dt.timedelta(days=days - 1)
    counts = _stored_counts(session, kind, subject_id, first - dt.timedelta(days=baseline_days), end)
    flagged = set(
        session.scalars(
            select(RisingFlag.day).where(
                RisingFlag.subject_kind == kind,
                RisingFlag.subject_id == subject_id,
                RisingFlag.day >= first,
                RisingFlag.day <= end,
            )
        )
    )
    points = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        row = counts.get(day)
        history = [day - dt.timedelta(days=back) for back in range(1, baseline_days + 1)]
        # As the report draws it: the trailing mean, none before the first stored count.
        has_history = any(d in counts for d in history)
        total = sum(counts[d].n_outlets for d in history if d in counts)
        baseline = total / baseline_days if has_history else None
        points.append(
            TimelinePoint(
                day=day,
                n_outlets=row.n_outlets if row else 0,
                n_articles=row.n_articles if row else 0,
                baseline=round(baseline, 2) if baseline is not None else None,
                flagged=day in flagged,
            )
        )
    return points


@dataclass(frozen=True)
class EvidenceRow:
    match_id: int
    article_id: int
    title: str
    url: str
    outlet: str
    country: str
    language: str | None
    published_at: dt.datetime
    level: str
    score: float
    evidence: str
    evidence_example: str | None
    verdict: str | None
    counted: bool
    version: int


def evidence_page(
    session: Session, narrative_id: str, *, limit: int, offset: int
) -> tuple[list[EvidenceRow], int]:
    """Every match of a seed, newest first, with its verdict and whether it counts (the report's rule)."""
    counted_ids = set(
        session.scalars(counted_matches_query(narrative_ids=[narrative_id]).with_only_columns(Match.id))
    )
    total = (
        session.scalar(select(func.count()).select_from(Match).where(Match.narrative_id == narrative_id)) or 0
    )
    rows = session.execute(
        select(Match, Article, NarrativeVersion.version, latest_verdict_subquery())
        .join(Article, Article.id == Match.article_id)
        .join(NarrativeVersion, NarrativeVersion.id == Match.narrative_version_id)
        .where(Match.narrative_id == narrative_id)
        .order_by(Match.published_at.desc(), Match.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        EvidenceRow(
            match_id=match.id,
            article_id=article.id,
            title=article.title,
            url=article.url,
            outlet=article.outlet,
            country=article.country,
            language=article.language,
            published_at=match.published_at,
            level=match.level,
            score=match.score,
            evidence=match.evidence_text,
            evidence_example=match.evidence_example,
            verdict=verdict,
            counted=match.id in counted_ids,
            version=version,
        )
        for match, article, version, verdict in rows
    ], int(total)


def counted_outlets(
    session: Session, narrative_id: str, start: dt.datetime, end: dt.datetime
) -> dict[str, int]:
    """Articles per outlet among the matches that count for the seed in the window."""
    query = counted_matches_query(start=start, end=end, narrative_ids=[narrative_id])
    sub = query.subquery()
    rows = session.execute(
        select(Article.outlet, func.count(func.distinct(Article.id)))
        .join(sub, sub.c.article_id == Article.id)
        .group_by(Article.outlet)
    ).all()
    return {outlet: int(n) for outlet, n in rows}


def counted_countries(
    session: Session, narrative_id: str, start: dt.datetime, end: dt.datetime
) -> dict[str, int]:
    sub = counted_matches_query(start=start, end=end, narrative_ids=[narrative_id]).subquery()
    rows = session.execute(
        select(Article.country, func.count(func.distinct(Article.id)))
        .join(sub, sub.c.article_id == Article.id)
        .group_by(Article.country)
    ).all()
    return {country: int(n) for country, n in rows}


def versions(session: Session, narrative_id: str) -> list[NarrativeVersion]:
    return list(
        session.scalars(
            select(NarrativeVersion)
            .where(NarrativeVersion.narrative_id == narrative_id)
            .order_by(NarrativeVersion.version.desc())
        )
    )


def seed_head(session: Session, narrative_id: str) -> SeedHead | None:
    return session.get(SeedHead, narrative_id)


def seed_heads(session: Session) -> list[SeedHead]:
    return list(session.scalars(select(SeedHead).order_by(SeedHead.narrative_id)))


# --- review queue -------------------------------------------------------------------------------


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Match)
            .where(
                ~select(Verdict.id)
                .where(Verdict.article_id == Match.article_id, Verdict.narrative_id == Match.narrative_id)
                .exists()
            )
        )
        or 0
    )


def rising_subjects(session: Session, day: dt.date | None) -> set[str]:
    if day is None:
        return set()
    return set(
        session.scalars(
            select(RisingFlag.subject_id).where(RisingFlag.day == day, RisingFlag.subject_kind == "narrative")
        )
    )


# --- clusters -----------------------------------------------------------------------------------


def cluster_members(
    session: Session, cluster: Cluster, article_ids: list[int]
) -> list[tuple[Article, float]]:
    similarity = dict(
        session.execute(
            select(ClusterMember.article_id, ClusterMember.similarity).where(
                ClusterMember.article_id.in_(article_ids), ClusterMember.collection == cluster.collection
            )
        ).all()
    )
    articles = session.scalars(select(Article).where(Article.id.in_(article_ids))).all()
    found = [(article, float(similarity.get(article.id, 0.0))) for article in articles]
    found.sort(key=lambda pair: (pair[0].published_at, pair[0].id), reverse=True)
    return found


def articles_by_id(session: Session, ids: list[int]) -> dict[int, Article]:
    if not ids:
        return {}
    return {article.id: article for article in session.scalars(select(Article).where(Article.id.in_(ids)))}
