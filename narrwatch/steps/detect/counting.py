"""What each seed and cluster counts per day, by the report's rule, and the stored daily counts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import Cluster, Match, NarrativeVersion
from narrwatch.domain.rising import DayCount, count_day

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
        ("country", (counted.country or rules.UNKNOWN).lower()[:16]),
        ("language", (counted.language or rules.UNKNOWN).lower()[:16]),
    ]


def _counted(article: Row[Any], score: float = 0.0, evidence: dict[str, Any] | None = None) -> CountedArticle:
    """The article as counted; without ``evidence`` it is an article of a baseline day, counted and
    never shown, so the row need not carry a title or link."""
    shown = evidence is not None
    return CountedArticle(
        article_id=article.id,
        day=article.published_at.date(),
        outlet=article.outlet,
        country=article.country,
        language=article.language or rules.UNKNOWN,
        story_key=article.story_key,
        title=article.title if shown else "",
        url=article.url if shown else "",
        published_at=article.published_at,
        score=score,
        evidence=evidence or {},
    )


def seed_articles(
    session: Session, start: dt.datetime, end: dt.datetime, shown_from: dt.datetime
) -> dict[str, dict[int, CountedArticle]]:
    """Articles per seed by the one counting rule: those from ``shown_from`` on (the day a flag
    shows) with their strongest counted match, the earlier ones with only what counting reads."""
    seeds: dict[str, dict[int, CountedArticle]] = defaultdict(dict)
    for seed, rows in rules.counted_seed_articles(session, start, shown_from).items():
        seeds[seed].update((row.id, _counted(row)) for row in rows)
    for seed, rows in rules.counted_seed_rows(session, shown_from, end).items():
        seeds[seed] |= {
            row.id: _counted(
                row,
                round(row.score, 6),
                {
                    "text": row.evidence_text,
                    "score": round(row.evidence_score, 6),
                    "idx": row.evidence_idx,
                    "language": row.evidence_language,
                    "level": row.level,
                    "match_id": row.match_id,
                },
            )
            for row in rows
        }
    return dict(seeds)


def _by_survivor(rows: dict[str, list[Row[Any]]]) -> dict[str, dict[int, CountedArticle]]:
    return {
        survivor: {
            row.id: _counted(
                row,
                round(row.similarity, 6),
                {"similarity": round(row.similarity, 6), "cluster": row.cluster_id},
            )
            for row in members
        }
        for survivor, members in rows.items()
    }


def day_clusters(
    session: Session, start: dt.datetime, end: dt.datetime, merged_into: dict[int, int]
) -> dict[str, dict[int, CountedArticle]]:
    """Every cluster's counted members published in [start, end) (one day's worth)."""
    return _by_survivor(rules.counted_cluster_rows(session, start, end, merged_into))


def groups_observed_from(session: Session, groups: dict[str, set[int]]) -> dict[str, dt.date]:
    """The day each group became observable: the first member of any of its clusters, wherever it
    lies in time (each cluster row keeps its members' earliest publication)."""
    survivor_of = {cid: survivor for survivor, ids in groups.items() for cid in ids}
    observed: dict[str, dt.date] = {}
    for chunk in rules.chunked(sorted(survivor_of)):
        rows = session.execute(
            select(Cluster.id, Cluster.first_seen_at).where(Cluster.id.in_(chunk))
        ).tuples()
        for cid, first in rows:
            survivor = survivor_of[cid]
            observed[survivor] = min(observed.get(survivor, first.date()), first.date())
    return observed


def seed_observed_from(session: Session) -> dict[str, dt.date]:
    """The first day each seed could have been counted: its earliest match, or the earliest stored
    article scored after the seed became active (when a seed is added, the recompute step scores the
    stored articles of its window against it, so a day there without a match is a real zero, not a
    day nobody looked), or else its first version's day."""
    first: dict[str, dt.date] = {}
    created = session.execute(
        select(NarrativeVersion.narrative_id, func.min(NarrativeVersion.created_at)).group_by(
            NarrativeVersion.narrative_id
        )
    ).all()
    # one indexed lookup per seed: grouping every stored match by seed read them all
    matched = [
        (
            narrative_id,
            session.scalar(select(func.min(Match.published_at)).where(Match.narrative_id == narrative_id)),
        )
        for narrative_id, _ in created
    ]
    active_since = session.execute(
        select(NarrativeVersion.narrative_id, func.min(NarrativeVersion.created_at))
        .where(NarrativeVersion.status == "active")
        .group_by(NarrativeVersion.narrative_id)
    ).all()
    earliest = rules.earliest_scored_since(session, [since for _, since in active_since])
    scored = [(narrative_id, when) for (narrative_id, _), when in zip(active_since, earliest, strict=True)]
    for narrative_id, when in [*created, *matched, *scored]:
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
