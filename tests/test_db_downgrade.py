"""`narrwatch db downgrade`: one step back, refused when the step would drop stored rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from narrwatch.db.downgrade import DowngradeRefused, downgrade_one_step, plan_downgrade
from narrwatch.db.migrate import upgrade
from narrwatch.db.models import Feed
from narrwatch.db.session import make_engine, make_session_factory, transaction


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_downgrade_refuses_to_drop_data_and_goes_one_step_on_an_empty_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    before = tables(url)
    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        session.add(Feed(id="f1", outlet="o", name="n", url="https://o.test/rss", country="RS"))
    engine.dispose()

    step = plan_downgrade(url)
    assert step.target is None and step.rows_lost == {"feeds": 1}
    with pytest.raises(DowngradeRefused, match=r"would drop tables that hold data \(feeds 1\)"):
        downgrade_one_step(url)
    assert tables(url) == before  # nothing changed

    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        session.query(Feed).delete()
    engine.dispose()
    done = downgrade_one_step(url)
    assert (done.current, done.target) == (step.current, None)
    assert tables(url) == set()
    with pytest.raises(DowngradeRefused, match="nothing to downgrade"):
        downgrade_one_step(url)


def test_the_cli_refuses_with_exit_2_and_names_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from typer.testing import CliRunner

    cli = importlib.import_module("narrwatch.cli.main")  # the package's `main` is the entry function
    from narrwatch.config import get_settings

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
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
