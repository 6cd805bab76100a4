"""A real crash: the embed step is SIGKILLed between an upsert and its marks, then rerun.

The child process runs ``embed_pending`` on the test's database with Qdrant in a local folder. Its
``vectorize.checkpoint_hook`` writes a marker once the second batch is in Qdrant but not yet marked
in SQL, then blocks; the parent sees the marker and kills the child with SIGKILL (no cleanup, no
``finally``, the way the OOM killer or a lost node ends a task). The rerun must embed every article
exactly once and leave nothing for reconcile to mend.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from embeddings_support import add_articles, add_feed
from sqlalchemy import select

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import ArticleEmbedding, Passage
from narrwatch.embeddings import collections as collections_mod
from narrwatch.embeddings.newsgen import generate_articles
from narrwatch.steps.embed import embed as vectorize
from narrwatch.steps.embed import reconcile

pytestmark = pytest.mark.db

NOW = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)
BATCH = 5
N_ARTICLES = 18  # four batches: 5, 5, 5, 3

CHILD = textwrap.dedent(
    """
    import datetime as dt, sys, time
    from pathlib import Path
    from narrwatch.steps.embed import embed as vectorize
    from narrwatch.embeddings import collections as collections_mod
    from narrwatch.config import Settings
    from narrwatch.context import AppContext

    settings = Settings.model_validate_json(Path(sys.argv[1]).read_text())
    marker = Path(sys.argv[2])

    def stop_after_second_upsert(stage, batch):
        if (stage, batch) == ("upserted", 2):
            marker.write_text("upserted")
            time.sleep(600)  # the parent kills us here

    vectorize.checkpoint_hook = stop_after_second_upsert
    ctx = AppContext.from_settings(settings)
    vectorize.embed_pending(ctx, dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC))
    """
)


def test_sigkill_between_upsert_and_mark_then_rerun(
    ctx: AppContext, settings: Settings, tmp_path: Path
) -> None:
    add_feed(ctx)
    add_articles(ctx, [(a.title, a.text) for a in generate_articles(N_ARTICLES, seed=11)])
    child_settings = settings.model_copy(
        update={"qdrant_path": tmp_path / "qdrant", "embed_batch_articles": BATCH}
    )
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(child_settings.model_dump_json())
    marker = tmp_path / "marker"

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(settings_file), str(marker)])
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, f"the embed child exited early with {child.returncode}"
            assert time.monotonic() < deadline, "the embed child never reached the second upsert"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    rerun_ctx = AppContext(settings=child_settings, engine=ctx.engine, sessions=ctx.sessions)
    try:
        collection = collections_mod.collection_for(rerun_ctx.encoder)
        store = rerun_ctx.vector_store  # opens the folder the killed child held: its lock died with it
        with rerun_ctx.transaction() as session:
            marked_before = session.scalars(
                select(ArticleEmbedding.article_id).where(ArticleEmbedding.collection == collection)
            ).all()
            rows_before = session.execute(select(Passage.article_id, Passage.point_id)).all()
        article_ids = sorted({row.article_id for row in rows_before})
        # The kill landed after batch 2's upsert and before its marks: batch 1 is marked, batches
        # 1-2 are in Qdrant. Batch 3 is prepared while batch 2 is written, so its rows (one
        # transaction: all or none) may or may not have been committed; they have no points.
        assert sorted(marked_before) == article_ids[:BATCH]
        assert len(article_ids) in (2 * BATCH, 3 * BATCH)
        first_two = {row.point_id for row in rows_before if row.article_id in article_ids[: 2 * BATCH]}
        assert set(store.iter_ids(collection)) == first_two
        assert reconcile.reconcile_vectors(rerun_ctx, NOW, mend=False).orphan_points == 0

        report = vectorize.embed_pending(rerun_ctx, NOW)
        assert report.articles_embedded == N_ARTICLES - BATCH
        assert report.pending == 0

        with rerun_ctx.transaction() as session:
            marked = session.scalars(
                select(ArticleEmbedding.article_id).where(ArticleEmbedding.collection == collection)
            ).all()
            point_ids = session.scalars(
                select(Passage.point_id).where(Passage.collection == collection)
            ).all()
        assert len(marked) == len(set(marked)) == N_ARTICLES
        ids_in_qdrant = list(store.iter_ids(collection))
        assert len(ids_in_qdrant) == len(set(ids_in_qdrant)) == len(point_ids) == store.count(collection)
        assert set(ids_in_qdrant) == set(point_ids)

        check = reconcile.reconcile_vectors(rerun_ctx, NOW)
        assert (check.orphan_points, check.missing_points, check.articles_unmarked) == (0, 0, 0)
    finally:
        if rerun_ctx._vector_store is not None:
            rerun_ctx._vector_store.close()
