"""A run killed mid-step leaves its row `running`; the next run of the step marks it failed."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess

import pytest
from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db.models import PipelineRun
from narrwatch.runs import STALE_AFTER, recorded_run

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_rows_of_dead_processes_are_failed_and_live_ones_left(ctx: AppContext) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    wall = dt.datetime.now(dt.UTC)
    here = socket.gethostname()
    runners = {
        "killed": {"host": here, "pid": dead.pid, "wall_started_at": wall.isoformat()},
        "alive": {"host": here, "pid": 1, "wall_started_at": wall.isoformat()},
        "lost elsewhere": {
            "host": "other-host",
            "pid": 7,
            "wall_started_at": (wall - STALE_AFTER - dt.timedelta(minutes=1)).isoformat(),
        },
        "recent elsewhere": {"host": "other-host", "pid": 7, "wall_started_at": wall.isoformat()},
    }
    with ctx.transaction() as session:
        for name, runner in runners.items():
            session.add(
                PipelineRun(
                    step="detect", started_at=NOW, status="running", summary={"runner": runner, "n": name}
                )
            )
        # another step's rows are that step's business
        session.add(
            PipelineRun(
                step="report", started_at=NOW, status="running", summary={"runner": runners["killed"]}
            )
        )
    with recorded_run(ctx, "detect", NOW) as run:
        run.summary = {"ok": True}
    with ctx.transaction() as session:
        rows = session.scalars(select(PipelineRun).order_by(PipelineRun.id)).all()
        outcome = {(row.step, (row.summary or {}).get("n")): (row.status, row.error) for row in rows}
    assert outcome[("detect", "killed")][0] == "failed"
    assert f"process {dead.pid} on {here} ended" in (outcome[("detect", "killed")][1] or "")
    assert outcome[("detect", "lost elsewhere")][0] == "failed"
    assert outcome[("detect", "alive")] == ("running", None)
    assert outcome[("detect", "recent elsewhere")] == ("running", None)
    assert outcome[("report", None)][0] == "running"
