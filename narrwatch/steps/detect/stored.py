"""The stored daily counts and volumes that detection reads its baselines from.

A day is counted from its articles once: when it is the day being detected, when a baseline needs it
and nothing is stored for it yet (no outlet volume row), or when a later write marked it stale
(``rules.mark_counts_stale``: a member joined, a seed match or a verdict came or went). Every other
day is read back as stored, so a day's detection costs the day's articles, not the baseline's.

A day's cluster rows are counted under the merges that had happened by the end of that day and keep
the outlets behind each count. A cluster tested later is the union of the rows of every cluster in
its group by then: a merge needs no recount, and re-running a past day sees the groups it saw.
Seeds are few and their counts move with thresholds and verdicts: they are counted over the whole
span on every run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import Article, Base, CountChange, DailyCount, DailyVolume
from narrwatch.domain.clock import day_start
from narrwatch.domain.rising import DayCount
from narrwatch.steps.detect.counting import CountedArticle, SubjectKey, daily_counts, day_clusters

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


def count_days(
    session: Session, days: list[dt.date], merges: rules.Merges
) -> tuple[int, int, dict[SubjectKey, list[CountedArticle]]]:
    """Count every cluster and every outlet's volume on each of ``days`` from its articles, replacing
    what was stored; one day at a time, so memory follows a day, and each under the merges that had
    happened by its end. Returns the rows written for the last of ``days`` and for the others, and
    the last day's counted articles per cluster subject."""
    last = before = 0
    articles: dict[SubjectKey, list[CountedArticle]] = {}
    for day in days:
        session.execute(delete(DailyCount).where(DailyCount.day == day, DailyCount.subject_kind == "cluster"))
        session.execute(delete(DailyVolume).where(DailyVolume.day == day))
        end = day_start(day + ONE_DAY)
        counts, grouped = daily_counts(
            "cluster", day_clusters(session, day_start(day), end, rules.merge_map_at(merges, end))
        )
        rows = _count_rows(counts, day_outlets(grouped), {day})
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
            articles = {key: by_day[day] for key, by_day in grouped.items()}
        else:
            before += len(rows)
    return last, before, articles


def replace_counts(
    session: Session,
    kind: str,
    subject_ids: Iterable[str] | None,
    days: list[dt.date],
    counts: dict[SubjectKey, dict[dt.date, DayCount]],
    outlets: Outlets,
) -> tuple[int, int]:
    """Make the stored counts of ``subject_ids`` of ``kind`` (all of that kind when None) on ``days``
    equal ``counts``, writing only the rows that differ: a span's counts mostly stand as stored.
    Returns the rows written for the last of ``days`` and for the others."""
    in_span = [DailyCount.subject_kind == kind, DailyCount.day >= days[0], DailyCount.day <= days[-1]]
    query = select(
        DailyCount.day,
        DailyCount.subject_id,
        DailyCount.dimension,
        DailyCount.dimension_value,
        DailyCount.n_articles,
        DailyCount.n_stories,
        DailyCount.n_outlets,
        DailyCount.outlets,
    ).where(*in_span)
    chunks = [None] if subject_ids is None else list(rules.chunked(sorted(set(subject_ids))))
    stored: dict[tuple[object, ...], tuple[object, ...]] = {}
    for chunk in chunks:
        chunk_query = query if chunk is None else query.where(DailyCount.subject_id.in_(chunk))
        for day, subject_id, dimension, value, *numbers in session.execute(chunk_query).tuples():
            stored[(day, subject_id, dimension, value)] = tuple(numbers)
    wanted = {_row_key(row): row for row in _count_rows(counts, outlets, set(days))}
    fresh = [row for key, row in wanted.items() if stored.get(key) != _row_numbers(row)]
    stale = [key for key in stored if key not in wanted or stored[key] != _row_numbers(wanted[key])]
    table = Base.metadata.tables[DailyCount.__tablename__]
    if stale:
        session.execute(
            delete(table).where(
                table.c.subject_kind == kind,
                table.c.day == bindparam("key_day"),
                table.c.subject_id == bindparam("key_subject"),
                table.c.dimension == bindparam("key_dimension"),
                table.c.dimension_value == bindparam("key_value"),
            ),
            [
                {"key_day": d, "key_subject": subject, "key_dimension": dimension, "key_value": value}
                for d, subject, dimension, value in stale
            ],
        )
    if fresh:
        session.execute(insert(DailyCount), fresh)
    last = sum(1 for row in fresh if row["day"] == days[-1])
    return last, len(fresh) - last


def _row_key(row: dict[str, object]) -> tuple[object, ...]:
    return (row["day"], row["subject_id"], row["dimension"], row["dimension_value"])


def _row_numbers(row: dict[str, object]) -> tuple[object, ...]:
    return (row["n_articles"], row["n_stories"], row["n_outlets"], row["outlets"])


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
