"""The embed step and reconciliation against SQL and Qdrant (:memory: or a local folder)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from embeddings_support import add_articles, add_feed
from sqlalchemy import delete, func, select, update

from narrwatch.config import BUNDLED_MODEL, Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article, ArticleEmbedding, Passage
from narrwatch.domain.urls import point_uuid
from narrwatch.embeddings import collections as collections_mod
from narrwatch.embeddings.model_source import resolve_model_dir
from narrwatch.embeddings.newsgen import generate_articles
from narrwatch.embeddings.points import canonical_id, vector_from_bytes
from narrwatch.ports import VectorPoint
from narrwatch.steps.embed import embed as vectorize
from narrwatch.steps.embed import reconcile

pytestmark = pytest.mark.db

NOW = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)
LONG_CYRILLIC = " ".join(["Влада је у понедељак саопштила да план неће бити прихваћен без гласања."] * 25)


@pytest.fixture
def small_batches(ctx: AppContext) -> AppContext:
    ctx.settings = ctx.settings.model_copy(update={"embed_batch_articles": 4})
    return ctx


def sample(n: int) -> list[tuple[str, str]]:
    return [(a.title, a.text) for a in generate_articles(n, seed=7)]


def sql_points(ctx: AppContext, collection: str) -> dict[str, tuple[int, int]]:
    with ctx.transaction() as session:
        rows = session.execute(
            select(Passage.point_id, Passage.article_id, Passage.idx).where(Passage.collection == collection)
        ).all()
    return {row.point_id: (row.article_id, row.idx) for row in rows}


def sql_vectors(ctx: AppContext, collection: str) -> dict[str, np.ndarray]:
    with ctx.transaction() as session:
        rows = session.execute(
            select(Passage.point_id, Passage.vector).where(
                Passage.collection == collection, Passage.vector.is_not(None)
            )
        ).all()
    return {canonical_id(row.point_id): vector_from_bytes(row.vector) for row in rows}


def marks(ctx: AppContext, collection: str) -> dict[int, int]:
    with ctx.transaction() as session:
        return dict(
            session.execute(
                select(ArticleEmbedding.article_id, ArticleEmbedding.n_passages).where(
                    ArticleEmbedding.collection == collection
                )
            ).all()
        )


def assert_consistent(ctx: AppContext, collection: str, n_articles: int) -> None:
    """Every article marked once, every passage one point, no point without a passage."""
    store = ctx.vector_store
    points = sql_points(ctx, collection)
    ids = list(store.iter_ids(collection))
    assert len(ids) == len(set(ids)) == len(points) == store.count(collection)
    assert set(ids) == set(points)
    marked = marks(ctx, collection)
    assert len(marked) == n_articles
    per_article: dict[int, list[int]] = {}
    for article_id, idx in points.values():
        per_article.setdefault(article_id, []).append(idx)
    for article_id, n_passages in marked.items():
        assert sorted(per_article.get(article_id, [])) == list(range(n_passages))
    kept = sql_vectors(ctx, collection)
    assert set(kept) == set(points), "every passage row keeps its point's vector"
    for point_id, vector in store.retrieve_vectors(collection, list(points)).items():
        assert np.allclose(kept[canonical_id(point_id)], vector, atol=1e-6)
    report = reconcile.reconcile_vectors(ctx, NOW, mend=False)
    assert (report.orphan_points, report.missing_points) == (0, 0)


def test_embed_pending_embeds_every_article_once(small_batches: AppContext) -> None:
    ctx = small_batches
    add_feed(ctx)
    texts = [*sample(8), ("Влада о плану", LONG_CYRILLIC), ("", "")]
    ids = add_articles(ctx, texts, language="sr")
    report = vectorize.embed_pending(ctx, NOW)
    collection = collections_mod.collection_for(ctx.encoder)

    assert report.collection == collection
    assert report.articles_embedded == 9 and report.empty_articles == 1
    assert report.batches == 3 and report.pending == 0
    assert report.passages_embedded == ctx.vector_store.count(collection) > 9, "the long article has several"
    assert report.alias == collection
    assert_consistent(ctx, collection, n_articles=10)

    # Point ids are uuid5(canonical URL, passage index), and the payload describes the article.
    points = sql_points(ctx, collection)
    for point_id, (article_id, idx) in points.items():
        assert point_id == point_uuid(f"https://news.example/a/{ids.index(article_id)}", idx)
    hit = ctx.vector_store.search(collection, ctx.encoder.encode_queries([texts[8][0]])[0], 1)[0]
    assert points[hit.id][0] == ids[8]
    assert hit.payload["article_id"] == ids[8]
    assert hit.payload["language"] == "sr" and hit.payload["outlet"] == "Outlet One"
    assert hit.payload["country"] == "RS" and hit.payload["feed_id"] == "f1"
    assert hit.payload["published_ts"] == (dt.datetime(2025, 3, 1, 16, 0, tzinfo=dt.UTC)).timestamp()
    assert hit.payload["fingerprint"] == ctx.encoder.fingerprint
    assert hit.payload["backend"] == ctx.encoder.backend
    with ctx.transaction() as session:
        mark = session.get(ArticleEmbedding, (ids[0], collection))
        assert mark is not None and mark.embedded_at == NOW and mark.backend == ctx.encoder.backend

    again = vectorize.embed_pending(ctx, NOW)
    assert (again.articles_embedded, again.batches, again.passages_embedded) == (0, 0, 0)
    assert_consistent(ctx, collection, n_articles=10)


def test_limit_embeds_only_that_many(small_batches: AppContext) -> None:
    ctx = small_batches
    add_feed(ctx)
    add_articles(ctx, sample(7))
    first = vectorize.embed_pending(ctx, NOW, limit=5)
    assert first.articles_embedded == 5 and first.pending == 2 and first.alias is None
    rest = vectorize.embed_pending(ctx, NOW)
    assert rest.articles_embedded == 2 and rest.pending == 0
    assert_consistent(ctx, rest.collection, n_articles=7)
    assert vectorize.embed_pending(ctx, NOW, limit=0).articles_embedded == 0


def test_reconcile_finds_and_mends_orphans_and_missing_points(ctx: AppContext) -> None:
    add_feed(ctx)
    ids = add_articles(ctx, sample(6))
    collection = vectorize.embed_pending(ctx, NOW).collection
    store = ctx.vector_store
    points = sql_points(ctx, collection)
    lost = next(pid for pid, (article_id, _) in points.items() if article_id == ids[2])
    store.delete(collection, [lost])
    stray = VectorPoint(
        id=point_uuid("https://elsewhere.example/gone", 0),
        vector=ctx.encoder.encode_passages(["stray"])[0],
        payload={"article_id": 999},
    )
    store.upsert(collection, [stray])

    dry = reconcile.reconcile_vectors(ctx, NOW, mend=False)
    assert (dry.orphan_points, dry.missing_points, dry.articles_unmarked) == (1, 1, 0)
    assert store.count(collection) == 6 and len(marks(ctx, collection)) == 6, "a dry run changes nothing"
    assert dry.as_dict()["collections"][0]["collection"] == collection

    mended = reconcile.reconcile_vectors(ctx, NOW)
    assert (mended.orphan_points, mended.missing_points, mended.articles_unmarked) == (1, 1, 0)
    assert mended.points_restored == 1, "the lost point is written again from the vector SQL keeps"
    assert stray.id not in set(store.iter_ids(collection))
    assert lost in set(store.iter_ids(collection)) and ids[2] in marks(ctx, collection)
    restored = store.retrieve_vectors(collection, [lost])[canonical_id(lost)]
    assert np.allclose(restored, sql_vectors(ctx, collection)[canonical_id(lost)], atol=1e-6)
    assert vectorize.embed_pending(ctx, NOW).articles_embedded == 0
    assert_consistent(ctx, collection, n_articles=6)

    # a passage row without a kept vector (written before SQL kept them): its article is unmarked
    with ctx.transaction() as session:
        session.execute(update(Passage).where(Passage.point_id == lost).values(vector=None))
    store.delete(collection, [lost])
    unkept = reconcile.reconcile_vectors(ctx, NOW)
    assert (unkept.missing_points, unkept.articles_unmarked, unkept.points_restored) == (1, 1, 0)
    assert ids[2] not in marks(ctx, collection)
    redo = vectorize.embed_pending(ctx, NOW)
    assert redo.articles_embedded == 1
    assert_consistent(ctx, collection, n_articles=6)


def test_deleted_articles_leave_orphans_that_reconcile_removes(ctx: AppContext) -> None:
    add_feed(ctx)
    ids = add_articles(ctx, sample(4))
    collection = vectorize.embed_pending(ctx, NOW).collection
    with ctx.transaction() as session:  # what retention does: the rows go, the points stay behind
        session.execute(delete(Article).where(Article.id == ids[0]))
    report = reconcile.reconcile_vectors(ctx, NOW)
    assert (report.orphan_points, report.missing_points) == (1, 0)
    assert_consistent(ctx, collection, n_articles=3)


def test_changed_text_resplits_keeps_point_ids_and_drops_stale_points(ctx: AppContext) -> None:
    add_feed(ctx)
    [article_id] = add_articles(ctx, [("Влада о плану", LONG_CYRILLIC)])
    collection = vectorize.embed_pending(ctx, NOW).collection
    before = sql_points(ctx, collection)
    assert len(before) > 2
    first_point = next(pid for pid, (_, idx) in before.items() if idx == 0)

    with ctx.transaction() as session:
        # A corrected text, and a canonical URL rule change: ids stay as first stored anyway.
        session.execute(
            update(Article)
            .where(Article.id == article_id)
            .values(text="Кратак текст.", canonical_url="https://news.example/moved")
        )
        session.execute(delete(ArticleEmbedding).where(ArticleEmbedding.article_id == article_id))
    report = vectorize.embed_pending(ctx, NOW)
    assert report.passages_embedded == 1 and report.stale_passages_removed == len(before) - 1
    after = sql_points(ctx, collection)
    assert list(after) == [first_point]
    with ctx.transaction() as session:
        assert (
            session.scalar(select(Passage.text).where(Passage.point_id == first_point))
            == "Влада о плану\nКратак текст."
        )
    assert_consistent(ctx, collection, n_articles=1)


def test_crash_before_the_upsert_is_redone_without_duplicates(
    small_batches: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = small_batches
    add_feed(ctx)
    add_articles(ctx, sample(10))

    def crash(stage: str, batch: int) -> None:
        if (stage, batch) == ("passages", 2):
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(vectorize, "checkpoint_hook", crash)
    with pytest.raises(RuntimeError, match="simulated"):
        vectorize.embed_pending(ctx, NOW)
    collection = collections_mod.collection_for(ctx.encoder)
    assert len(marks(ctx, collection)) == 4
    assert len(sql_points(ctx, collection)) == 8 > ctx.vector_store.count(collection) == 4
    assert reconcile.reconcile_vectors(ctx, NOW, mend=False).orphan_points == 0, "rows come before points"

    monkeypatch.setattr(vectorize, "checkpoint_hook", None)
    vectorize.embed_pending(ctx, NOW)
    assert_consistent(ctx, collection, n_articles=10)


@pytest.fixture
def local_ctx(settings: Settings, ctx: AppContext, tmp_path: Path) -> Iterator[AppContext]:
    """The ``ctx`` database with Qdrant in a local folder, so two contexts can share it."""
    local = dataclasses.replace(
        ctx, settings=settings.model_copy(update={"qdrant_path": tmp_path / "qdrant"})
    )
    try:
        yield local
    finally:
        if local._vector_store is not None:
            local._vector_store.close()


def test_changing_the_model_makes_a_new_collection_and_keeps_the_old(
    local_ctx: AppContext, tmp_path: Path
) -> None:
    ctx = local_ctx
    add_feed(ctx)
    add_articles(ctx, sample(5))
    old = vectorize.embed_pending(ctx, NOW)
    store = ctx.vector_store
    old_ids = set(store.iter_ids(old.collection))

    other_model = tmp_path / "minilm-retrained"
    shutil.copytree(resolve_model_dir(BUNDLED_MODEL), other_model)
    (other_model / "README.md").write_text("a different model with the same architecture\n")
    changed = dataclasses.replace(
        ctx,
        settings=ctx.settings.model_copy(
            update={"embedding_model": str(other_model), "embedding_backend": "torch"}
        ),
        _encoder=None,
    )
    new = vectorize.embed_pending(changed, NOW)

    assert new.collection != old.collection
    assert new.collection.startswith("passages__minilm-retrained__384__")
    assert new.articles_embedded == 5 and new.fingerprint != old.fingerprint
    assert set(store.iter_ids(old.collection)) == old_ids, "the old collection is untouched"
    assert len(marks(ctx, old.collection)) == 5 and len(marks(ctx, new.collection)) == 5
    assert store.aliases()[vectorize.ALIAS] == new.collection
    assert_consistent(ctx, old.collection, n_articles=5)
    assert_consistent(changed, new.collection, n_articles=5)
    with ctx.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Passage)) == 10
    report = reconcile.reconcile_vectors(ctx, NOW, mend=False)
    assert [c.collection for c in report.collections] == sorted([old.collection, new.collection])


class _CountingStore:
    """Forwards to the real store and records which points were asked for."""

    def __init__(self, store: object) -> None:
        self.store = store
        self.asked: list[str] = []

    def retrieve_vectors(self, collection: str, ids: list[str]) -> dict[str, np.ndarray]:
        self.asked.extend(ids)
        return self.store.retrieve_vectors(collection, ids)  # type: ignore[attr-defined, no-any-return]


def test_matching_and_clustering_read_vectors_from_sql_and_the_store_only_for_rows_without(
    ctx: AppContext,
) -> None:
    from narrwatch.steps.cluster.cluster import passage_vectors
    from narrwatch.steps.match.stored import load_stored_articles

    add_feed(ctx)
    ids = add_articles(ctx, sample(5))
    collection = vectorize.embed_pending(ctx, NOW).collection
    counting = _CountingStore(ctx.vector_store)
    with ctx.transaction() as session:
        found, missing = load_stored_articles(session, counting, collection, ids)  # type: ignore[arg-type]
        clustered = passage_vectors(session, counting, collection, ids)  # type: ignore[arg-type]
    assert len(found) == 5 and not missing and set(clustered) == set(ids)
    assert counting.asked == [], "with every vector in SQL the store is not asked"

    # a row from before SQL kept vectors: that one point comes from the store, with the same result
    with ctx.transaction() as session:
        first = session.scalars(
            select(Passage).where(Passage.article_id == ids[0]).order_by(Passage.idx)
        ).first()
        assert first is not None
        session.execute(update(Passage).where(Passage.id == first.id).values(vector=None))
        lost_point = first.point_id
    with ctx.transaction() as session:
        again, _ = load_stored_articles(session, counting, collection, ids)  # type: ignore[arg-type]
    assert counting.asked == [lost_point]
    for before, after in zip(found, again, strict=True):
        assert np.allclose(before.vectors, after.vectors, atol=1e-6)


def test_a_changed_text_drops_the_kept_vector_until_it_is_embedded_again(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_feed(ctx)
    ids = add_articles(ctx, sample(2))
    collection = vectorize.embed_pending(ctx, NOW).collection
    before = sql_vectors(ctx, collection)
    with ctx.transaction() as session:
        session.execute(update(Article).where(Article.id == ids[0]).values(title="A new title entirely"))
        session.execute(delete(ArticleEmbedding).where(ArticleEmbedding.article_id == ids[0]))

    class Stop(Exception):
        pass

    def stop_after_the_rows(stage: str, batch: int) -> None:
        if stage == "passages":
            raise Stop

    monkeypatch.setattr(vectorize, "checkpoint_hook", stop_after_the_rows)
    with pytest.raises(Stop):
        vectorize.embed_pending(ctx, NOW)
    with ctx.transaction() as session:
        refreshed = session.execute(
            select(Passage.vector).where(Passage.article_id == ids[0], Passage.idx == 0)
        ).scalar_one()
    assert refreshed is None, "a passage whose text changed keeps no vector of the old text"
    monkeypatch.setattr(vectorize, "checkpoint_hook", None)
    assert vectorize.embed_pending(ctx, NOW).articles_embedded == 1
    after = sql_vectors(ctx, collection)
    changed = [p for p in before if not np.allclose(before[p], after[p], atol=1e-6)]
    assert changed, "the new text's vector replaced the old one"
    assert_consistent(ctx, collection, n_articles=2)


def test_reconcile_rebuilds_a_lost_collection_from_sql_without_encoding(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_feed(ctx)
    add_articles(ctx, sample(5))
    collection = vectorize.embed_pending(ctx, NOW).collection
    kept = sql_vectors(ctx, collection)
    ctx.vector_store.drop_collection(collection)  # the Qdrant volume is gone

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a rebuild from SQL encodes nothing")

    monkeypatch.setattr(type(ctx.encoder), "encode_passages", no_encoding)
    mended = reconcile.reconcile_vectors(ctx, NOW)
    assert (mended.missing_points, mended.points_restored, mended.articles_unmarked) == (
        len(kept),
        len(kept),
        0,
    )
    restored = ctx.vector_store.retrieve_vectors(collection, list(kept))
    assert set(restored) == set(kept)
    assert all(np.allclose(restored[p], kept[p], atol=1e-6) for p in kept)
    assert_consistent(ctx, collection, n_articles=5)


def test_reconcile_keeps_in_sql_the_vectors_of_rows_written_before_sql_kept_them(ctx: AppContext) -> None:
    from narrwatch.steps.match.stored import load_stored_articles

    add_feed(ctx)
    ids = add_articles(ctx, sample(4))
    collection = vectorize.embed_pending(ctx, NOW).collection
    kept = sql_vectors(ctx, collection)
    with ctx.transaction() as session:  # as a store embedded before migration 0010 has them
        session.execute(update(Passage).where(Passage.article_id.in_(ids[:3])).values(vector=None))
    unkept = len(kept) - len(sql_vectors(ctx, collection))
    assert unkept > 0

    dry = reconcile.reconcile_vectors(ctx, NOW, mend=False)
    assert (dry.vectors_unkept, dry.vectors_copied) == (unkept, 0)
    mended = reconcile.reconcile_vectors(ctx, NOW)
    assert (mended.vectors_unkept, mended.vectors_copied, mended.articles_unmarked) == (unkept, unkept, 0)
    again = sql_vectors(ctx, collection)
    assert set(again) == set(kept) and all(np.allclose(again[p], kept[p], atol=1e-6) for p in kept)
    counting = _CountingStore(ctx.vector_store)
    with ctx.transaction() as session:
        found, _ = load_stored_articles(session, counting, collection, ids)  # type: ignore[arg-type]
    assert len(found) == 4 and counting.asked == []
    assert reconcile.reconcile_vectors(ctx, NOW, mend=False).vectors_unkept == 0
