"""`narrwatch status`: freshness, backlog, feeds by health, last runs, from the SQL store alone."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from narrwatch.cli import ops as cli_ops
from narrwatch.config import get_settings
from narrwatch.context import AppContext
from narrwatch.db.models import PipelineRun

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)  # the rows fixture's


def add_run(ctx: AppContext, step: str, status: str, started: dt.datetime, error: str | None = None) -> None:
    with ctx.transaction() as session:
        session.add(
            PipelineRun(
                step=step,
                started_at=started,
                finished_at=started + dt.timedelta(seconds=3),
                status=status,
                summary={},
                error=error,
            )
        )


@pytest.fixture
def populated(ctx: AppContext, rows: Any) -> AppContext:
    polled = {"last_attempt_at": NOW, "last_success_at": NOW}
    rows.feed("ok-feed", **polled, last_new_item_at=NOW - dt.timedelta(hours=1), mean_item_gap_s=3600.0)
    rows.feed(
        "broken-feed", last_attempt_at=NOW, last_success_at=NOW - dt.timedelta(days=1), consecutive_failures=4
    )
    rows.feed("paused-feed", paused=True)
    rows.feed("new-feed")
    rows.feed("quiet-feed", **polled, last_new_item_at=NOW - dt.timedelta(days=2), mean_item_gap_s=3600.0)
    rows.article("https://a.example/1", NOW - dt.timedelta(hours=1), feed_id="ok-feed")
    rows.article("https://a.example/2", NOW - dt.timedelta(hours=1), feed_id="ok-feed", embedded=False)
    add_run(ctx, "poll", "ok", NOW - dt.timedelta(hours=2))
    add_run(ctx, "poll", "failed", NOW - dt.timedelta(hours=1), error="OperationalError: database is locked")
    add_run(ctx, "embed", "ok", NOW - dt.timedelta(minutes=50))
    return ctx


def test_collect_status_reports_freshness_backlog_health_and_runs(populated: AppContext) -> None:
    status = cli_ops.collect_status(populated, NOW)
    assert status["articles"] == {
        "total": 2,
        "collection": "passages__test__4__abc",
        "embedded": 1,
        "unembedded": 1,
    }
    assert {state: entry["ids"] for state, entry in status["feeds"].items()} == {
        "degraded": ["broken-feed"],
        "ok": ["new-feed", "ok-feed"],
        "paused": ["paused-feed"],
        "silent": ["quiet-feed"],
    }
    poll = status["steps"]["poll"]
    assert poll["status"] == "failed" and "database is locked" in poll["error"]
    assert poll["last_ok_at"] == (NOW - dt.timedelta(hours=2, seconds=-3)).isoformat()
    assert status["steps"]["report"]["status"] == "never"
    assert status["freshness"]["problems"] == []  # 1 failing of 4 active feeds, articles 1 h old
    text = cli_ops.render_status(status)
    assert "waiting for embedding 1" in text
    assert "PROBLEM: the last poll run failed: OperationalError: database is locked" in text
    json.dumps(status)  # JSON-able for --json


@pytest.fixture
def cli(populated: AppContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    settings = populated.settings
    monkeypatch.setenv("NARRWATCH_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("NARRWATCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NARRWATCH_QDRANT_PATH", ":memory:")
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps typer from flattening the app
    cli_ops.register(app)
    yield app
    get_settings.cache_clear()


def test_status_exit_codes(cli: typer.Typer, populated: AppContext) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--now", NOW.isoformat(), "--json"])
    assert result.exit_code == cli_ops.STATUS_PROBLEM, result.output  # the last poll failed
    assert json.loads(result.output)["problems"] == [
        "the last poll run failed: OperationalError: database is locked"
    ]
    add_run(populated, "poll", "ok", NOW - dt.timedelta(minutes=30))
    result = runner.invoke(cli, ["status", "--now", NOW.isoformat(), "--json"])
    assert result.exit_code == cli_ops.STATUS_OK, result.output
    assert json.loads(result.output)["articles"]["unembedded"] == 1

    later = (NOW + dt.timedelta(hours=12)).isoformat()
    result = runner.invoke(cli, ["status", "--now", later])
    assert result.exit_code == 1
    assert "PROBLEM: no new article for 12.9 h" in result.output


def test_status_exits_2_when_the_store_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NARRWATCH_DATABASE_URL", f"sqlite:///{tmp_path}/missing/../no-schema.db")
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("noop")(lambda: None)
    cli_ops.register(app)
    try:
        result = CliRunner().invoke(app, ["status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == cli_ops.STATUS_CANNOT_JUDGE, result.output
    assert "cannot read the store" in result.output
