#!/usr/bin/env bash
# Checks `make airflow` end to end: with AIRFLOW_PORT=8093 the daily DAG runs to success, and TERM
# to the standalone script leaves no process of it behind. Everything lives in a scratch folder;
# the feeds are the e2e fixtures served on loopback.
#
#   scripts/check-airflow-standalone.sh        # exit 0 when both hold; prints what it saw
#
# Needs the project installed with its airflow extra (make install) and a free port 8093.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
PORT="${AIRFLOW_PORT:-8093}"
SCRATCH="$(mktemp -d /tmp/narrwatch-airflow-check.XXXXXX)"
# Leftovers are looked for two ways: by the session of `airflow standalone` (the script prints its
# process group, which leads a session of its own), and by a marker in the environment of
# `make airflow` for processes that leave the session and keep their environment readable
# (Airflow's components rename themselves, which can hide the environment; the session stays).
MARK="NW_AIRFLOW_CHECK_MARK=$SCRATCH"
export AIRFLOW_HOME="$SCRATCH/airflow"
export NARRWATCH_DATA_DIR="$SCRATCH/var"
export NARRWATCH_FEEDS_FILE="$SCRATCH/feeds.yaml"
export NARRWATCH_ALLOW_PRIVATE_NETWORKS=true
export NARRWATCH_FETCH_PER_HOST_DELAY_S=0
export NARRWATCH_TASK_RETRIES=0
# The report time at midnight: a run triggered now reports yesterday, judged as of 00:00 today.
export NARRWATCH_DAILY_REPORT_TIME=00:00
export AIRFLOW_STOP_GRACE_S=30

fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
marked() { grep -lsz "^$MARK\$" /proc/[0-9]*/environ | cut -d/ -f3 || true; }
in_session() { [[ -n "${airflow_sid:-}" ]] && ps -eo pid=,sid= | awk -v sid="$airflow_sid" '$2 == sid {print $1}' || true; }
ours() { { marked; in_session; } | sort -un; }

echo "== scratch folder $SCRATCH, port $PORT"
"$PY" -m http.server 0 --bind 127.0.0.1 --directory "$REPO/tests/dags/fixtures/e2e" >"$SCRATCH/http.log" 2>&1 &
http_pid=$!
for _ in $(seq 1 50); do
    feed_port="$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$SCRATCH/http.log" | head -1)"
    [[ -n "$feed_port" ]] && break
    sleep 0.2
done
[[ -n "${feed_port:-}" ]] || fail "the loopback feed server did not start"
"$PY" - "$NARRWATCH_FEEDS_FILE" "$feed_port" <<'PYEOF'
import sys, yaml
path, port = sys.argv[1], sys.argv[2]
feeds = [
    {"id": f"fixture-{name}", "name": name, "country": "RS", "languages": ["en"],
     "url": f"http://127.0.0.1:{port}/{name}.xml", "group": "check"}
    for name in ("herald", "courier", "wire")
]
groups = {"check": {"schedule": "@daily", "description": "loopback fixtures"}}
open(path, "w").write(yaml.safe_dump({"groups": groups, "feeds": feeds}))
PYEOF

mkdir -p "$NARRWATCH_DATA_DIR"
"$REPO/.venv/bin/narrwatch" db upgrade >/dev/null
polled_at="$("$PY" -c 'import datetime as d; t=d.datetime.now(d.UTC).replace(hour=0,minute=0,second=0,microsecond=0); print((t-d.timedelta(hours=1)).isoformat())')"
new_articles="$("$REPO/.venv/bin/narrwatch" poll --now "$polled_at" --force --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["new_articles"])')"
echo "== polled as of $polled_at: $new_articles new articles"
[[ "$new_articles" -gt 0 ]] || fail "the poll stored nothing"

echo "== make airflow (AIRFLOW_PORT=$PORT) in a session of its own"
setsid env "$MARK" AIRFLOW_PORT="$PORT" make -C "$REPO" airflow >"$SCRATCH/make-airflow.log" 2>&1 &
make_pid=$!
cleanup() {
    kill "$http_pid" 2>/dev/null || true
    # Last resort if the check itself fails midway: nothing of this run may outlive it.
    for pid in $(ours); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

for _ in $(seq 1 240); do
    grep -q "== Airflow is up" "$SCRATCH/make-airflow.log" && break
    kill -0 "$make_pid" 2>/dev/null || { tail -20 "$SCRATCH/make-airflow.log"; fail "make airflow exited early"; }
    sleep 1
done
grep -q "== Airflow is up" "$SCRATCH/make-airflow.log" || fail "Airflow did not come up in 240 s"
grep "== Airflow is up" "$SCRATCH/make-airflow.log"
airflow_sid="$(sed -n 's/.*process group \([0-9]*\).*/\1/p' "$SCRATCH/make-airflow.log" | head -1)"
[[ -n "$airflow_sid" ]] || fail "the script did not print Airflow's process group"
[[ "$(grep -c "http://127.0.0.1:$PORT/execution/" "$SCRATCH/make-airflow.log")" -ge 1 ]] \
    || fail "the execution API URL does not follow the port"

airflow_cli() { "$REPO/.venv/bin/airflow" "$@"; }
for _ in $(seq 1 120); do
    airflow_cli dags list -o plain 2>/dev/null | grep -q narrwatch_daily && break
    sleep 2
done
airflow_cli dags unpause narrwatch_daily >/dev/null
airflow_cli dags trigger narrwatch_daily >/dev/null
echo "== narrwatch_daily unpaused and triggered; waiting for its runs"
state=""
for _ in $(seq 1 200); do
    # The CLI prints warnings before its JSON: the JSON is the last line starting with '['.
    runs="$(airflow_cli dags list-runs narrwatch_daily -o json 2>/dev/null | grep '^\[' | tail -1 || true)"
    state="$(printf '%s' "$runs" | "$PY" -c '
import json, sys
text = sys.stdin.read().strip()
runs = json.loads(text) if text else []
states = [run.get("state") for run in runs]
if states and all(s in ("success", "failed") for s in states):
    print("failed" if "failed" in states else "success")
print(" ".join("%s=%s" % (run.get("run_id"), run.get("state")) for run in runs), file=sys.stderr)
' 2>"$SCRATCH/runs.txt" || true)"
    [[ -n "$state" ]] && break
    sleep 3
done
echo "   runs: $(cat "$SCRATCH/runs.txt")"
[[ "$state" == "success" ]] || fail "narrwatch_daily did not succeed (state '${state:-still running}'); logs under $AIRFLOW_HOME/logs"

# The bash running the script (make's recipe runs it under sh -c, which must not be the target).
script_pid="$(pgrep -s "$make_pid" -f '^bash scripts/airflow-standalone.sh' | head -1)"
[[ -n "$script_pid" ]] || fail "cannot find the standalone script's process"
before="$(ours | wc -l)"
echo "== TERM to the standalone script (pid $script_pid); $before processes of this run are alive"
kill -TERM "$script_pid"
for _ in $(seq 1 60); do
    kill -0 "$make_pid" 2>/dev/null || break
    sleep 1
done
kill -0 "$make_pid" 2>/dev/null && fail "make airflow still running 60 s after TERM"
sleep 2
kill "$http_pid" 2>/dev/null || true
wait "$http_pid" 2>/dev/null || true
left="$(ours)"
if [[ -n "$left" ]]; then
    ps -o pid,pgid,sid,args -p "$(echo "$left" | paste -sd,)" || true
    fail "$(echo "$left" | wc -l) process(es) left behind after TERM"
fi
echo "== OK: narrwatch_daily succeeded on port $PORT, and TERM left 0 of $before processes behind"
