"""The stored row of one rising flag: its statistic, where it stands in its run, its top articles."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from narrwatch.db.models import RisingFlag
from narrwatch.domain.rising import STATISTIC_NAME, FlagRun, RisingParams, RisingTest, count_day
from narrwatch.domain.rising_baseline import Reference
from narrwatch.steps.detect.counting import CountedArticle, SubjectKey


def _top_articles(articles: list[CountedArticle], limit: int) -> list[dict[str, Any]]:
    """The strongest articles, one per outlet first, so the reader sees the spread."""
    ordered = sorted(articles, key=lambda a: (-a.score, a.article_id))
    first_per_outlet: list[CountedArticle] = []
    seen: set[str] = set()
    for counted in ordered:
        if counted.outlet not in seen:
            seen.add(counted.outlet)
            first_per_outlet.append(counted)
    # by id: comparing the frozen dataclasses field by field made a busy day's flags quadratic
    chosen = {a.article_id for a in first_per_outlet}
    rest = [a for a in ordered[:limit] if a.article_id not in chosen]  # the list is cut at limit
    return [
        {
            "article_id": a.article_id,
            "title": a.title,
            "outlet": a.outlet,
            "country": a.country,
            "language": a.language,
            "url": a.url,
            "published_at": a.published_at.isoformat(),
            "score": a.score,
            "evidence": a.evidence,
        }
        for a in (first_per_outlet + rest)[:limit]
    ]


def earlier_flags(session: Session, day: dt.date, params: RisingParams) -> dict[SubjectKey, set[dt.date]]:
    """Flag days per subject before ``day``, far enough back to tell a run from a new flag."""
    since = day - dt.timedelta(days=params.new_after_days * 8)
    rows = session.execute(
        select(
            RisingFlag.subject_kind,
            RisingFlag.subject_id,
            RisingFlag.dimension,
            RisingFlag.dimension_value,
            RisingFlag.day,
        ).where(RisingFlag.day >= since, RisingFlag.day < day)
    ).tuples()
    earlier: dict[SubjectKey, set[dt.date]] = defaultdict(set)
    for kind, subject_id, dimension, value, flag_day in rows:
        earlier[(kind, subject_id, dimension, value)].add(flag_day)
    return earlier


def flag_extra(observed_from: dt.date, reference: Reference | None) -> dict[str, Any]:
    """What the flag's details add about the subject's baseline: since when, and its prior."""
    extra: dict[str, Any] = {"observed_from": observed_from.isoformat()}
    if reference is not None:
        extra["prior"] = {
            "outlets_per_day": round(reference.rate, 6),
            "dispersion": round(reference.dispersion, 6),
            "pseudo_days": round(reference.days, 6),
            "weekday_strength": (
                None if reference.weekday_strength is None else round(reference.weekday_strength, 3)
            ),
        }
    return extra


def flag_row(
    day: dt.date,
    key: SubjectKey,
    test: RisingTest,
    run: FlagRun,
    articles: list[CountedArticle],
    outlets_yesterday: set[str],
    earlier: set[dt.date],
    extra: dict[str, Any],
    now: dt.datetime,
    top: int,
) -> RisingFlag:
    kind, subject_id, dimension, value = key
    assert test.decisive is not None
    today = count_day((a.outlet, a.story_key) for a in articles)
    yesterday = day - dt.timedelta(days=1)
    return RisingFlag(
        day=day,
        subject_kind=kind,
        subject_id=subject_id,
        dimension=dimension,
        dimension_value=value,
        statistic=f"{STATISTIC_NAME}_{test.decisive.days}d",
        rate_ratio=round(test.decisive.rate_ratio, 6),
        p_value=test.p_value,
        count=test.decisive.count,
        baseline=round(test.decisive.expected, 6),
        n_outlets=today.n_outlets,
        n_articles=today.n_articles,
        details={
            **test.details(),
            "n_stories": today.n_stories,
            "run_start": run.run_start.isoformat(),
            **extra,
        },
        top_articles=_top_articles(articles, top),
        created_at=now,
        window_days=test.decisive.days,
        is_new=run.new,
        run_day=run.run_day,
        outlets_yesterday=len(outlets_yesterday),
        new_outlets=sorted({a.outlet for a in articles} - outlets_yesterday),
        flagged_yesterday=yesterday in earlier,
    )
