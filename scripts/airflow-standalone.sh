#!/usr/bin/env bash
# `make airflow`: Airflow 3 standalone (api-server, scheduler, dag-processor, triggerer in one
# command) running narrwatch's DAGs on this machine, for trying the DAGs and small deployments.
#
#   scripts/airflow-standalone.sh            # foreground; Ctrl-C or TERM stops every component
#
# - the UI and API listen on 127.0.0.1:${AIRFLOW_PORT:-8080} only, and task processes send their
#   updates to the execution API on that same port (Airflow's default is always localhost:8080);
# - Airflow runs in a process group of its own: INT or TERM to this script stops all of it
#   (api-server, scheduler, dag-processor, triggerer and running tasks), KILL after a grace period;
# - Airflow's home (its config, logs and SQLite metadata DB) is var/airflow, while narrwatch's own
#   SQL store stays where the NARRWATCH_* settings say (default var/narrwatch.db): two databases;
# - parallelism follows the core count (2 x nproc, at least 2) instead of Airflow's 32, which would
#   start 32 worker processes;
# - the narrwatch pools are created from the settings before the scheduler starts.
# Any AIRFLOW__* or NARRWATCH_* variable already in the environment wins over these defaults.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
if [[ ! -x "$VENV/bin/airflow" ]]; then
    echo "error: $VENV/bin/airflow not found; install the project with its airflow extra first" >&2
    exit 2
fi
cd "$REPO"  # narrwatch reads .env and its relative default paths from here

# standalone starts its components as `airflow ...` subprocesses found through PATH.
export PATH="$VENV/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$REPO/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-${AIRFLOW_PORT:-8080}}"
url="http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT"
# Without this, task processes report to localhost:8080 whatever the port, and the scheduler dies.
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-$url}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-$url/execution/}"
cores="$(nproc)"
parallelism=$((cores * 2 > 2 ? cores * 2 : 2))
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-$parallelism}"
# New or edited DAG files show up within 30 s instead of the default 5 min.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"

# Absolute paths: task processes do not necessarily start in the repository.
export NARRWATCH_DATA_DIR="${NARRWATCH_DATA_DIR:-$REPO/var}"
export NARRWATCH_FEEDS_FILE="${NARRWATCH_FEEDS_FILE:-$REPO/feeds.yaml}"
export NARRWATCH_NARRATIVES_DIR="${NARRWATCH_NARRATIVES_DIR:-$REPO/narratives}"

mkdir -p "$AIRFLOW_HOME"
echo "== narrwatch SQL store: migrating"
narrwatch db upgrade
echo "== Airflow metadata DB in $AIRFLOW_HOME: migrating"
airflow db migrate >/dev/null
pools_file="$AIRFLOW_HOME/narrwatch-pools.json"
narrwatch schedule pools --out "$pools_file"
airflow pools import "$pools_file"
narrwatch schedule show

# setsid: a new session and process group led by standalone_pid, holding every component it starts,
# so one signal to the group reaches them all (signalling standalone alone left them running).
setsid airflow standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 &
standalone_pid=$!
echo "== started airflow standalone: process group $standalone_pid, parallelism $AIRFLOW__CORE__PARALLELISM, log $AIRFLOW_HOME/standalone.log"

group_alive() { kill -0 -- "-$standalone_pid" 2>/dev/null; }
stop_airflow() {
    trap - INT TERM EXIT
    if group_alive; then
        echo "== stopping Airflow (process group $standalone_pid)"
        kill -TERM -- "-$standalone_pid" 2>/dev/null || true
        for _ in $(seq 1 "${AIRFLOW_STOP_GRACE_S:-30}"); do
            group_alive || break
            sleep 1
        done
        if group_alive; then
            echo "   still running after the grace period: KILL"
            kill -KILL -- "-$standalone_pid" 2>/dev/null || true
        fi
    fi
    wait "$standalone_pid" 2>/dev/null || true
}
trap 'stop_airflow; exit 0' INT TERM
trap 'stop_airflow' EXIT

for _ in $(seq 1 180); do
    if ! kill -0 "$standalone_pid" 2>/dev/null; then
        echo "error: airflow standalone exited; see $AIRFLOW_HOME/standalone.log" >&2
        exit 1
    fi
    if curl --silent --fail "$url/api/v2/monitor/health" >/dev/null 2>&1; then
        break
    fi
    sleep 1
done

passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated}"
echo
echo "== Airflow is up: UI at $url (execution API $AIRFLOW__CORE__EXECUTION_API_SERVER_URL)"
echo "   login details (user: password) from $passwords:"
if [[ -f "$passwords" ]]; then
    "$VENV/bin/python" -c 'import json, sys; [print(f"   {u}: {p}") for u, p in json.load(open(sys.argv[1])).items()]' "$passwords"
else
    echo "   (not written yet; look in $AIRFLOW_HOME/standalone.log)"
fi
echo "   DAGs start paused: unpause them in the UI or with 'airflow dags unpause <dag_id>'."
echo "   Ctrl-C (or TERM to pid $$) stops Airflow and every process it started."
# wait returns early when a trapped signal arrives, so the trap runs at once.
wait "$standalone_pid" || true
