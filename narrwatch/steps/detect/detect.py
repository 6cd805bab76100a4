"""Detect what rose on a day: daily counts per seed and cluster, the test, and the day's flags.

``detect_rising(ctx, day, now)`` is a function of the stored articles, matches, verdicts, clusters and
the day. It counts the day, and any baseline day never counted or marked stale, for every seed,
cluster and outlet (``stored.py``: other days are read back as stored, so a day costs its own
articles; every writer of members, matches and verdicts marks the days it changed, so a seed
activated later, a recalibrated threshold or an analyst's label recounts those days); a cluster with
members on the day is tested on the union of its group's stored days, so a merge needs no recount
(``groups.py`` keeps that union folded, so a group of thousands of merged clusters reads its own rows).
It tests every seed and cluster, overall and per country and per language, and replaces that day's
``rising_flags``; re-running a past day gives the same flags.

What counts (see ``narrwatch/domain/rising.py`` for the statistics):
- a seed counts an article by the report's rule (``narrwatch.db.rules.counted_matches_query``: a confirm-level
  match no analyst rejected, or a match an analyst confirmed); matches of every collection count
  once per article, so a model change does not break a seed's history;
- a cluster counts its members that have no active seed match (once a seed covers an article it
  belongs to the seed). Merges apply to a day only when they happened before the day ended, so a
  later merge does not rewrite the counts behind an earlier day's flags;
- a seed's baseline starts on the first day it was looked for: its earliest match, or the earliest
  stored article scored after it became active (the recompute step scores a new seed's window of
  stored articles, so its days there are real zeros), else its first version's day; days before
  narrwatch stored its first article are never baseline. A seed's rate has a Gamma prior from
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
from narrwatch.db.models import Article, RisingFlag
from narrwatch.domain.clock import day_start
from narrwatch.domain.rising import DayCount, RisingParams, RisingTest, assess_rising, flag_run
from narrwatch.domain.rising_baseline import (
    FloatArray,
    Reference,
    baseline_dispersion,
    catalogue_prior,
    reference_from_cross_section,
    regular_outlets,
    subject_coverage,
    volume_exposure,
    weekday_factors,
)
from narrwatch.steps.detect.counting import (
    CountedArticle,
    SubjectKey,
    groups_observed_from,
    seed_observed_from,
)
from narrwatch.steps.detect.flag_rows import earlier_flags, flag_extra, flag_row
from narrwatch.steps.detect.groups import folded_observed_from, group_days
from narrwatch.steps.detect.stored import (
    CountedDays,
    Outlets,
    Volumes,
    clear_marks,
    cluster_outlets,
    count_days,
    days_to_count,
    read_volumes,
)


def params_from_settings(settings: Settings) -> RisingParams:
    return RisingParams(
        baseline_days=settings.rising_baseline_days,
        long_baseline_days=max(settings.rising_baseline_days, RisingParams.long_baseline_days),
        min_outlets=settings.rising_min_outlets,
        alpha=settings.rising_alpha,
        min_ratio=settings.rising_min_ratio,
    )


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


def _global_volume(volumes: Volumes, days: list[dt.date]) -> dict[dt.date, int]:
    """Distinct (outlet, story) per day over all stored articles: the weekday prior's data."""
    return {d: sum(stories for _, stories in volumes[d].values()) for d in days if volumes.get(d)}


def _active_outlets(volumes: Volumes) -> dict[dt.date, set[str]]:
    """Outlets that published anything, per day, and so could have carried any subject."""
    return {d: set(outlets) for d, outlets in volumes.items() if outlets}


def _day_volume(
    volumes: Volumes, days: list[dt.date], active: dict[dt.date, set[str]], start: dt.date
) -> dict[dt.date, float]:
    """Articles per active outlet each day, against its weekday's median (holidays fall below 1)."""
    per_outlet = {
        d: sum(n for n, _ in volumes[d].values()) / len(active[d])
        for d in days
        if d >= start and active.get(d)
    }
    return volume_exposure(per_outlet)


def _exposure(
    day: dt.date,
    params: RisingParams,
    by_day: dict[dt.date, set[str]],
    active: dict[dt.date, set[str]],
    regular: set[str],
    volume: dict[dt.date, float],
    days: list[dt.date],
) -> dict[dt.date, float]:
    """Coverage of the subject's usual outlets (those that carried it before the longest window) times
    the day's volume; a subject with no history is covered wherever anything was published."""
    before = day - dt.timedelta(days=max(params.windows))
    weights: dict[str, float] = defaultdict(float)
    for d, outlets in by_day.items():
        if d < before:
            for outlet in outlets:
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
    baselines: list[tuple[list[int], list[int]]] = []
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
        baselines.append((y, [d.weekday() for d in days]))
    return catalogue_prior(
        rates,
        dispersions,
        information,
        baselines=baselines,
        weekday_prior=prior,
        confidence=params.dispersion_confidence,
    )


@dataclass(frozen=True)
class _Counted:
    """Every subject's daily counts and outlets over the span, its articles on the day, and since
    when each was observable."""

    seed_counts: dict[SubjectKey, dict[dt.date, DayCount]]
    cluster_counts: dict[SubjectKey, dict[dt.date, DayCount]]
    outlets: Outlets
    today: dict[SubjectKey, list[CountedArticle]]
    seed_observed: dict[str, dt.date]
    cluster_observed: dict[str, dt.date]
    global_start: dt.date  # the day narrwatch stored its first article

    @property
    def counts(self) -> dict[SubjectKey, dict[dt.date, DayCount]]:
        return {**self.seed_counts, **self.cluster_counts}


@dataclass(frozen=True)
class _Baselines:
    """What every subject's test on the day shares: weekday pattern, outlets, volume, priors."""

    weekday_prior: FloatArray
    active: dict[dt.date, set[str]]
    day_volume: dict[dt.date, float]
    regular: set[str]
    catalogue: Reference | None  # the seeds' prior
    reference: Reference | None  # a typical story, the clusters' prior
    earlier_flags: dict[SubjectKey, set[dt.date]]


def _count(
    session: Session, day: dt.date, days: list[dt.date], end: dt.datetime
) -> tuple[_Counted, CountedDays]:
    """Count the day and every stale or never-counted day of the span, and read back every seed's
    stored counts over the span and those of the clusters with members on ``day``."""
    first_article = session.execute(select(func.min(Article.published_at))).scalar()
    global_start = first_article.date() if first_article is not None else day
    merges = rules.merges(session)
    fill, marks = days_to_count(session, day, [d for d in days if d >= global_start])
    written = count_days(session, fill, merges)
    clear_marks(session, marks)

    seed_stored, seed_stored_outlets = rules.stored_subject_days(session, "narrative", days)
    seed_counts = {("narrative", *key): by_day for key, by_day in seed_stored.items()}
    merged_into = rules.merge_map_at(merges, end)
    groups = rules.cluster_groups({key[1] for key in written.last_day if key[0] == "cluster"}, merged_into)
    counts, outlets, folded = group_days(session, days, groups, merged_into, end, fill)
    cluster_observed = groups_observed_from(session, {s: ids for s, ids in groups.items() if s not in folded})
    cluster_observed.update(folded_observed_from(session, folded))
    cluster_counts = {("cluster", *key): by_day for key, by_day in counts.items()}
    counted = _Counted(
        seed_counts=seed_counts,
        cluster_counts=cluster_counts,
        outlets={
            **{("narrative", *key): by_day for key, by_day in seed_stored_outlets.items()},
            **{("cluster", *key): by_day for key, by_day in outlets.items()},
        },
        today=written.last_day,
        seed_observed=seed_observed_from(session),
        cluster_observed=cluster_observed,
        global_start=global_start,
    )
    return counted, written


def _baselines(
    session: Session, params: RisingParams, day: dt.date, days: list[dt.date], counted: _Counted
) -> _Baselines:
    baseline_days = params.baseline_for(day)
    global_start = counted.global_start
    volumes = read_volumes(session, days)
    volume = _global_volume(volumes, baseline_days)
    observed_volume = [d for d in baseline_days if d >= global_start]
    prior = weekday_factors(
        [volume.get(d, 0) for d in observed_volume],
        [d.weekday() for d in observed_volume],
        None,
        strength=1.0,
    )
    active = _active_outlets(volumes)
    day_volume = _day_volume(volumes, days, active, global_start)
    regular = regular_outlets(active, [d for d in baseline_days if d >= global_start])
    catalogue = _catalogue(params, counted.seed_counts, counted.seed_observed, global_start, day, prior)
    return _Baselines(
        weekday_prior=prior,
        active=active,
        day_volume=day_volume,
        regular=regular,
        catalogue=catalogue,
        reference=reference_from_cross_section(cluster_outlets(session, baseline_days)),
        earlier_flags=earlier_flags(session, day, params),
    )


def _test_subject(
    day: dt.date,
    days: list[dt.date],
    key: SubjectKey,
    params: RisingParams,
    counted: _Counted,
    counts: dict[dt.date, DayCount],
    shared: _Baselines,
) -> tuple[RisingTest | None, dt.date, Reference | None]:
    """The subject's test, the first day it could be counted and the prior it was tested against."""
    kind, subject_id = key[0], key[1]
    subject_reference: Reference | None
    if kind == "narrative":
        observed_from = max(counted.seed_observed.get(subject_id, counted.global_start), counted.global_start)
        subject_reference = shared.catalogue
    else:
        observed_from = max(counted.cluster_observed.get(subject_id, day), counted.global_start)
        subject_reference = shared.reference
    outlets = counted.outlets[key]
    test = assess_rising(
        day,
        {d: c.n_outlets for d, c in counts.items()},
        params,
        weekday_prior=shared.weekday_prior,
        observed_from=observed_from,
        reference=subject_reference,
        exposure=_exposure(day, params, outlets, shared.active, shared.regular, shared.day_volume, days),
        outlets=outlets,
    )
    return test, observed_from, subject_reference


def _write_flags(
    session: Session,
    params: RisingParams,
    day: dt.date,
    days: list[dt.date],
    now: dt.datetime,
    top: int,
    counted: _Counted,
    shared: _Baselines,
    report: RisingReport,
) -> None:
    """Test every subject with articles on ``day`` and replace the day's flags."""
    counts = counted.counts
    session.execute(delete(RisingFlag).where(RisingFlag.day == day))
    for key in sorted(counts):
        if counts[key].get(day) is None:
            continue
        report.n_subjects += 1
        kind, subject_id = key[0], key[1]
        if key[2] != "all" and counts[key] == counts.get((kind, subject_id, "all", "all")):
            continue  # every article of the subject is in this country or language: nothing new
        test, observed_from, subject_reference = _test_subject(
            day, days, key, params, counted, counts[key], shared
        )
        if test is None:
            report.n_untestable += 1
            continue
        report.n_tested += 1
        if not test.flagged:
            continue
        earlier = shared.earlier_flags.get(key, set())
        session.add(
            flag_row(
                day,
                key,
                test,
                flag_run(day, earlier, params.new_after_days),
                counted.today[key],
                counted.outlets[key].get(day - dt.timedelta(days=1), set()),
                earlier,
                flag_extra(observed_from, subject_reference),
                now,
                top,
            )
        )
        report.flags.append(":".join(key))


def detect_rising(ctx: AppContext, day: dt.date, now: dt.datetime) -> RisingReport:
    """Count ``day`` (and baseline days never counted), test every subject, replace ``day``'s flags."""
    params = params_from_settings(ctx.settings)
    first_day = day - dt.timedelta(days=params.span_days)
    days = [first_day + dt.timedelta(days=i) for i in range(params.span_days + 1)]
    end = day_start(day + dt.timedelta(days=1))
    report = RisingReport(day=day)

    with ctx.transaction() as session:
        # Counts of the baseline days are filled too, so any two detect runs take turns.
        hold_transaction_lock(session, "detect")
        counted, written = _count(session, day, days, end)
        report.n_counts_written, report.n_baseline_days_filled = written.last_rows, written.before_rows
        shared = _baselines(session, params, day, days, counted)
        _write_flags(
            session, params, day, days, now, ctx.settings.report_top_articles, counted, shared, report
        )
    return report
