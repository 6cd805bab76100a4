"""Records every step run in `pipeline_runs`, whoever started it (CLI or DAG task)."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db.models import PipelineRun

#: A `running` row whose process cannot be checked (another machine) is stale after this long:
#: longer than any step's execution timeout.
STALE_AFTER = dt.timedelta(hours=24)


def runner_identity() -> dict[str, Any]:
    """Who runs a step, so that a later run can tell whether it is still alive."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "wall_started_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def stale_reason(summary: Any, wall_now: dt.datetime) -> str | None:
    """Why a `running` row cannot be running any more, or None when it may be."""
    runner = summary.get("runner") if isinstance(summary, dict) else None
    if not isinstance(runner, dict):
        return None  # rows written before runners were recorded: left alone
    if runner.get("host") == socket.gethostname() and isinstance(runner.get("pid"), int):
        if not _process_alive(runner["pid"]):
            return f"process {runner['pid']} on {runner['host']} ended without recording an outcome"
        return None
    try:
        started = dt.datetime.fromisoformat(str(runner.get("wall_started_at")))
    except ValueError:
        return None
    if wall_now - started > STALE_AFTER:
        return f"still running after {STALE_AFTER} on {runner.get('host')}: its process was lost"
    return None


def fail_stale_runs(ctx: AppContext, step: str) -> list[int]:
    """Mark failed the `running` rows of ``step`` whose process is gone; their ids."""
    wall_now = dt.datetime.now(dt.UTC)
    failed: list[int] = []
    with ctx.transaction() as session:
        running = session.scalars(
            select(PipelineRun).where(PipelineRun.step == step, PipelineRun.status == "running")
        ).all()
        for row in running:
            reason = stale_reason(row.summary, wall_now)
            if reason is None:
                continue
            row.status = "failed"
            row.error = f"stale: {reason}"
            failed.append(row.id)
    return failed


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

    The row lives in its own transactions so a failed step still leaves its trace. Rows of the
    same step left `running` by a process that died (kill -9, a lost machine) are marked failed
    first, see :func:`fail_stale_runs`.
    """
    fail_stale_runs(ctx, step)
    with ctx.transaction() as session:
        row = PipelineRun(
            step=step,
            started_at=now,
            status="running",
            window_start=window_start,
            window_end=window_end,
            summary={"runner": runner_identity()},
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
                # What the step did before failing (e.g. matches stored for the good seeds).
                failed.summary = record.summary
        raise
    with ctx.transaction() as session:
        done = session.get(PipelineRun, run_id)
        if done is not None:
            done.status = "ok"
            done.finished_at = now + (dt.datetime.now(dt.UTC) - started)
            elapsed = dt.datetime.now(dt.UTC) - started
            done.summary = {**record.summary, "duration_s": round(elapsed.total_seconds(), 3)}
