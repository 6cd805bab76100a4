"""`narrwatch vectors status | reconcile` on a real database and a local Qdrant folder."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from embeddings_support import add_articles, add_feed
from sqlalchemy import delete
from typer.testing import CliRunner

from narrwatch.cli.main import app
from narrwatch.config import Settings, get_settings
from narrwatch.context import AppContext
from narrwatch.db.models import ArticleEmbedding, Passage
from narrwatch.embeddings.newsgen import generate_articles
from narrwatch.ports import VectorPoint
from narrwatch.steps.embed import embed as vectorize
from narrwatch.steps.embed.reconcile_guard import ALWAYS_ALLOWED_ORPHANS

pytestmark = pytest.mark.db

NOW = dt.datetime(2025, 3, 5, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def cli_ctx(
    ctx: AppContext, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    """Environment for the CLI pointing at the test database, a local Qdrant folder and the model cache."""
    qdrant = tmp_path / "qdrant"
    monkeypatch.setenv("NARRWATCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NARRWATCH_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("NARRWATCH_QDRANT_PATH", str(qdrant))
    monkeypatch.setenv("NARRWATCH_MODELS_DIR", str(settings.resolved_models_dir))
    monkeypatch.setenv("NARRWATCH_QDRANT_LOCK_TIMEOUT_S", "0")
    # the CLI reads the environment: the same model and backend as the test's context
    monkeypatch.setenv("NARRWATCH_EMBEDDING_MODEL", settings.embedding_model)
    monkeypatch.setenv("NARRWATCH_EMBEDDING_BACKEND", settings.embedding_backend)
    get_settings.cache_clear()
    local = AppContext(
        settings=settings.model_copy(update={"qdrant_path": qdrant}), engine=ctx.engine, sessions=ctx.sessions
    )
    try:
        yield local
    finally:
        if local._vector_store is not None:
            local._vector_store.close()
        get_settings.cache_clear()


def close_store(ctx: AppContext) -> None:
    """Local mode admits one process: the CLI below runs in this process but opens its own context."""
    if ctx._vector_store is not None:
        ctx._vector_store.close()
        ctx._vector_store = None


def test_status_and_reconcile(cli_ctx: AppContext) -> None:
    add_feed(cli_ctx)
    add_articles(cli_ctx, [(a.title, a.text) for a in generate_articles(3, seed=5)])
    runner = CliRunner()

    status = runner.invoke(app, ["vectors", "status", "--json"])
    assert status.exit_code == 0, status.output
    before = json.loads(status.output)
    assert before["pending"] == 3 and before["alias_target"] is None

    report = vectorize.embed_pending(cli_ctx, NOW)
    stray = VectorPoint(
        id="00000000-0000-5000-8000-000000000001",
        vector=cli_ctx.encoder.encode_passages(["stray"])[0],
        payload={},
    )
    cli_ctx.vector_store.upsert(report.collection, [stray])
    close_store(cli_ctx)

    status = runner.invoke(app, ["vectors", "status"])
    assert status.exit_code == 0, status.output
    assert f"alias narrwatch_passages -> {report.collection}" in status.output
    assert "articles pending for the configured model: 0" in status.output

    dry = runner.invoke(app, ["vectors", "reconcile"])  # a report only, unless --repair
    assert dry.exit_code == 0, dry.output
    assert "orphan points: 1 (would be deleted by --repair)" in dry.output
    assert "missing points: 0" in dry.output

    mend = runner.invoke(app, ["vectors", "reconcile", "--repair", "--json", "--now", "2025-03-05T12:00:00Z"])
    assert mend.exit_code == 0, mend.output
    summary = json.loads(mend.output)
    assert (summary["orphan_points"], summary["missing_points"]) == (1, 0)

    again = runner.invoke(app, ["vectors", "reconcile"])
    assert "orphan points: 0" in again.output


def test_repair_refuses_to_delete_most_points_without_force(cli_ctx: AppContext) -> None:
    add_feed(cli_ctx)
    add_articles(cli_ctx, [(a.title, a.text) for a in generate_articles(12, seed=7)])
    report = vectorize.embed_pending(cli_ctx, NOW)
    points = len(list(cli_ctx.vector_store.iter_ids(report.collection)))
    assert points > ALWAYS_ALLOWED_ORPHANS
    # SQL forgets the passages (an empty or wrong database): every point looks like an orphan
    with cli_ctx.transaction() as session:
        session.execute(delete(Passage))
        session.execute(delete(ArticleEmbedding))
    close_store(cli_ctx)
    runner = CliRunner()

    refused = runner.invoke(app, ["vectors", "reconcile", "--repair"])
    assert refused.exit_code == 1, refused.output
    assert f"{points} of {points} points (100%) have no passage" in refused.output
    assert f"orphan points: {points} (NOT deleted, see below)" in refused.output
    assert len(list(cli_ctx.vector_store.iter_ids(report.collection))) == points
    close_store(cli_ctx)

    forced = runner.invoke(app, ["vectors", "reconcile", "--repair", "--force"])
    assert forced.exit_code == 0, forced.output
    assert list(cli_ctx.vector_store.iter_ids(report.collection)) == []
    assert runner.invoke(app, ["vectors", "reconcile", "--force"]).exit_code == 2


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from narrwatch.embeddings.store import open_vector_store
    from narrwatch.config import Settings
    store = open_vector_store(Settings(qdrant_path=Path(sys.argv[1]), _env_file=None))
    Path(sys.argv[2]).write_text("open")
    time.sleep(120)
    """
)


def test_busy_local_folder_is_one_clear_line(cli_ctx: AppContext, tmp_path: Path) -> None:
    marker = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cli_ctx.settings.qdrant_path), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        result = CliRunner().invoke(app, ["vectors", "reconcile"])
        assert result.exit_code == 1
        assert f"error: vector folder {cli_ctx.settings.qdrant_path} is in use" in result.output
        assert f"pid {holder.pid}" in result.output and "NARRWATCH_QDRANT_URL" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()
