"""What the Airflow DAGs are made of, computed from the settings and feeds.yaml: plain Python.

The dag-processor imports the DAG files, and through them this module, every
``min_file_process_interval`` (30 s by default), so it must stay cheap: no database, no network, no
airflow and no torch import. Everything an operator tunes (schedules, pools, retries, timeouts, the
report time) is a setting in ``narrwatch.config`` or a group in feeds.yaml; the DAG files only wire
what :func:`load_plan` returns.

The helpers at the bottom turn an Airflow task context (a plain mapping here) into the logical
``now`` and windows the use cases take, so no task reads the wall clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from narrwatch.config import Settings, get_settings

if TYPE_CHECKING:
    from narrwatch.context import AppContext

#: First logical date of every DAG. With catchup=False nothing before the deployment ever runs; a
#: fixed date keeps the DAG definition identical between two parses.
DAG_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

#: Asset that an ingest run updates when it stored new articles; it triggers the process DAG.
NEW_ARTICLES_ASSET = "narrwatch_new_articles"

INGEST_DAG_PREFIX = "narrwatch_ingest_"
PROCESS_DAG_ID = "narrwatch_process"
DAILY_DAG_ID = "narrwatch_daily"
MAINTENANCE_DAG_ID = "narrwatch_maintenance"

_PRESETS = frozenset(
    {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually"}
)
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


class ScheduleError(ValueError):
    """A schedule in the settings or in feeds.yaml that Airflow could not use; names its source."""


def check_cron(expression: str, source: str) -> str:
    """Return the expression stripped, or raise naming ``source`` when it is no cron or preset.

    Airflow parses the expression for real; this catches the common slips ("every 15 min", four
    fields) with a message that says where the bad value came from.
    """
    cleaned = " ".join(expression.split())
    if cleaned in _PRESETS:
        return cleaned
    fields = cleaned.split(" ")
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ScheduleError(
            f"{source}: {expression!r} is not a cron expression (5 fields, e.g. '*/15 * * * *') "
            f"or one of {', '.join(sorted(_PRESETS))}"
        )
    return cleaned


@dataclass(frozen=True)
class TaskDefaults:
    """Airflow's retry arguments, the same for every task of every narrwatch DAG."""

    retries: int
    retry_delay: dt.timedelta
    retry_exponential_backoff: float
    max_retry_delay: dt.timedelta

    def as_default_args(self, queue: str | None = None) -> dict[str, Any]:
        """Every task's defaults; ``queue`` is the Celery queue (the other executors ignore it)."""
        return {
            "owner": "narrwatch",
            **({"queue": queue} if queue else {}),
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "retry_exponential_backoff": self.retry_exponential_backoff,
            "max_retry_delay": self.max_retry_delay,
        }


@dataclass(frozen=True)
class Pool:
    name: str
    slots: int
    description: str


@dataclass(frozen=True)
class IngestGroup:
    """One feeds.yaml group: one ingest DAG with the group's own schedule."""

    name: str
    dag_id: str
    schedule: str
    description: str
    n_feeds: int


@dataclass(frozen=True)
class DagPlan:
    """Every knob the DAG files read, resolved once per parse (the feed groups are separate: see
    :func:`load_ingest_groups`)."""

    ingest_shards: int
    process_schedule: str | None
    daily_report_time: dt.time
    maintenance_schedule: str
    feed_pool: Pool
    vector_pool: Pool
    task_defaults: TaskDefaults
    timeouts: Mapping[str, dt.timedelta]
    queue_ingest: str = "ingest"
    queue_processing: str = "processing"

    @property
    def daily_cron(self) -> str:
        return f"{self.daily_report_time.minute} {self.daily_report_time.hour} * * *"

    @property
    def pools(self) -> tuple[Pool, Pool]:
        return (self.feed_pool, self.vector_pool)

    def timeout(self, step: str) -> dt.timedelta:
        return self.timeouts[step]

    def pools_json(self) -> dict[str, dict[str, Any]]:
        """The pools in the format ``airflow pools import FILE`` reads."""
        return {
            pool.name: {"slots": pool.slots, "description": pool.description, "include_deferred": False}
            for pool in self.pools
        }


def ingest_groups(settings: Settings) -> tuple[IngestGroup, ...]:
    """One entry per feeds.yaml group. Only the ingest DAG file reads feeds.yaml, so a broken feeds
    file stops ingest (with an import error naming the file and field) but not the other DAGs."""
    from narrwatch.steps.poll.registry import load_feeds_file

    feeds_file = Path(settings.feeds_file)
    registry = load_feeds_file(feeds_file)
    counts: dict[str, int] = {}
    for feed in registry.feeds:
        counts[feed.group] = counts.get(feed.group, 0) + 1
    groups = []
    for name, group in sorted(registry.groups.items()):
        if not _GROUP_NAME.match(name):
            raise ScheduleError(
                f"{feeds_file}: group {name!r}: a group name may hold letters, digits, '_', '-' and '.' "
                "only (it becomes part of the DAG id)"
            )
        raw = group.schedule or settings.ingest_default_schedule
        source = (
            f"{feeds_file}: groups.{name}.schedule" if group.schedule else "NARRWATCH_INGEST_DEFAULT_SCHEDULE"
        )
        groups.append(
            IngestGroup(
                name=name,
                dag_id=f"{INGEST_DAG_PREFIX}{name}",
                schedule=check_cron(raw, source),
                description=group.description or "",
                n_feeds=counts.get(name, 0),
            )
        )
    return tuple(groups)


def build_plan(settings: Settings) -> DagPlan:
    hours, minutes = (int(part) for part in settings.daily_report_time.split(":"))
    process = settings.process_schedule.strip()
    # Qdrant local mode locks its folder to one process; a server takes concurrent clients.
    vector_slots = settings.pool_vectors_slots if settings.qdrant_url else 1
    return DagPlan(
        ingest_shards=settings.ingest_shards,
        process_schedule=check_cron(process, "NARRWATCH_PROCESS_SCHEDULE") if process else None,
        daily_report_time=dt.time(hours, minutes),
        maintenance_schedule=check_cron(settings.maintenance_schedule, "NARRWATCH_MAINTENANCE_SCHEDULE"),
        feed_pool=Pool(
            settings.pool_feed_http,
            settings.pool_feed_http_slots,
            "narrwatch: poll tasks (outbound HTTP to the outlets)",
        ),
        vector_pool=Pool(
            settings.pool_vectors,
            vector_slots,
            "narrwatch: tasks that open the vector store or load the embedding model",
        ),
        queue_ingest=settings.queue_ingest,
        queue_processing=settings.queue_processing,
        task_defaults=TaskDefaults(
            retries=settings.task_retries,
            retry_delay=dt.timedelta(seconds=settings.task_retry_delay_s),
            retry_exponential_backoff=settings.task_retry_exponential_backoff,
            max_retry_delay=dt.timedelta(seconds=settings.task_max_retry_delay_s),
        ),
        timeouts={
            "poll": dt.timedelta(seconds=settings.timeout_poll_s),
            "embed": dt.timedelta(seconds=settings.timeout_embed_s),
            "match": dt.timedelta(seconds=settings.timeout_match_s),
            "cluster": dt.timedelta(seconds=settings.timeout_cluster_s),
            "detect": dt.timedelta(seconds=settings.timeout_detect_s),
            "report": dt.timedelta(seconds=settings.timeout_report_s),
            "maintenance": dt.timedelta(seconds=settings.timeout_maintenance_s),
            "check": dt.timedelta(seconds=settings.timeout_check_s),
        },
    )


def load_plan() -> DagPlan:
    """The plan for the settings of this process (environment and .env): what a DAG file calls."""
    return build_plan(get_settings())


def load_ingest_groups() -> tuple[IngestGroup, ...]:
    return ingest_groups(get_settings())


# --- run-time helpers for the task functions ----------------------------------------------------


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stdlib aware UTC datetime from Airflow's pendulum values (or any aware datetime)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} from the task context")
    utc = value.astimezone(dt.UTC)
    return dt.datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=dt.UTC
    )


def logical_now(context: Mapping[str, Any]) -> dt.datetime:
    """The run's logical time: the end of its data interval, or when it was due to run.

    Scheduled runs have a data interval; asset-triggered runs and runs triggered without a logical
    date have none, and then ``run_after`` (when the scheduler made the run) is the time they stand
    for. Retrying a task therefore repeats the same ``now``.
    """
    end = context.get("data_interval_end")
    if end is None:
        end = context["dag_run"].run_after
    return as_utc(end)


def daily_run(report_time: dt.time, context: Mapping[str, Any]) -> tuple[dt.date, dt.datetime]:
    """(day, now) of a daily run: the last report time at or before the run, and the UTC day before.

    A scheduled run's data interval ends at a report time, so this is its interval's day; a manual
    run triggered at any hour reports the last complete day as of the report time before it.
    """
    reference = logical_now(context)
    tick = dt.datetime.combine(reference.date(), report_time, tzinfo=dt.UTC)
    if tick > reference:
        tick -= dt.timedelta(days=1)
    return (tick - dt.timedelta(days=1)).date(), tick


def add_poll_summaries(summaries: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The shards' poll summaries as one: counts summed, mappings (failures by feed or by kind)
    merged the same way, ``shards`` the number of shards. Lists and flags are left out."""
    total: dict[str, Any] = {"shards": len(summaries)}
    for summary in summaries:
        _merge_counts(total, summary)
    return total


def _merge_counts(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, Mapping):
            _merge_counts(total.setdefault(key, {}), value)
        elif isinstance(value, str):
            total[key] = value


@contextmanager
def task_context() -> Iterator[AppContext]:
    """An AppContext for one task run, closed (engine, vector store lock) when the task ends."""
    from narrwatch.context import AppContext

    ctx = AppContext.from_settings()
    try:
        yield ctx
    finally:
        ctx.close()
