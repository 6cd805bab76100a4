"""The SQL store: migrations from empty, no drift, round trips, upserts and UTC times.

Runs on SQLite here and again on PostgreSQL in CI (NARRWATCH_TEST_DATABASE_URL).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, inspect, select, text

from narrwatch.context import AppContext
from narrwatch.db import migrate
from narrwatch.db.models import Base, Feed, PipelineRun
from narrwatch.db.session import dialect_insert

pytestmark = pytest.mark.db


@pytest.fixture
def empty_ctx(ctx: AppContext) -> AppContext:
    """The `ctx` fixture's database, emptied so migrations start from nothing."""
    if ctx.engine.dialect.name == "postgresql":
        with ctx.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(ctx.engine)
    return ctx


def test_migrations_create_every_table_and_match_the_models(empty_ctx: AppContext) -> None:
    url = empty_ctx.settings.resolved_database_url
    migrate.upgrade(url)
    tables = set(inspect(empty_ctx.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    migrate.check(url)  # raises on drift between models and migrations


def test_downgrade_to_base_and_upgrade_again(empty_ctx: AppContext) -> None:
    url = empty_ctx.settings.resolved_database_url
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert not set(Base.metadata.tables) & set(inspect(empty_ctx.engine).get_table_names())
    migrate.upgrade(url)
    migrate.check(url)


def test_upsert_does_nothing_on_conflict(ctx: AppContext) -> None:
    row = {"id": "f1", "outlet": "o", "name": "F", "url": "http://x/rss", "country": "RS"}
    for _ in range(3):
        with ctx.transaction() as session:
            stmt = dialect_insert(session, Feed).values(**row).on_conflict_do_nothing()
            session.execute(stmt)
    with ctx.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Feed)) == 1


def test_times_come_back_aware_utc(ctx: AppContext) -> None:
    belgrade = dt.timezone(dt.timedelta(hours=1))
    started = dt.datetime(2026, 3, 1, 10, 30, tzinfo=belgrade)
    with ctx.transaction() as session:
        session.add(PipelineRun(step="poll", started_at=started, status="ok", summary={}))
    with ctx.transaction() as session:
        stored = session.scalars(select(PipelineRun)).one().started_at
    assert stored.tzinfo is not None
    assert stored == started
    assert stored.utcoffset() == dt.timedelta(0)


def test_naive_times_are_refused(ctx: AppContext) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        with ctx.transaction() as session:
            session.add(PipelineRun(step="poll", started_at=dt.datetime(2026, 1, 1), status="ok", summary={}))


def test_upgrading_past_0012_marks_every_day_seeds_were_counted_on(empty_ctx: AppContext) -> None:
    """Seeds' stored days were written when every run counted them whole; from 0012 on they are read
    back unless marked, so each is marked once: the next detection counts it under the new rule. So
    is a day whose cluster rows were written before 0011 and keep no outlets."""
    url = empty_ctx.settings.resolved_database_url
    migrate.upgrade(url, "0011_count_outlets")
    days = [dt.date(2026, 3, 1), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
    rows = [
        (days[0], "narrative", "a"),
        (days[2], "narrative", "a"),
        (dt.date(2026, 3, 2), "cluster", "a"),
        (days[1], "cluster", None),
    ]
    with empty_ctx.engine.begin() as conn:
        for day, kind, outlets in rows:
            conn.execute(
                text(
                    "INSERT INTO daily_counts (day, subject_kind, subject_id, dimension, dimension_value,"
                    " n_articles, n_stories, n_outlets, outlets)"
                    " VALUES (:day, :kind, 's', 'all', 'all', 1, 1, 1, :outlets)"
                ),
                {"day": day, "kind": kind, "outlets": outlets},
            )
    migrate.upgrade(url)
    with empty_ctx.engine.begin() as conn:
        marked = sorted(conn.execute(text("SELECT day FROM count_changes")).scalars())
    assert [dt.date.fromisoformat(str(day)) for day in marked] == days
