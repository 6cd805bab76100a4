"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

The compose file is read as YAML (anchors resolved): the production services exist and are wired as
documented, every `narrwatch ...` command a service runs exists in the CLI with the options it
passes, every NARRWATCH_ variable is a real setting, every Airflow option is a real option, and
nothing is published beyond 127.0.0.1. `docker compose config` runs where a Docker client with the
compose plugin exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from narrwatch.config import Settings
from narrwatch.web.settings import WebSettings

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SETTINGS_ENV = {f"NARRWATCH_{name.upper()}" for name in Settings.model_fields} | {
    f"NARRWATCH_WEB_{name.upper()}" for name in WebSettings.model_fields
}
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
SECRETS = (
    "APP_DB_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "QDRANT_API_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_FERNET_KEY",
    "REDIS_PASSWORD",
)
CELERY_WORKERS = {
    "airflow-worker-ingest": "NARRWATCH_QUEUE_INGEST",
    "airflow-worker-processing": "NARRWATCH_QUEUE_PROCESSING",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def command_line(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return shlex.join(command) if isinstance(command, list) else str(command)


def shell_commands(service: dict[str, Any]) -> list[list[str]]:
    """The simple commands a service runs, with `sh -c` scripts split on && and ;."""
    command = service.get("command")
    if command is None:
        return []
    words = command if isinstance(command, list) else shlex.split(command)
    if words[:2] != ["sh", "-c"]:
        return [list(words)]
    lexer = shlex.shlex(" ".join(words[2:]), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_production_services_exist(services: dict[str, Any]) -> None:
    expected = {"narrwatch-db", "airflow-db", "qdrant", "migrate", "airflow-init", *AIRFLOW_SERVICES}
    assert expected <= set(services)


def test_airflow_components_run_from_the_project_image(services: dict[str, Any]) -> None:
    for name, subcommand in AIRFLOW_SERVICES.items():
        service = services[name]
        assert service["build"] in (".", {"context": "."}), name
        assert service["command"] == ["airflow", subcommand], name
        assert service.get("healthcheck"), f"{name} has no healthcheck"
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert (REPO / "Dockerfile").is_file()


def test_celery_executor_with_a_redis_broker_a_postgresql_backend_and_a_worker_per_queue(
    services: dict[str, Any],
) -> None:
    scheduler = environment(services["airflow-scheduler"])
    assert scheduler["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert scheduler["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:${REDIS_PASSWORD")
    assert scheduler["AIRFLOW__CELERY__BROKER_URL"].endswith("@redis:6379/0")
    assert scheduler["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://airflow:")
    assert "@airflow-db:" in scheduler["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert "ports" not in services["redis"], "the broker must not be published"
    assert "--requirepass" in services["redis"]["command"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    defaults = {
        name: Settings.model_fields[name.removeprefix("NARRWATCH_").lower()].default
        for name in CELERY_WORKERS.values()
    }
    for name, queue_setting in CELERY_WORKERS.items():
        worker = services[name]
        assert worker["build"] in (".", {"context": "."}), name
        command = worker["command"]
        assert command[:3] == ["airflow", "celery", "worker"], name
        queues = command[command.index("--queues") + 1]
        # The worker listens on the queue the DAGs send to: the same setting, the same default.
        assert queues == f"${{{queue_setting}:-{defaults[queue_setting]}}}", name
        assert worker.get("healthcheck"), f"{name} has no healthcheck"
        assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_sql_store_and_airflow_metadata_are_separate_databases(services: dict[str, Any]) -> None:
    scheduler = environment(services["airflow-scheduler"])
    app_url = scheduler["NARRWATCH_DATABASE_URL"]
    airflow_url = scheduler["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@narrwatch-db:" in app_url and "@airflow-db:" in airflow_url
    assert app_url.startswith("postgresql+psycopg://")
    assert scheduler["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async://")
    assert services["narrwatch-db"]["volumes"] != services["airflow-db"]["volumes"]
    for database in ("narrwatch-db", "airflow-db"):
        assert "ports" not in services[database], f"{database} must not be published"
        assert services[database]["healthcheck"]["test"][1] == "pg_isready"


def test_qdrant_has_an_api_key_and_is_published_on_loopback_only(services: dict[str, Any]) -> None:
    qdrant = services["qdrant"]
    assert environment(qdrant)["QDRANT__SERVICE__API_KEY"].startswith("${QDRANT_API_KEY")
    scheduler = environment(services["airflow-scheduler"])
    assert scheduler["NARRWATCH_QDRANT_URL"] == "http://qdrant:6333"
    assert scheduler["NARRWATCH_QDRANT_API_KEY"].startswith("${QDRANT_API_KEY")
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host"


def test_migrate_waits_for_the_database_then_upgrades(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["depends_on"]["narrwatch-db"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    commands = [words[:3] for words in shell_commands(migrate)]
    assert commands == [["narrwatch", "db", "wait"], ["narrwatch", "db", "upgrade"]]


def test_every_narrwatch_command_exists_with_its_options(services: dict[str, Any]) -> None:
    from narrwatch.cli.main import app

    runner = CliRunner()
    seen = 0
    for name, service in services.items():
        for words in shell_commands(service):
            if not words or words[0] != "narrwatch":
                continue
            seen += 1
            path = []
            for word in words[1:]:
                if word.startswith("-"):
                    break
                path.append(word)
            result = runner.invoke(app, [*path, "--help"])
            assert result.exit_code == 0, (
                f"{name}: `narrwatch {' '.join(path)}` is no command: {result.output}"
            )
            for option in (word for word in words if word.startswith("--")):
                assert option in result.output, f"{name}: `narrwatch {' '.join(path)}` has no {option}"
    assert seen >= 3  # db wait, db upgrade, schedule pools


def test_every_narrwatch_variable_is_a_setting(compose: dict[str, Any], services: dict[str, Any]) -> None:
    used = set(compose["x-narrwatch-env"])
    for service in services.values():
        used |= {key for key in environment(service) if key.startswith("NARRWATCH_")}
    unknown = sorted(used - SETTINGS_ENV)
    assert not unknown, f"docker-compose.yml sets variables that are no setting: {unknown}"
    documented = env_example_names()
    assert not sorted(used - documented), "compose uses NARRWATCH_ variables missing in .env.example"


def test_env_example_lists_exactly_the_settings() -> None:
    in_file = {name for name in env_example_names() if name.startswith("NARRWATCH_")}
    assert not sorted(in_file - SETTINGS_ENV), ".env.example names variables that are no setting"
    missing = sorted(SETTINGS_ENV - in_file)
    assert not missing, f"settings missing in .env.example (run scripts/env_example.py): {missing}"


def test_every_interpolated_variable_is_documented() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    assert set(SECRETS) <= interpolated
    assert not sorted(interpolated - env_example_names())


def test_airflow_options_are_real_options(services: dict[str, Any], tmp_path: Path) -> None:
    options = sorted(
        {key for service in services.values() for key in environment(service) if key.startswith("AIRFLOW__")}
    )
    assert len(options) >= 10
    options.append("AIRFLOW__CORE__NO_SUCH_OPTION")  # the probe must be able to say no
    probe = (
        "import json, sys\n"
        "from airflow.configuration import conf\n"
        "known = conf.configuration_description\n"
        "bad = [o for o in json.loads(sys.argv[1])\n"
        "       if o.split('__')[2] not in known.get(o.split('__')[1], {}).get('options', {})]\n"
        "print(json.dumps(bad))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    result = subprocess.run(
        [sys.executable, "-c", probe, json.dumps([o.lower() for o in options])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["airflow__core__no_such_option"]


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
    torch_line = next(i for i, line in enumerate(lines) if "download.pytorch.org/whl/cpu" in line)
    project_line = next(i for i, line in enumerate(lines) if 'pip install ".[' in line)
    assert torch_line < project_line
    assert '"torch==2.13.0"' in lines[torch_line]


def compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.skipif(not compose_plugin(), reason="no docker client with the compose plugin here")
def test_docker_compose_config_accepts_the_file() -> None:
    env = {**os.environ, **dict.fromkeys(SECRETS, "test-secret")}
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
