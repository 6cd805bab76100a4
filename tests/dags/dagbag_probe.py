"""Load the DAG folder the way the dag-processor does and print what the tests check, as JSON.

Run in a subprocess with its own AIRFLOW_HOME and NARRWATCH_* environment (see test_dags_integrity.py):
Airflow's configuration is process-wide and must not leak into other tests.

    python tests/dags/dagbag_probe.py DAG_FOLDER
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

#: Airflow logs to stdout too; the result is the line that starts with this.
MARKER = "DAGBAG_PROBE "
HEAVY = ("torch", "sentence_transformers", "qdrant_client", "onnxruntime", "transformers")


def describe_task(task: Any) -> dict[str, Any]:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    timeout = task.execution_timeout
    return {
        "retries": task.retries,
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "max_retry_delay_s": task.max_retry_delay.total_seconds() if task.max_retry_delay else None,
        "execution_timeout_s": timeout.total_seconds() if timeout else None,
        "pool": task.pool,
        "outlets": [getattr(outlet, "name", str(outlet)) for outlet in task.outlets],
        "mapped": isinstance(task, MappedOperator),
        "downstream": sorted(task.downstream_task_ids),
    }


def describe_schedule(dag: Any) -> dict[str, Any]:
    timetable = dag.timetable
    inner = getattr(timetable, "timetable", None)  # AssetOrTimeSchedule wraps a time-based timetable
    condition = getattr(timetable, "asset_condition", None)
    return {
        "timetable": type(timetable).__name__,
        "cron": getattr(inner or timetable, "expression", None),
        "assets": sorted(getattr(item, "name", str(item)) for item in condition.objects) if condition else [],
    }


def main(folder: str) -> None:
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=folder)
    dags = {
        dag_id: {
            "file": dag.fileloc,
            "doc_md": dag.doc_md,
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "schedule": describe_schedule(dag),
            "tasks": {task.task_id: describe_task(task) for task in dag.tasks},
        }
        for dag_id, dag in bag.dags.items()
    }
    print(
        MARKER
        + json.dumps(
            {
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "dags": dags,
                "heavy_modules": sorted(name for name in HEAVY if name in sys.modules),
                "seconds": time.perf_counter() - started,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
