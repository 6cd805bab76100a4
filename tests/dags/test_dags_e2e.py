"""ingest -> process -> daily through Airflow's ``dag.test()``: feeds served on loopback, a temporary
SQL store, Airflow's own SQLite metadata DB; the report appears.

Everything Airflow runs in subprocesses with their own AIRFLOW_HOME and NARRWATCH_* environment; the
three fixture feeds (tests/dags/fixtures/e2e, written for this test) carry English items of
2026-03-09, seven of which voice the seed narrative `nato-aggressor-balkans`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article, Match, PipelineRun

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures") / "e2e"
BIN = Path(sys.executable).parent
SEED = "nato-aggressor-balkans"
OUTLETS = ("herald", "courier", "wire")

EnvFactory = Callable[..., dict[str, str]]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def feed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(FIXTURES)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, f"{args[:3]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def failure_lines(output: str) -> str:
    """The log lines around task failures: what to read when a run fails."""
    lines = output.splitlines()
    marks = [i for i, line in enumerate(lines) if "Traceback" in line or "error" in line.lower()]
    shown = sorted({j for i in marks[:5] for j in range(i, min(i + 40, len(lines)))})
    return "\n".join(lines[j] for j in shown)[-8000:]


def run_dags(
    tmp_path: Path, feed_server: str, airflow_env: EnvFactory, model_cache_dir: Path, narratives_dir: Path
) -> tuple[dict[str, Any], str, Settings]:
    """ingest -> process -> daily under dag.test(); (states per DAG, Airflow's output, settings)."""
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
    env = airflow_env(
        tmp_path,
        NARRWATCH_FEEDS_FILE=str(feeds_file),
        NARRWATCH_NARRATIVES_DIR=str(narratives_dir),
        NARRWATCH_MODELS_DIR=str(model_cache_dir),
        NARRWATCH_ALLOW_PRIVATE_NETWORKS="true",
        NARRWATCH_FETCH_PER_HOST_DELAY_S="0",
        # a failing task fails the run at once instead of waiting out the retry delays
        NARRWATCH_TASK_RETRIES="0",
    )
    settings = Settings(
        data_dir=tmp_path / "var",
        feeds_file=feeds_file,
        narratives_dir=narratives_dir,
        _env_file=None,
    )

    run([str(BIN / "narrwatch"), "db", "upgrade"], env, tmp_path)
    run([str(BIN / "airflow"), "db", "migrate"], env, tmp_path)
    run([str(BIN / "narrwatch"), "schedule", "pools", "--out", str(tmp_path / "pools.json")], env, tmp_path)
    run([str(BIN / "airflow"), "pools", "import", str(tmp_path / "pools.json")], env, tmp_path)
    output = run(
        [
            sys.executable,
            str(Path(__file__).with_name("e2e_dagtest.py")),
            str(REPO / "dags"),
            "narrwatch_ingest_e2e",
        ],
        env,
        tmp_path,
        timeout=300,
    )
    line = next(line for line in output.splitlines() if line.startswith("E2E_RESULT "))
    return json.loads(line.removeprefix("E2E_RESULT ")), output, settings


def stored(settings: Settings) -> tuple[int, int, dict[str, str], dict[str, Any]]:
    """(articles, matches of SEED, last status per step, last match run's summary)."""
    ctx = AppContext.from_settings(settings)
    try:
        with ctx.transaction() as session:
            articles = session.scalar(select(func.count()).select_from(Article)) or 0
            matched = session.scalar(
                select(func.count()).select_from(Match).where(Match.narrative_id == SEED)
            )
            rows = session.execute(
                select(PipelineRun.step, PipelineRun.status, PipelineRun.summary).order_by(PipelineRun.id)
            ).all()
    finally:
        ctx.close()
    steps = {step: status for step, status, _ in rows}
    match_summary = next((summary for step, _, summary in reversed(rows) if step == "match"), {})
    return articles, matched or 0, steps, match_summary


@pytest.mark.long
def test_ingest_process_daily_with_dag_test(
    tmp_path: Path, feed_server: str, airflow_env: EnvFactory, model_cache_dir: Path
) -> None:
    result, output, settings = run_dags(
        tmp_path, feed_server, airflow_env, model_cache_dir, REPO / "narratives"
    )
    assert result["import_errors"] == {}
    for dag_id in ("narrwatch_ingest_e2e", "narrwatch_process", "narrwatch_daily"):
        assert dag_id in result, f"{dag_id} did not run: {result}"
        states = result[dag_id]
        assert states["state"] == "success" and set(states["tasks"].values()) == {"success"}, (
            f"{states}\n{failure_lines(output)}"
        )
    assert set(result["narrwatch_ingest_e2e"]["tasks"]) == {"poll[0]", "poll[1]", "publish"}

    articles, matched, steps, _ = stored(settings)
    assert articles == 10 and matched >= 5
    for step in ("poll", "embed", "match", "cluster", "detect", "report"):
        assert steps.get(step) == "ok", steps

    reports = sorted(settings.resolved_reports_dir.rglob("*.html"))
    assert reports, f"no report under {settings.resolved_reports_dir}"
    assert any("2026-03-09" in str(path) for path in reports), reports


@pytest.mark.long
def test_a_bad_seed_file_fails_the_match_task_after_matching_the_other_seeds(
    tmp_path: Path, feed_server: str, airflow_env: EnvFactory, model_cache_dir: Path
) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(REPO / "narratives", seeds)
    (seeds / "broken.yaml").write_text("id: broken\n  title: x\n", encoding="utf-8")
    result, output, settings = run_dags(tmp_path, feed_server, airflow_env, model_cache_dir, seeds)

    assert result["import_errors"] == {}
    process = result["narrwatch_process"]
    assert process["state"] == "failed", process
    assert process["tasks"]["embed"] == "success" and process["tasks"]["match"] == "failed", process
    articles, matched, steps, match_summary = stored(settings)
    assert articles == 10 and matched >= 5
    assert steps["match"] == "failed"
    assert [Path(line.split(":")[0]).name for line in match_summary["skipped_seed_files"]] == ["broken.yaml"]
