"""The whole pipeline on the bundled demo, twice: the rise is flagged, the report names it, and the
second run duplicates nothing (the same check `make demo` twice makes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from narrwatch.config import Settings
from narrwatch.db.session import make_engine
from narrwatch.ops.demo import DEMO_START, load_demo_data, run_demo_with

pytestmark = pytest.mark.db

RISING_SEED = "west-ignores-serbian-sovereignty"


def _empty_database(url: str) -> None:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def test_demo_flags_the_rise_and_a_rerun_duplicates_nothing(settings: Settings, tmp_path: Path) -> None:
    demo_settings = settings.model_copy(update={"feeds_file": tmp_path / "demo-feeds.yaml"})
    _empty_database(demo_settings.resolved_database_url)

    first = run_demo_with(demo_settings, echo=lambda _line: None)

    data = load_demo_data()
    assert first.days == data.n_days
    last_day = DEMO_START.toordinal() + data.n_days - 1
    overall = [f for f in first.flags if f["subject_id"] == RISING_SEED and f["dimension"] == "all"]
    assert overall, f"no overall flag for {RISING_SEED} on the last day: {first.flags}"
    flag = overall[0]
    assert flag["count"] > flag["baseline"]
    assert flag["n_outlets"] >= 5
    assert first.counts["articles"] >= 150
    assert first.counts["matches"] > 0

    html = first.report_html.read_text(encoding="utf-8")
    assert first.report_html.parent.name == str(DEMO_START.fromordinal(last_day))
    assert RISING_SEED in html or "sovereignty" in html.lower()

    second = run_demo_with(demo_settings, echo=lambda _line: None)
    for table in ("articles", "sightings", "passages", "matches", "rising_flags"):
        assert second.counts[table] == first.counts[table], table
    assert second.flags == first.flags
