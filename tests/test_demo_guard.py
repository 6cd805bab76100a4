"""`narrwatch demo` only ever deletes or writes a folder it made, under NARRWATCH_DATA_DIR by default."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from narrwatch.config import get_settings
from narrwatch.ops import demo
from narrwatch.ops.demo_folder import MARKER, DemoFolderError, prepare_demo_folder

# The package's `main` attribute is the entry function, so the module is imported by name.
cli = importlib.import_module("narrwatch.cli.main")


@pytest.fixture
def no_replay(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the settings the demo would run with instead of replaying 35 days."""
    seen: list[Any] = []

    def record(settings: Any, echo: Any = print, on_day: Any = None) -> Any:
        seen.append(settings)
        raise SystemExit(0)

    monkeypatch.setattr(demo, "run_demo_with", record)
    return seen


def test_fresh_refuses_a_folder_the_demo_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("precious", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["demo", "--fresh", "--data-dir", str(tmp_path)])
    assert isinstance(result.exception, cli.UsageError)  # main() prints it, exit 2
    assert "no .narrwatch-demo marker" in str(result.exception) and "nothing was deleted" in str(
        result.exception
    )
    assert (tmp_path / "feeds.yaml").read_text(encoding="utf-8") == "precious"
    # and without --fresh nothing is written into it either (the demo writes its own feeds.yaml)
    with pytest.raises(DemoFolderError, match="nothing was written"):
        prepare_demo_folder(tmp_path, fresh=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["feeds.yaml"]


def test_fresh_deletes_a_folder_the_demo_made(tmp_path: Path) -> None:
    folder = prepare_demo_folder(tmp_path / "demo", fresh=False)
    (folder / "narrwatch.db").write_text("old run", encoding="utf-8")
    prepare_demo_folder(folder, fresh=True)
    assert sorted(path.name for path in folder.iterdir()) == [MARKER]
    with pytest.raises(DemoFolderError, match="is a file"):
        prepare_demo_folder(folder / MARKER, fresh=True)


def test_the_demo_runs_under_narrwatch_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_replay: list[Any]
) -> None:
    monkeypatch.setenv("NARRWATCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit):
            demo.run_demo()
    finally:
        get_settings.cache_clear()
    (settings,) = no_replay
    folder = tmp_path / "data" / "demo"
    assert settings.data_dir == folder and (folder / MARKER).is_file()
    for path in (
        Path(settings.feeds_file),
        Path(settings.resolved_database_url.removeprefix("sqlite:///")),
        Path(settings.resolved_qdrant_path),
        settings.resolved_reports_dir,
        settings.resolved_models_dir,
    ):
        assert path.resolve().is_relative_to((tmp_path / "data").resolve()), path


def test_a_demo_folder_from_before_the_marker_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n- {id: a, tags: [outlet, demo]}\n- {id: b, tags: [demo]}\n", encoding="utf-8"
    )
    (tmp_path / "narrwatch.db").write_text("old run", encoding="utf-8")
    prepare_demo_folder(tmp_path, fresh=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == [MARKER]
