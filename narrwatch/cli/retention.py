"""`narrwatch retention` (what retention deletes, or a dry run of it) and `narrwatch tombstones`."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Logical time, ISO 8601 (default: now, UTC).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Delete articles older than NARRWATCH_RETENTION_DAYS with their vectors, leaving tombstones."""
    from narrwatch import pipeline
    from narrwatch.cli.main import app_context, parse_now
    from narrwatch.steps.retain import retain as maintenance

    at = parse_now(now)
    with app_context() as ctx:
        if dry_run:  # not a pipeline run: nothing happens, so nothing to record
            summary = maintenance.apply_retention(ctx, at, dry_run=True).as_dict()
        else:
            summary = pipeline.retention(ctx, at)
        days = ctx.settings.retention_days
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    elif not summary["enabled"]:
        typer.echo("retention is off (NARRWATCH_RETENTION_DAYS=0): nothing is ever deleted")
    else:
        verb = "would delete" if dry_run else "deleted"
        typer.echo(
            f"{verb} {summary['articles_deleted']} articles published before {summary['cutoff']} "
            f"({days} days) and {summary['points_deleted']} vector points"
            + ("; run without --dry-run to delete them" if dry_run else "")
        )


def tombstones(
    limit: Annotated[int, typer.Option(help="Newest this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The URLs retention deleted (never stored again), newest first, and how many there are."""
    from sqlalchemy import func, select

    from narrwatch.cli.main import app_context
    from narrwatch.cli.tables import print_table
    from narrwatch.db.models import Tombstone

    with app_context() as ctx, ctx.transaction() as session:
        total = session.scalar(select(func.count()).select_from(Tombstone)) or 0
        rows = session.scalars(
            select(Tombstone).order_by(Tombstone.deleted_at.desc(), Tombstone.canonical_url).limit(limit)
        ).all()
        listed = [
            {
                "deleted_at": row.deleted_at.isoformat(),
                "reason": row.reason,
                "article_id": row.article_id,
                "url": row.canonical_url,
            }
            for row in rows
        ]
    if as_json:
        typer.echo(json.dumps({"total": total, "tombstones": listed}, indent=2))
        return
    typer.echo(f"{total} tombstones" + (f", newest {len(listed)}:" if listed else ""))
    if listed:
        print_table(
            ["deleted at", "reason", "article", "url"],
            [[item["deleted_at"], item["reason"], str(item["article_id"]), item["url"]] for item in listed],
        )


def register(app: typer.Typer) -> None:
    app.command("retention")(retention)
    app.command("tombstones")(tombstones)
