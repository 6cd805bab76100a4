"""Run ingest -> process -> daily with ``dag.test()`` and print each run's state, as JSON.

Run in a subprocess with its own AIRFLOW_HOME (metadata DB migrated first) and NARRWATCH_* settings;
see test_dags_e2e.py. The logical dates replay one night: the feeds are polled at 05:00 UTC, processed
at 05:30, and the daily run at 06:00 reports the day before.

    python tests/dags/e2e_dagtest.py DAG_FOLDER INGEST_DAG_ID [--use-executor]

With ``--use-executor`` the tasks go to the configured executor (the Celery test: a real worker
process runs them) instead of running inside this process.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

MARKER = "E2E_RESULT "


def main(folder: str, ingest_dag_id: str, use_executor: bool = False) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=folder)
    result: dict[str, object] = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}}
    runs = [
        (ingest_dag_id, dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)),
        ("narrwatch_process", dt.datetime(2026, 3, 10, 5, 30, tzinfo=dt.UTC)),
        ("narrwatch_daily", dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)),
    ]
    for dag_id, logical_date in runs:
        run = bag.dags[dag_id].test(logical_date=logical_date, use_executor=use_executor)
        tasks = {
            f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
            for ti in run.get_task_instances()
        }
        result[dag_id] = {"state": str(run.state), "tasks": tasks}
        if str(run.state) != "success":
            break
    print(MARKER + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], use_executor="--use-executor" in sys.argv[3:]))
