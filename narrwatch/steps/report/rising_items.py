"""The report's rising items: each flag with its statistic, trend and top evidence, as counted."""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrwatch.config import Settings
from narrwatch.db import rules
from narrwatch.db.models import (
    Cluster,
    DailyCount,
    RisingFlag,
)
from narrwatch.steps.report.charts import trend_geometry
from narrwatch.steps.report.evidence import TITLE_CHARS, _Seed, members_evidence
from narrwatch.steps.report.model import (
    ArticleEvidence,
    FellBack,
    FlagStat,
    LanguageShare,
    RisingItem,
    Trend,
    TrendPoint,
)
from narrwatch.steps.report.safety import plain_text

SAMPLE_TITLES = 3

T = TypeVar("T")


MEASURE_LABELS = {
    "n_stories": "stories (one per outlet)",
    "n_outlets": "distinct outlets",
    "n_articles": "articles",
}


def _details(flag: RisingFlag) -> dict[str, Any]:
    return flag.details if isinstance(flag.details, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _flag_stat(flag: RisingFlag) -> FlagStat:
    details = _details(flag)
    window_days = details.get("window_days")
    return FlagStat(
        dimension=flag.dimension,
        dimension_value=_slice_label(flag.dimension, flag.dimension_value),
        statistic=plain_text(flag.statistic, 40),
        rate_ratio=flag.rate_ratio,
        p_value=flag.p_value,
        count=flag.count,
        baseline=flag.baseline,
        n_outlets=flag.n_outlets,
        n_articles=flag.n_articles,
        window_days=window_days if isinstance(window_days, int) and window_days > 0 else 1,
        today_expected=_number(details.get("today_expected")),
        reason=plain_text(details.get("reason"), 300),
        new=bool(flag.is_new),
        run_day=max(1, int(flag.run_day or 1)),
        outlets_yesterday=int(flag.outlets_yesterday or 0),
        new_outlets=[plain_text(str(o), 100) for o in (flag.new_outlets or [])][:50],
        flagged_yesterday=bool(flag.flagged_yesterday),
    )


def _slice_label(dimension: str, value: str) -> str:
    """Country codes in upper case, as everywhere in the report; language codes as stored."""
    text = plain_text(value, 16)
    return text.upper() if dimension == "country" else text


def _flag_order(flag: RisingFlag) -> tuple[float, float, str, str]:
    return (flag.p_value, -flag.rate_ratio, flag.dimension, flag.dimension_value)


def _rising_items(
    session: Session,
    settings: Settings,
    day: dt.date,
    flags: Sequence[RisingFlag],
    seeds: dict[str, _Seed],
    seed_articles: dict[str, list[ArticleEvidence]],
    day_clusters: dict[str, list[Candidate]],
) -> list[RisingItem]:
    """One item per flagged subject: its overall flag first, its country/language slices under it."""
    by_subject: dict[tuple[str, str], list[RisingFlag]] = defaultdict(list)
    for flag in flags:
        by_subject[(flag.subject_kind, flag.subject_id)].append(flag)
    items = []
    for kind, subject_id in sorted(by_subject, key=lambda key: _subject_order(key, by_subject[key])):
        if kind == "narrative":
            subject = _seed_subject(subject_id, seeds, seed_articles)
        else:
            subject = _cluster_subject(session, subject_id, day_clusters)
        items.append(
            _rising_item(session, settings, day, kind, subject_id, by_subject[(kind, subject_id)], subject)
        )
    return items


def _subject_order(
    key: tuple[str, str], group: list[RisingFlag]
) -> tuple[bool, int, float, float, bool, str]:
    overall = [f for f in group if f.dimension == "all"]
    best = min(overall or group, key=_flag_order)
    # New flags before continuing ones: what the analyst has not seen yet comes first. Seeds
    # before clusters at equal strength: a seed is a known narrative, a cluster a lead.
    return (
        not best.is_new,
        0 if overall else 1,
        best.p_value,
        -best.rate_ratio,
        key[0] != "narrative",
        key[1],
    )


class Candidate(Protocol):
    """An article a rising item may show, with what choosing it reads (as the report shows them)."""

    @property
    def article_id(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def outlet(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def language(self) -> str | None: ...


@dataclass(frozen=True)
class _Member:
    """A flagged cluster's member as a candidate: evidence is made only if it is shown."""

    article_id: int
    score: float
    outlet: str
    country: str
    language: str | None


def _as_shown(candidates: Sequence[Candidate]) -> list[ArticleEvidence]:
    """Seeds' candidates are their evidence already."""
    return [c for c in candidates if isinstance(c, ArticleEvidence)]


@dataclass(frozen=True)
class _Subject:
    """What a rising item says about its seed or cluster, the articles it may show, and how the
    chosen ones are made into evidence (a cluster's day holds thousands of members: only the shown
    become evidence)."""

    title: str
    description: str
    parent_id: str | None
    promote_command: str | None
    candidates: Sequence[Candidate]
    shown: Callable[[Sequence[Candidate]], list[ArticleEvidence]] = _as_shown


def _seed_subject(
    subject_id: str, seeds: dict[str, _Seed], seed_articles: dict[str, list[ArticleEvidence]]
) -> _Subject:
    seed = seeds.get(subject_id)
    return _Subject(
        title=seed.title if seed else subject_id,
        description=seed.description if seed else "",
        parent_id=seed.parent_id if seed else None,
        promote_command=None,
        candidates=seed_articles.get(subject_id, []),
    )


def _cluster_subject(session: Session, subject_id: str, day_clusters: dict[str, list[Candidate]]) -> _Subject:
    cluster = _cluster_row(session, subject_id)
    label = plain_text(cluster.label, 200) if cluster else ""
    representative = plain_text(cluster.representative_title, TITLE_CHARS) if cluster else ""

    def shown(chosen: Sequence[Candidate]) -> list[ArticleEvidence]:
        return members_evidence(session, [(c.article_id, c.score) for c in chosen])

    return _Subject(
        title=label or representative or f"cluster {subject_id}",
        description=representative,
        parent_id=None,
        promote_command=f"narrwatch clusters promote {subject_id}" if cluster else None,
        candidates=day_clusters.get(subject_id, []),
        shown=shown,
    )


def _rising_item(
    session: Session,
    settings: Settings,
    day: dt.date,
    kind: str,
    subject_id: str,
    group: list[RisingFlag],
    subject: _Subject,
) -> RisingItem:
    overall_rows = [f for f in group if f.dimension == "all"]
    ranked_ids = _top_article_ids([*overall_rows, *(f for f in group if f.dimension != "all")])
    headline = overall_rows[0] if overall_rows else min(group, key=_flag_order)
    overall = _flag_stat(overall_rows[0]) if overall_rows else None
    countries = _slice_values(session, day, kind, subject_id, "country")
    languages = _slice_values(session, day, kind, subject_id, "language")
    language_mix = _language_mix(session, day, kind, subject_id, overall.window_days if overall else 1)
    candidates = subject.candidates
    return RisingItem(
        kind=kind,
        subject_id=subject_id,
        title=subject.title,
        description=subject.description,
        parent_id=subject.parent_id,
        overall=overall,
        breakdown=[_flag_stat(f) for f in sorted(group, key=_flag_order) if f.dimension != "all"],
        countries=countries or _distinct(c.country for c in candidates),
        languages=languages or _distinct(c.language for c in candidates),
        trend=_trend(session, settings, day, kind, subject_id, headline),
        articles=subject.shown(_diverse(_ranked(candidates, ranked_ids), settings.report_top_articles)),
        promote_command=subject.promote_command,
        new=bool(headline.is_new),
        run_day=max(1, int(headline.run_day or 1)),
        language_mix=language_mix,
    )


def _fell_back(
    session: Session, day: dt.date, seeds: dict[str, _Seed], flagged_today: set[tuple[str, str]]
) -> list[FellBack]:
    """Subjects flagged overall the day before and not on the day, with the run they ended."""
    yesterday = day - dt.timedelta(days=1)
    rows = session.scalars(
        select(RisingFlag).where(RisingFlag.day == yesterday, RisingFlag.dimension == "all")
    ).all()
    out = []
    for flag in sorted(rows, key=lambda f: (f.subject_kind, f.subject_id)):
        if (flag.subject_kind, flag.subject_id) in flagged_today:
            continue
        today = session.scalar(
            select(DailyCount.n_outlets).where(
                DailyCount.day == day,
                DailyCount.subject_kind == flag.subject_kind,
                DailyCount.subject_id == flag.subject_id,
                DailyCount.dimension == "all",
            )
        )
        if flag.subject_kind == "narrative":
            seed = seeds.get(flag.subject_id)
            title = seed.title if seed else flag.subject_id
        else:
            cluster = _cluster_row(session, flag.subject_id)
            title = cluster.label if cluster and cluster.label else f"cluster {flag.subject_id}"
        out.append(
            FellBack(
                kind=flag.subject_kind,
                subject_id=plain_text(flag.subject_id, 100),
                title=plain_text(title, 200),
                last_flag_day=yesterday,
                run_days=max(1, int(flag.run_day or 1)),
                n_outlets=int(today or 0),
                last_n_outlets=flag.n_outlets,
            )
        )
    return out


def _top_article_ids(flags: list[RisingFlag]) -> list[int]:
    """Article ids from the flags' ``top_articles`` (ids or objects carrying one), in stored order."""
    ranked: list[int] = []
    for flag in flags:
        for entry in flag.top_articles or []:
            candidate = entry.get("article_id", entry.get("id")) if isinstance(entry, dict) else entry
            if isinstance(candidate, int) and not isinstance(candidate, bool) and candidate not in ranked:
                ranked.append(candidate)
    return ranked


def _slice_values(session: Session, day: dt.date, kind: str, subject_id: str, dimension: str) -> list[str]:
    values = session.scalars(
        select(DailyCount.dimension_value)
        .where(
            DailyCount.day == day,
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == dimension,
            DailyCount.n_articles > 0,
        )
        .order_by(DailyCount.dimension_value)
    ).all()
    return [_slice_label(dimension, v) for v in values if v]


def _language_mix(
    session: Session, day: dt.date, kind: str, subject_id: str, window_days: int
) -> list[LanguageShare]:
    """Counted articles per language over the ``window_days`` ending with ``day`` (the flag's window)."""
    first = day - dt.timedelta(days=window_days - 1)
    rows = session.execute(
        select(DailyCount.dimension_value, func.sum(DailyCount.n_articles))
        .where(
            DailyCount.day >= first,
            DailyCount.day <= day,
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == "language",
        )
        .group_by(DailyCount.dimension_value)
    ).all()
    shares = [LanguageShare(_slice_label("language", value), int(total)) for value, total in rows if total]
    return sorted(shares, key=lambda share: (-share.n_articles, share.language))


def _trend(
    session: Session,
    settings: Settings,
    day: dt.date,
    kind: str,
    subject_id: str,
    headline: RisingFlag,
) -> Trend:
    """The subject's daily counts over the trend window with the trailing mean of the baseline window.

    The plotted column is the one the detector tests (distinct outlets per day); the marker is its
    expectation for the day alone (for a 3- or 7-day window the stored baseline covers the whole window).
    """
    n_days = settings.report_trend_days
    baseline_days = settings.rising_baseline_days
    first = day - dt.timedelta(days=n_days - 1 + baseline_days)
    rows = session.scalars(
        select(DailyCount).where(
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == headline.dimension,
            DailyCount.dimension_value == headline.dimension_value,
            DailyCount.day >= first,
            DailyCount.day <= day,
        )
    ).all()
    by_day = {row.day: row for row in rows}
    measure = _measure(headline)
    history = [first + dt.timedelta(days=i) for i in range((day - first).days + 1)]
    values = [int(getattr(by_day[d], measure)) if d in by_day else 0 for d in history]
    points = []
    for index in range(baseline_days, len(history)):
        window = values[index - baseline_days : index]
        # Before the first stored count there is no history: no baseline rather than a false zero.
        has_history = any(history[j] in by_day for j in range(index - baseline_days, index))
        points.append(
            TrendPoint(
                day=history[index],
                count=values[index],
                baseline=round(sum(window) / baseline_days, 3) if has_history else None,
            )
        )
    chart = trend_geometry(
        [p.day for p in points],
        [p.count for p in points],
        [p.baseline for p in points],
        highlighted_day=day,
        expected=_day_expectation(headline),
        measure_label=MEASURE_LABELS[measure],
        baseline_days=baseline_days,
    )
    return Trend(
        measure=measure,
        measure_label=MEASURE_LABELS[measure],
        baseline_days=baseline_days,
        points=points,
        chart=chart,
    )


def _day_expectation(flag: RisingFlag) -> float | None:
    stat = _flag_stat(flag)
    if stat.today_expected is not None:
        return stat.today_expected
    return stat.baseline if stat.window_days == 1 else None


def _measure(flag: RisingFlag) -> str:
    """The daily count the detector tests: distinct outlets, unless the flag names another column."""
    named = _details(flag).get("measure")
    return str(named) if named in MEASURE_LABELS else "n_outlets"


def _distinct(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v})


def _diverse(candidates: list[T], limit: int, outlet: Callable[[T], str] = attrgetter("outlet")) -> list[T]:
    """The best article of each outlet first, then the rest: a rise is about many outlets."""
    seen: set[str] = set()
    first_per_outlet: list[T] = []
    rest: list[T] = []
    for candidate in candidates:
        name = outlet(candidate)
        (rest if name in seen else first_per_outlet).append(candidate)
        seen.add(name)
    return (first_per_outlet + rest)[:limit]


def _ranked(candidates: Sequence[Candidate], ranked_ids: list[int]) -> list[Candidate]:
    """The detector's order (its stored top articles) first, then by score."""
    position = {article_id: i for i, article_id in enumerate(ranked_ids)}
    return sorted(
        candidates,
        key=lambda a: (position.get(a.article_id, len(position)), -a.score, a.article_id),
    )


def _cluster_row(session: Session, subject_id: str) -> Cluster | None:
    try:
        return session.get(Cluster, int(subject_id))
    except ValueError:
        return None


def _cluster_articles(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    merged_into: dict[int, int],
    flagged: Iterable[str],
) -> dict[str, list[Candidate]]:
    """Per flagged surviving cluster id, its members published in [start, end), most central first,
    as candidates (evidence is made for the shown only).

    As the rising detector counts them: members of clusters merged before ``end`` (``merged_into``)
    belong to the survivor, and an article a seed now covers belongs to the seed, not to the cluster.
    """
    # the day's members, whichever cluster: a flagged group can hold thousands of clusters, and
    # reading their members by id scans their whole history
    rows = rules.counted_cluster_rows(session, start, end, merged_into)
    wanted = set(flagged)
    shown = functools.lru_cache(maxsize=None)(plain_text)  # a day's members share a few outlets
    return {
        survivor: [
            _Member(
                article_id=row.id,
                score=round(row.similarity, 4),
                outlet=shown(row.outlet, 100),
                country=shown(row.country, 8).upper(),
                language=shown(row.language, 16) or None,
            )
            for row in members
        ]
        for survivor, members in rows.items()
        if survivor in wanted
    }
