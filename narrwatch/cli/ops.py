"""Operator commands: `narrwatch status` and `narrwatch schedule show | pools`.

`status` answers "is narrwatch keeping up?" from the SQL store alone (no model, no Qdrant, no
Airflow): freshness, the embedding backlog, feeds by health, and the last run of every step.
`schedule` shows what the DAGs are made of with the current settings and feeds.yaml, and writes the
pools in the format `airflow pools import` reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from narrwatch.context import AppContext

T = TypeVar("T")

schedule_app = typer.Typer(
    help="What the Airflow DAGs are made of: schedules, pools, retries, timeouts.",
    no_args_is_help=True,
)

#: Steps in the order the pipeline runs them; `status` lists these even when they never ran.
STEPS = (
    "sync_feeds",
    "poll",
    "embed",
    "match",
    "cluster",
    "detect",
    "report",
    "retention",
    "reconcile",
    "recompute",
)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def collect_status(ctx: AppContext, now: dt.datetime) -> dict[str, Any]:
    """Everything `narrwatch status` shows, as a JSON-able dict."""
    from sqlalchemy import func, select

    from narrwatch.db.models import Article, ArticleEmbedding, PipelineRun
    from narrwatch.ops.freshness import check_freshness
    from narrwatch.steps.poll.operate import feed_health

    freshness = check_freshness(ctx, now)
    with ctx.transaction() as session:
        n_articles = session.scalar(select(func.count()).select_from(Article)) or 0
        # The collection written most recently stands for the configured model without loading it.
        collection = session.scalar(
            select(ArticleEmbedding.collection).order_by(ArticleEmbedding.embedded_at.desc()).limit(1)
        )
        embedded = (
            session.scalar(
                select(func.count())
                .select_from(ArticleEmbedding)
                .where(ArticleEmbedding.collection == collection)
            )
            if collection
            else 0
        ) or 0
        steps: dict[str, Any] = {}
        for step in STEPS:
            last = session.scalars(
                select(PipelineRun)
                .where(PipelineRun.step == step)
                .order_by(PipelineRun.started_at.desc(), PipelineRun.id.desc())
                .limit(1)
            ).first()
            last_ok = session.scalar(
                select(func.max(PipelineRun.finished_at)).where(
                    PipelineRun.step == step, PipelineRun.status == "ok"
                )
            )
            steps[step] = {
                "status": last.status if last else "never",
                "started_at": _iso(last.started_at) if last else None,
                "finished_at": _iso(last.finished_at) if last else None,
                "last_ok_at": _iso(last_ok),
                "error": last.error if last else None,
            }
    health: dict[str, list[str]] = {}
    for row in feed_health(ctx, now):  # the states of `narrwatch feeds health`
        health.setdefault(row.state.value, []).append(row.id)
    return {
        "now": now.isoformat(),
        "freshness": freshness.as_dict(),
        "articles": {
            "total": n_articles,
            "collection": collection,
            "embedded": embedded,
            "unembedded": n_articles - embedded,
        },
        "feeds": {state: {"count": len(ids), "ids": sorted(ids)} for state, ids in sorted(health.items())},
        "steps": steps,
    }


#: Exit codes of `narrwatch status` for cron and monitoring agents (docs/operators.md).
STATUS_OK = 0
STATUS_PROBLEM = 1  # at least one PROBLEM line: stale data, too many failing feeds, a failed step
STATUS_CANNOT_JUDGE = 2  # bad settings or a store that cannot be read


def status_problems(status: dict[str, Any]) -> list[str]:
    """Every PROBLEM line `status` prints: the watchdog's, then each step whose last run failed."""
    problems = list(status["freshness"]["problems"])
    for step, run in status["steps"].items():
        if run["status"] == "failed":
            error = (run["error"] or "no error recorded").splitlines()[0][:200]
            problems.append(f"the last {step} run failed: {error}")
    return problems


def render_status(status: dict[str, Any]) -> str:
    fresh = status["freshness"]
    articles = status["articles"]
    lines = [
        f"as of {status['now']}",
        "",
        "freshness",
        f"  last article stored:    {fresh['last_fetched_at'] or 'never'}",
        f"  last article published: {fresh['last_published_at'] or 'never'}",
        f"  failing feeds:          {fresh['failing_feeds']} of {fresh['active_feeds']} active",
    ]
    lines += [f"  PROBLEM: {problem}" for problem in fresh["problems"]] or ["  ok"]
    lines += [
        "",
        "articles",
        f"  stored {articles['total']}, embedded {articles['embedded']}, "
        f"waiting for embedding {articles['unembedded']}"
        + (f" (collection {articles['collection']})" if articles["collection"] else ""),
        "",
        "feeds by health",
    ]
    for state, entry in status["feeds"].items():
        shown = ", ".join(entry["ids"][:8]) + (" ..." if entry["count"] > 8 else "")
        lines.append(f"  {state:8} {entry['count']:4}  {shown}")
    if not status["feeds"]:
        lines.append("  no feeds synced yet (run `narrwatch poll` or the ingest DAG)")
    lines.append("  (details: narrwatch feeds health)")
    lines += ["", "last runs", f"  {'step':11} {'outcome':8} {'started':32} last ok"]
    for step, run in status["steps"].items():
        lines.append(
            f"  {step:11} {run['status']:8} {run['started_at'] or '-':32} {run['last_ok_at'] or '-'}"
        )
    step_problems = status_problems(status)[len(fresh["problems"]) :]
    lines += [f"  PROBLEM: {problem}" for problem in step_problems]
    return "\n".join(lines)


def status(
    now: Annotated[
        str | None, typer.Option("--now", help="Judge as of this time, ISO 8601 (default: now, UTC).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Freshness, embedding backlog, feeds by health and the last run of each step.

    Exit code: 0 all well; 1 at least one PROBLEM line (no new article for too long, too many
    failing feeds, or a step whose last run failed); 2 bad settings or an unreachable store.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from narrwatch.cli.main import app_context, parse_now, redact_url

    try:
        with app_context() as ctx:
            result = collect_status(ctx, parse_now(now))
    except SQLAlchemyError as exc:
        from narrwatch.config import get_settings

        url = redact_url(get_settings().resolved_database_url)
        typer.echo(f"error: cannot read the store at {url}: {str(exc).splitlines()[0][:300]}", err=True)
        raise typer.Exit(STATUS_CANNOT_JUDGE) from exc
    result["problems"] = status_problems(result)
    typer.echo(json.dumps(result, indent=2) if as_json else render_status(result))
    if result["problems"]:
        raise typer.Exit(STATUS_PROBLEM)


def _load(loader: Callable[[], T]) -> T:
    from narrwatch.ops.schedule import ScheduleError
    from narrwatch.steps.poll.registry import FeedsFileError

    try:
        return loader()
    except (ScheduleError, FeedsFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _minutes(value: dt.timedelta) -> str:
    return f"{value.total_seconds() / 60:g} min"


@schedule_app.command("show")
def schedule_show() -> None:
    """The DAGs with their schedules, pools, retries and timeouts, as the settings make them."""
    from narrwatch.ops import schedule

    plan = _load(schedule.load_plan)
    lines = ["DAGs"]
    for group in _load(schedule.load_ingest_groups):
        lines.append(
            f"  {group.dag_id:32} {group.schedule:16} {group.n_feeds} feeds x {plan.ingest_shards} shards"
        )
    process = f"new articles or {plan.process_schedule}" if plan.process_schedule else "new articles"
    lines += [
        f"  {schedule.PROCESS_DAG_ID:32} {process}",
        f"  {schedule.DAILY_DAG_ID:32} {plan.daily_cron:16} "
        f"(report for the previous UTC day at {plan.daily_report_time:%H:%M} UTC)",
        f"  {schedule.MAINTENANCE_DAG_ID:32} {plan.maintenance_schedule}",
        "pools",
    ]
    lines += [f"  {pool.name:32} {pool.slots} slots" for pool in plan.pools]
    defaults = plan.task_defaults
    lines += [
        "retries",
        f"  {defaults.retries} retries, first after {_minutes(defaults.retry_delay)}, x"
        f"{defaults.retry_exponential_backoff:g} each, at most {_minutes(defaults.max_retry_delay)}",
        "execution timeouts",
    ]
    lines += [f"  {step:12} {_minutes(value)}" for step, value in plan.timeouts.items()]
    typer.echo("\n".join(lines))


@schedule_app.command("pools")
def schedule_pools(
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: stdout).")] = None,
) -> None:
    """The narrwatch pools as JSON for `airflow pools import FILE`."""
    from narrwatch.ops.schedule import load_plan

    text = json.dumps(_load(load_plan).pools_json(), indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"pools written to {out}")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.add_typer(schedule_app, name="schedule")
