"""The embed step (its SQL <-> Qdrant reconciliation: ``narrwatch.steps.embed.reconcile``).

SQL is the source of truth and Qdrant a projection of the ``passages`` table, kept in step by the
order of writes (an outbox):

1. the article's ``passages`` rows are committed, each with a point id fixed at first insert
   (``uuid5`` of the canonical URL and passage index) and never recomputed;
2. the passages are encoded and upserted into Qdrant with ``wait=True``;
3. only then is the article marked in ``article_embeddings``, and each passage row keeps its
   point's vector (``passages.vector``) in the same transaction.

Matching and clustering read the vectors from the passage rows, so they do not open the vector
store (at 1M points opening Qdrant Edge takes seconds per process); rows written before SQL kept
vectors, or whose text changed, are read from the store instead.

A crash between 2 and 3 leaves points without a mark: the rerun encodes the article again and
upserts the same ids, which overwrites them, so nothing is stored twice. Reconciliation removes
points that no ``passages`` row claims (e.g. articles deleted by retention) and unmarks articles
whose points are gone, so the next embed run restores them.

Each model (name, dimension and file fingerprint) has its own collection: changing the model starts
a new collection and leaves the old one and its SQL rows untouched. The alias ``narrwatch_passages``
moves to the configured model's collection once every article is embedded there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, delete, exists, func, select, update

from narrwatch.claims import Claimer
from narrwatch.context import AppContext
from narrwatch.db.models import Article, ArticleEmbedding, Base, Passage
from narrwatch.db.session import dialect_insert
from narrwatch.embeddings.collections import collection_for

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from narrwatch.ports import Encoder, VectorPoint, VectorStore

#: Stable name for "the passages of the model in use", for tools outside narrwatch.
ALIAS = "narrwatch_passages"

#: Test hook: called as ``hook(stage, batch_number)`` at each stage of a batch ("passages" after the
#: rows are committed, "upserted" after Qdrant acknowledged, "marked" after the marks are committed;
#: the last two run in the writer thread).
#: The crash test sets it in a child process to stop at an exact point and kill the process there.
checkpoint_hook: Callable[[str, int], None] | None = None


@dataclass
class EmbedReport:
    collection: str
    model_name: str
    backend: str
    fingerprint: str
    articles_embedded: int = 0
    passages_embedded: int = 0
    empty_articles: int = 0  # no title and no text: marked with zero passages, never retried
    stale_passages_removed: int = 0  # passages of a previous split that the new split no longer has
    batches: int = 0
    pending: int = 0  # articles still without vectors in this collection after the run
    alias: str | None = None  # the collection the alias points at after the run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _PendingArticle:
    id: int
    canonical_url: str
    feed_id: str
    outlet: str
    country: str
    language: str | None
    title: str
    body: str
    published_at: dt.datetime


# --- embed ---------------------------------------------------------------------------------------


def embed_pending(
    ctx: AppContext,
    now: dt.datetime,
    *,
    limit: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EmbedReport:
    """Embed articles that have no vectors in the configured model's collection, oldest id first.

    Batches are pipelined: while one batch's points are written to Qdrant and its marks to SQL (a
    writer thread, mostly waiting on I/O), the next batch is split and encoded. A batch is marked
    only after its own upsert returned, so the write order of the module docstring holds per batch.
    ``on_batch`` hears the number of articles of each batch encoded (a progress display).
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    encoder = ctx.encoder
    store = ctx.vector_store
    collection = collection_for(encoder)
    store.ensure_collection(collection, encoder.dimension)
    report = EmbedReport(
        collection=collection,
        model_name=encoder.model_name,
        backend=encoder.backend,
        fingerprint=encoder.fingerprint,
    )
    claimer = Claimer("embed", collection, dt.timedelta(seconds=ctx.settings.work_claim_lease_s))
    # Every later batch reads only ids above the first pending one: no batch joins the whole history.
    after_first = after_id = _first_pending(ctx, collection) - 1
    selected = 0
    # One writer: Qdrant's local mode and SQLite both want a single writer, and one batch in
    # flight is enough to hide the writes behind the next batch's encoding.
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="narrwatch-embed-writer") as writer:
            in_flight: Future[_Written] | None = None
            while limit is None or selected < limit:
                size = ctx.settings.embed_batch_articles
                if limit is not None:
                    size = min(size, limit - selected)
                articles = _next_pending(ctx, claimer, after_id, size)
                if not articles:
                    break
                after_id = articles[-1].id
                selected += len(articles)
                report.batches += 1
                batch = _prepare_batch(ctx, encoder, collection, articles, report.batches)
                if in_flight is not None:
                    _add_written(report, in_flight.result())
                in_flight = writer.submit(_write_batch, ctx, encoder, store, claimer, batch, now)
                if on_batch is not None:
                    on_batch(len(articles))
            if in_flight is not None:
                _add_written(report, in_flight.result())
    except BaseException:
        # Hand the unfinished batches back at once rather than when the lease runs out.
        with ctx.transaction() as session:
            claimer.release_all(session)
        raise

    report.pending = count_pending(ctx, collection, after_first)
    if report.pending == 0:
        report.alias = _point_alias(store, collection)
    return report


def count_pending(ctx: AppContext, collection: str, after_id: int = 0) -> int:
    """Articles with no vectors in ``collection`` (of those with an id above ``after_id``)."""
    with ctx.transaction() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Article)
                .where(Article.id > after_id, ~_is_embedded(collection, after_id))
            )
            or 0
        )


def _first_pending(ctx: AppContext, collection: str) -> int:
    """The lowest id of an article with no vectors in ``collection`` (one past the last id if none)."""
    with ctx.transaction() as session:
        first = session.scalar(select(func.min(Article.id)).where(~_is_embedded(collection)))
        if first is None:
            first = (session.scalar(select(func.max(Article.id))) or 0) + 1
    return int(first)


def _is_embedded(collection: str, after_id: int = 0) -> Any:
    # the bound repeats the outer query's: the planner then reads only the marks above it
    return exists().where(
        ArticleEmbedding.article_id == Article.id,
        ArticleEmbedding.collection == collection,
        ArticleEmbedding.article_id > after_id,
    )


def _next_pending(ctx: AppContext, claimer: Claimer, after_id: int, size: int) -> list[_PendingArticle]:
    """Claim the next batch of unembedded articles (keyset on id), then read them."""
    candidates = select(Article.id).where(Article.id > after_id, ~_is_embedded(claimer.collection, after_id))
    with ctx.transaction() as session:
        ids = claimer.claim(session, candidates, size)
    if not ids:
        return []
    query = (
        select(
            Article.id,
            Article.canonical_url,
            Article.feed_id,
            Article.outlet,
            Article.country,
            Article.language,
            Article.title,
            Article.text,
            Article.summary,
            Article.published_at,
        )
        .where(Article.id.in_(ids))
        .order_by(Article.id)
    )
    with ctx.transaction() as session:
        rows = session.execute(query).all()
    return [
        _PendingArticle(
            id=row.id,
            canonical_url=row.canonical_url,
            feed_id=row.feed_id,
            outlet=row.outlet,
            country=row.country,
            language=row.language,
            title=row.title or "",
            # Full text when the feed or page gave one, else the feed's summary.
            body=row.text if (row.text or "").strip() else (row.summary or ""),
            published_at=row.published_at,
        )
        for row in rows
    ]


def _checkpoint(stage: str, batch_number: int) -> None:
    if checkpoint_hook is not None:
        checkpoint_hook(stage, batch_number)


@dataclass
class _Batch:
    number: int
    articles: Sequence[_PendingArticle]
    split: dict[int, list[str]]
    stale: list[tuple[int, str]]  # (row id, point id) of passages a new split no longer has
    points: list[VectorPoint]


@dataclass(frozen=True)
class _Written:
    articles: int
    empty: int
    passages: int
    stale: int


def _add_written(report: EmbedReport, written: _Written) -> None:
    report.articles_embedded += written.articles
    report.empty_articles += written.empty
    report.passages_embedded += written.passages
    report.stale_passages_removed += written.stale


def _prepare_batch(
    ctx: AppContext,
    encoder: Encoder,
    collection: str,
    articles: Sequence[_PendingArticle],
    number: int,
) -> _Batch:
    """Split, commit the passage rows (the outbox), encode. Touches SQL and the CPU, not Qdrant."""
    from narrwatch.domain.urls import point_uuid
    from narrwatch.embeddings.passages import split_passages
    from narrwatch.ports import VectorPoint

    split = {a.id: split_passages(a.title, a.body, encoder) for a in articles}
    with ctx.transaction() as session:
        stale = _sync_passage_rows(session, collection, articles, split, point_uuid)
        rows = session.execute(
            select(Passage.article_id, Passage.idx, Passage.point_id).where(
                Passage.collection == collection, Passage.article_id.in_([a.id for a in articles])
            )
        ).all()
    point_ids = {(row.article_id, row.idx): row.point_id for row in rows}
    _checkpoint("passages", number)

    owners = [(article, idx) for article in articles for idx in range(len(split[article.id]))]
    points: list[VectorPoint] = []
    if owners:
        vectors = encoder.encode_passages([split[article.id][idx] for article, idx in owners])
        points = [
            VectorPoint(
                id=point_ids[(article.id, idx)],
                vector=vectors[position],
                payload=_payload(article, idx, encoder),
            )
            for position, (article, idx) in enumerate(owners)
        ]
    return _Batch(number=number, articles=articles, split=split, stale=stale, points=points)


def _write_batch(
    ctx: AppContext,
    encoder: Encoder,
    store: VectorStore,
    claimer: Claimer,
    batch: _Batch,
    now: dt.datetime,
) -> _Written:
    """Qdrant first (acknowledged writes), then the marks, which release the claims. Writer thread."""
    collection = claimer.collection
    if batch.stale:
        # Points of passages a new split no longer has: gone from Qdrant before their rows go.
        store.delete(collection, [point_id for _, point_id in batch.stale])
        with ctx.transaction() as session:
            session.execute(delete(Passage).where(Passage.id.in_([row_id for row_id, _ in batch.stale])))
    if batch.points:
        store.upsert(collection, batch.points)
    _checkpoint("upserted", batch.number)

    with ctx.transaction() as session:
        keep_vectors(session, collection, {point.id: point.vector for point in batch.points})
        insert = dialect_insert(session, ArticleEmbedding).values(
            [
                {
                    "article_id": article.id,
                    "collection": collection,
                    "n_passages": len(batch.split[article.id]),
                    "model_name": encoder.model_name,
                    "backend": encoder.backend,
                    "model_fingerprint": encoder.fingerprint,
                    "embedded_at": now,
                }
                for article in batch.articles
            ]
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["article_id", "collection"],
                set_={
                    "n_passages": insert.excluded.n_passages,
                    "model_name": insert.excluded.model_name,
                    "backend": insert.excluded.backend,
                    "model_fingerprint": insert.excluded.model_fingerprint,
                    "embedded_at": insert.excluded.embedded_at,
                },
            )
        )
        claimer.release(session, [article.id for article in batch.articles])
    _checkpoint("marked", batch.number)
    return _Written(
        articles=sum(1 for a in batch.articles if batch.split[a.id]),
        empty=sum(1 for a in batch.articles if not batch.split[a.id]),
        passages=len(batch.points),
        stale=len(batch.stale),
    )


def keep_vectors(
    session: Session, collection: str, vectors: Mapping[str, Any], *, only_unkept: bool = False
) -> None:
    """Point id -> vector into the passage rows of those points: the embed step's acknowledged points
    (in the transaction of the marks), and reconcile copying the store's vectors of older rows
    (``only_unkept``: a row an embed run has filled meanwhile keeps that run's vector)."""
    from narrwatch.embeddings.points import vector_bytes

    if not vectors:
        return
    table = Base.metadata.tables[Passage.__tablename__]  # a Core update: one statement, many rows
    conditions = [table.c.collection == collection, table.c.point_id == bindparam("point")]
    if only_unkept:
        conditions.append(table.c.vector.is_(None))
    session.execute(
        update(table).where(*conditions).values(vector=bindparam("vector_bytes")),
        [
            {"point": str(point_id), "vector_bytes": vector_bytes(vector)}
            for point_id, vector in vectors.items()
        ],
    )


def _sync_passage_rows(
    session: Session,
    collection: str,
    articles: Sequence[_PendingArticle],
    split: dict[int, list[str]],
    point_uuid: Callable[[str, int], Any],
) -> list[tuple[int, str]]:
    """Insert missing passage rows, refresh changed texts; return (row id, point id) of stale rows."""
    existing = session.execute(
        select(Passage.id, Passage.article_id, Passage.idx, Passage.text, Passage.point_id).where(
            Passage.collection == collection, Passage.article_id.in_([a.id for a in articles])
        )
    ).all()
    known = {(row.article_id, row.idx): row for row in existing}
    new_rows = []
    for article in articles:
        for idx, text in enumerate(split[article.id]):
            row = known.get((article.id, idx))
            if row is None:
                new_rows.append(
                    {
                        "article_id": article.id,
                        "collection": collection,
                        "idx": idx,
                        "text": text,
                        "point_id": str(point_uuid(article.canonical_url, idx)),
                    }
                )
            elif row.text != text:  # the old vector no longer describes it
                session.execute(update(Passage).where(Passage.id == row.id).values(text=text, vector=None))
    if new_rows:
        session.execute(
            dialect_insert(session, Passage)
            .values(new_rows)
            .on_conflict_do_nothing(index_elements=["article_id", "collection", "idx"])
        )
    counts = {article.id: len(split[article.id]) for article in articles}
    return [(row.id, row.point_id) for row in existing if row.idx >= counts[row.article_id]]


def _payload(article: _PendingArticle, idx: int, encoder: Encoder) -> dict[str, Any]:
    return point_payload(article, idx, encoder.model_name, encoder.backend, encoder.fingerprint)


class PointOwner(Protocol):
    """What a point's payload says of its article (an ``Article`` row has it too)."""

    @property
    def id(self) -> int: ...
    @property
    def feed_id(self) -> str: ...
    @property
    def outlet(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def language(self) -> str | None: ...
    @property
    def published_at(self) -> dt.datetime: ...


def point_payload(
    article: PointOwner, idx: int, model_name: str, backend: str, fingerprint: str
) -> dict[str, Any]:
    """A passage point's payload: written by the embed step, and by reconcile restoring a point
    from the vector SQL keeps."""
    return {
        "article_id": article.id,
        "passage_idx": idx,
        "feed_id": article.feed_id,
        "outlet": article.outlet,
        "country": article.country,
        "language": article.language,
        "published_ts": article.published_at.timestamp(),
        # Which model made the vector, so a point is self-describing outside narrwatch too.
        "model": model_name,
        "backend": backend,
        "fingerprint": fingerprint,
    }


def _point_alias(store: VectorStore, collection: str) -> str | None:
    set_alias = getattr(store, "set_alias", None)
    if set_alias is None:  # a VectorStore without aliases (a test fake)
        return None
    set_alias(ALIAS, collection)
    return collection
