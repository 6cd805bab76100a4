"""A served app over a store holding the report fixture (hostile feed text included) and four users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import add_users, web_settings

from narrwatch.context import AppContext


@pytest.fixture
def store(ctx: AppContext, tmp_path: Path) -> dict[str, Any]:
    """The report fixture, seeds copied to a scratch narratives folder, users."""
    import shutil

    from report_fixtures import Hostile, build_report_fixture

    narratives = tmp_path / "narratives"
    shutil.copytree(ctx.settings.narratives_dir, narratives, ignore=shutil.ignore_patterns("*.md"))
    ctx.settings = ctx.settings.model_copy(update={"narratives_dir": narratives})
    ids = build_report_fixture(ctx, Hostile("http://127.0.0.1:9"))
    add_users(ctx)
    return ids


@pytest.fixture
def client(ctx: AppContext, store: dict[str, Any]) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from narrwatch.web.app import create_app

    with TestClient(create_app(ctx, web_settings()), base_url="http://testserver") as test_client:
        yield test_client
