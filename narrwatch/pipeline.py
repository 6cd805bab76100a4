"""The pipeline's steps as the CLI and the DAG tasks call them.

Each function takes the context and the logical time (``now``) or window it works on, records a
``pipeline_runs`` row, calls the use case and returns the use case's small summary (safe for XCom).
Heavy modules are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.domain.clock import day_bounds
from narrwatch.runs import recorded_run


def sync_feeds(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.poll.sync import sync_feeds as run_sync_feeds

    with recorded_run(ctx, "sync_feeds", now) as run:
        run.summary = run_sync_feeds(ctx, now).as_dict()
    return run.summary


def poll(
    ctx: AppContext,
    now: dt.datetime,
    *,
    group: str | None = None,
    shard: int | None = None,
    shards: int | None = None,
    feed_ids: list[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    from narrwatch.steps.poll.catalogue import sync_or_keep_last_good
    from narrwatch.steps.poll.poll import poll_feeds

    with recorded_run(ctx, "poll", now) as run:
        catalogue = sync_or_keep_last_good(ctx, now)
        report = poll_feeds(ctx, now, group=group, shard=shard, shards=shards, feed_ids=feed_ids, force=force)
        run.summary = {**report.as_dict(), **catalogue.as_dict()}
    return run.summary


def embed(
    ctx: AppContext,
    now: dt.datetime,
    *,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    from narrwatch.steps.embed import embed as vectorize

    with recorded_run(ctx, "embed", now) as run:
        run.summary = vectorize.embed_pending(ctx, now, limit=limit, on_batch=on_batch).as_dict()
    return run.summary


def match(
    ctx: AppContext,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    recompute: bool = False,
) -> dict[str, Any]:
    from narrwatch.steps.match import match as matching
    from narrwatch.steps.match.seeds import SeedFilesSkipped, bad_seed_files
    from narrwatch.steps.match.seedstore import load_usable_seeds

    with recorded_run(ctx, "match", now, start, end) as run:
        # A bad seed file is skipped, not fatal: the others are matched, then the run fails naming it.
        # match_articles records the seeds' versions itself.
        narratives, problems = load_usable_seeds(ctx, now)
        run.summary = matching.match_articles(
            ctx, start, end, now, recompute=recompute, narratives=narratives
        ).as_dict()
        if problems:
            lines = list(bad_seed_files(problems).values())
            run.summary["skipped_seed_files"] = lines
            raise SeedFilesSkipped(lines)
    return run.summary


def cluster(ctx: AppContext, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.cluster import cluster as clustering

    with recorded_run(ctx, "cluster", now, start, end) as run:
        run.summary = clustering.cluster_unmatched(ctx, start, end, now).as_dict()
    return run.summary


def detect(ctx: AppContext, day: dt.date, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.detect import detect as rising

    start, end = day_bounds(day)
    with recorded_run(ctx, "detect", now, start, end) as run:
        run.summary = rising.detect_rising(ctx, day, now).as_dict()
    return run.summary


def report(ctx: AppContext, day: dt.date, now: dt.datetime, out_dir: Path | None = None) -> dict[str, Any]:
    from narrwatch.steps.report import render_report

    start, end = day_bounds(day)
    with recorded_run(ctx, "report", now, start, end) as run:
        result = render_report(ctx, day, now, out_dir=out_dir)
        run.summary = {
            "html": str(result.html),
            "markdown": str(result.markdown),
            "json": str(result.json),
        }
    return run.summary


def reconcile(ctx: AppContext, now: dt.datetime, *, mend: bool = True, force: bool = False) -> dict[str, Any]:
    """Compare Qdrant with SQL and, with ``mend``, repair; fails (after repairing what it may) when
    the share of orphan points is too large to delete without ``force``."""
    from narrwatch.steps.embed.reconcile import reconcile_vectors
    from narrwatch.steps.embed.reconcile_guard import ReconcileRefused

    with recorded_run(ctx, "reconcile", now) as run:
        report = reconcile_vectors(ctx, now, mend=mend, force=force)
        run.summary = report.as_dict()
        refusals = [check.refused for check in report.collections if check.refused]
        if refusals:
            raise ReconcileRefused("; ".join(refusals))
    return run.summary


def retention(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.retain import retain as maintenance

    with recorded_run(ctx, "retention", now) as run:
        run.summary = maintenance.apply_retention(ctx, now).as_dict()
    return run.summary


def recompute_changed(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.match.recompute import recompute_changed_narratives

    with recorded_run(ctx, "recompute", now) as run:
        run.summary = recompute_changed_narratives(ctx, now).as_dict()
    return run.summary


def processing_window(settings: Settings, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[now - match_window_days, now)``: the window match and cluster take by default, looking back
    so that late-published and late-embedded articles are still covered."""
    return now - dt.timedelta(days=settings.match_window_days), now


def match_recent(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    """`match` over its default window: what the process DAG and `narrwatch run` do."""
    return match(ctx, *processing_window(ctx.settings, now), now)


def cluster_recent(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    """`cluster` over its default window: what the process DAG and `narrwatch run` do."""
    return cluster(ctx, *processing_window(ctx.settings, now), now)


def run_all(ctx: AppContext, now: dt.datetime, *, report_day: dt.date | None = None) -> dict[str, Any]:
    """Every step once, in order: what `narrwatch run` and each replayed demo day do.

    Matching and clustering look back `match_window_days` so late-published and late-embedded
    articles are still covered; detection and the report are for ``report_day`` (default: the day
    of ``now``).
    """
    from narrwatch.steps.match.seeds import SeedFilesSkipped

    day = report_day or now.date()
    summaries: dict[str, Any] = {"poll": poll(ctx, now), "embed": embed(ctx, now)}
    skipped: SeedFilesSkipped | None = None
    try:
        summaries["match"] = match_recent(ctx, now)
    except SeedFilesSkipped as exc:
        # The good seeds were matched: the rest of the day still runs, then the bad files are named.
        skipped = exc
        summaries["match"] = {"skipped_seed_files": exc.lines}
    summaries["cluster"] = cluster_recent(ctx, now)
    summaries["detect"] = detect(ctx, day, now)
    summaries["report"] = report(ctx, day, now)
    if skipped is not None:
        raise skipped
    return summaries
