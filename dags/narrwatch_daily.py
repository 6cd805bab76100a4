"""narrwatch daily DAG: rising detection -> report -> notification and freshness watchdog.

Wiring only; the steps are narrwatch.pipeline and narrwatch.steps.retain.retain functions, the knobs are in
narrwatch.ops.schedule.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task

from narrwatch.ops import schedule

PLAN = schedule.load_plan()


@dag(
    dag_id=schedule.DAILY_DAG_ID,
    # Data intervals (not the Airflow 3 default of zero-length trigger times): a run at the report
    # time covers the 24 hours before it, and its day is the UTC day that ended in them.
    schedule=CronDataIntervalTimetable(PLAN.daily_cron, timezone="UTC"),
    start_date=schedule.DAG_START,
    catchup=False,
    max_active_runs=1,
    default_args=PLAN.task_defaults.as_default_args(queue=PLAN.queue_processing),
    tags=["narrwatch"],
)
def narrwatch_daily() -> None:
    """
    ### Daily: detect -> report -> freshness watchdog

    Runs every day at `NARRWATCH_DAILY_REPORT_TIME` (UTC, default 06:00) for the previous UTC day:
    the run's data interval ends at the report time and its day is the UTC day before that.

    * **detect** counts the day per seed narrative and cluster and flags what is rising, with the
      statistic behind each flag (`narrwatch detect --date DAY`); re-running replaces the day's flags;
    * **report** writes the day's HTML, Markdown and JSON report (`narrwatch report --date DAY`);
    * **notify** sends the report's summary (new flags first) by email and/or Slack when
      `NARRWATCH_NOTIFY_EMAIL_CONN_ID` / `NARRWATCH_NOTIFY_SLACK_CONN_ID` are set, linking to the
      pages of `narrwatch serve` at `NARRWATCH_WEB_BASE_URL` (`narrwatch notify --date DAY`);
    * **freshness_watchdog** fails the run, without retries, when no article was stored for
      `NARRWATCH_FRESHNESS_MAX_SILENCE_H` hours or more than `NARRWATCH_FRESHNESS_MAX_FAILING_FEED_SHARE`
      of the active feeds are degraded, failing poll after poll (`narrwatch status` shows the same
      figures).

    Backfill a day with `airflow dags backfill` or trigger with a logical date: the day follows
    from the data interval, never from the wall clock.
    """

    @task(execution_timeout=PLAN.timeout("detect"))
    def detect(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        day, now = schedule.daily_run(PLAN.daily_report_time, context)
        with schedule.task_context() as ctx:
            return {"day": day.isoformat(), **pipeline.detect(ctx, day, now)}

    @task(execution_timeout=PLAN.timeout("report"))
    def report(**context: Any) -> dict[str, Any]:
        from narrwatch import pipeline

        day, now = schedule.daily_run(PLAN.daily_report_time, context)
        with schedule.task_context() as ctx:
            return {"day": day.isoformat(), **pipeline.report(ctx, day, now)}

    @task(execution_timeout=PLAN.timeout("check"))
    def freshness_watchdog(**context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from narrwatch.ops.freshness import check_freshness

        _, now = schedule.daily_run(PLAN.daily_report_time, context)
        with schedule.task_context() as ctx:
            result = check_freshness(ctx, now)
        if result.problems:
            # Retrying would not make articles arrive: fail now, loudly, with every problem named.
            raise AirflowFailException("freshness watchdog: " + "; ".join(result.problems))
        return result.as_dict()

    @task(execution_timeout=PLAN.timeout("check"))
    def notify(**context: Any) -> dict[str, Any]:
        from narrwatch.config import get_settings
        from narrwatch.ops.notify import notify_day
        from narrwatch.web.settings import load_web_settings

        day, _ = schedule.daily_run(PLAN.daily_report_time, context)
        return notify_day(get_settings(), day, context, base_url=load_web_settings().base_url).as_dict()

    reported = detect() >> report()
    # Side by side: a failed watchdog must not hold the report back, nor a mail server the watchdog.
    reported >> [notify(), freshness_watchdog()]


narrwatch_daily()
