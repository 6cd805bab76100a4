"""The DAG folder as the dag-processor sees it: no import errors, the four DAG kinds, every task with
retries and a timeout, no heavy imports, fast parsing, and schedules that follow the configuration.

Airflow runs only in subprocesses (tests/dags/dagbag_probe.py) with their own AIRFLOW_HOME, so its
process-wide configuration never leaks into other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from narrwatch.ops.schedule import INGEST_DAG_PREFIX
from narrwatch.steps.poll.registry import load_feeds_file

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("dagbag_probe.py")
FEEDS_FILE = REPO / "feeds.yaml"
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY = ("torch", "sentence_transformers", "qdrant_client", "onnxruntime", "transformers")
VECTOR_TASKS = {"embed", "match", "cluster", "retention", "reconcile", "recompute"}

EnvFactory = Callable[..., dict[str, str]]


def probe(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(PROBE), str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("DAGBAG_PROBE "))
    return json.loads(line.removeprefix("DAGBAG_PROBE "))


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory, airflow_env: EnvFactory) -> dict[str, Any]:
    return probe(airflow_env(tmp_path_factory.mktemp("dagbag")))


def test_no_import_errors_and_the_four_dag_kinds(bag: dict[str, Any]) -> None:
    assert bag["import_errors"] == {}
    groups = load_feeds_file(FEEDS_FILE).groups
    expected = {"narrwatch_process", "narrwatch_daily", "narrwatch_maintenance"}
    expected |= {f"{INGEST_DAG_PREFIX}{name}" for name in groups}
    assert set(bag["dags"]) == expected
    for dag_id, dag in bag["dags"].items():
        assert dag["doc_md"] and len(dag["doc_md"]) > 200, f"{dag_id} is not documented"
        assert dag["catchup"] is False, dag_id
        assert dag["max_active_runs"] == 1, dag_id


def test_dag_files_import_no_heavy_library(bag: dict[str, Any]) -> None:
    assert bag["heavy_modules"] == []


def test_every_task_retries_with_backoff_and_has_a_timeout(bag: dict[str, Any]) -> None:
    n_tasks = 0
    for dag_id, dag in bag["dags"].items():
        for task_id, task in dag["tasks"].items():
            n_tasks += 1
            where = f"{dag_id}.{task_id}"
            assert task["retries"] >= 1, where
            assert task["retry_exponential_backoff"] > 0, where
            assert task["max_retry_delay_s"], where
            assert task["execution_timeout_s"] and task["execution_timeout_s"] > 0, where
    assert n_tasks >= 9 + 2 * (len(bag["dags"]) - 3)


def test_pools_asset_and_fan_out(bag: dict[str, Any]) -> None:
    dags = bag["dags"]
    ingest_ids = [dag_id for dag_id in dags if dag_id.startswith(INGEST_DAG_PREFIX)]
    for dag_id in ingest_ids:
        tasks = dags[dag_id]["tasks"]
        assert tasks["poll"]["mapped"] is True, "poll fans out over shards"
        assert tasks["poll"]["pool"] == "narrwatch_feed_http"
        assert tasks["poll"]["downstream"] == ["publish"]
        assert tasks["publish"]["outlets"] == ["narrwatch_new_articles"]
    process = dags["narrwatch_process"]
    assert process["schedule"]["assets"] == ["narrwatch_new_articles"]
    assert process["schedule"]["cron"] == "0 * * * *"
    for dag in dags.values():
        for task_id, task in dag["tasks"].items():
            if task_id in VECTOR_TASKS:
                assert task["pool"] == "narrwatch_vectors", task_id
    assert [dags["narrwatch_process"]["tasks"][t]["downstream"] for t in ("embed", "match", "cluster")] == [
        ["match"],
        ["cluster"],
        [],
    ]
    assert dags["narrwatch_daily"]["schedule"] == {
        "timetable": "CronDataIntervalTimetable",
        "cron": "0 6 * * *",
        "assets": [],
    }
    assert sorted(dags["narrwatch_daily"]["tasks"]["report"]["downstream"]) == [
        "freshness_watchdog",
        "notify",
    ]


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda path: path.name)
def test_each_dag_file_parses_fast_in_a_fresh_process(
    dag_file: Path, tmp_path: Path, airflow_env: EnvFactory
) -> None:
    # Airflow itself is imported first: the dag-processor has it loaded before it parses a file, so
    # the budget is for what the file adds (narrwatch.ops.schedule, settings, feeds.yaml).
    script = (
        "import json, runpy, sys, time\n"
        "import airflow.sdk\n"
        "from airflow.sdk import dag\n"
        "started = time.perf_counter()\n"
        "runpy.run_path(sys.argv[1])\n"
        "elapsed = time.perf_counter() - started\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('PARSE ' + json.dumps({'seconds': elapsed, 'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(dag_file)],
        capture_output=True,
        text=True,
        env=airflow_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("PARSE "))
    parsed = json.loads(line.removeprefix("PARSE "))
    assert parsed["heavy"] == []
    assert parsed["seconds"] < 2.0


def test_changing_configuration_changes_the_schedules_without_code(
    tmp_path: Path, airflow_env: EnvFactory
) -> None:
    document = yaml.safe_load(FEEDS_FILE.read_text(encoding="utf-8"))
    group = sorted(document["groups"])[0]
    document["groups"][group]["schedule"] = "7 */3 * * *"
    feeds_copy = tmp_path / "feeds.yaml"
    feeds_copy.write_text(yaml.safe_dump(document), encoding="utf-8")

    changed = probe(
        airflow_env(
            tmp_path,
            NARRWATCH_FEEDS_FILE=str(feeds_copy),
            NARRWATCH_DAILY_REPORT_TIME="07:45",
            NARRWATCH_PROCESS_SCHEDULE="",
            NARRWATCH_TASK_RETRIES="5",
        )
    )
    assert changed["import_errors"] == {}
    dags = changed["dags"]
    assert dags[f"{INGEST_DAG_PREFIX}{group}"]["schedule"]["cron"] == "7 */3 * * *"
    assert dags["narrwatch_daily"]["schedule"]["cron"] == "45 7 * * *"
    assert dags["narrwatch_process"]["schedule"] == {
        "timetable": "AssetTriggeredTimetable",
        "cron": None,
        "assets": ["narrwatch_new_articles"],
    }
    assert {task["retries"] for dag in dags.values() for task in dag["tasks"].values()} == {5}


def test_a_bad_group_schedule_stops_only_ingest_with_an_error_naming_file_and_group(
    tmp_path: Path, airflow_env: EnvFactory
) -> None:
    document = yaml.safe_load(FEEDS_FILE.read_text(encoding="utf-8"))
    group = sorted(document["groups"])[0]
    document["groups"][group]["schedule"] = "every 15 minutes"
    feeds_copy = tmp_path / "broken-feeds.yaml"
    feeds_copy.write_text(yaml.safe_dump(document), encoding="utf-8")

    broken = probe(airflow_env(tmp_path, NARRWATCH_FEEDS_FILE=str(feeds_copy)))
    assert [Path(name).name for name in broken["import_errors"]] == ["narrwatch_ingest.py"]
    errors = "\n".join(broken["import_errors"].values())
    assert f"{feeds_copy}: groups.{group}.schedule: 'every 15 minutes' is not a cron expression" in errors
    # only ingest depends on feeds.yaml: processing, the daily report and maintenance go on
    assert set(broken["dags"]) == {"narrwatch_process", "narrwatch_daily", "narrwatch_maintenance"}


def test_generic_top_level_packages_come_from_this_repository() -> None:
    import db
    import embeddings

    for module in (db, embeddings):
        assert Path(module.__file__ or "").resolve().is_relative_to(REPO), module.__name__
