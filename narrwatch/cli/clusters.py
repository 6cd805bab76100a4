"""`narrwatch clusters list | show ID | promote ID` and `narrwatch eval cluster | rising`.

Imported by the root CLI: heavy modules (numpy, the encoder, Qdrant) load inside the commands.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from narrwatch.cli.eval import eval_app

clusters_app = typer.Typer(
    help="Emerging clusters of articles that no seed narrative covers.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _summaries(session: Any, rows: list[Any]) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from narrwatch.db.models import Article
    from narrwatch.steps.cluster.cluster import members_of

    out = []
    for row in rows:
        members = members_of(session, row.id, row.collection)
        outlets = set(session.execute(select(Article.outlet).where(Article.id.in_(members))).scalars())
        out.append(
            {
                "id": row.id,
                "status": row.status,
                "merged_into": row.merged_into,
                "size": row.size,
                "outlets": len(outlets),
                "label": row.label,
                "representative_title": row.representative_title,
                "first_seen_at": row.first_seen_at.isoformat(),
                "last_seen_at": row.last_seen_at.isoformat(),
                "collection": row.collection,
            }
        )
    return out


@clusters_app.command("list")
def list_clusters(
    min_size: Annotated[int, typer.Option(help="Smallest cluster shown.")] = 2,
    limit: Annotated[int, typer.Option(help="Clusters shown, most recently active first.")] = 50,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include merged clusters (live and promoted by default).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Clusters, most recently active first, with size, distinct outlets and label."""
    from sqlalchemy import select

    from narrwatch.context import AppContext
    from narrwatch.db.models import Cluster

    ctx = AppContext.from_settings()
    try:
        with ctx.transaction() as session:
            query = select(Cluster).where(Cluster.size >= min_size)
            if not show_all:
                query = query.where(Cluster.status.in_(("live", "promoted")))
            rows = list(
                session.execute(
                    query.order_by(Cluster.last_seen_at.desc(), Cluster.id.desc()).limit(limit)
                ).scalars()
            )
            summaries = _summaries(session, rows)
    finally:
        ctx.close()
    if as_json:
        typer.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
        return
    if not summaries:
        typer.echo("no clusters (run `narrwatch cluster` after `narrwatch match`)")
        return
    typer.echo(f"{'id':>6} {'status':<9} {'size':>5} {'outlets':>7}  {'last seen':<16}  label / title")
    for item in summaries:
        typer.echo(
            f"{item['id']:>6} {item['status']:<9} {item['size']:>5} {item['outlets']:>7}  "
            f"{item['last_seen_at'][:16]:<16}  {item['label']}"
        )
        typer.echo(f"{'':>48}{item['representative_title']}")


@clusters_app.command("show")
def show_cluster(
    cluster_id: Annotated[int, typer.Argument(help="Cluster id (see `clusters list`).")],
    as_json: JsonFlag = False,
) -> None:
    """One cluster: label, representative title and its articles (with merged clusters')."""
    from sqlalchemy import select

    from narrwatch.context import AppContext
    from narrwatch.db.models import Article, Cluster, ClusterMember
    from narrwatch.steps.cluster.cluster import members_of

    ctx = AppContext.from_settings()
    try:
        with ctx.transaction() as session:
            row = session.get(Cluster, cluster_id)
            if row is None:
                _fail(f"no cluster with id {cluster_id} (see `narrwatch clusters list`)")
                return
            summary = _summaries(session, [row])[0]
            members = members_of(session, row.id, row.collection)
            articles = session.execute(
                select(Article, ClusterMember)
                .join(ClusterMember, ClusterMember.article_id == Article.id)
                .where(Article.id.in_(members), ClusterMember.collection == row.collection)
                .order_by(Article.published_at, Article.id)
            ).all()
            summary["merged_from"] = sorted(
                session.execute(select(Cluster.id).where(Cluster.merged_into == row.id)).scalars()
            )
            summary["articles"] = [
                {
                    "article_id": article.id,
                    "published_at": article.published_at.isoformat(),
                    "outlet": article.outlet,
                    "country": article.country,
                    "language": article.language,
                    "title": article.title,
                    "url": article.url,
                    "similarity": member.similarity,
                    "joined_cluster": member.cluster_id,
                }
                for article, member in articles
            ]
    finally:
        ctx.close()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"cluster {summary['id']} ({summary['status']}), {summary['size']} articles, "
        f"{summary['outlets']} outlets, {summary['first_seen_at'][:16]} to {summary['last_seen_at'][:16]}"
    )
    if summary["merged_into"]:
        typer.echo(f"merged into cluster {summary['merged_into']}")
    if summary["merged_from"]:
        typer.echo(f"absorbed clusters: {', '.join(map(str, summary['merged_from']))}")
    typer.echo(f"label: {summary['label']}")
    typer.echo(f"representative: {summary['representative_title']}")
    for item in summary["articles"]:
        typer.echo(
            f"  {item['published_at'][:16]}  {item['outlet']:<20} {item['similarity']:.3f}  {item['title']}"
        )


@clusters_app.command("promote")
def promote(
    cluster_id: Annotated[int, typer.Argument(help="Cluster id (see `clusters list`).")],
    narratives_dir: Annotated[
        Path | None, typer.Option("--dir", help="Where to write the draft (default: the narratives dir).")
    ] = None,
) -> None:
    """Write a draft seed narrative from the cluster (its most central passages as examples)."""
    from narrwatch.analyst.promote import promote_cluster
    from narrwatch.context import AppContext
    from narrwatch.steps.cluster.cluster import ClusteringError

    ctx = AppContext.from_settings()
    try:
        target = narratives_dir or ctx.settings.narratives_dir
        path = promote_cluster(ctx, cluster_id, target, dt.datetime.now(dt.UTC))
    except (ClusteringError, OSError) as exc:
        _fail(str(exc))
        return
    finally:
        ctx.close()
    typer.echo(f"wrote {path} (status: draft): edit it, then `narrwatch narratives validate`")


@eval_app.command("cluster")
def eval_cluster_command(
    articles: Annotated[Path, typer.Option("--articles", help="JSON Lines with a gold `cluster` per row.")],
    as_json: JsonFlag = False,
) -> None:
    """Online clustering of a labelled stream: B-cubed and pairwise precision, recall, F1."""
    from narrwatch.config import get_settings
    from narrwatch.eval.stream import StreamDataError, eval_cluster
    from narrwatch.steps.cluster.cluster import ClusteringError

    try:
        result = eval_cluster(articles, get_settings())
    except (StreamDataError, ClusteringError) as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"articles: {result['n_articles']}  clusters: {result['n_clusters']}")
    for name in ("bcubed", "pairwise"):
        scores = result[name]
        typer.echo(
            f"{name:<9} precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  "
            f"f1 {scores['f1']:.3f}"
        )


@eval_app.command("rising")
def eval_rising_command(
    articles: Annotated[Path, typer.Option("--articles", help="JSON Lines with `published` and `outlet`.")],
    narratives: Annotated[Path, typer.Option("--narratives", help="Directory of seed narrative files.")],
    as_json: JsonFlag = False,
) -> None:
    """Replay a stream day by day through matching and rising detection; print every flag."""
    from narrwatch.config import get_settings
    from narrwatch.eval.stream import StreamDataError, eval_rising
    from narrwatch.steps.match.seeds import NarrativeError

    try:
        run = eval_rising(articles, narratives, get_settings())
    except (StreamDataError, NarrativeError) as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps(run.flags, indent=2))
        return
    typer.echo(f"{run.days} days replayed, {len(run.all_flags)} flags ({len(run.flags)} seeds overall)")
    for flag in run.all_flags:
        typer.echo(
            f"{flag['date']}  {flag['kind']:<9} {flag['subject']:<36} {flag['dimension']}={flag['value']:<6} "
            f"x{flag['statistic']:.2f}  p={flag['p_value']:.2g}  {flag['count']} vs {flag['baseline']:.2f} "
            f"expected ({flag['window']} d, {'new' if flag['new'] else 'continuing'})  "
            f"outlets {flag['outlets']}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(clusters_app, name="clusters")
