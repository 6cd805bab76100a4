"""`narrwatch retention`: a minimum of 30 days, a dry run that deletes nothing, tombstones shown."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from typer.testing import CliRunner

from narrwatch.config import MIN_RETENTION_DAYS, Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article, Tombstone
from narrwatch.steps.retain.retain import apply_retention

# The package's `main` attribute is the entry function, so the module is imported by name.
cli = importlib.import_module("narrwatch.cli.main")

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def shared(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    @contextmanager
    def same() -> Iterator[AppContext]:
        yield ctx

    monkeypatch.setattr(cli, "app_context", same)
    return ctx


def count(ctx: AppContext, model: Any) -> int:
    with ctx.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("days", [1, 7, MIN_RETENTION_DAYS - 1])
def test_retention_below_the_minimum_is_refused(days: int) -> None:
    with pytest.raises(ValidationError, match=f"at least {MIN_RETENTION_DAYS} days"):
        Settings(retention_days=days, _env_file=None)  # type: ignore[call-arg]
    assert Settings(retention_days=MIN_RETENTION_DAYS, _env_file=None).retention_days == 30  # type: ignore[call-arg]


def test_a_value_set_in_code_below_the_minimum_deletes_nothing(ctx: AppContext, rows: Any) -> None:
    rows.feed("f1")
    rows.article("https://a.example/old", NOW - dt.timedelta(days=40))
    ctx.settings.retention_days = 1
    with pytest.raises(ValueError, match="below the minimum"):
        apply_retention(ctx, NOW)
    assert count(ctx, Article) == 1


def test_dry_run_counts_and_deletes_nothing_then_the_run_tombstones(shared: AppContext, rows: Any) -> None:
    shared.settings.retention_days = 30
    rows.feed("f1")
    for i in range(3):
        rows.article(f"https://a.example/old-{i}", NOW - dt.timedelta(days=31 + i))
    rows.article("https://a.example/young", NOW - dt.timedelta(days=2))
    runner = CliRunner()

    dry = runner.invoke(cli.app, ["retention", "--dry-run", "--now", NOW.isoformat()])
    assert dry.exit_code == 0, dry.output
    assert "would delete 3 articles" in dry.output and "6 vector points" in dry.output
    assert count(shared, Article) == 4 and count(shared, Tombstone) == 0

    done = runner.invoke(cli.app, ["retention", "--now", NOW.isoformat(), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["articles_deleted"] == 3
    assert count(shared, Article) == 1

    shown = runner.invoke(cli.app, ["tombstones", "--json"])
    listed = json.loads(shown.output)
    assert listed["total"] == 3
    assert {item["url"] for item in listed["tombstones"]} == {f"https://a.example/old-{i}" for i in range(3)}
    table = runner.invoke(cli.app, ["tombstones", "--limit", "2"])
    assert "3 tombstones, newest 2:" in table.output and "https://a.example/old-" in table.output
