"""Optional notification of the daily report: email and/or Slack through Airflow's notifiers.

Off by default. A channel is on when its Airflow Connection id is set:
``NARRWATCH_NOTIFY_EMAIL_CONN_ID`` (an SMTP connection; plus ``NARRWATCH_NOTIFY_EMAIL_TO``) and
``NARRWATCH_NOTIFY_SLACK_CONN_ID`` (a Slack Incoming Webhook connection). Credentials and the webhook
URL live in the Connections, never in narrwatch settings. Airflow is imported only when a channel is
on, so the core install and the CLI never need it.

The message is built from the report folder's report.json: the email is an HTML summary (new flags
first) linking to the served pages (``NARRWATCH_WEB_BASE_URL``, see ``narrwatch serve``), with
report.html attached for offline reading; Slack gets the same summary in Slack's own markup. Feed text
is untrusted, so:

- notifiers are called through ``notify()``, never ``notifier(context)``: calling the notifier renders
  its template fields with Jinja, and a headline containing ``{{ ... }}`` would be evaluated;
- the email body is rendered by Jinja2 with autoescape, article links only http(s);
- Slack text has ``&``, ``<`` and ``>`` escaped (so no ``<!channel>`` mention or disguised link can be
  smuggled in) and link previews are off (Slack would otherwise fetch outlets' pages).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from narrwatch.config import Settings
from narrwatch.steps.report.markdown import format_p
from narrwatch.steps.report.render import HTML_NAME, JSON_NAME
from narrwatch.steps.report.safety import plain_text, safe_url

SLACK_MAX_CHARS = 3500  # Slack truncates long messages; the full report is one click away
SLACK_ITEMS = 5
SLACK_ARTICLES = 3


class NotificationError(RuntimeError):
    """A channel is misconfigured or failed to send: the message names the setting or channel."""


@dataclass
class NotifyReport:
    day: str
    sent: list[str] = field(default_factory=list)
    off: list[str] = field(default_factory=list)  # channels with no connection configured

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "sent": list(self.sent), "off": list(self.off)}


def enabled_channels(settings: Settings) -> list[str]:
    channels = []
    if settings.notify_email_conn_id:
        channels.append("email")
    if settings.notify_slack_conn_id:
        channels.append("slack")
    return channels


def notify_report(
    settings: Settings,
    report_dir: Path,
    context: Mapping[str, Any] | None = None,
    *,
    base_url: str,
) -> NotifyReport:
    """Send the report in ``report_dir`` (report.json, report.html) on every channel that is on.
    Every channel is tried; if any fails, ``NotificationError`` names them all afterwards.

    ``context`` is the Airflow task context when called from a task (notifiers accept it), else empty.
    ``base_url`` is where readers reach ``narrwatch serve`` (the caller passes ``NARRWATCH_WEB_BASE_URL``).
    """
    channels = enabled_channels(settings)
    report = _read_report(report_dir)
    links = ServedLinks(base_url)
    result = NotifyReport(day=str(report.get("day", "")))
    result.off = [c for c in ("email", "slack") if c not in channels]
    if not channels:
        return result
    recipients = _recipients(settings) if "email" in channels else []
    failures = []
    for channel in channels:
        try:
            if channel == "email":
                notifier = _notifier_class("email")(
                    to=recipients,
                    from_email=settings.notify_email_from,
                    subject=email_subject(report),
                    html_content=email_html(report, links),
                    files=[str(report_dir / HTML_NAME)],
                    smtp_conn_id=settings.notify_email_conn_id,
                )
            else:
                notifier = _notifier_class("slack")(
                    slack_webhook_conn_id=settings.notify_slack_conn_id,
                    text=slack_text(report, links),
                    unfurl_links=False,
                    unfurl_media=False,
                )
            # notify(), not notifier(context): the latter would Jinja-render feed text.
            notifier.notify(dict(context or {}))
        except Exception as exc:  # one channel's failure must not stop the other
            failures.append(f"{channel}: {type(exc).__name__}: {exc}")
        else:
            result.sent.append(channel)
    if failures:
        raise NotificationError("report notification failed on " + "; ".join(failures))
    return result


def _notifier_class(channel: str) -> Callable[..., Any]:
    """Airflow's notifier for a channel, imported only now (Airflow is an optional extra)."""
    try:
        if channel == "email":
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            return SmtpNotifier
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier
    except ImportError as exc:
        raise NotificationError(
            f"{channel} notification needs Airflow and its provider: pip install 'narrwatch[airflow]' ({exc})"
        ) from exc


def _recipients(settings: Settings) -> list[str]:
    recipients = [r.strip() for r in (settings.notify_email_to or "").split(",") if r.strip()]
    if not recipients:
        raise NotificationError(
            "NARRWATCH_NOTIFY_EMAIL_CONN_ID is set but NARRWATCH_NOTIFY_EMAIL_TO is empty: "
            "give comma-separated recipients or unset the connection id"
        )
    return recipients


def _read_report(report_dir: Path) -> dict[str, Any]:
    path = report_dir / JSON_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotificationError(f"{path}: cannot read the report to notify ({exc})") from exc
    if not isinstance(data, dict):
        raise NotificationError(f"{path}: not a narrwatch report")
    return data


def email_subject(report: Mapping[str, Any]) -> str:
    """Counts only: no feed text in a mail header."""
    summary = report.get("summary") or {}
    n_rising = int(summary.get("n_rising") or 0)
    what = f"{n_rising} rising" if n_rising else "nothing rising"
    return f"narrwatch report {plain_text(report.get('day'), 10)}: {what}"


@dataclass(frozen=True)
class ServedLinks:
    """Addresses of the served app's pages (``narrwatch serve``) that a notification links to."""

    base_url: str

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def day(self, day: object) -> str:
        return self._url(f"/day/{quote(plain_text(day, 10))}")

    def subject(self, item: Mapping[str, Any]) -> str:
        subject = quote(plain_text(item.get("subject_id"), 100), safe="")
        kind = "narratives" if item.get("kind") == "narrative" else "clusters"
        return self._url(f"/{kind}/{subject}")

    def review(self) -> str:
        return self._url("/review")


def rising_new_first(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rising items, new flags before continuing ones (the report's own order within each)."""
    items = [item for item in (report.get("rising") or []) if isinstance(item, dict)]
    return sorted(items, key=lambda item: item.get("new") is False)


def email_html(report: Mapping[str, Any], links: ServedLinks) -> str:
    """The day's summary as HTML (new flags first), linking to the served pages."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("narrwatch.ops", "templates"), autoescape=True, undefined=StrictUndefined
    )
    env.filters["clean"] = plain_text
    env.filters["safe_url"] = safe_url
    env.globals["pvalue"] = format_p

    class _Lenient(dict[str, Any]):
        # report.json items read as objects, absent keys as None (older reports lack new fields)
        def __getattr__(self, name: str) -> Any:
            value = self.get(name)
            return _Lenient(value) if isinstance(value, dict) else value

    rising = [_Lenient(item) for item in rising_new_first(report)]
    return env.get_template("email.html").render(
        subject=email_subject(report),
        s=_Lenient(report.get("summary") or {}),
        day=report.get("day"),
        rising=rising,
        links=links,
        articles=SLACK_ARTICLES,
    )


def slack_escape(value: object, max_chars: int | None = None) -> str:
    """Slack's three control characters escaped, as Slack's formatting guide asks."""
    text = plain_text(value, max_chars)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(title: object, url: object) -> str:
    label = slack_escape(title, 120) or "(untitled)"
    href = safe_url(url)
    if href is None:
        return label
    return f"<{href.replace('&', '&amp;')}|{label.replace('|', '/')}>"


def slack_text(report: Mapping[str, Any], links: ServedLinks) -> str:
    """A short summary in Slack markup from report.json, new flags first, linking to the served pages."""
    summary = report.get("summary") or {}
    lines = [
        f"*narrwatch daily report {slack_escape(report.get('day'), 10)}*",
        f"{summary.get('n_rising', 0)} rising · {summary.get('n_confirmed_matches', 0)} articles matching "
        f"a seed in {summary.get('n_outlets', 0)} outlets · {summary.get('n_clusters', 0)} emerging "
        f"cluster(s) · {summary.get('n_failing_feeds', 0)} failing / {summary.get('n_silent_feeds', 0)} "
        "silent feeds",
    ]
    rising = rising_new_first(report)
    if not rising:
        lines.append("Nothing is rising today.")
    for item in rising[:SLACK_ITEMS]:
        kind = "seed" if item.get("kind") == "narrative" else "cluster"
        flag = item.get("overall")
        if flag:
            stats = (
                f"×{float(flag.get('rate_ratio', 0)):.2f}, p = {format_p(float(flag.get('p_value', 1)))}, "
                f"{flag.get('count')} vs {float(flag.get('baseline', 0)):.1f} expected, "
                f"{flag.get('n_outlets')} outlets, {len(item.get('countries') or [])} countries"
            )
        else:
            stats = "rising in a country or language slice"
        subject = slack_escape(item.get("subject_id"), 100)
        title = _slack_link(item.get("title"), links.subject(item))
        lines.append(f"• *{title}* ({kind} `{subject}`): {stats}")
        for article in (item.get("articles") or [])[:SLACK_ARTICLES]:
            lines.append(
                f"    – {_slack_link(article.get('title'), article.get('url'))} "
                f"({slack_escape(article.get('outlet'), 60)}, {slack_escape(article.get('country'), 8)})"
            )
    if len(rising) > SLACK_ITEMS:
        lines.append(f"…and {len(rising) - SLACK_ITEMS} more in the report.")
    footer = f"Full report: {_slack_link(links.day(report.get('day')), links.day(report.get('day')))}"
    text = "\n".join(lines)
    if len(text) + len(footer) + 1 > SLACK_MAX_CHARS:
        text = text[: SLACK_MAX_CHARS - len(footer) - 3].rsplit("\n", 1)[0] + "\n…"
    return f"{text}\n{footer}"


def notify_day(
    settings: Settings, day: dt.date, context: Mapping[str, Any] | None = None, *, base_url: str
) -> NotifyReport:
    """Send the day's report from its default folder (``<reports_dir>/<day>/``): the daily DAG's
    notify task and ``narrwatch notify --date DAY`` both call this."""
    return notify_report(
        settings, settings.resolved_reports_dir / day.isoformat(), context, base_url=base_url
    )
