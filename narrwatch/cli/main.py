"""`narrwatch ...`: one subcommand per pipeline step, plus the tools of each area.

The CLI is the only place that reads the wall clock: every step takes ``--now`` (default: now, UTC)
or ``--date`` so that a DAG run can be replayed from the shell with the same arguments.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from narrwatch.cli.common import UsageError, app_context, parse_day, parse_now
from narrwatch.cli.eval import eval_app
from narrwatch.config import Settings
from narrwatch.settings_check import UnknownSettingError
from narrwatch.steps.match.seeds import SeedFilesSkipped
from narrwatch.steps.poll.registry import FeedsFileError

app = typer.Typer(
    name="narrwatch",
    help="Watch regional news feeds for disinformation narratives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The SQL store: migrations and readiness.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Logical time of the run, ISO 8601 (default: now, UTC)."),
]
DateOption = Annotated[
    str | None, typer.Option("--date", help="Day, YYYY-MM-DD (default: the day of --now).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def echo_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for inner_key, inner_value in value.items():
                typer.echo(f"  {inner_key}: {inner_value}")
        else:
            typer.echo(f"{key}: {value}")


# --- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the SQL store's schema (Alembic)."""
    from narrwatch.config import get_settings
    from narrwatch.db.migrate import upgrade

    url = get_settings().resolved_database_url
    upgrade(url, revision)
    typer.echo(f"database at {redact_url(url)} is at revision {revision}")


@db_app.command("downgrade")
def db_downgrade() -> None:
    """Undo the newest migration: one step only, refused when it would drop tables holding rows."""
    from narrwatch.config import get_settings
    from narrwatch.db.downgrade import DowngradeRefused, downgrade_one_step

    url = get_settings().resolved_database_url
    try:
        step = downgrade_one_step(url)
    except DowngradeRefused as exc:
        raise UsageError(str(exc)) from exc
    typer.echo(f"database at {redact_url(url)} downgraded from {step.current} to {step.target or 'empty'}")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from narrwatch.config import get_settings
    from narrwatch.db.migrate import check

    check(get_settings().resolved_database_url)
    typer.echo("models and migrations agree")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Argument(help="What the migration changes.")],
) -> None:
    """Write a new migration from the difference between db/models.py and the database's schema.

    Run it against a database at the current head (`narrwatch db upgrade` first), review the file
    under db/migrations/versions/, and test it on SQLite and PostgreSQL (`make test`, `.ci/run`).
    """
    from alembic import command

    from narrwatch.config import get_settings
    from narrwatch.db.migrate import alembic_config

    script = command.revision(
        alembic_config(get_settings().resolved_database_url), message=message, autogenerate=True
    )
    scripts = script if isinstance(script, list) else [script]
    for item in scripts:
        if item is not None:
            typer.echo(f"wrote {item.path}")


@db_app.command("wait")
def db_wait(
    timeout: Annotated[float, typer.Option(help="Seconds to keep trying.")] = 300.0,
) -> None:
    """Wait until the database answers (used before `db upgrade` when containers start)."""
    from sqlalchemy import text

    from narrwatch.config import get_settings
    from narrwatch.db.session import make_engine

    url = get_settings().resolved_database_url
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            typer.echo(f"database at {redact_url(url)} answers")
            return
        except Exception as exc:  # any driver error means "not ready yet"
            last_error = str(exc).splitlines()[0]
        if time.monotonic() > deadline:
            raise UsageError(f"database at {redact_url(url)} did not answer in {timeout:.0f} s: {last_error}")
        time.sleep(1.0)


def redact_url(url: str) -> str:
    from sqlalchemy.engine.url import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- pipeline steps -----------------------------------------------------------------------------


@app.command()
def poll(
    now: NowOption = None,
    group: Annotated[str | None, typer.Option(help="Only feeds of this group.")] = None,
    feed: Annotated[list[str] | None, typer.Option(help="Only this feed id (repeatable).")] = None,
    force: Annotated[bool, typer.Option(help="Poll even feeds that are not due.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Poll the feeds that are due and store new articles.

    Exit code: 0 done (a broken feeds.yaml only warns while the last good catalogue is polled);
    1 every feed polled failed; 2 an unknown feed id was given.
    """
    from narrwatch import pipeline
    from narrwatch.steps.poll.outcome import poll_exit_code

    with app_context() as ctx:
        summary = pipeline.poll(ctx, parse_now(now), group=group, feed_ids=feed, force=force)
    echo_summary(summary, as_json)
    code, problems = poll_exit_code(summary)
    for problem in problems:
        typer.echo(problem, err=True)
    if code:
        raise typer.Exit(code)


@app.command()
def embed(
    now: NowOption = None,
    limit: Annotated[int | None, typer.Option(help="At most this many articles.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Embed articles that have no vectors yet for the configured model."""
    from narrwatch import pipeline
    from narrwatch.cli.tables import progress

    with app_context() as ctx, progress("embedding articles", total=limit) as bar:
        summary = pipeline.embed(ctx, parse_now(now), limit=limit, on_batch=bar.advance)
    echo_summary(summary, as_json)


def resolve_window(
    start: str | None, end: str | None, now: dt.datetime, settings: Settings
) -> tuple[dt.datetime, dt.datetime]:
    from narrwatch.pipeline import processing_window

    window_end = parse_now(end) if end else now
    window_start = parse_now(start) if start else processing_window(settings, window_end)[0]
    if window_start >= window_end:
        raise UsageError("--start must be before --end")
    return window_start, window_end


@app.command()
def match(
    now: NowOption = None,
    start: Annotated[str | None, typer.Option(help="Window start (ISO 8601).")] = None,
    end: Annotated[str | None, typer.Option(help="Window end (ISO 8601; default --now).")] = None,
    recompute: Annotated[bool, typer.Option(help="Recompute existing matches in the window.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Match embedded articles published in a window against the seed narratives."""
    from narrwatch import pipeline

    with app_context() as ctx:
        at = parse_now(now)
        window = resolve_window(start, end, at, ctx.settings)
        summary = pipeline.match(ctx, *window, at, recompute=recompute)
    echo_summary(summary, as_json)


@app.command()
def cluster(
    now: NowOption = None,
    start: Annotated[str | None, typer.Option(help="Window start (ISO 8601).")] = None,
    end: Annotated[str | None, typer.Option(help="Window end (ISO 8601; default --now).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Cluster embedded articles that match no seed (emerging narratives)."""
    from narrwatch import pipeline

    with app_context() as ctx:
        at = parse_now(now)
        window = resolve_window(start, end, at, ctx.settings)
        summary = pipeline.cluster(ctx, *window, at)
    echo_summary(summary, as_json)


@app.command()
def detect(now: NowOption = None, date: DateOption = None, as_json: JsonOption = False) -> None:
    """Count the day per seed and cluster and flag what is rising (replaces that day's flags)."""
    from narrwatch import pipeline

    with app_context() as ctx:
        at = parse_now(now)
        summary = pipeline.detect(ctx, parse_day(date, at), at)
    echo_summary(summary, as_json)


@app.command()
def report(
    now: NowOption = None,
    date: DateOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the daily report (HTML, Markdown, JSON) for a day."""
    from narrwatch import pipeline

    with app_context() as ctx:
        at = parse_now(now)
        summary = pipeline.report(ctx, parse_day(date, at), at, out_dir=out)
    echo_summary(summary, as_json)


@app.command()
def run(now: NowOption = None, date: DateOption = None, as_json: JsonOption = False) -> None:
    """Run every step once: poll, embed, match, cluster, detect, report."""
    from narrwatch import pipeline

    with app_context() as ctx:
        at = parse_now(now)
        summary = pipeline.run_all(ctx, at, report_day=parse_day(date, at))
    echo_summary(summary, as_json)


@app.command()
def demo(
    fresh: Annotated[
        bool, typer.Option(help="Delete the demo's data folder first (only a folder the demo made).")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the demo keeps its data (default: NARRWATCH_DATA_DIR/demo)."),
    ] = None,
) -> None:
    """Serve the bundled demo feeds on 127.0.0.1 and run the pipeline over them day by day."""
    from narrwatch.cli.tables import progress
    from narrwatch.ops.demo import load_demo_data, run_demo
    from narrwatch.ops.demo_folder import DemoFolderError

    try:
        with progress("demo days", total=load_demo_data().n_days) as bar:
            result = run_demo(data_dir=data_dir, fresh=fresh, echo=typer.echo, on_day=bar.advance)
    except DemoFolderError as exc:
        raise UsageError(str(exc)) from exc
    typer.echo("stored: " + ", ".join(f"{count} {table}" for table, count in result.counts.items()))
    typer.echo(f"report: {result.report_html.resolve()}")


# --- areas --------------------------------------------------------------------------------------

#: Each area adds its own commands; see the `register` function in each module.
AREA_MODULES = (
    "narrwatch.cli.feeds",
    "narrwatch.cli.vectors",
    "narrwatch.cli.narratives",
    "narrwatch.cli.clusters",
    "narrwatch.cli.ops",
    "narrwatch.cli.retention",
    "narrwatch.cli.web",
)


def register_areas() -> None:
    for name in AREA_MODULES:
        importlib.import_module(name).register(app)


register_areas()


def main() -> None:
    """Console entry point: user errors print one clear line, not a traceback."""
    try:
        app()
    except UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except FeedsFileError as exc:
        for problem in exc.problems[:20]:
            typer.echo(f"error: {problem[:300]}", err=True)
        sys.exit(2)
    except SeedFilesSkipped as exc:
        for line in exc.lines:
            typer.echo(f"error: seed file skipped: {line}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        typer.echo(f"error: invalid setting:\n{format_validation_error(exc)}", err=True)
        sys.exit(2)
    except UnknownSettingError as exc:
        for line in exc.lines:
            typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    except RuntimeError as exc:
        # A model that cannot be loaded or a vector store that cannot be reached is an operator's
        # problem to fix, not a bug: one line naming it, no traceback.
        from narrwatch.embeddings.encoder_errors import EncoderError
        from narrwatch.embeddings.store import VectorStoreError

        if isinstance(exc, EncoderError | VectorStoreError):
            typer.echo(f"error: {exc}", err=True)
            sys.exit(1)
        raise


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(settings)"
        env_name = f"NARRWATCH_{field.upper()}" if error["loc"] else field
        lines.append(f"  {env_name}: {error['msg']}")
    return "\n".join(lines)
