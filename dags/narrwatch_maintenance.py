"""narrwatch maintenance DAG: retention -> vector reconcile -> recompute matches of edited seeds.

Wiring only; the steps are narrwatch.pipeline functions, the knobs are in narrwatch.ops.schedule.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from narrwatch.ops import schedule

PLAN = schedule.load_plan()


@dag(
    dag_id=schedule.MAINTENANCE_DAG_ID,
    schedule=PLAN.maintenance_schedule,
    start_date=schedule.DAG_START,
    catchup=False,
    max_active_runs=1,
    default_args=PLAN.task_defaults.as_default_args(queue=PLAN.queue_processing),
    tags=["narrwatch"],
)
def narrwatch_maintenance() -> None:
    """
    ### Maintenance: retention -> reconcile -> recompute

    Runs on `NARRWATCH_MAINTENANCE_SCHEDULE` (default daily at 02:30 UTC, before the daily report).

    * **retention** deletes articles published more than `NARRWATCH_RETENTION_DAYS` ago (0, the
      default, keeps everything), writes a tombstone for each in the same transaction so they are
      never stored again, and deletes their vectors;
    * **reconcile** compares the SQL store (the truth) with Qdrant (a projection) and mends the
      difference: missing points re-embedded, orphan points deleted (`narrwatch vectors reconcile`);
    * **recompute** finds seed narratives whose file changed since their stored matches were made
      and recomputes the matches of the last `NARRWATCH_RECOMPUTE_WINDOW_DAYS` with the new version.

    All three share the `narrwatch_vectors` pool. Each is safe to re-run.
    """

    @task(pool=PLAN.vector_pool.name, execution_timeout=PLAN.timeout("maintenance"))
    def retention(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        with schedule.task_context() as ctx:
            return pipeline.retention(ctx, schedule.logical_now(context))

    @task(pool=PLAN.vector_pool.name, execution_timeout=PLAN.timeout("maintenance"))
    def reconcile(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        with schedule.task_context() as ctx:
            return pipeline.reconcile(ctx, schedule.logical_now(context))

    @task(pool=PLAN.vector_pool.name, execution_timeout=PLAN.timeout("maintenance"))
    def recompute(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        with schedule.task_context() as ctx:
            return pipeline.recompute_changed(ctx, schedule.logical_now(context))

    retention() >> reconcile() >> recompute()


narrwatch_maintenance()
