"""Reconciliation of SQL and Qdrant: orphan points deleted; missing points restored from the vectors
SQL keeps, or, where SQL has none (rows written before it kept them), their articles unmarked so the
next embed run encodes them again."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Article, ArticleEmbedding, Passage
from narrwatch.embeddings.collections import COLLECTION_PREFIX

if TYPE_CHECKING:
    from narrwatch.ports import VectorStore

log = logging.getLogger(__name__)


@dataclass
class CollectionCheck:
    collection: str
    points: int
    passages: int
    articles_embedded: int
    orphan_points: int
    missing_points: int
    articles_unmarked: int
    points_restored: int = 0
    vectors_unkept: int = 0  # current passage rows without a kept vector whose point the store has
    vectors_copied: int = 0
    refused: str | None = None  # why the orphans were not deleted (narrwatch.steps.embed.reconcile_guard)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReconcileReport:
    checked_at: dt.datetime
    mended: bool
    orphan_points: int = 0  # points in Qdrant that no passages row claims
    missing_points: int = 0  # points of embedded articles that Qdrant does not have
    articles_unmarked: int = 0  # articles whose marks were removed so the next embed restores them
    points_restored: int = 0  # missing points written again from the vectors SQL keeps
    vectors_unkept: int = 0  # passage rows (written before SQL kept vectors) whose vector the store has
    vectors_copied: int = 0  # ... copied into SQL
    collections: list[CollectionCheck] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "mended": self.mended,
            "orphan_points": self.orphan_points,
            "missing_points": self.missing_points,
            "articles_unmarked": self.articles_unmarked,
            "points_restored": self.points_restored,
            "vectors_unkept": self.vectors_unkept,
            "vectors_copied": self.vectors_copied,
            "collections": [check.as_dict() for check in self.collections],
        }


def reconcile_vectors(
    ctx: AppContext, now: dt.datetime, *, mend: bool = True, force: bool = False
) -> ReconcileReport:
    """Compare every narrwatch collection with SQL; with ``mend`` delete orphans, restore missing points
    from SQL's vectors and unmark the articles whose points cannot be restored.

    Reads in the order that keeps a concurrent embed run from looking inconsistent: marks first,
    then Qdrant's ids, then the passages rows (rows are committed before their points are written,
    and points are written before their articles are marked).
    """
    store = ctx.vector_store
    report = ReconcileReport(checked_at=now, mended=mend)
    for collection in known_collections(ctx, store):
        check = _reconcile_collection(ctx, store, collection, mend, force)
        report.collections.append(check)
        report.orphan_points += check.orphan_points
        report.missing_points += check.missing_points
        report.articles_unmarked += check.articles_unmarked
        report.points_restored += check.points_restored
        report.vectors_unkept += check.vectors_unkept
        report.vectors_copied += check.vectors_copied
    return report


def known_collections(ctx: AppContext, store: VectorStore) -> list[str]:
    """narrwatch's collections, in SQL or in Qdrant."""
    with ctx.transaction() as session:
        names = set(session.scalars(select(Passage.collection).distinct()))
        names.update(session.scalars(select(ArticleEmbedding.collection).distinct()))
    list_collections = getattr(store, "collections", None)
    if list_collections is not None:
        names.update(name for name in list_collections() if name.startswith(COLLECTION_PREFIX))
    return sorted(names)


def _reconcile_collection(
    ctx: AppContext, store: VectorStore, collection: str, mend: bool, force: bool
) -> CollectionCheck:
    from narrwatch.steps.embed.reconcile_guard import orphan_deletion_refusal

    with ctx.transaction() as session:
        marks = dict(
            session.execute(
                select(ArticleEmbedding.article_id, ArticleEmbedding.n_passages).where(
                    ArticleEmbedding.collection == collection
                )
            ).all()
        )
    in_qdrant = set(store.iter_ids(collection))
    with ctx.transaction() as session:
        passages = session.execute(
            select(
                Passage.article_id, Passage.idx, Passage.point_id, Passage.vector.is_(None).label("unkept")
            ).where(Passage.collection == collection)
        ).all()
    claimed = {row.point_id for row in passages}
    by_article: dict[int, dict[int, str]] = {}
    for row in passages:
        by_article.setdefault(row.article_id, {})[row.idx] = row.point_id

    orphans = sorted(in_qdrant - claimed)
    missing = 0
    to_unmark: list[int] = []
    for article_id, n_passages in marks.items():
        owned = by_article.get(article_id, {})
        absent = sum(1 for idx in range(n_passages) if owned.get(idx) not in in_qdrant)
        if absent:
            missing += absent
            to_unmark.append(article_id)

    # rows from before SQL kept vectors: the store's copy is the one to keep
    unkept = [
        row.point_id
        for row in passages
        if row.unkept and row.point_id in in_qdrant and row.idx < marks.get(row.article_id, 0)
    ]

    refused = orphan_deletion_refusal(collection, len(orphans), len(in_qdrant), force) if mend else None
    restored = copied = 0
    if mend:
        copied = _copy_store_vectors(ctx, store, collection, unkept)
        if orphans and refused is None:
            store.delete(collection, orphans)
        if to_unmark:
            restored, to_unmark = _restore_from_sql(ctx, store, collection, to_unmark, marks)
        if to_unmark:
            with ctx.transaction() as session:
                for start in range(0, len(to_unmark), 500):
                    session.execute(
                        delete(ArticleEmbedding).where(
                            ArticleEmbedding.collection == collection,
                            ArticleEmbedding.article_id.in_(to_unmark[start : start + 500]),
                        )
                    )
        if orphans or to_unmark or restored or copied:
            log.info(
                "reconcile %s: deleted %d orphan points, restored %d points from SQL, unmarked %d articles, "
                "kept %d vectors in SQL",
                collection,
                len(orphans),
                restored,
                len(to_unmark),
                copied,
            )
    return CollectionCheck(
        collection=collection,
        points=len(in_qdrant),
        passages=len(passages),
        articles_embedded=len(marks),
        orphan_points=len(orphans),
        missing_points=missing,
        articles_unmarked=len(to_unmark) if mend else 0,
        points_restored=restored,
        vectors_unkept=len(unkept),
        vectors_copied=copied,
        refused=refused,
    )


def _restore_from_sql(
    ctx: AppContext, store: VectorStore, collection: str, article_ids: list[int], marks: dict[int, int]
) -> tuple[int, list[int]]:
    """Write again the points of ``article_ids`` whose passage rows all keep a vector; returns the
    points written and the articles left (some passage without a vector), to be unmarked."""
    from narrwatch.embeddings.points import vector_from_bytes
    from narrwatch.ports import VectorPoint
    from narrwatch.steps.embed.embed import point_payload

    restored = 0
    left: list[int] = []
    for chunk in rules.chunked(article_ids):
        with ctx.transaction() as session:
            # only what a point carries: the articles' payload fields, the rows' ids and vectors
            articles = {
                row.id: row
                for row in session.execute(
                    select(
                        Article.id,
                        Article.feed_id,
                        Article.outlet,
                        Article.country,
                        Article.language,
                        Article.published_at,
                    ).where(Article.id.in_(chunk))
                )
            }
            models = {
                row.article_id: row
                for row in session.execute(
                    select(
                        ArticleEmbedding.article_id,
                        ArticleEmbedding.model_name,
                        ArticleEmbedding.backend,
                        ArticleEmbedding.model_fingerprint,
                    ).where(ArticleEmbedding.collection == collection, ArticleEmbedding.article_id.in_(chunk))
                )
            }
            kept: dict[int, dict[int, tuple[str, bytes]]] = {}
            for article_id, idx, point_id, vector in session.execute(
                select(Passage.article_id, Passage.idx, Passage.point_id, Passage.vector).where(
                    Passage.collection == collection,
                    Passage.article_id.in_(chunk),
                )
            ).tuples():
                if vector is not None:
                    kept.setdefault(article_id, {})[idx] = (point_id, vector)
        points: list[VectorPoint] = []
        for article_id in chunk:
            owned = kept.get(article_id, {})
            article, model = articles.get(article_id), models.get(article_id)
            if article is None or model is None or any(idx not in owned for idx in range(marks[article_id])):
                left.append(article_id)
                continue
            points.extend(
                VectorPoint(
                    id=owned[idx][0],
                    vector=vector_from_bytes(owned[idx][1]),
                    payload=point_payload(
                        article, idx, model.model_name, model.backend, model.model_fingerprint
                    ),
                )
                for idx in range(marks[article_id])
            )
        if points:
            # a store that lost the whole collection (a new Qdrant volume) gets it back here
            store.ensure_collection(collection, len(points[0].vector))
            store.upsert(collection, points)
            restored += len(points)
    return restored, left


def _copy_store_vectors(ctx: AppContext, store: VectorStore, collection: str, point_ids: list[str]) -> int:
    """Keep in SQL the store's vectors of ``point_ids`` (rows written before SQL kept vectors)."""
    from narrwatch.steps.embed.embed import keep_vectors

    copied = 0
    for chunk in rules.chunked(point_ids):
        found = store.retrieve_vectors(collection, chunk)
        with ctx.transaction() as session:
            keep_vectors(session, collection, found, only_unkept=True)
        copied += len(found)
    return copied
