"""Reads everything the daily report shows from SQL into a ``ReportData``: nothing else is consulted.

The report is a function of the stored rows, the day and ``now``: rendering the same day twice from
the same rows gives the same data.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, defer

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import (
    Cluster,
    DailyCount,
    NarrativeVersion,
    RisingFlag,
)
from narrwatch.domain.clock import day_bounds
from narrwatch.steps.report.evidence import TITLE_CHARS, _counted_seed_articles, _Seed, members_evidence
from narrwatch.steps.report.model import (
    ClusterItem,
    ReportData,
    ReportSummary,
    SeedActivity,
)
from narrwatch.steps.report.operations import _feed_health, _provenance, _seed_changes
from narrwatch.steps.report.rising_items import (
    SAMPLE_TITLES,
    _cluster_articles,
    _distinct,
    _diverse,
    _fell_back,
    _rising_items,
)
from narrwatch.steps.report.safety import plain_text


def collect_report_data(ctx: AppContext, day: dt.date, now: dt.datetime) -> ReportData:
    settings = ctx.settings
    start, end = day_bounds(day)
    with ctx.transaction() as session:
        seeds = _latest_seeds(session, now)
        seed_articles = _counted_seed_articles(session, start, end)
        flags = session.scalars(select(RisingFlag).where(RisingFlag.day == day)).all()
        flagged = {flag.subject_id for flag in flags if flag.subject_kind == "cluster"}
        merged_into = rules.merge_map(session, end)  # the merges that had happened by the day's end
        day_clusters = _cluster_articles(session, start, end, merged_into, flagged)
        rising = _rising_items(session, settings, day, flags, seeds, seed_articles, day_clusters)
        rising_ids = {(item.kind, item.subject_id) for item in rising}
        fell_back = _fell_back(session, day, seeds, rising_ids)
        seed_activity = _seed_activity(session, settings, day, seeds, rising_ids)
        clusters = _emerging_clusters(session, settings, day, merged_into, rising_ids)
        changes = _seed_changes(session, settings, now)
        feed_health = _feed_health(session, settings, now)
        provenance = _provenance(session, settings, day, now, seeds)
    matched = {a.article_id: a.outlet for articles in seed_articles.values() for a in articles}
    summary = ReportSummary(
        n_rising=len(rising),
        n_confirmed_matches=len(matched),
        n_outlets=len(set(matched.values())),
        n_clusters=len(clusters),
        n_failing_feeds=len(feed_health.failing),
        n_silent_feeds=len(feed_health.silent),
    )
    return ReportData(
        day=day,
        generated_at=now,
        summary=summary,
        rising=rising,
        fell_back=fell_back,
        seeds=seed_activity,
        clusters=clusters,
        seed_changes=changes,
        changes_days=settings.report_changes_days,
        cluster_window_days=settings.cluster_window_days,
        feed_health=feed_health,
        provenance=provenance,
    )


#: A listed cluster's most central members read for its sample: with three outlets among them, the
#: sample is the one all its members would give.
SAMPLE_SCAN = 200


def _shown(outlets: Iterable[str]) -> set[str]:
    """Distinct outlet names as the report shows them (each raw name made plain once)."""
    return {plain_text(outlet, 100) for outlet in set(outlets)}


def _latest_seeds(session: Session, now: dt.datetime) -> dict[str, _Seed]:
    """The newest version of every seed that existed at ``now``."""
    rows = session.scalars(
        select(NarrativeVersion)
        .where(NarrativeVersion.created_at <= now)
        .order_by(NarrativeVersion.narrative_id, NarrativeVersion.version)
    ).all()
    seeds: dict[str, _Seed] = {}
    for row in rows:
        definition = row.definition if isinstance(row.definition, dict) else {}
        seeds[row.narrative_id] = _Seed(
            narrative_id=row.narrative_id,
            version=row.version,
            title=plain_text(row.title, TITLE_CHARS) or row.narrative_id,
            description=plain_text(definition.get("description"), 500),
            parent_id=row.parent_id,
            status=row.status,
            content_hash=row.content_hash,
        )
    return seeds


def _seed_activity(
    session: Session,
    settings: Settings,
    day: dt.date,
    seeds: dict[str, _Seed],
    rising_ids: set[tuple[str, str]],
) -> list[SeedActivity]:
    baseline_days = settings.rising_baseline_days
    first = day - dt.timedelta(days=baseline_days)
    rows = session.scalars(
        select(DailyCount).where(
            DailyCount.subject_kind == "narrative",
            DailyCount.dimension == "all",
            DailyCount.day >= first,
            DailyCount.day <= day,
        )
    ).all()
    today: dict[str, DailyCount] = {}
    history: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.day == day:
            today[row.subject_id] = row
        else:
            history[row.subject_id] += row.n_outlets
    activity = []
    for narrative_id, seed in seeds.items():
        if seed.status != "active" and narrative_id not in today:
            continue
        counts = today.get(narrative_id)
        activity.append(
            SeedActivity(
                narrative_id=narrative_id,
                title=seed.title,
                version=seed.version,
                n_articles=counts.n_articles if counts else 0,
                n_stories=counts.n_stories if counts else 0,
                n_outlets=counts.n_outlets if counts else 0,
                mean_outlets=round(history[narrative_id] / baseline_days, 2),
                rising=("narrative", narrative_id) in rising_ids,
            )
        )
    activity.sort(key=lambda s: (not s.rising, -s.n_outlets, -s.n_articles, -s.mean_outlets, s.narrative_id))
    return activity


@dataclass
class _Spread:
    """A surviving cluster's counted members in the cluster window: its outlets and days, and how
    many (a group's clusters belong to one collection, so no article is counted twice)."""

    outlets: set[str] = field(default_factory=set)
    days: set[dt.date] = field(default_factory=set)
    n_members: int = 0
    countries: set[str] = field(default_factory=set)

    def add(self, day: dt.date, outlets: Iterable[str], n_members: int) -> None:
        self.outlets |= _shown(outlets)
        self.days.add(day)
        self.n_members += n_members


def _window_spread(session: Session, days: list[dt.date], merged_into: dict[int, int]) -> dict[str, _Spread]:
    """Every surviving cluster's spread over ``days``: from the daily counts detection stored (a few
    rows per cluster and day, where the window's members are tens of thousands; a group detection
    keeps folded is read from its folded rows), and from the members themselves on a day whose
    counts are not current (not counted yet, or marked stale by a later member, match or verdict)."""
    current, _ = rules.count_state(session, days)
    spread: dict[str, _Spread] = defaultdict(_Spread)
    counts, outlets = rules.window_cluster_days(session, sorted(current), merged_into, ("all", "country"))
    for (survivor, dimension, value), by_day in counts.items():
        if dimension == "country":
            if value != rules.UNKNOWN:  # members' countries as shown: an unknown one is not listed
                spread[survivor].countries.add(value)
            continue
        for day, count in by_day.items():
            spread[survivor].add(day, outlets[(survivor, "all", "all")][day], count.n_articles)
    for day in sorted(set(days) - current):
        start, end = day_bounds(day)
        for survivor, rows in rules.counted_cluster_rows(session, start, end, merged_into).items():
            spread[survivor].add(day, (row.outlet for row in rows), len(rows))
            spread[survivor].countries.update(row.country for row in rows)
    return dict(spread)


def _sample(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    merged_into: dict[int, int],
    survivor: str,
    ids: list[int],
) -> list[Row[Any]]:
    """The group's most central members of the window, enough to pick ``SAMPLE_TITLES`` from distinct
    outlets as ``_diverse`` would from all of them (all are read when the most central are too few)."""
    most_central = rules.counted_cluster_rows(session, start, end, merged_into, ids, SAMPLE_SCAN).get(
        survivor, []
    )
    outlets = {plain_text(row.outlet, 100) for row in most_central}
    if len(most_central) < SAMPLE_SCAN or len(outlets) >= SAMPLE_TITLES:
        return most_central
    return rules.counted_cluster_rows(session, start, end, merged_into, ids).get(survivor, [])


def _emerging_clusters(
    session: Session,
    settings: Settings,
    day: dt.date,
    merged_into: dict[int, int],
    rising_ids: set[tuple[str, str]],
) -> list[ClusterItem]:
    """Live clusters spread across outlets and days in the cluster window ending with the day.

    One event covered by a few outlets on one day is a story, not an emerging narrative: a cluster
    is listed only once at least ``cluster_emerging_min_outlets`` distinct outlets carried it on at
    least ``cluster_emerging_min_days`` distinct days."""
    _, end = day_bounds(day)
    start = end - dt.timedelta(days=settings.cluster_window_days)
    days = [day - dt.timedelta(days=i) for i in range(settings.cluster_window_days - 1, -1, -1)]
    spread = {
        cluster_id: cluster_spread
        for cluster_id, cluster_spread in _window_spread(session, days, merged_into).items()
        if len(cluster_spread.outlets) >= settings.cluster_emerging_min_outlets
        and len(cluster_spread.days) >= settings.cluster_emerging_min_days
    }
    live = {
        str(cluster.id): cluster
        for chunk in rules.chunked(sorted(int(cid) for cid in spread))
        for cluster in session.scalars(
            select(Cluster)
            .options(defer(Cluster.centroid))
            .where(Cluster.id.in_(chunk), Cluster.status == "live")
        )
    }
    chosen = sorted(live, key=lambda c: (-len(spread[c].outlets), -spread[c].n_members, int(c)))
    chosen = chosen[: settings.report_max_clusters]
    groups = rules.cluster_groups(chosen, merged_into)
    return [
        _cluster_item(
            session,
            live[cluster_id],
            _sample(session, start, end, merged_into, cluster_id, sorted(groups[cluster_id])),
            spread[cluster_id],
            rising_ids,
        )
        for cluster_id in chosen
    ]


def _cluster_item(
    session: Session,
    cluster: Cluster,
    most_central: list[Row[Any]],
    spread: _Spread,
    rising_ids: set[tuple[str, str]],
) -> ClusterItem:
    """A listed cluster; evidence is made for its sampled members only (its week can hold thousands)."""
    sample = _diverse(most_central, SAMPLE_TITLES, lambda row: plain_text(row.outlet, 100))
    return ClusterItem(
        cluster_id=cluster.id,
        label=plain_text(cluster.label, 200) or f"cluster {cluster.id}",
        representative_title=plain_text(cluster.representative_title, TITLE_CHARS),
        size=cluster.size,
        n_recent=spread.n_members,
        outlets=_distinct(spread.outlets),
        countries=_distinct(plain_text(country, 8).upper() for country in spread.countries),
        sample_titles=members_evidence(session, [(row.id, row.similarity) for row in sample]),
        first_seen_at=cluster.first_seen_at,
        last_seen_at=cluster.last_seen_at,
        rising=("cluster", str(cluster.id)) in rising_ids,
        promote_command=f"narrwatch clusters promote {cluster.id}",
    )
