"""The pipeline's steps as the CLI and the DAG tasks call them.

Each function takes the context and the logical time (``now``) or window it works on, records a
``pipeline_runs`` row, calls the use case and returns the use case's small summary (safe for XCom).
Heavy modules are imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from narrwatch.context import AppContext
from narrwatch.domain.clock import day_bounds
from narrwatch.runs import recorded_run


def sync_feeds(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.poll import sync as sync_mod

    with recorded_run(ctx, "sync_feeds", now) as run:
        run.summary = sync_mod.sync_feeds(ctx, now).as_dict()
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
    from narrwatch.steps.poll import poll as poll_mod
    from narrwatch.steps.poll import sync as sync_mod

    with recorded_run(ctx, "poll", now) as run:
        sync_mod.sync_feeds(ctx, now)
        report = poll_mod.poll_feeds(
            ctx, now, group=group, shard=shard, shards=shards, feed_ids=feed_ids, force=force
        )
        run.summary = report.as_dict()
    return run.summary


def embed(ctx: AppContext, now: dt.datetime, *, limit: int | None = None) -> dict[str, Any]:
    from narrwatch.steps.embed import embed as vectorize

    with recorded_run(ctx, "embed", now) as run:
        run.summary = vectorize.embed_pending(ctx, now, limit=limit).as_dict()
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
    from narrwatch.steps.match import versions as versions_mod

    with recorded_run(ctx, "match", now, start, end) as run:
        versions_mod.sync_narratives(ctx, now)
        run.summary = matching.match_articles(ctx, start, end, now, recompute=recompute).as_dict()
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


def reconcile(ctx: AppContext, now: dt.datetime, *, mend: bool = True) -> dict[str, Any]:
    from narrwatch.steps.embed import embed as vectorize

    with recorded_run(ctx, "reconcile", now) as run:
        run.summary = vectorize.reconcile_vectors(ctx, now, mend=mend).as_dict()
    return run.summary


def retention(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.retain import retain as maintenance

    with recorded_run(ctx, "retention", now) as run:
        run.summary = maintenance.apply_retention(ctx, now).as_dict()
    return run.summary


def recompute_changed(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    from narrwatch.steps.match import recompute as recompute_mod

    with recorded_run(ctx, "recompute", now) as run:
        run.summary = recompute_mod.recompute_changed_narratives(ctx, now).as_dict()
    return run.summary


def run_all(ctx: AppContext, now: dt.datetime, *, report_day: dt.date | None = None) -> dict[str, Any]:
    """Every step once, in order: what `narrwatch run` and each replayed demo day do.

    Matching and clustering look back `match_window_days` so late-published and late-embedded
    articles are still covered; detection and the report are for ``report_day`` (default: the day
    of ``now``).
    """
    day = report_day or now.date()
    window_start = now - dt.timedelta(days=ctx.settings.match_window_days)
    summaries: dict[str, Any] = {
        "poll": poll(ctx, now),
        "embed": embed(ctx, now),
        "match": match(ctx, window_start, now, now),
        "cluster": cluster(ctx, window_start, now, now),
        "detect": detect(ctx, day, now),
    }
    summaries["report"] = report(ctx, day, now)
    return summaries
