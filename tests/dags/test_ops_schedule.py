"""narrwatch.ops.schedule: the DAG knobs from settings and feeds.yaml, and the run-time helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from narrwatch.config import Settings
from narrwatch.ops import schedule
from narrwatch.ops.schedule import ScheduleError

FIXTURE_FEEDS = Path(__file__).with_name("fixtures") / "feeds.yaml"


def settings(**values: object) -> Settings:
    return Settings(**{"feeds_file": FIXTURE_FEEDS, "_env_file": None, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expression", ["*/15 * * * *", "0 6 * * *", "30 2 * * 0", "0 9-17 * * MON-FRI", "@hourly", "@daily"]
)
def test_check_cron_accepts_cron_and_presets(expression: str) -> None:
    assert schedule.check_cron(f" {expression} ", "here") == expression


@pytest.mark.parametrize("expression", ["every 15 minutes", "*/15 * * *", "* * * * * *", "@often", ""])
def test_check_cron_names_the_source_of_a_bad_expression(expression: str) -> None:
    with pytest.raises(
        ScheduleError, match=r"^feeds\.yaml: groups\.x\.schedule: .* is not a cron expression"
    ):
        schedule.check_cron(expression, "feeds.yaml: groups.x.schedule")


def test_ingest_groups_take_their_schedule_from_feeds_yaml_or_the_default() -> None:
    groups = schedule.ingest_groups(settings(ingest_default_schedule="5 * * * *"))
    assert [(g.dag_id, g.schedule, g.n_feeds) for g in groups] == [
        ("narrwatch_ingest_balkans", "*/20 * * * *", 2),
        ("narrwatch_ingest_state-media", "5 * * * *", 1),
    ]
    assert groups[0].description == "Regional outlets, polled often."


def test_a_bad_default_schedule_names_the_setting() -> None:
    with pytest.raises(ScheduleError, match="NARRWATCH_INGEST_DEFAULT_SCHEDULE: 'hourly'"):
        schedule.ingest_groups(settings(ingest_default_schedule="hourly"))


def test_a_group_name_that_cannot_be_a_dag_id_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(FIXTURE_FEEDS.read_text(encoding="utf-8"))
    document["groups"]["state media"] = document["groups"].pop("state-media")
    document["feeds"][2]["group"] = "state media"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"feeds\.yaml: group 'state media': a group name may hold"):
        schedule.ingest_groups(settings(feeds_file=feeds))


def test_plan_follows_the_settings() -> None:
    plan = schedule.build_plan(
        settings(
            daily_report_time="07:45",
            process_schedule="",
            maintenance_schedule="@weekly",
            pool_feed_http_slots=6,
            task_retries=5,
            task_retry_delay_s=30,
            task_retry_exponential_backoff=3.0,
            task_max_retry_delay_s=600,
            timeout_embed_s=120,
        )
    )
    assert plan.daily_cron == "45 7 * * *"
    assert plan.process_schedule is None
    assert plan.maintenance_schedule == "@weekly"
    assert plan.feed_pool.slots == 6
    assert plan.timeout("embed") == dt.timedelta(minutes=2)
    assert set(plan.timeouts) == {
        "poll",
        "embed",
        "match",
        "cluster",
        "detect",
        "report",
        "maintenance",
        "check",
    }
    assert plan.task_defaults.as_default_args() == {
        "owner": "narrwatch",
        "retries": 5,
        "retry_delay": dt.timedelta(seconds=30),
        "retry_exponential_backoff": 3.0,
        "max_retry_delay": dt.timedelta(minutes=10),
    }


def test_vector_pool_has_one_slot_in_qdrant_local_mode() -> None:
    local = schedule.build_plan(settings(pool_vectors_slots=4))
    server = schedule.build_plan(
        settings(pool_vectors_slots=4, qdrant_url="http://qdrant:6333", qdrant_api_key="k")
    )
    assert (local.vector_pool.slots, server.vector_pool.slots) == (1, 4)
    assert server.pools_json()["narrwatch_vectors"] == {
        "slots": 4,
        "description": "narrwatch: tasks that open the vector store or load the embedding model",
        "include_deferred": False,
    }


def test_bad_settings_schedules_name_the_variable() -> None:
    with pytest.raises(ScheduleError, match="NARRWATCH_MAINTENANCE_SCHEDULE"):
        schedule.build_plan(settings(maintenance_schedule="nightly"))
    with pytest.raises(ScheduleError, match="NARRWATCH_PROCESS_SCHEDULE"):
        schedule.build_plan(settings(process_schedule="0 * * *"))
    with pytest.raises(ValueError, match="daily_report_time"):
        settings(daily_report_time="25:00")


def test_logical_now_prefers_the_data_interval_end_and_falls_back_to_run_after() -> None:
    belgrade = ZoneInfo("Europe/Belgrade")
    end = dt.datetime(2026, 3, 10, 7, 0, tzinfo=belgrade)
    assert schedule.logical_now({"data_interval_end": end}) == dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
    assert schedule.logical_now({"data_interval_end": end}).tzinfo is dt.UTC
    run = SimpleNamespace(run_after=dt.datetime(2026, 3, 10, 5, 31, tzinfo=dt.UTC))
    assert schedule.logical_now({"dag_run": run}) == run.run_after
    with pytest.raises(ValueError, match="naive"):
        schedule.logical_now({"data_interval_end": dt.datetime(2026, 3, 10)})


@pytest.mark.parametrize(
    ("reference", "day", "now"),
    [
        ("2026-03-10T06:00", "2026-03-09", "2026-03-10T06:00"),  # a scheduled run: interval end
        ("2026-03-10T14:20", "2026-03-09", "2026-03-10T06:00"),  # triggered by hand in the afternoon
        ("2026-03-10T05:59", "2026-03-08", "2026-03-09T06:00"),  # before the report time
    ],
)
def test_daily_run_reports_the_day_before_the_last_report_time(reference: str, day: str, now: str) -> None:
    context = {"data_interval_end": dt.datetime.fromisoformat(reference).replace(tzinfo=dt.UTC)}
    assert schedule.daily_run(dt.time(6, 0), context) == (
        dt.date.fromisoformat(day),
        dt.datetime.fromisoformat(now).replace(tzinfo=dt.UTC),
    )


@given(
    reference=st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2100, 1, 1)),
    report_time=st.times(),
)
def test_daily_run_properties(reference: dt.datetime, report_time: dt.time) -> None:
    reference = reference.replace(tzinfo=dt.UTC)
    day, now = schedule.daily_run(report_time, {"data_interval_end": reference})
    assert now <= reference < now + dt.timedelta(days=1)
    assert now.timetz().replace(tzinfo=None) == report_time
    assert day == now.date() - dt.timedelta(days=1)  # a complete UTC day, ended before `now`


def test_match_and_cluster_look_back_their_window_from_now() -> None:
    from narrwatch.config import Settings
    from narrwatch.pipeline import processing_window

    now = dt.datetime(2026, 3, 10, 5, 30, tzinfo=dt.UTC)
    settings = Settings(match_window_days=2, _env_file=None)  # type: ignore[call-arg]
    assert processing_window(settings, now) == (dt.datetime(2026, 3, 8, 5, 30, tzinfo=dt.UTC), now)


def test_add_poll_summaries_merges_the_shards() -> None:
    total = schedule.add_poll_summaries(
        [
            {
                "feeds_polled": 2,
                "new_articles": 3,
                "failures_by_kind": {"http": 1},
                "failures": {"a": "http: 503"},
                "unknown_feed_ids": ["x"],
                "duration_s": 1.5,
            },
            {
                "feeds_polled": 1,
                "new_articles": 0,
                "failures_by_kind": {"http": 1, "parse": 1},
                "failures": {"b": "parse: not a feed"},
                "duration_s": 0.5,
            },
        ]
    )
    assert total == {
        "shards": 2,
        "feeds_polled": 3,
        "new_articles": 3,
        "failures_by_kind": {"http": 2, "parse": 1},
        "failures": {"a": "http: 503", "b": "parse: not a feed"},
        "duration_s": 2.0,
    }
