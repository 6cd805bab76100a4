"""`narrwatch match` with a bad seed file among good ones: the good seeds are matched and stored,
the command exits 1 with one line per bad file, and the failed run records which files."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from narratives_support import KOSOVO_TEXT, NATO_TEXT, T0, WEATHER_TEXT, embed, store_articles
from sqlalchemy import select
from typer.testing import CliRunner

from narrwatch.context import AppContext
from narrwatch.db.models import Match, PipelineRun

# The package's `main` attribute is the entry function, so the module is imported by name.
cli = importlib.import_module("narrwatch.cli.main")

pytestmark = pytest.mark.db

NOW = T0 + dt.timedelta(days=10)


def test_match_skips_bad_seed_files_stores_the_rest_and_exits_non_zero(
    nctx: AppContext, seeds_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_articles(nctx, [("Aggression", NATO_TEXT), ("Province", KOSOVO_TEXT), ("Weather", WEATHER_TEXT)])
    embed(nctx)
    (seeds_dir / "broken.yaml").write_text("id: broken\n  title: x\n", encoding="utf-8")
    (seeds_dir / "bomb.yaml").write_text("a: &a [1, 2]\nb: [*a, *a]\n", encoding="utf-8")

    @contextmanager
    def shared_context() -> Iterator[AppContext]:
        yield nctx  # the test's context: its Qdrant is in memory

    monkeypatch.setattr(cli, "app_context", shared_context)
    start = (T0 - dt.timedelta(days=1)).isoformat()
    result = CliRunner().invoke(
        cli.app, ["match", "--now", NOW.isoformat(), "--start", start], catch_exceptions=True
    )
    # CliRunner does not go through main(): the exception it raised is what main() turns into lines.
    assert isinstance(result.exception, cli.SeedFilesSkipped)
    lines = result.exception.lines
    assert len(lines) == 2
    assert any("broken.yaml:2: (yaml)" in line for line in lines)
    assert any("bomb.yaml" in line and "aliases" in line for line in lines)

    with nctx.transaction() as session:
        matched = set(session.scalars(select(Match.narrative_id)))
        run = session.scalars(select(PipelineRun).where(PipelineRun.step == "match")).one()
    assert "nato-aggressor" in matched
    assert run.status == "failed" and "broken.yaml" in (run.error or "")
    assert run.summary["skipped_seed_files"] == lines
    assert run.summary["seeds"] >= 3


def test_main_prints_one_line_per_bad_file_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing() -> None:
        raise cli.SeedFilesSkipped(["a.yaml: id: x", "b.yaml:3: (yaml): y"])

    monkeypatch.setattr(cli, "app", failing)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: seed file skipped: a.yaml: id: x",
        "error: seed file skipped: b.yaml:3: (yaml): y",
    ]
