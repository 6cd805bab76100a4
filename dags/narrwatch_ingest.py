"""narrwatch ingest DAGs: one per feed group of feeds.yaml, each on the group's own schedule.

Wiring only; polling is narrwatch.pipeline.poll, the knobs are in narrwatch.ops.schedule. Adding a group
or changing its `schedule` in feeds.yaml changes these DAGs at the next parse, with no code change.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, dag, task

from narrwatch.ops import schedule

PLAN = schedule.load_plan()
NEW_ARTICLES = Asset(schedule.NEW_ARTICLES_ASSET)


def build_ingest_dag(group: schedule.IngestGroup) -> DAG:
    @dag(
        dag_id=group.dag_id,
        schedule=group.schedule,
        start_date=schedule.DAG_START,
        catchup=False,
        max_active_runs=1,
        default_args=PLAN.task_defaults.as_default_args(queue=PLAN.queue_ingest),
        tags=["narrwatch", "ingest"],
    )
    def narrwatch_ingest() -> None:
        """
        ### Ingest: poll the due feeds of one feed group

        * **poll** is mapped over `NARRWATCH_INGEST_SHARDS` shards of the group's feeds; each shard
          polls the feeds that are due (conditional GET, per-feed backoff: a broken feed is marked and
          retried later, it never fails the task) and stores new articles once
          (`narrwatch poll --group GROUP`). The shards run in the `narrwatch_feed_http` pool.
        * **publish** adds the shards' summaries and, when new articles were stored, updates the
          `narrwatch_new_articles` asset, which triggers the process DAG; with nothing new it is
          skipped and nothing downstream runs.

        `catchup=False` and `max_active_runs=1`: polling is about the present, and two runs of one
        group must not poll the same feeds at once. `now` is the run's data-interval end.
        """

        @task(pool=PLAN.feed_pool.name, execution_timeout=PLAN.timeout("poll"))
        def poll(shard: int, **context: Any) -> dict[str, Any]:
            from narrwatch import pipeline

            with schedule.task_context() as ctx:
                return pipeline.poll(
                    ctx,
                    schedule.logical_now(context),
                    group=group.name,
                    shard=shard,
                    shards=PLAN.ingest_shards,
                )

        @task(outlets=[NEW_ARTICLES], execution_timeout=PLAN.timeout("check"))
        def publish(summaries: list[dict[str, Any]]) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowSkipException

            total = schedule.add_poll_summaries(list(summaries))
            if not total.get("new_articles"):
                raise AirflowSkipException("no new articles: the process DAG is not triggered")
            return total

        publish(poll.expand(shard=list(range(PLAN.ingest_shards))))

    built = narrwatch_ingest()
    built.doc_md = (
        f"{built.doc_md}\n\n**Group `{group.name}`** ({group.n_feeds} feeds), schedule "
        f"`{group.schedule}`. {group.description}"
    )
    return built


for _group in schedule.load_ingest_groups():
    globals()[_group.dag_id] = build_ingest_dag(_group)
