"""The daily summary through Airflow's SMTP notifier into a loopback aiosmtpd server: the message
arrives with the right subject, new flags first, and every link in it opens a page of the served app."""

from __future__ import annotations

import email
import json
import re
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from report_fixtures import DAY, NOW, RISING_SEED, RISING_TITLE
from web_helpers import login

from narrwatch.context import AppContext
from narrwatch.ops.notify import notify_day
from narrwatch.steps.report import render_report

pytestmark = pytest.mark.db
BASE = "http://testserver"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _html_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html" and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no HTML body")


def test_daily_summary_arrives_with_working_links(
    ctx: AppContext,
    store: dict[str, Any],
    client: Any,
    smtp_server: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp_server
    monkeypatch.setenv(
        "AIRFLOW_CONN_NARRWATCH_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "narrwatch@example.org"},
            }
        ),
    )
    render_report(ctx, DAY, NOW)
    settings = ctx.settings.model_copy(
        update={"notify_email_conn_id": "narrwatch_smtp", "notify_email_to": "desk@example.org"}
    )
    result = notify_day(settings, DAY, base_url=BASE)
    assert result.sent == ["email"]

    ((recipients, raw),) = inbox.messages
    assert recipients == ["desk@example.org"]
    message = email.message_from_bytes(raw)
    assert message["Subject"] == f"narrwatch report {DAY.isoformat()}: 2 rising"
    body = _html_part(message)
    assert RISING_TITLE in body and "<pre" not in body and "<script" not in body.lower()
    attachments = [part.get_filename() for part in message.walk() if part.get_filename()]
    assert attachments == ["report.html"]

    links = re.findall(r'href="(http://testserver/[^"]*)"', body)
    assert f"{BASE}/day/{DAY.isoformat()}" in links and f"{BASE}/narratives/{RISING_SEED}" in links
    assert f"{BASE}/review" in links and any("/clusters/" in link for link in links)
    login(client, "rita")
    for link in links:
        page = client.get(link.removeprefix(BASE))
        assert page.status_code == 200, link
    assert RISING_TITLE in client.get(f"/narratives/{RISING_SEED}").text
