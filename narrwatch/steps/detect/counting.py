"""What each seed and cluster counts per day, by the report's rule, and the stored daily counts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import Article, ClusterMember, DailyCount, Match, NarrativeVersion
from narrwatch.domain.clustering import resolve
from narrwatch.domain.rising import DayCount, count_day

UNKNOWN = "und"  # articles whose language or country is not known

SubjectKey = tuple[str, str, str, str]  # (subject_kind, subject_id, dimension, dimension_value)


@dataclass(frozen=True)
class CountedArticle:
    """One article counted for one subject, with what the flag shows about it."""

    article_id: int
    day: dt.date
    outlet: str
    country: str
    language: str
    story_key: str
    title: str
    url: str
    published_at: dt.datetime
    score: float
    evidence: dict[str, Any]


def _dimensions(counted: CountedArticle) -> list[tuple[str, str]]:
    return [
        ("all", "all"),
        ("country", (counted.country or UNKNOWN).lower()[:16]),
        ("language", (counted.language or UNKNOWN).lower()[:16]),
    ]


def _counted(article: Article, score: float, evidence: dict[str, Any]) -> CountedArticle:
    return CountedArticle(
        article_id=article.id,
        day=article.published_at.date(),
        outlet=article.outlet,
        country=article.country,
        language=article.language or UNKNOWN,
        story_key=article.story_key,
        title=article.title,
        url=article.url,
        published_at=article.published_at,
        score=score,
        evidence=evidence,
    )


def seed_articles(
    session: Session, start: dt.datetime, end: dt.datetime
) -> dict[str, dict[int, CountedArticle]]:
    """Articles per seed by the one counting rule, each with its strongest counted match."""
    seeds: dict[str, dict[int, CountedArticle]] = {}
    for seed, rows in rules.counted_seed_matches(session, start, end).items():
        seeds[seed] = {
            article.id: _counted(
                article,
                round(found.score, 6),
                {
                    "text": found.evidence_text,
                    "score": round(found.evidence_score, 6),
                    "idx": found.evidence_idx,
                    "language": found.evidence_language,
                    "level": found.level,
                    "match_id": found.id,
                },
            )
            for found, article in rows
        }
    return seeds


def cluster_articles(
    session: Session, start: dt.datetime, end: dt.datetime, merge_before: dt.datetime
) -> tuple[dict[str, dict[int, CountedArticle]], dict[str, dt.date]]:
    merged_into = rules.merge_map(session, merge_before)
    clusters = {
        survivor: {
            article.id: _counted(
                article,
                round(member.similarity, 6),
                {"similarity": round(member.similarity, 6), "cluster": member.cluster_id},
            )
            for member, article in members
        }
        for survivor, members in rules.counted_cluster_members(session, start, end, merge_before).items()
    }
    # a cluster is observable from its first member, wherever that member lies in time
    first_member = dict(
        session.execute(
            select(ClusterMember.cluster_id, func.min(ClusterMember.published_at)).group_by(
                ClusterMember.cluster_id
            )
        )
        .tuples()
        .all()
    )
    observed: dict[str, dt.date] = {}
    for cid, first in first_member.items():
        survivor = str(resolve(cid, merged_into))
        if survivor in clusters:
            day = first.date()
            observed[survivor] = min(observed.get(survivor, day), day)
    return clusters, observed


def seed_observed_from(session: Session) -> dict[str, dt.date]:
    first: dict[str, dt.date] = {}
    created = session.execute(
        select(NarrativeVersion.narrative_id, func.min(NarrativeVersion.created_at)).group_by(
            NarrativeVersion.narrative_id
        )
    ).tuples()
    matched = session.execute(
        select(Match.narrative_id, func.min(Match.published_at)).group_by(Match.narrative_id)
    ).tuples()
    for narrative_id, when in [*created, *matched]:
        if when is not None:
            day = when.date()
            first[narrative_id] = min(first.get(narrative_id, day), day)
    return first


def daily_counts(
    kind: str, subjects: dict[str, dict[int, CountedArticle]]
) -> tuple[dict[SubjectKey, dict[dt.date, DayCount]], dict[SubjectKey, dict[dt.date, list[CountedArticle]]]]:
    grouped: dict[SubjectKey, dict[dt.date, list[CountedArticle]]] = defaultdict(lambda: defaultdict(list))
    for subject_id, articles in subjects.items():
        for counted in articles.values():
            for dimension, value in _dimensions(counted):
                grouped[(kind, subject_id, dimension, value)][counted.day].append(counted)
    counts = {
        key: {day: count_day((a.outlet, a.story_key) for a in arts) for day, arts in by_day.items()}
        for key, by_day in grouped.items()
    }
    return counts, grouped


def write_counts(
    session: Session,
    day: dt.date,
    days: list[dt.date],
    counts: dict[SubjectKey, dict[dt.date, DayCount]],
) -> tuple[int, int]:
    """Replace the counts of ``day`` and every baseline day: a match, verdict or seed that changed for
    a past day since its counts were written must not leave them stale.

    Returns the number of counts written for ``day`` and for its baseline days.
    """
    written_today = written_before = 0
    session.execute(delete(DailyCount).where(DailyCount.day.in_(days)))
    for (kind, subject_id, dimension, value), by_day in sorted(counts.items()):
        for count_day_, count in sorted(by_day.items()):
            if count_day_ not in days:
                continue
            session.add(
                DailyCount(
                    day=count_day_,
                    subject_kind=kind,
                    subject_id=subject_id,
                    dimension=dimension,
                    dimension_value=value,
                    n_articles=count.n_articles,
                    n_stories=count.n_stories,
                    n_outlets=count.n_outlets,
                )
            )
            if count_day_ == day:
                written_today += 1
            else:
                written_before += 1
    return written_today, written_before
