"""ingest -> process -> daily under Airflow's CeleryExecutor, with a real Celery worker process.

The production stack (docker-compose.yml) spreads tasks over Celery workers: Redis as the broker,
PostgreSQL as Airflow's metadata DB and Celery's result backend, an ``ingest`` and a ``processing``
queue. This test runs the same arrangement on this machine's Redis (127.0.0.1:6379) and PostgreSQL
(127.0.0.1:5432): an ``airflow api-server`` (task processes report through its execution API), an
``airflow celery worker`` listening on both queues, and ``dag.test(use_executor=True)``, which hands
every task to the CeleryExecutor instead of running it in-process. Queue names carry a random
suffix so runs sharing the broker never take each other's work. Without Redis or PostgreSQL the test
fails: .ci/run starts both and runs it (`make test-celery`); `make test` leaves it out so a
machine without those servers can run the rest.

    NARRWATCH_TEST_REDIS_URL (default redis://127.0.0.1:6379/0)
    NARRWATCH_TEST_PG_SERVER (default postgres@127.0.0.1:5432)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, func, select, text
from test_dags_e2e import BIN, OUTLETS, REPO, SEED, EnvFactory, failure_lines, feed_server, run  # noqa: F401

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article, Match, PipelineRun

pytestmark = pytest.mark.celery

REDIS_URL = os.environ.get("NARRWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_SERVER = os.environ.get("NARRWATCH_TEST_PG_SERVER", "postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def airflow_database() -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata and Celery's results, dropped afterwards."""
    name = f"narrwatch_celery_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"postgresql+psycopg://{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the server exited:\n{log.read_text()[-4000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        args, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a server and the processes it forked (its own session), then reap it."""
    if process.poll() is None:
        import signal

        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_ingest_process_daily_under_the_celery_executor(
    tmp_path: Path,
    feed_server: str,  # noqa: F811 - the fixture imported from test_dags_e2e
    airflow_env: EnvFactory,
    model_cache_dir: Path,
    airflow_database: str,
) -> None:
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(
        yaml.safe_dump(
            {
                "groups": {"e2e": {"schedule": "*/15 * * * *", "description": "loopback fixtures"}},
                "feeds": [
                    {
                        "id": f"fixture-{outlet}",
                        "name": f"Fixture {outlet.title()}",
                        "country": "RS",
                        "languages": ["en"],
                        "url": f"{feed_server}/{outlet}.xml",
                        "group": "e2e",
                    }
                    for outlet in OUTLETS
                ],
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    suffix = uuid.uuid4().hex[:8]
    queues = (f"ingest-{suffix}", f"processing-{suffix}")
    env = airflow_env(
        tmp_path,
        NARRWATCH_FEEDS_FILE=str(feeds_file),
        NARRWATCH_MODELS_DIR=str(model_cache_dir),
        NARRWATCH_ALLOW_PRIVATE_NETWORKS="true",
        NARRWATCH_FETCH_PER_HOST_DELAY_S="0",
        NARRWATCH_TASK_RETRIES="0",
        NARRWATCH_QUEUE_INGEST=queues[0],
        NARRWATCH_QUEUE_PROCESSING=queues[1],
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg://{airflow_database}",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=f"postgresql+psycopg_async://{airflow_database}",
        AIRFLOW__CELERY__BROKER_URL=REDIS_URL,
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql+psycopg://{airflow_database}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex,
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
    )
    settings = Settings(
        data_dir=tmp_path / "var",
        feeds_file=feeds_file,
        narratives_dir=REPO / "narratives",
        _env_file=None,
    )
    run([str(BIN / "narrwatch"), "db", "upgrade"], env, tmp_path)
    run([str(BIN / "airflow"), "db", "migrate"], env, tmp_path, timeout=300)
    run([str(BIN / "narrwatch"), "schedule", "pools", "--out", str(tmp_path / "pools.json")], env, tmp_path)
    run([str(BIN / "airflow"), "pools", "import", str(tmp_path / "pools.json")], env, tmp_path)

    api_log, worker_log = tmp_path / "api-server.log", tmp_path / "celery-worker.log"
    api = start(
        [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env,
        tmp_path,
        api_log,
    )
    worker = start(
        [str(BIN / "airflow"), "celery", "worker", "--queues", ",".join(queues), "--concurrency", "2"],
        env,
        tmp_path,
        worker_log,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/version", api, api_log)
        output = run(
            [
                sys.executable,
                str(Path(__file__).with_name("e2e_dagtest.py")),
                str(REPO / "dags"),
                "narrwatch_ingest_e2e",
                "--use-executor",
            ],
            env,
            tmp_path,
            timeout=600,
        )
    finally:
        stop(worker)
        stop(api)
    line = next(line for line in output.splitlines() if line.startswith("E2E_RESULT "))
    result = json.loads(line.removeprefix("E2E_RESULT "))
    assert result["import_errors"] == {}
    for dag_id in ("narrwatch_ingest_e2e", "narrwatch_process", "narrwatch_daily"):
        assert dag_id in result, f"{dag_id} did not run: {result}"
        states = result[dag_id]
        assert states["state"] == "success" and set(states["tasks"].values()) == {"success"}, (
            f"{states}\n{failure_lines(output)}\n--- worker ---\n{worker_log.read_text()[-6000:]}"
        )
    n_tasks = sum(
        len(result[d]["tasks"]) for d in ("narrwatch_ingest_e2e", "narrwatch_process", "narrwatch_daily")
    )

    # The Celery worker ran them: every task left a result in Celery's backend (PostgreSQL).
    backend = create_engine(f"postgresql+psycopg://{airflow_database}")
    try:
        with backend.connect() as connection:
            done = connection.execute(
                text("SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")
            ).scalar_one()
    finally:
        backend.dispose()
    assert done >= n_tasks, f"{done} Celery results for {n_tasks} tasks"

    ctx = AppContext.from_settings(settings)
    try:
        with ctx.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Article)) == 10
            matched = session.scalar(
                select(func.count()).select_from(Match).where(Match.narrative_id == SEED)
            )
            assert matched is not None and matched >= 5
            steps = dict(session.execute(select(PipelineRun.step, PipelineRun.status)).all())
    finally:
        ctx.close()
    for step in ("poll", "embed", "match", "cluster", "detect", "report"):
        assert steps.get(step) == "ok", steps
    assert any("2026-03-09" in str(path) for path in settings.resolved_reports_dir.rglob("*.html"))
