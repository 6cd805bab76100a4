"""Detect what rose on a day: daily counts per seed and cluster, the test, and the day's flags.

``detect_rising(ctx, day, now)`` is a function of the stored articles, matches, verdicts, clusters and
the day. It recomputes ``daily_counts`` for the day and every baseline day before it (so a seed
activated later, a recalibrated threshold or an analyst's label changes the stored counts of the
days it touches: counts are never stale), tests every seed and cluster, overall and per country and
per language, and replaces that day's ``rising_flags``; it writes nothing else, so re-running a past
day gives the same flags.

What counts (see ``narrwatch/domain/rising.py`` for the statistics):
- a seed counts an article by the report's rule (``narrwatch.db.rules.counted_matches_query``: a confirm-level
  match no analyst rejected, or a match an analyst confirmed); matches of every collection count
  once per article, so a model change does not break a seed's history;
- a cluster counts its members that have no active seed match (once a seed covers an article it
  belongs to the seed). Merges apply to a day only when they happened before the day ended, so a
  later merge does not rewrite the counts behind an earlier day's flags;
- a seed's baseline starts when the seed existed (its first version or its earliest match); days
  before narrwatch stored its first article are never baseline. A seed's rate has a Gamma prior from
  the whole catalogue (every seed's rate and dispersion); a cluster is compared with a typical story
  (how many outlets an active cluster gets per day), which matters while it is young;
- each day's exposure for a subject is the share of its usual outlets that published anything that
  day times the day's articles per active outlet against its weekday's median: a silent feed group
  or a holiday is neither a fall nor, on its return, a rise.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.locks import hold_transaction_lock
from narrwatch.db.models import (
    Article,
    ClusterMember,
    DailyCount,
    Match,
    NarrativeVersion,
    RisingFlag,
)
from narrwatch.domain.clock import day_start
from narrwatch.domain.clustering import resolve
from narrwatch.domain.rising import (
    STATISTIC_NAME,
    DayCount,
    FlagRun,
    Reference,
    RisingParams,
    RisingTest,
    assess_rising,
    baseline_dispersion,
    catalogue_prior,
    count_day,
    flag_run,
    reference_from_cross_section,
    regular_outlets,
    subject_coverage,
    volume_exposure,
    weekday_factors,
)

UNKNOWN = "und"  # articles whose language or country is not known

SubjectKey = tuple[str, str, str, str]  # (subject_kind, subject_id, dimension, dimension_value)


def params_from_settings(settings: Settings) -> RisingParams:
    return RisingParams(
        baseline_days=settings.rising_baseline_days,
        long_baseline_days=max(settings.rising_baseline_days, RisingParams.long_baseline_days),
        min_outlets=settings.rising_min_outlets,
        alpha=settings.rising_alpha,
        min_ratio=settings.rising_min_ratio,
    )


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


@dataclass
class RisingReport:
    day: dt.date
    n_subjects: int = 0  # subject-dimensions with articles on the day
    n_tested: int = 0
    n_untestable: int = 0  # enough outlets but too little baseline
    n_counts_written: int = 0
    n_baseline_days_filled: int = 0
    flags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "n_subjects": self.n_subjects,
            "n_tested": self.n_tested,
            "n_untestable": self.n_untestable,
            "n_counts_written": self.n_counts_written,
            "n_baseline_days_filled": self.n_baseline_days_filled,
            "n_flags": len(self.flags),
            "flags": self.flags[:50],
        }


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


def _seed_articles(
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


def _cluster_articles(
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


def _seed_observed_from(session: Session) -> dict[str, dt.date]:
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


def _global_volume(session: Session, start: dt.datetime, end: dt.datetime) -> dict[dt.date, int]:
    """Distinct (outlet, story) per day over all stored articles: the weekday prior's data."""
    stories: dict[dt.date, set[tuple[str, str]]] = defaultdict(set)
    rows = session.execute(
        select(Article.published_at, Article.outlet, Article.story_key).where(
            Article.published_at >= start, Article.published_at < end
        )
    ).tuples()
    for published_at, outlet, story_key in rows:
        stories[published_at.date()].add((outlet, story_key))
    return {day: len(pairs) for day, pairs in stories.items()}


def _daily_counts(
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


def _top_articles(articles: list[CountedArticle], limit: int) -> list[dict[str, Any]]:
    """The strongest articles, one per outlet first, so the reader sees the spread."""
    ordered = sorted(articles, key=lambda a: (-a.score, a.article_id))
    first_per_outlet: list[CountedArticle] = []
    seen: set[str] = set()
    for counted in ordered:
        if counted.outlet not in seen:
            seen.add(counted.outlet)
            first_per_outlet.append(counted)
    rest = [a for a in ordered if a not in first_per_outlet]
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


def _write_counts(
    session: Session,
    day: dt.date,
    days: list[dt.date],
    counts: dict[SubjectKey, dict[dt.date, DayCount]],
    report: RisingReport,
) -> None:
    """Replace the counts of ``day`` and every baseline day: a match, verdict or seed that changed for
    a past day since its counts were written must not leave them stale."""
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
                report.n_counts_written += 1
            else:
                report.n_baseline_days_filled += 1


def _active_outlets(session: Session, start: dt.datetime, end: dt.datetime) -> dict[dt.date, set[str]]:
    """Outlets that published anything, per day, and so could have carried any subject."""
    active: dict[dt.date, set[str]] = defaultdict(set)
    rows = session.execute(
        select(Article.published_at, Article.outlet).where(
            Article.published_at >= start, Article.published_at < end
        )
    ).tuples()
    for published_at, outlet in rows:
        active[published_at.date()].add(outlet)
    return active


def _day_volume(
    session: Session, days: list[dt.date], active: dict[dt.date, set[str]], start: dt.date
) -> dict[dt.date, float]:
    """Articles per active outlet each day, against its weekday's median (holidays fall below 1)."""
    articles: dict[dt.date, int] = defaultdict(int)
    rows = session.execute(
        select(Article.published_at).where(
            Article.published_at >= day_start(days[0]),
            Article.published_at < day_start(days[-1] + dt.timedelta(days=1)),
        )
    ).scalars()
    for published_at in rows:
        articles[published_at.date()] += 1
    per_outlet = {d: articles[d] / len(active[d]) for d in days if d >= start and active.get(d)}
    return volume_exposure(per_outlet)


def _exposure(
    day: dt.date,
    params: RisingParams,
    by_day: dict[dt.date, list[CountedArticle]],
    active: dict[dt.date, set[str]],
    regular: set[str],
    volume: dict[dt.date, float],
    days: list[dt.date],
) -> dict[dt.date, float]:
    """Coverage of the subject's usual outlets (those that carried it before the longest window) times
    the day's volume; a subject with no history is covered wherever anything was published."""
    before = day - dt.timedelta(days=max(params.windows))
    weights: dict[str, float] = defaultdict(float)
    for d, articles in by_day.items():
        if d < before:
            for outlet in {a.outlet for a in articles}:
                weights[outlet] += 1.0
    coverage = subject_coverage(weights, active, days, regular)
    return {d: coverage[d] * volume.get(d, 1.0) for d in days}


def _catalogue(
    params: RisingParams,
    seed_counts: dict[SubjectKey, dict[dt.date, DayCount]],
    seed_observed: dict[str, dt.date],
    global_start: dt.date,
    day: dt.date,
    prior: Any,
) -> Reference | None:
    """The Gamma prior every seed's rate starts from: all seeds' rates and dispersions (overall)."""
    baseline = params.baseline_for(day)
    rates, dispersions, information = [], [], []
    for (_, subject_id, dimension, _), by_day in seed_counts.items():
        if dimension != "all":
            continue
        start = max(seed_observed.get(subject_id, global_start), global_start)
        days = [d for d in baseline if d >= start]
        if len(days) < params.min_baseline_days:
            continue
        y = [by_day[d].n_outlets if d in by_day else 0 for d in days]
        own, info = baseline_dispersion(y, [d.weekday() for d in days], prior, params.weekday_prior_strength)
        rates.append(sum(y) / len(days))
        dispersions.append(own)
        information.append(info)
    return catalogue_prior(rates, dispersions, information)


def _earlier_flags(session: Session, day: dt.date, params: RisingParams) -> dict[SubjectKey, set[dt.date]]:
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


def _flag_row(
    day: dt.date,
    key: SubjectKey,
    test: RisingTest,
    run: FlagRun,
    by_day: dict[dt.date, list[CountedArticle]],
    earlier: set[dt.date],
    extra: dict[str, Any],
    now: dt.datetime,
    top: int,
) -> RisingFlag:
    kind, subject_id, dimension, value = key
    assert test.decisive is not None
    articles = by_day[day]
    today = count_day((a.outlet, a.story_key) for a in articles)
    yesterday = day - dt.timedelta(days=1)
    outlets_yesterday = {a.outlet for a in by_day.get(yesterday, [])}
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


def detect_rising(ctx: AppContext, day: dt.date, now: dt.datetime) -> RisingReport:
    """Recompute the counts of ``day`` and its baseline days, test every subject, replace ``day``'s flags."""
    params = params_from_settings(ctx.settings)
    first_day = day - dt.timedelta(days=params.span_days)
    days = [first_day + dt.timedelta(days=i) for i in range(params.span_days + 1)]
    start, end = day_start(first_day), day_start(day + dt.timedelta(days=1))
    report = RisingReport(day=day)

    with ctx.transaction() as session:
        # Counts of the baseline days are filled too, so any two detect runs take turns.
        hold_transaction_lock(session, "detect")
        first_article = session.execute(select(func.min(Article.published_at))).scalar()
        global_start = first_article.date() if first_article is not None else day
        seeds = _seed_articles(session, start, end)
        clusters, cluster_observed = _cluster_articles(session, start, end, end)
        seed_observed = _seed_observed_from(session)

        seed_counts, seed_groups = _daily_counts("narrative", seeds)
        cluster_counts, cluster_groups = _daily_counts("cluster", clusters)
        counts = {**seed_counts, **cluster_counts}
        groups = {**seed_groups, **cluster_groups}
        _write_counts(session, day, days, counts, report)

        baseline_days = params.baseline_for(day)
        volume = _global_volume(
            session, day_start(baseline_days[0]), day_start(baseline_days[-1] + dt.timedelta(days=1))
        )
        observed_volume = [d for d in baseline_days if d >= global_start]
        prior = weekday_factors(
            [volume.get(d, 0) for d in observed_volume],
            [d.weekday() for d in observed_volume],
            None,
            strength=1.0,
        )
        active = _active_outlets(session, start, end)
        day_volume = _day_volume(session, days, active, global_start)
        regular = regular_outlets(active, [d for d in baseline_days if d >= global_start])
        catalogue = _catalogue(params, seed_counts, seed_observed, global_start, day, prior)
        reference = reference_from_cross_section(
            [
                by_day[d].n_outlets
                for (_, _, dimension, _), by_day in cluster_counts.items()
                if dimension == "all"
                for d in baseline_days
                if d in by_day
            ]
        )
        earlier_flags = _earlier_flags(session, day, params)

        session.execute(delete(RisingFlag).where(RisingFlag.day == day))
        for key in sorted(counts):
            today = counts[key].get(day)
            if today is None:
                continue
            report.n_subjects += 1
            kind, subject_id = key[0], key[1]
            if key[2] != "all" and counts[key] == counts.get((kind, subject_id, "all", "all")):
                continue  # every article of the subject is in this country or language: nothing new
            subject_reference: Reference | None
            if kind == "narrative":
                observed_from = max(seed_observed.get(subject_id, global_start), global_start)
                subject_reference = catalogue
            else:
                observed_from = max(cluster_observed.get(subject_id, day), global_start)
                subject_reference = reference
            series = {d: c.n_outlets for d, c in counts[key].items()}
            outlets = {d: {a.outlet for a in arts} for d, arts in groups[key].items()}
            test = assess_rising(
                day,
                series,
                params,
                weekday_prior=prior,
                observed_from=observed_from,
                reference=subject_reference,
                exposure=_exposure(day, params, groups[key], active, regular, day_volume, days),
                outlets=outlets,
            )
            if test is None:
                report.n_untestable += 1
                continue
            report.n_tested += 1
            if not test.flagged:
                continue
            extra: dict[str, Any] = {"observed_from": observed_from.isoformat()}
            if subject_reference is not None:
                extra["prior"] = {
                    "outlets_per_day": round(subject_reference.rate, 6),
                    "dispersion": round(subject_reference.dispersion, 6),
                    "pseudo_days": round(subject_reference.days, 6),
                }
            earlier = earlier_flags.get(key, set())
            session.add(
                _flag_row(
                    day,
                    key,
                    test,
                    flag_run(day, earlier, params.new_after_days),
                    groups[key],
                    earlier,
                    extra,
                    now,
                    ctx.settings.report_top_articles,
                )
            )
            report.flags.append(":".join(key))
    return report
