"""`narrwatch vectors ...`: the state of the Qdrant projection and its reconciliation with SQL."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

vectors_app = typer.Typer(
    help="Qdrant collections: status and reconciliation with SQL.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(vectors_app, name="vectors")


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@vectors_app.command("reconcile")
def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count; change nothing.")] = False,
    now: Annotated[str | None, typer.Option("--now", help="Logical time, ISO 8601 (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Find (and unless --dry-run, mend) orphan points and articles whose points are missing.

    Orphans (points no SQL passage claims) are deleted; articles whose points are missing lose their
    embedded mark so the next `narrwatch embed` restores them.
    """
    from narrwatch import pipeline
    from narrwatch.cli.main import app_context, parse_now

    at = parse_now(now)
    with app_context() as ctx:
        try:
            if dry_run:
                from narrwatch.steps.embed.embed import reconcile_vectors

                summary = reconcile_vectors(ctx, at, mend=False).as_dict()
            else:
                summary = pipeline.reconcile(ctx, at, mend=True)
        except Exception as exc:
            _fail_known(exc)
            raise
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    verb = "would be" if dry_run else "were"
    for check in summary["collections"]:
        typer.echo(
            f"{check['collection']}: {check['points']} points, {check['passages']} passages, "
            f"{check['articles_embedded']} articles embedded"
        )
    typer.echo(f"orphan points: {summary['orphan_points']} ({verb} deleted)")
    typer.echo(
        f"missing points: {summary['missing_points']} "
        f"({summary['articles_unmarked'] if not dry_run else 'their'} articles {verb} queued to re-embed)"
    )


@vectors_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Collections in Qdrant with their point counts, the alias, and articles pending embedding."""
    from narrwatch.cli.main import app_context

    with app_context() as ctx:
        try:
            summary = collect_status(ctx)
        except Exception as exc:
            _fail_known(exc)
            raise
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    typer.echo(f"vector store: {summary['store']}")
    typer.echo(f"model: {summary['model']} ({summary['backend']}, fingerprint {summary['fingerprint']})")
    typer.echo(f"configured collection: {summary['configured_collection']}")
    typer.echo(f"alias {summary['alias']} -> {summary['alias_target'] or '(not set)'}")
    for row in summary["collections"]:
        typer.echo(
            f"  {row['collection']}: {row['points']} points, {row['articles_embedded']} articles embedded, "
            f"{row['pending']} pending"
        )
    typer.echo(f"articles pending for the configured model: {summary['pending']}")


def collect_status(ctx: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from narrwatch.db.models import ArticleEmbedding
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.steps.embed.embed import ALIAS, count_pending, known_collections

    encoder = ctx.encoder
    store = ctx.vector_store
    configured = collection_for(encoder)
    names = sorted(set(known_collections(ctx, store)) | {configured})
    with ctx.transaction() as session:
        embedded = dict(
            session.execute(
                select(ArticleEmbedding.collection, func.count()).group_by(ArticleEmbedding.collection)
            ).all()
        )
    aliases = store.aliases() if hasattr(store, "aliases") else {}
    return {
        "store": getattr(store, "where", "?"),
        "model": encoder.model_name,
        "backend": encoder.backend,
        "fingerprint": encoder.fingerprint,
        "configured_collection": configured,
        "alias": ALIAS,
        "alias_target": aliases.get(ALIAS),
        "pending": count_pending(ctx, configured),
        "collections": [
            {
                "collection": name,
                "points": store.count(name),
                "articles_embedded": int(embedded.get(name, 0)),
                "pending": count_pending(ctx, name),
            }
            for name in names
        ],
    }


def _fail_known(exc: Exception) -> None:
    """Errors the user can act on (busy store, missing model) print one line, not a traceback."""
    from narrwatch.embeddings.encoder import EncoderError
    from narrwatch.embeddings.store import VectorStoreError

    if isinstance(exc, EncoderError | VectorStoreError):
        _fail(exc)
