"""The stored daily counts and volumes that detection reads its baselines from.

A day is counted from its articles once: when it is the day being detected, when a baseline needs it
and nothing is stored for it yet (no outlet volume row), or when a later write marked it stale
(``rules.mark_counts_stale``: a member joined, a seed match came, went or changed level, a verdict
came or went, an article was removed). Every other day is read back as stored, so a day's detection
costs the day's articles, not the baseline's.

A day is counted whole: every cluster's and every seed's counts, and every outlet's volume. A
day's cluster rows are counted under the merges that had happened by the end of that day and keep
the outlets behind each count. A cluster tested later is the union of the rows of every cluster in
its group by then: a merge needs no recount, and re-running a past day sees the groups it saw.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import Article, CountChange, DailyCount, DailyVolume
from narrwatch.domain.clock import day_start
from narrwatch.domain.rising import DayCount
from narrwatch.steps.detect.counting import (
    CountedArticle,
    SubjectKey,
    daily_counts,
    day_clusters,
    seed_articles,
)

#: Per day and outlet: (articles, distinct stories).
Volumes = dict[dt.date, dict[str, tuple[int, int]]]

ONE_DAY = dt.timedelta(days=1)


#: Per subject and day, the outlets behind its count.
Outlets = dict[SubjectKey, dict[dt.date, set[str]]]


def day_outlets(grouped: Mapping[SubjectKey, Mapping[dt.date, list[CountedArticle]]]) -> Outlets:
    return {
        key: {d: {a.outlet for a in arts} for d, arts in by_day.items()} for key, by_day in grouped.items()
    }


def days_to_count(session: Session, day: dt.date, days: list[dt.date]) -> tuple[list[dt.date], list[int]]:
    """``day`` and the days of ``days`` whose stored counts are not current (``rules.count_state``), and
    the ids of the stale marks read: removed once those days are counted, so a mark written meanwhile
    stays for the next run."""
    if not days:
        return [day], []
    current, mark_ids = rules.count_state(session, days)
    return [d for d in days if d == day or d not in current], mark_ids


def clear_marks(session: Session, mark_ids: list[int]) -> None:
    for chunk in rules.chunked(sorted(mark_ids)):
        session.execute(delete(CountChange).where(CountChange.id.in_(chunk)))


def _count_rows(
    counts: dict[SubjectKey, dict[dt.date, DayCount]], outlets: Outlets, days: set[dt.date]
) -> list[dict[str, object]]:
    return [
        {
            "day": count_day_,
            "subject_kind": key[0],
            "subject_id": key[1],
            "dimension": key[2],
            "dimension_value": key[3],
            "n_articles": count.n_articles,
            "n_stories": count.n_stories,
            "n_outlets": count.n_outlets,
            "outlets": rules.outlets_text(outlets[key][count_day_]),
        }
        for key, by_day in sorted(counts.items())
        for count_day_, count in sorted(by_day.items())
        if count_day_ in days
    ]


def _day_volumes(session: Session, day: dt.date) -> dict[str, tuple[int, int]]:
    articles: dict[str, int] = defaultdict(int)
    stories: dict[str, set[str]] = defaultdict(set)
    rows = session.execute(
        select(Article.outlet, Article.story_key).where(
            Article.published_at >= day_start(day), Article.published_at < day_start(day + ONE_DAY)
        )
    ).tuples()
    for outlet, story_key in rows:
        articles[outlet] += 1
        stories[outlet].add(story_key)
    return {outlet: (n, len(stories[outlet])) for outlet, n in articles.items()}


@dataclass(frozen=True)
class CountedDays:
    """What counting days wrote: rows for the last day and for the others, and the last day's
    counted articles per subject (seeds' with their evidence, for the flags)."""

    last_rows: int
    before_rows: int
    last_day: dict[SubjectKey, list[CountedArticle]]


def count_days(session: Session, days: list[dt.date], merges: rules.Merges) -> CountedDays:
    """Count every cluster, every seed and every outlet's volume on each of ``days`` (ascending) from
    its articles, replacing what was stored; one day at a time, so memory follows a day, and each
    under the merges that had happened by its end. Only the last day's seed articles carry evidence:
    it is the day being detected."""
    last = before = 0
    articles: dict[SubjectKey, list[CountedArticle]] = {}
    for day in days:
        start, end = day_start(day), day_start(day + ONE_DAY)
        session.execute(delete(DailyCount).where(DailyCount.day == day))
        session.execute(delete(DailyVolume).where(DailyVolume.day == day))
        cluster_counts, clusters = daily_counts(
            "cluster", day_clusters(session, start, end, rules.merge_map_at(merges, end))
        )
        shown_from = start if day == days[-1] else end
        seed_counts, seeds = daily_counts("narrative", seed_articles(session, start, end, shown_from))
        rows = _count_rows({**cluster_counts, **seed_counts}, day_outlets({**clusters, **seeds}), {day})
        if rows:
            session.execute(insert(DailyCount), rows)
        volumes = [
            {"day": day, "outlet": outlet, "n_articles": n, "n_stories": stories}
            for outlet, (n, stories) in sorted(_day_volumes(session, day).items())
        ]
        if volumes:
            session.execute(insert(DailyVolume), volumes)
        if day == days[-1]:
            last += len(rows)
            articles = {key: by_day[day] for key, by_day in {**clusters, **seeds}.items()}
        else:
            before += len(rows)
    return CountedDays(last, before, articles)


def read_volumes(session: Session, days: list[dt.date]) -> Volumes:
    volumes: Volumes = defaultdict(dict)
    rows = session.execute(
        select(DailyVolume.day, DailyVolume.outlet, DailyVolume.n_articles, DailyVolume.n_stories).where(
            DailyVolume.day >= days[0], DailyVolume.day <= days[-1]
        )
    ).tuples()
    for day, outlet, n_articles, n_stories in rows:
        volumes[day][outlet] = (n_articles, n_stories)
    return volumes


def cluster_outlets(session: Session, days: list[dt.date]) -> list[int]:
    """Outlets per day of every cluster (overall) on ``days``: the cross-section of a typical story.
    Read as a histogram (value, cluster-days), so the rows read follow the values, not the clusters."""
    rows = session.execute(
        select(DailyCount.n_outlets, func.count())
        .where(
            DailyCount.subject_kind == "cluster",
            DailyCount.dimension == "all",
            DailyCount.day >= days[0],
            DailyCount.day <= days[-1],
        )
        .group_by(DailyCount.n_outlets)
        .order_by(DailyCount.n_outlets)
    ).tuples()
    return [value for value, times in rows for _ in range(times)]
