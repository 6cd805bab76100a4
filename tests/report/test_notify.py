"""The optional notification: off by default, faked notifiers, then Airflow's real ones on loopback."""

from __future__ import annotations

import email
import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import DAY, NOW, RISING_TITLE, build_report_fixture

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article
from narrwatch.ops import notify
from narrwatch.ops.notify import NotificationError, ServedLinks, notify_report, slack_text
from narrwatch.steps.report import render_report

pytestmark = pytest.mark.db
APP = "http://127.0.0.1:8000"  # where the served app is, as NARRWATCH_WEB_BASE_URL would say


class FakeNotifier:
    """Records what a notifier was built with and how it was called."""

    instances: list[FakeNotifier] = []
    fail_channel: str | None = None

    def __init__(self, channel: str, **kwargs: Any) -> None:
        self.channel = channel
        self.kwargs = kwargs
        self.notified: list[dict[str, Any]] = []
        FakeNotifier.instances.append(self)

    def notify(self, context: dict[str, Any]) -> None:
        if self.channel == FakeNotifier.fail_channel:
            raise ConnectionError(f"{self.channel} is down")
        self.notified.append(context)

    def __call__(self, context: dict[str, Any]) -> None:
        raise AssertionError("notifier(context) renders feed text as Jinja: call notify() instead")


@pytest.fixture
def fake_notifiers(monkeypatch: pytest.MonkeyPatch) -> type[FakeNotifier]:
    FakeNotifier.instances = []
    FakeNotifier.fail_channel = None
    monkeypatch.setattr(
        notify, "_notifier_class", lambda channel: lambda **kwargs: FakeNotifier(channel, **kwargs)
    )
    return FakeNotifier


@pytest.fixture
def report_dir(ctx: AppContext) -> Path:
    build_report_fixture(ctx)
    return render_report(ctx, DAY, NOW).out_dir


def with_channels(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update=values)


def test_off_by_default_sends_nothing(
    settings: Settings, report_dir: Path, fake_notifiers: type[FakeNotifier]
) -> None:
    assert (settings.notify_email_conn_id, settings.notify_slack_conn_id) == (None, None)
    result = notify_report(settings, report_dir, base_url=APP)
    assert result.as_dict() == {"day": DAY.isoformat(), "sent": [], "off": ["email", "slack"]}
    assert fake_notifiers.instances == []


def test_email_and_slack_get_the_summary_through_notify(
    settings: Settings, report_dir: Path, fake_notifiers: type[FakeNotifier]
) -> None:
    configured = with_channels(
        settings,
        notify_email_conn_id="smtp_team",
        notify_email_to="desk@example.org, lead@example.org",
        notify_slack_conn_id="slack_team",
    )
    result = notify_report(configured, report_dir, context={"run_id": "r1"}, base_url=APP)
    assert result.sent == ["email", "slack"] and result.off == []
    email, slack = fake_notifiers.instances
    assert email.kwargs["smtp_conn_id"] == "smtp_team"
    assert email.kwargs["to"] == ["desk@example.org", "lead@example.org"]
    assert email.kwargs["subject"] == f"narrwatch report {DAY.isoformat()}: 2 rising"
    assert email.kwargs["files"] == [str(report_dir / "report.html")]
    body = email.kwargs["html_content"]
    assert body.startswith("<!doctype html>") and RISING_TITLE in body and "<pre" not in body
    assert "<script>" not in body and "&lt;script&gt;" in body
    # links go to the served pages (NARRWATCH_WEB_BASE_URL's default here), never to javascript:
    assert f'href="http://127.0.0.1:8000/day/{DAY.isoformat()}"' in body and "javascript:" not in body
    assert slack.kwargs["slack_webhook_conn_id"] == "slack_team"
    assert slack.kwargs["unfurl_links"] is False and slack.kwargs["unfurl_media"] is False
    assert email.notified == [{"run_id": "r1"}] and slack.notified == [{"run_id": "r1"}]


def test_one_failing_channel_does_not_stop_the_other(
    settings: Settings, report_dir: Path, fake_notifiers: type[FakeNotifier]
) -> None:
    fake_notifiers.fail_channel = "email"
    configured = with_channels(
        settings, notify_email_conn_id="smtp", notify_email_to="a@example.org", notify_slack_conn_id="s"
    )
    with pytest.raises(NotificationError, match="email: ConnectionError: email is down"):
        notify_report(configured, report_dir, base_url=APP)
    assert [n.channel for n in fake_notifiers.instances if n.notified] == ["slack"]


def test_email_without_recipients_names_the_setting(
    settings: Settings, report_dir: Path, fake_notifiers: type[FakeNotifier]
) -> None:
    with pytest.raises(NotificationError, match="NARRWATCH_NOTIFY_EMAIL_TO"):
        notify_report(with_channels(settings, notify_email_conn_id="smtp"), report_dir, base_url=APP)


def test_missing_report_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    configured = with_channels(settings, notify_slack_conn_id="s")
    with pytest.raises(NotificationError, match="report.json"):
        notify_report(configured, tmp_path, base_url=APP)


def test_slack_text_escapes_mentions_and_markup(report_dir: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())
    report["rising"][0]["title"] = "<!channel> urgent <https://evil.test|click> & more"
    text = slack_text(report, ServedLinks("https://narrwatch.example.org"))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://evil.test|click>" not in text and "&amp; more" in text
    # the only angle brackets left are links to http(s) article URLs
    for link in [part.split(">")[0] for part in text.split("<")[1:]]:
        assert link.startswith(("https://", "http://")), link
    assert "javascript:" not in text
    day_url = f"https://narrwatch.example.org/day/{DAY.isoformat()}"
    assert text.endswith(f"Full report: <{day_url}|{day_url}>")


# --- Airflow's own notifiers, with Connections from the environment, against loopback servers ------


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: every message body lands in ``server.messages``."""

    def handle(self) -> None:
        def reply(line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")
            self.wfile.flush()

        reply("220 localhost ESMTP test")
        in_data = False
        lines: list[str] = []
        while raw := self.rfile.readline():
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if in_data:
                if line == ".":
                    self.server.messages.append("\n".join(lines))  # type: ignore[attr-defined]
                    in_data, lines = False, []
                    reply("250 queued")
                else:
                    lines.append(line[1:] if line.startswith("..") else line)
                continue
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                reply("250 OK")
            elif verb == "DATA":
                in_data = True
                reply("354 go ahead")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:
                reply("502 not implemented")


class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.posts.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_servers() -> Iterator[tuple[Any, Any]]:
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    smtp.messages = []  # type: ignore[attr-defined]
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _WebhookHandler)
    hook.posts = []  # type: ignore[attr-defined]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (smtp, hook)]
    for thread in threads:
        thread.start()
    try:
        yield smtp, hook
    finally:
        for server in (smtp, hook):
            server.shutdown()
            server.server_close()


def test_airflow_notifiers_deliver_through_connections(
    ctx: AppContext,
    settings: Settings,
    loopback_servers: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("airflow.providers.smtp.notifications.smtp")
    pytest.importorskip("airflow.providers.slack.notifications.slack_webhook")
    smtp, hook = loopback_servers
    monkeypatch.setenv(
        "AIRFLOW_CONN_NARRWATCH_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp.server_address[1],
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "narrwatch@example.org"},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_NARRWATCH_SLACK",
        json.dumps({"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{hook.server_address[1]}/h"}),
    )
    ids = build_report_fixture(ctx)
    # A headline written as a Jinja expression must arrive as written, not evaluated.
    with ctx.transaction() as session:
        article = session.get(Article, ids["article_ids"][3])
        assert article is not None and article.outlet == "delta"
        article.title = "{{ 7 * 7 }} {{ conf }} Ministers warn NATO is encircling Serbia"
    out_dir = render_report(ctx, DAY, NOW).out_dir
    configured = with_channels(
        settings,
        notify_email_conn_id="narrwatch_smtp",
        notify_email_to="desk@example.org",
        notify_slack_conn_id="narrwatch_slack",
    )
    result = notify_report(configured, out_dir, base_url=APP)
    assert result.sent == ["email", "slack"]

    (raw,) = smtp.messages
    message = email.message_from_string(raw)
    assert message["Subject"] == f"narrwatch report {DAY.isoformat()}: 2 rising"
    assert (message["From"], message["To"]) == ("narrwatch@example.org", "desk@example.org")
    parts = {part.get_content_type(): part for part in message.walk() if not part.is_multipart()}
    payload = parts["text/html"].get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert RISING_TITLE in body and "{{ 7 * 7 }} {{ conf }} Ministers warn" in body
    attachment = [p for p in message.walk() if p.get_filename() == "report.html"]
    assert attachment and b"Content-Security-Policy" in attachment[0].get_payload(decode=True)
    (post,) = hook.posts
    assert post["unfurl_links"] is False
    assert "{{ 7 * 7 }} {{ conf }} Ministers warn" in post["text"] and "49" not in post["text"]
    assert RISING_TITLE in post["text"]
