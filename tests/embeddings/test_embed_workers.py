"""Work claims: embed workers running at once share the backlog, each article embedded exactly once.

Run on SQLite by ``make test`` and on PostgreSQL (``FOR UPDATE SKIP LOCKED``) by ``.ci/run``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from embeddings_support import add_articles, add_feed
from sqlalchemy import func, select

from narrwatch.claims import Claimer
from narrwatch.context import AppContext
from narrwatch.db.models import ArticleEmbedding, Passage, WorkClaim
from narrwatch.embeddings.newsgen import generate_articles
from narrwatch.steps.embed import embed as vectorize
from narrwatch.steps.embed import reconcile

pytestmark = pytest.mark.db

NOW = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)
N_ARTICLES = 48


def worker_context(ctx: AppContext, store: Any) -> AppContext:
    """A second worker: its own engine and sessions, the same database, encoder and vector store."""
    own = AppContext.from_settings(ctx.settings)
    return dataclasses.replace(own, _encoder=ctx.encoder, _vector_store=store)


def test_two_concurrent_embed_workers_embed_every_article_exactly_once(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings = ctx.settings.model_copy(update={"embed_batch_articles": 4})
    add_feed(ctx)
    add_articles(ctx, [(a.title, a.text) for a in generate_articles(N_ARTICLES, seed=11)])
    store = ctx.vector_store
    workers = [worker_context(ctx, store) for _ in range(2)]

    prepared_by: dict[str, list[int]] = {}
    real_prepare = vectorize._prepare_batch
    start = threading.Barrier(2)

    def recording_prepare(
        c: AppContext, encoder: Any, collection: str, articles: Sequence[Any], n: int
    ) -> Any:
        prepared_by.setdefault(threading.current_thread().name, []).extend(a.id for a in articles)
        return real_prepare(c, encoder, collection, articles, n)

    monkeypatch.setattr(vectorize, "_prepare_batch", recording_prepare)
    reports: dict[str, vectorize.EmbedReport] = {}
    errors: list[BaseException] = []

    def run(name: str, worker: AppContext) -> None:
        try:
            start.wait()
            reports[name] = vectorize.embed_pending(worker, NOW)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}", w), name=f"w{i}") for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for worker in workers:
        worker._vector_store = None  # shared with ctx, closed there
        worker.close()
    assert not errors, errors

    seen = Counter(article_id for ids in prepared_by.values() for article_id in ids)
    assert len(seen) == N_ARTICLES and set(seen.values()) == {1}, "each article encoded by one worker once"
    assert all(prepared_by.get(f"w{i}") for i in range(2)), f"both workers took work: {prepared_by}"
    assert sum(r.articles_embedded + r.empty_articles for r in reports.values()) == N_ARTICLES

    collection = reports["w0"].collection
    with ctx.transaction() as session:
        marked = session.scalar(
            select(func.count())
            .select_from(ArticleEmbedding)
            .where(ArticleEmbedding.collection == collection)
        )
        passages = session.scalar(
            select(func.count()).select_from(Passage).where(Passage.collection == collection)
        )
        claims_left = session.scalar(select(func.count()).select_from(WorkClaim))
    assert marked == N_ARTICLES
    assert passages == store.count(collection) == len(set(store.iter_ids(collection)))
    assert claims_left == 0, "every claim released with its marks"
    check = reconcile.reconcile_vectors(ctx, NOW, mend=False)
    assert (check.orphan_points, check.missing_points) == (0, 0)


def claim_all(ctx: AppContext, claimer: Claimer, size: int = 100) -> list[int]:
    from narrwatch.db.models import Article

    with ctx.transaction() as session:
        return claimer.claim(session, select(Article.id), size)


def test_live_claims_are_skipped_expired_and_dead_ones_taken_over(ctx: AppContext) -> None:
    add_feed(ctx)
    ids = add_articles(ctx, [(f"title {i}", f"text {i}") for i in range(6)])
    lease = dt.timedelta(minutes=10)
    first = Claimer("embed", "c", lease)
    second = Claimer("embed", "c", lease)
    assert claim_all(ctx, first, size=4) == ids[:4]
    assert claim_all(ctx, second) == ids[4:], "the other worker's live claims are skipped"
    assert claim_all(ctx, Claimer("match", "c", lease)) == ids, "claims are per kind of work"

    expired = Claimer("embed", "c2", dt.timedelta(seconds=-1))
    assert claim_all(ctx, expired) == ids
    assert claim_all(ctx, Claimer("embed", "c2", lease)) == ids, "an expired lease is taken over"

    # A worker process on this host that died: its live claims are taken over at once.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    assert dead_pid != os.getpid()
    import socket

    dead = Claimer("embed", "c3", lease, worker=f"{socket.gethostname()}:{dead_pid}:deadbeef")
    assert claim_all(ctx, dead) == ids
    taker = Claimer("embed", "c3", lease)
    assert claim_all(ctx, taker) == ids

    with ctx.transaction() as session:
        taker.release(session, ids[:2])
    with ctx.transaction() as session:
        held = set(session.scalars(select(WorkClaim.article_id).where(WorkClaim.worker == taker.worker)))
    assert held == set(ids[2:])
