"""`narrwatch vectors ...`: the state of the Qdrant projection and its reconciliation with SQL."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from narrwatch.context import AppContext

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
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Delete orphan points; write missing ones again from SQL (or queue them for embedding).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --repair: delete orphans even when they are many.")
    ] = False,
    now: Annotated[str | None, typer.Option("--now", help="Logical time, ISO 8601 (default: now).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Report orphan points and articles whose points are missing; mend them with --repair.

    Orphans (points no SQL passage claims) are deleted; missing points are written again from the
    vectors SQL keeps (a lost collection is rebuilt this way, without encoding), and articles
    embedded before SQL kept vectors lose their embedded mark so the next `narrwatch embed` restores
    them. A repair deletes at most 5 % of a collection's points (more looks like the wrong database)
    unless --force; it then exits 1.
    """
    from narrwatch import pipeline
    from narrwatch.cli.main import app_context, parse_now
    from narrwatch.steps.embed.reconcile_guard import ReconcileRefused

    if force and not repair:
        typer.echo("error: --force only applies to --repair", err=True)
        raise typer.Exit(2)
    at = parse_now(now)
    refused: ReconcileRefused | None = None
    with app_context() as ctx:
        try:
            if repair:
                try:
                    summary = pipeline.reconcile(ctx, at, mend=True, force=force)
                except ReconcileRefused as exc:
                    refused = exc
                    summary = _last_reconcile_summary(ctx)
            else:
                from narrwatch.steps.embed.reconcile import reconcile_vectors

                summary = reconcile_vectors(ctx, at, mend=False).as_dict()
        except Exception as exc:
            _fail_known(exc)
            raise
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_reconcile(summary, repair)
    if refused is not None:
        typer.echo(f"error: {refused}", err=True)
        raise typer.Exit(1)


def _last_reconcile_summary(ctx: AppContext) -> dict[str, Any]:
    from sqlalchemy import select

    from narrwatch.db.models import PipelineRun

    with ctx.transaction() as session:
        row = session.scalars(
            select(PipelineRun)
            .where(PipelineRun.step == "reconcile")
            .order_by(PipelineRun.id.desc())
            .limit(1)
        ).one()
        return dict(row.summary or {})


def _print_reconcile(summary: dict[str, Any], repair: bool) -> None:
    for check in summary["collections"]:
        typer.echo(
            f"{check['collection']}: {check['points']} points, {check['passages']} passages, "
            f"{check['articles_embedded']} articles embedded"
        )
    refused = any(check.get("refused") for check in summary["collections"])
    if not repair:
        orphan_note = "would be deleted by --repair"
        missing_note = "--repair writes them again from the vectors SQL keeps, or re-embeds their articles"
    else:
        orphan_note = "NOT deleted, see below" if refused else "deleted"
        missing_note = (
            f"{summary['points_restored']} written again from SQL, "
            f"{summary['articles_unmarked']} articles queued to re-embed"
        )
    typer.echo(f"orphan points: {summary['orphan_points']} ({orphan_note})")
    typer.echo(f"missing points: {summary['missing_points']} ({missing_note})")
    if summary["vectors_unkept"]:
        kept_note = f"{summary['vectors_copied']} copied" if repair else "--repair copies them from the store"
        typer.echo(f"passage vectors SQL does not keep yet: {summary['vectors_unkept']} ({kept_note})")


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
    from narrwatch.steps.embed.embed import ALIAS, count_pending
    from narrwatch.steps.embed.reconcile import known_collections

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
    from narrwatch.embeddings.encoder_errors import EncoderError
    from narrwatch.embeddings.store import VectorStoreError

    if isinstance(exc, EncoderError | VectorStoreError):
        _fail(exc)
