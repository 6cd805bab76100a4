"""Helpers of the web tests: accounts, settings, logging in through the form."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

# The report tests' fixture rows (hostile feed text included) are the web tests' store too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "report"))

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
