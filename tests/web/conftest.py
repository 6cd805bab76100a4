"""A served app over a store holding the report fixture (hostile feed text included) and three users."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "report"))

from report_fixtures import Hostile, build_report_fixture  # noqa: E402

from narrwatch.context import AppContext  # noqa: E402
from narrwatch.web.accounts import add_user  # noqa: E402
from narrwatch.web.settings import WebSettings  # noqa: E402

PASSWORD = "correct horse battery"
NOW = dt.datetime(2025, 3, 13, 6, 0, tzinfo=dt.UTC)
USERS = {"ana": "analyst", "rita": "reader", "otto": "operator", "adam": "admin"}


def web_settings(**values: Any) -> WebSettings:
    return WebSettings(_env_file=None, secret_key="test-secret-key-" + "x" * 32, **values)  # type: ignore[call-arg]


def add_users(ctx: AppContext) -> None:
    for name, role in USERS.items():
        add_user(ctx, name, role, PASSWORD, NOW)


@pytest.fixture
def store(ctx: AppContext, tmp_path: Path) -> dict[str, Any]:
    """The report fixture, seeds copied to a scratch narratives folder, users."""
    import shutil

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


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )
