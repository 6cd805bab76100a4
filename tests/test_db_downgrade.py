"""`narrwatch db downgrade`: one step back, refused when the step would drop stored rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import inspect

from narrwatch.db.downgrade import DowngradeRefused, downgrade_one_step, plan_downgrade
from narrwatch.db.migrate import upgrade
from narrwatch.db.models import Feed, RisingFlag
from narrwatch.db.session import make_engine, make_session_factory, transaction


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_downgrade_goes_one_step_at_a_time_and_refuses_to_drop_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    before = tables(url)
    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        session.add(Feed(id="f1", outlet="o", name="n", url="https://o.test/rss", country="RS"))
    engine.dispose()

    # Down to the first migration one revision per call (later ones drop no rows here: their
    # tables are empty), then the initial schema's downgrade would drop the stored feed.
    steps = []
    while (step := plan_downgrade(url)).target is not None:
        assert step.rows_lost == {}
        done = downgrade_one_step(url)
        assert (done.current, done.target) == (step.current, step.target)
        steps.append(step.current)
        assert plan_downgrade(url).current == step.target  # exactly one revision back
    assert len(steps) >= 1
    step = plan_downgrade(url)
    assert step.target is None and step.rows_lost == {"feeds": 1}
    first_schema = tables(url)
    assert first_schema < before  # later migrations' tables went with their steps
    with pytest.raises(DowngradeRefused, match=r"would drop tables that hold data \(feeds 1\)"):
        downgrade_one_step(url)
    assert tables(url) == first_schema  # nothing changed

    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        session.query(Feed).delete()
    engine.dispose()
    downgrade_one_step(url)
    assert tables(url) == set()
    with pytest.raises(DowngradeRefused, match="nothing to downgrade"):
        downgrade_one_step(url)


def test_a_later_step_refuses_while_a_table_it_changes_holds_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    while plan_downgrade(url).current != "0002_rising_runs":
        downgrade_one_step(url)
    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        session.add(
            RisingFlag(
                day=dt.date(2026, 3, 9),
                subject_kind="narrative",
                subject_id="nato-aggressor-balkans",
                dimension="all",
                dimension_value="all",
                statistic="test",
                rate_ratio=3.0,
                p_value=0.001,
                count=9,
                baseline=3.0,
                n_outlets=5,
                n_articles=9,
                created_at=dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
            )
        )
    engine.dispose()
    # 0002's downgrade drops columns of rising_flags: the flag's window and novelty would be lost
    with pytest.raises(DowngradeRefused, match=r"\(rising_flags 1\)"):
        downgrade_one_step(url)
    assert plan_downgrade(url).current == "0002_rising_runs"


def test_the_cli_refuses_with_exit_2_and_names_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from typer.testing import CliRunner

    cli = importlib.import_module("narrwatch.cli.main")  # the package's `main` is the entry function
    from narrwatch.config import get_settings

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    while plan_downgrade(url).target is not None:  # to the initial schema, which drops every table
        downgrade_one_step(url)
    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        session.add(Feed(id="f1", outlet="o", name="n", url="https://o.test/rss", country="RS"))
    engine.dispose()
    monkeypatch.setenv("NARRWATCH_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["db", "downgrade"])
    finally:
        get_settings.cache_clear()
    assert isinstance(result.exception, cli.UsageError)  # main() prints "error: ..." and exits 2
    assert "(feeds 1)" in str(result.exception) and "nothing was changed" in str(result.exception)
