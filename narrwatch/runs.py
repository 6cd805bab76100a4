"""Records every step run in `pipeline_runs`, whoever started it (CLI or DAG task)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from narrwatch.context import AppContext
from narrwatch.db.models import PipelineRun


@dataclass
class RunRecord:
    run_id: int
    summary: dict[str, Any] = field(default_factory=dict)


@contextmanager
def recorded_run(
    ctx: AppContext,
    step: str,
    now: dt.datetime,
    window_start: dt.datetime | None = None,
    window_end: dt.datetime | None = None,
) -> Iterator[RunRecord]:
    """A `running` row first, then `ok` with the step's summary or `failed` with the error.

    The row lives in its own transactions so a failed step still leaves its trace.
    """
    with ctx.transaction() as session:
        row = PipelineRun(
            step=step,
            started_at=now,
            status="running",
            window_start=window_start,
            window_end=window_end,
            summary={},
        )
        session.add(row)
        session.flush()
        run_id = row.id
    record = RunRecord(run_id=run_id)
    started = dt.datetime.now(dt.UTC)
    try:
        yield record
    except BaseException as exc:
        with ctx.transaction() as session:
            failed = session.get(PipelineRun, run_id)
            if failed is not None:
                failed.status = "failed"
                failed.finished_at = now + (dt.datetime.now(dt.UTC) - started)
                failed.error = f"{type(exc).__name__}: {exc}"[:4000]
        raise
    with ctx.transaction() as session:
        done = session.get(PipelineRun, run_id)
        if done is not None:
            done.status = "ok"
            done.finished_at = now + (dt.datetime.now(dt.UTC) - started)
            elapsed = dt.datetime.now(dt.UTC) - started
            done.summary = {**record.summary, "duration_s": round(elapsed.total_seconds(), 3)}
