"""`db` and `embeddings` are generic top-level names: make sure they are this repository's."""

from __future__ import annotations

from pathlib import Path

import db
import embeddings
import narrwatch

REPO = Path(__file__).resolve().parent.parent


def test_top_level_packages_come_from_this_repository() -> None:
    for module in (db, embeddings, narrwatch):
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().is_relative_to(REPO), module.__file__


def test_required_top_level_layout_exists() -> None:
    for name in ("dags", "narratives", "embeddings", "db", "tests", "pyproject.toml", "docker-compose.yml"):
        assert (REPO / name).exists(), name
