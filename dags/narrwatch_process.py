"""narrwatch process DAG: embed -> match -> cluster.

Wiring only; the steps are narrwatch.pipeline functions, the knobs are in narrwatch.ops.schedule.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from narrwatch.ops import schedule

PLAN = schedule.load_plan()
NEW_ARTICLES = Asset(schedule.NEW_ARTICLES_ASSET)


def _schedule() -> Any:
    if PLAN.process_schedule is None:
        return [NEW_ARTICLES]
    return AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(PLAN.process_schedule, timezone="UTC"), assets=[NEW_ARTICLES]
    )


@dag(
    dag_id=schedule.PROCESS_DAG_ID,
    schedule=_schedule(),
    start_date=schedule.DAG_START,
    catchup=False,
    max_active_runs=1,
    default_args=PLAN.task_defaults.as_default_args(queue=PLAN.queue_processing),
    tags=["narrwatch"],
)
def narrwatch_process() -> None:
    """
    ### Process: embed -> match -> cluster

    Runs when an ingest run stored new articles (the `narrwatch_new_articles` asset) and also on
    `NARRWATCH_PROCESS_SCHEDULE` (default hourly) so a backlog left by a failed run is picked up.

    * **embed** vectors for every stored article that has none for the configured model
      (`narrwatch embed`);
    * **match** the articles published in the last `NARRWATCH_MATCH_WINDOW_DAYS` against the seed
      narratives (`narrwatch match`), after syncing edited seed files;
    * **cluster** the same window's articles that match no seed (`narrwatch cluster`).

    All three share the `narrwatch_vectors` pool (one slot in Qdrant local mode, which allows one
    process at a time). `now` is the run's data-interval end, or its `run_after` for asset-triggered
    runs; replay a run with the same `--now` on the CLI. Each step is idempotent: a retry redoes at
    most one batch.
    """

    @task(pool=PLAN.vector_pool.name, execution_timeout=PLAN.timeout("embed"))
    def embed(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        with schedule.task_context() as ctx:
            return pipeline.embed(ctx, schedule.logical_now(context))

    @task(pool=PLAN.vector_pool.name, execution_timeout=PLAN.timeout("match"))
    def match(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        with schedule.task_context() as ctx:
            return pipeline.match_recent(ctx, schedule.logical_now(context))

    @task(pool=PLAN.vector_pool.name, execution_timeout=PLAN.timeout("cluster"))
    def cluster(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        with schedule.task_context() as ctx:
            return pipeline.cluster_recent(ctx, schedule.logical_now(context))

    embed() >> match() >> cluster()


narrwatch_process()
