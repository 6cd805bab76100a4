"""`narrwatch feeds ...`: check feeds.yaml, list outlets, show feed health, debug a feed document,
and pause, resume or reset one feed. Polling itself is `narrwatch poll` (the lead's step command).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import zlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from narrwatch.cli.common import UsageError, parse_now

if TYPE_CHECKING:
    from narrwatch.config import Settings
    from narrwatch.context import AppContext

feeds_app = typer.Typer(
    help="Feeds: validate feeds.yaml, list outlets, health, parse a feed file, pause/resume/reset.",
    no_args_is_help=True,
)

FileOption = Annotated[
    Path | None, typer.Option("--file", help="The feeds file (default: the feeds_file setting).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NowOption = Annotated[
    str | None, typer.Option("--now", help="Time to judge health at, ISO 8601 (default: now, UTC).")
]
FeedId = Annotated[str, typer.Argument(help="The feed's id in feeds.yaml.")]


def register(app: typer.Typer) -> None:
    app.add_typer(feeds_app, name="feeds")


def _settings() -> Settings:
    from narrwatch.config import get_settings

    return get_settings()


def _open_context() -> AppContext:
    from narrwatch.context import AppContext

    return AppContext.from_settings(_settings())


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _now(value: str | None) -> dt.datetime:
    try:
        return parse_now(value)
    except UsageError as exc:
        raise _fail(str(exc), 2) from exc


def _table(headers: list[str], rows: list[list[str]]) -> str:
    from narrwatch.cli.tables import render_table

    return render_table(headers, rows)


def _load(file: Path | None) -> Any:
    from narrwatch.steps.poll.registry import FeedsFileError, load_feeds_file

    path = file or _settings().feeds_file
    try:
        return path, load_feeds_file(path)
    except FeedsFileError as exc:
        raise _fail(f"{path} is not valid:\n  " + "\n  ".join(exc.problems)) from exc


@feeds_app.command("validate")
def validate(file: FileOption = None) -> None:
    """Check feeds.yaml: every error names the entry (index and id) and the field."""
    from narrwatch.ops.schedule import ScheduleError, ingest_groups

    path, config = _load(file)
    try:
        # The groups' schedules as the ingest DAGs and `schedule show` read them: one parser.
        ingest_groups(_settings().model_copy(update={"feeds_file": path}))
    except ScheduleError as exc:
        raise _fail(f"{path} is not valid:\n  {exc}") from exc
    countries = Counter(feed.country for feed in config.feeds)
    state = sum(1 for feed in config.feeds if feed.state_affiliated)
    typer.echo(
        f"{path}: OK: {len(config.feeds)} feeds of {len(config.outlets)} outlets, {state} state-affiliated"
    )
    typer.echo("countries: " + ", ".join(f"{code} {n}" for code, n in sorted(countries.items())))
    for name, group in sorted(config.groups.items()):
        n_feeds = sum(1 for feed in config.feeds if feed.group == name)
        typer.echo(f"group {name}: {n_feeds} feeds, schedule {group.schedule or '(default)'}")


@feeds_app.command("list")
def list_feeds(
    file: FileOption = None,
    group: Annotated[str | None, typer.Option(help="Only this group.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the feeds in feeds.yaml."""
    _path, config = _load(file)
    feeds = [feed for feed in config.feeds if group is None or feed.group == group]
    if as_json:
        typer.echo(json.dumps([feed.model_dump(mode="json") for feed in feeds], indent=2, ensure_ascii=False))
        return
    rows = [
        [
            feed.id,
            feed.outlet_id,
            feed.country,
            ",".join(feed.languages),
            feed.group,
            "state" if feed.state_affiliated else "",
            feed.url,
        ]
        for feed in feeds
    ]
    typer.echo(_table(["id", "outlet", "country", "languages", "group", "affiliation", "url"], rows))


@feeds_app.command("sync")
def sync(as_json: JsonOption = False) -> None:
    """Copy feeds.yaml into the store now (a poll does this too)."""
    from narrwatch.steps.poll.registry import FeedsFileError
    from narrwatch.steps.poll.sync import sync_feeds

    ctx = _open_context()
    try:
        summary = sync_feeds(ctx, dt.datetime.now(dt.UTC)).as_dict()
    except FeedsFileError as exc:
        raise _fail(f"{exc.path} is not valid:\n  " + "\n  ".join(exc.problems)) from exc
    finally:
        ctx.close()
    typer.echo(
        json.dumps(summary, indent=2) if as_json else ", ".join(f"{k}: {v}" for k, v in summary.items())
    )


def _age(when: dt.datetime | None, now: dt.datetime) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    sign = "in " if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 120:
        text = f"{seconds:.0f}s"
    elif seconds < 7200:
        text = f"{seconds / 60:.0f}m"
    elif seconds < 172_800:
        text = f"{seconds / 3600:.0f}h"
    else:
        text = f"{seconds / 86400:.0f}d"
    return f"{sign}{text}" if sign else f"{text} ago"


@feeds_app.command("health")
def health(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Per feed: state (ok/degraded/silent/paused), last attempt, success and new item, failures,
    last error and next poll. 'never' under last success: the feed has never been polled successfully."""
    from narrwatch.steps.poll.operate import feed_health

    at = _now(now)
    ctx = _open_context()
    try:
        rows = feed_health(ctx, at)
    finally:
        ctx.close()
    if as_json:
        typer.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    if not rows:
        typer.echo("no feeds in the store yet: run `narrwatch feeds sync` or `narrwatch poll`")
        return
    table = [
        [
            row.id,
            row.state.value,
            _age(row.last_attempt_at, at),
            _age(row.last_success_at, at),
            _age(row.last_new_item_at, at),
            str(row.consecutive_failures),
            str(row.last_status or ""),
            (row.last_error or "")[:70],
            _age(row.next_poll_at, at) if row.next_poll_at else "due",
        ]
        for row in rows
    ]
    headers = [
        "feed",
        "state",
        "last attempt",
        "last success",
        "last new item",
        "failures",
        "http",
        "last error",
        "next poll",
    ]
    typer.echo(_table(headers, table))
    states = Counter(row.state.value for row in rows)
    typer.echo("\n" + ", ".join(f"{state}: {n}" for state, n in sorted(states.items())))


def _read_feed_file(path: Path, max_bytes: int) -> tuple[bytes, list[str]]:
    """The file's bytes, gunzipped when gzip, capped like a fetched body. OSError if unreadable."""
    raw = path.read_bytes()
    if not raw.startswith(b"\x1f\x8b"):
        if len(raw) > max_bytes:
            return b"", [f"file larger than {max_bytes} bytes (the fetch cap): not parsed"]
        return raw, []
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            body = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        return b"", [f"gzip: cannot decompress: {exc}"]
    if len(body) > max_bytes:
        return b"", [f"larger than {max_bytes} bytes after decompression (the fetch cap): not parsed"]
    return body, []


def _iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if when else None


@feeds_app.command("parse")
def parse(
    file: Annotated[Path, typer.Argument(help="A feed document (plain or gzipped).")],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"entries": [...], "errors": [...]} as JSON.')
    ] = False,
) -> None:
    """Parse a local feed file exactly as a fetched body is parsed, and print its entries.

    `published` is the date the feed gives (ISO 8601 UTC), or null when it gives none that can be
    read; `language` is the detected language. Exit 0 unless the file cannot be read.
    """
    from narrwatch.steps.poll.isolate import IsolatedRunner
    from narrwatch.steps.poll.language import detect_language
    from narrwatch.steps.poll.parse import FeedParseError, FeedParser

    settings = _settings()
    try:
        body, errors = _read_feed_file(file, settings.fetch_max_body_bytes)
    except OSError as exc:
        raise _fail(f"{file}: cannot read: {exc.strerror or exc}") from exc
    entries: list[dict[str, Any]] = []
    if body:
        with IsolatedRunner(1, memory_limit_mb=settings.parse_max_memory_mb) as runner:
            parser = FeedParser(
                runner, timeout_s=settings.parse_timeout_s, max_entries=settings.parse_max_entries
            )
            try:
                parsed = parser.parse(body, {}, None)
            except FeedParseError as exc:
                errors.append(str(exc))
            else:
                errors.extend(parsed.errors)
                for entry in parsed.entries:
                    declared = (entry.language.split("-")[0].lower(),) if entry.language else ()
                    text = f"{entry.title}\n{entry.summary or entry.content}"
                    entries.append(
                        {
                            "title": entry.title,
                            "link": entry.link,
                            "published": _iso(entry.published or entry.updated),
                            "language": detect_language(text, declared).language,
                        }
                    )
    if as_json:
        typer.echo(json.dumps({"entries": entries, "errors": errors}, ensure_ascii=False, indent=2))
        return
    for row in entries:
        typer.echo(
            f"{row['published'] or '(no date)':<21} {row['language'] or '?':<4} "
            f"{row['title']}\n{'':<26}{row['link'] or '(no link)'}"
        )
    typer.echo(f"{len(entries)} entries")
    for error in errors:
        typer.echo(f"warning: {error}", err=True)


def _operator_action(feed_id: str, action: str) -> None:
    from narrwatch.steps.poll.operate import reset_feed, set_paused
    from narrwatch.steps.poll.sync import UnknownFeedError

    ctx = _open_context()
    try:
        if action == "pause":
            set_paused(ctx, feed_id, True)
        elif action == "resume":
            set_paused(ctx, feed_id, False)
        else:
            reset_feed(ctx, feed_id)
    except (UnknownFeedError, ValueError) as exc:
        raise _fail(str(exc).strip("'\"")) from exc
    finally:
        ctx.close()


@feeds_app.command("pause")
def pause(feed_id: FeedId) -> None:
    """Stop polling one feed until `feeds resume`."""
    _operator_action(feed_id, "pause")
    typer.echo(f"feed {feed_id}: paused")


@feeds_app.command("resume")
def resume(feed_id: FeedId) -> None:
    """Poll a paused feed again."""
    _operator_action(feed_id, "resume")
    typer.echo(f"feed {feed_id}: resumed")


@feeds_app.command("reset")
def reset(feed_id: FeedId) -> None:
    """Clear a feed's failures and backoff so the next poll takes it."""
    _operator_action(feed_id, "reset")
    typer.echo(f"feed {feed_id}: failures cleared; it is polled on the next poll")
