"""The report's operational sections: seed changes, feed health (the one rule) and provenance of the runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narrwatch.config import Settings
from narrwatch.db import rules
from narrwatch.db.models import (
    Feed,
    Match,
    NarrativeVersion,
    PipelineRun,
)
from narrwatch.domain.clock import day_bounds
from narrwatch.domain.polling import HealthState
from narrwatch.steps.report.evidence import TITLE_CHARS, _Seed
from narrwatch.steps.report.model import (
    FeedHealth,
    FeedIssue,
    Provenance,
    RunInfo,
    SeedChange,
    SeedVersionInfo,
)
from narrwatch.steps.report.safety import plain_text, safe_url

ERROR_CHARS = 300


def _seed_changes(session: Session, settings: Settings, now: dt.datetime) -> list[SeedChange]:
    since = now - dt.timedelta(days=settings.report_changes_days)
    rows = session.scalars(
        select(NarrativeVersion)
        .where(NarrativeVersion.created_at > since, NarrativeVersion.created_at <= now)
        .order_by(NarrativeVersion.created_at.desc(), NarrativeVersion.narrative_id)
    ).all()
    changes = []
    for row in rows:
        previous = session.scalar(
            select(func.max(NarrativeVersion.version)).where(
                NarrativeVersion.narrative_id == row.narrative_id,
                NarrativeVersion.version < row.version,
            )
        )
        changes.append(
            SeedChange(
                narrative_id=row.narrative_id,
                title=plain_text(row.title, TITLE_CHARS),
                version=row.version,
                previous_version=previous,
                status=row.status,
                created_at=row.created_at,
                source_file=plain_text(row.source_file, 300),
            )
        )
    return changes


def _feed_issue(feed: Feed, silent_hours: float | None) -> FeedIssue:
    return FeedIssue(
        feed_id=plain_text(feed.id, 100),
        outlet=plain_text(feed.outlet, 100),
        name=plain_text(feed.name, 300),
        country=plain_text(feed.country, 8).upper(),
        url=safe_url(feed.url),
        consecutive_failures=feed.consecutive_failures,
        last_error=plain_text(feed.last_error, ERROR_CHARS) or None,
        last_status=feed.last_status,
        last_success_at=feed.last_success_at,
        last_new_item_at=feed.last_new_item_at,
        silent_hours=silent_hours,
    )


def _feed_health(session: Session, settings: Settings, now: dt.datetime) -> FeedHealth:
    """Failing and silent feeds by the one health rule (``rules.feed_health``); paused feeds are
    neither, wherever they were paused."""
    rows = rules.feed_health(session, settings, now)
    failing, silent = [], []
    for row in rows:
        if row.state is HealthState.DEGRADED:
            failing.append(_feed_issue(row.feed, None))
        elif row.state is HealthState.SILENT:
            quiet = row.feed.last_new_item_at
            hours = round((now - quiet).total_seconds() / 3600, 1) if quiet is not None else None
            silent.append(_feed_issue(row.feed, hours))
    failing.sort(key=lambda f: (-f.consecutive_failures, f.feed_id))
    silent.sort(key=lambda f: (-(f.silent_hours if f.silent_hours is not None else float("inf")), f.feed_id))
    n_watched = sum(1 for row in rows if row.state is not HealthState.PAUSED)
    return FeedHealth(n_feeds=n_watched, failing=failing, silent=silent)


def _run_info(row: PipelineRun) -> RunInfo:
    return RunInfo(
        run_id=row.id,
        step=row.step,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        window_start=row.window_start,
        window_end=row.window_end,
        summary=_small_summary(row.summary),
        error=plain_text(row.error, ERROR_CHARS) or None,
    )


def _small_summary(summary: Any) -> dict[str, Any]:
    """The scalar figures of a run summary (counts, ids): nested lists and objects are left out."""
    if not isinstance(summary, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in sorted(summary.items()):
        if isinstance(value, bool | int | float) or value is None:
            kept[plain_text(key, 60)] = value
        elif isinstance(value, str):
            kept[plain_text(key, 60)] = plain_text(value, 200)
    return kept


def _provenance(
    session: Session, settings: Settings, day: dt.date, now: dt.datetime, seeds: dict[str, _Seed]
) -> Provenance:
    start, end = day_bounds(day)
    models = session.execute(
        select(Match.model_name, Match.collection)
        .where(Match.published_at >= start, Match.published_at < end)
        .distinct()
        .order_by(Match.model_name, Match.collection)
    ).all()
    # Thresholds as the latest match of each seed on the day used them.
    thresholds: dict[str, tuple[float, float]] = {}
    for narrative_id, suggest, confirm in session.execute(
        select(Match.narrative_id, Match.threshold_suggest, Match.threshold_confirm)
        .where(Match.published_at >= start, Match.published_at < end)
        .order_by(Match.matched_at, Match.id)
    ).all():
        thresholds[narrative_id] = (suggest, confirm)
    seed_infos = [
        SeedVersionInfo(
            narrative_id=seed.narrative_id,
            version=seed.version,
            status=seed.status,
            content_hash=seed.content_hash[:12],
            threshold_suggest=thresholds[seed.narrative_id][0] if seed.narrative_id in thresholds else None,
            threshold_confirm=thresholds[seed.narrative_id][1] if seed.narrative_id in thresholds else None,
        )
        for seed in sorted(seeds.values(), key=lambda s: s.narrative_id)
    ]
    # The latest run of each step up to now; this report's own run is still in progress, so skipped.
    latest_ids = (
        select(func.max(PipelineRun.id))
        .where(PipelineRun.started_at <= now, PipelineRun.step != "report")
        .group_by(PipelineRun.step)
    )
    runs = session.scalars(
        select(PipelineRun).where(PipelineRun.id.in_(latest_ids)).order_by(PipelineRun.started_at)
    ).all()
    failed = session.scalars(
        select(PipelineRun)
        .where(
            PipelineRun.status == "failed",
            PipelineRun.started_at > now - dt.timedelta(days=1),
            PipelineRun.started_at <= now,
        )
        .order_by(PipelineRun.started_at.desc())
    ).all()
    return Provenance(
        models=[plain_text(f"{model} ({collection})", 300) for model, collection in models],
        embedding_model=settings.embedding_model,
        embedding_backend=settings.embedding_backend,
        seeds=seed_infos,
        rising_thresholds={
            "alpha": settings.rising_alpha,
            "min_ratio": settings.rising_min_ratio,
            "min_outlets": settings.rising_min_outlets,
            "baseline_days": settings.rising_baseline_days,
        },
        runs=[_run_info(row) for row in runs],
        failed_runs=[_run_info(row) for row in failed],
    )
