"""Two detect runs and two report runs for one day at once, eight pairs each: none fails, and the
stored counts, flags and files are those of a single run (SQLite here, PostgreSQL in .ci/run)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from test_rising_store import DAY, NOW, build_history

from narrwatch import pipeline
from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import DailyCount, PipelineRun, RisingFlag

pytestmark = pytest.mark.db

PAIRS = 8


def run_pairs(settings: Settings, step: Callable[[AppContext], Any]) -> list[str]:
    """Run ``step`` in two threads released together, PAIRS times; the errors raised."""
    errors: list[str] = []
    for _ in range(PAIRS):
        contexts = [AppContext.from_settings(settings) for _ in range(2)]
        barrier = threading.Barrier(2)

        def work(ctx: AppContext, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                step(ctx)
            except Exception as exc:  # counted, the test fails on any
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

        threads = [threading.Thread(target=work, args=(ctx,)) for ctx in contexts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for ctx in contexts:
            ctx.close()
    return errors


def stored_state(ctx: AppContext) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with ctx.transaction() as session:
        counts = session.execute(
            select(
                DailyCount.day,
                DailyCount.subject_id,
                DailyCount.dimension,
                DailyCount.dimension_value,
                DailyCount.n_outlets,
            ).order_by(
                DailyCount.day, DailyCount.subject_id, DailyCount.dimension, DailyCount.dimension_value
            )
        ).all()
        flags = session.execute(
            select(
                RisingFlag.subject_id, RisingFlag.dimension, RisingFlag.dimension_value, RisingFlag.p_value
            )
            .where(RisingFlag.day == DAY)
            .order_by(RisingFlag.subject_id, RisingFlag.dimension, RisingFlag.dimension_value)
        ).all()
    return [tuple(row) for row in counts], [tuple(row) for row in flags]


def test_two_detects_and_two_reports_at_once_never_fail(ctx: AppContext, settings: Settings) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60))
    pipeline.detect(ctx, DAY, NOW)
    single = stored_state(ctx)
    assert single[1], "the history should flag the burst"

    detect_errors = run_pairs(settings, lambda c: pipeline.detect(c, DAY, NOW))
    report_errors = run_pairs(settings, lambda c: pipeline.report(c, DAY, NOW))
    print(
        f"detect: {2 * PAIRS} runs, {len(detect_errors)} failed; report: {2 * PAIRS} runs, "
        f"{len(report_errors)} failed ({settings.resolved_database_url.split(':')[0]})"
    )
    assert detect_errors == [] and report_errors == []
    assert stored_state(ctx) == single

    folder = settings.resolved_reports_dir / DAY.isoformat()
    assert json.loads((folder / "report.json").read_text(encoding="utf-8"))["day"] == DAY.isoformat()
    assert not [path.name for path in folder.iterdir() if path.name.endswith(".tmp")]
    with ctx.transaction() as session:
        statuses = set(session.scalars(select(PipelineRun.status)))
    assert statuses == {"ok"}
