"""Writes the daily report (HTML, Markdown, JSON) and the index of past reports.

The HTML page is self-contained and inert: inline CSS, charts as inline SVG, no script, a
Content-Security-Policy that forbids scripts and every remote load, all feed text autoescaped, only
http(s) links. Files are written atomically, so a reader or a crash never sees half a report.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from narrwatch.context import AppContext
from narrwatch.files import write_atomically
from narrwatch.steps.report.collect import collect_report_data
from narrwatch.steps.report.markdown import format_p, format_when, render_markdown
from narrwatch.steps.report.model import ReportData
from narrwatch.steps.report.safety import plain_text

#: No script, no remote load of any kind; inline styles and data: images only. ``base-uri`` and
#: ``form-action`` are not covered by ``default-src``, so they are closed explicitly.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
JSON_NAME = "report.json"
INDEX_NAME = "index.html"
_DAY_DIR = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    html: Path
    markdown: Path
    json: Path
    index: Path
    n_rising: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "html": str(self.html),
            "markdown": str(self.markdown),
            "json": str(self.json),
            "index": str(self.index),
            "n_rising": self.n_rising,
        }


def render_report(
    ctx: AppContext, day: dt.date, now: dt.datetime, out_dir: Path | None = None
) -> ReportResult:
    """Write report.html, report.md and report.json for ``day`` and refresh the reports index.

    Default folder: ``<reports_dir>/<YYYY-MM-DD>/``. Rendering a day again overwrites its files.
    """
    if now.tzinfo is None:
        raise ValueError("render_report needs an aware UTC datetime for now")
    now = now.astimezone(dt.UTC)
    data = collect_report_data(ctx, day, now)
    reports_dir = ctx.settings.resolved_reports_dir
    target = out_dir if out_dir is not None else reports_dir / day.isoformat()
    target.mkdir(parents=True, exist_ok=True)
    html_path, md_path, json_path = target / HTML_NAME, target / MARKDOWN_NAME, target / JSON_NAME
    write_atomically(json_path, (json.dumps(data.as_json(), ensure_ascii=False, indent=2) + "\n").encode())
    write_atomically(md_path, render_markdown(data).encode())
    write_atomically(html_path, render_html(data, neighbours(reports_dir, day)).encode())
    index_path = write_index(reports_dir, now)
    return ReportResult(
        out_dir=target,
        html=html_path,
        markdown=md_path,
        json=json_path,
        index=index_path,
        n_rising=len(data.rising),
    )


def template_environment(*loaders: BaseLoader, keep_trailing_newline: bool = True) -> Environment:
    """The report's Jinja2 environment (autoescape on, strict undefined, the report's filters), with
    ``loaders`` searched before the report's own templates: the served app renders the same
    partials through it."""
    env = Environment(
        loader=ChoiceLoader([*loaders, PackageLoader("narrwatch.steps.report", "templates")]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=keep_trailing_newline,
    )
    env.filters["pvalue"] = format_p
    env.filters["when"] = format_when
    env.filters["fixed"] = lambda value, digits=2: f"{float(value):.{int(digits)}f}"
    env.filters["shortdate"] = lambda day: day.strftime("%d %b %Y")
    env.filters["longdate"] = lambda day: day.strftime("%A %d %B %Y")
    return env


_ENV = template_environment()


@dataclass(frozen=True)
class DayLinks:
    """The reports written before and after a day's, for the static page's previous/next links."""

    previous: dt.date | None = None
    next: dt.date | None = None


def neighbours(reports_dir: Path, day: dt.date) -> DayLinks:
    days = sorted(
        dt.date.fromisoformat(folder.name)
        for folder in (reports_dir.iterdir() if reports_dir.is_dir() else [])
        if folder.is_dir() and _DAY_DIR.fullmatch(folder.name) and (folder / HTML_NAME).is_file()
    )
    return DayLinks(
        previous=max((d for d in days if d < day), default=None),
        next=min((d for d in days if d > day), default=None),
    )


def render_html(data: ReportData, links: DayLinks | None = None) -> str:
    return _ENV.get_template("report.html.j2").render(r=data, csp=CSP, links=links or DayLinks())


@dataclass(frozen=True)
class IndexEntry:
    day: str
    weekday: str
    html_href: str
    md_href: str | None
    json_href: str | None
    n_rising: int | None
    rising_titles: list[str]
    n_confirmed_matches: int | None
    n_clusters: int | None
    feed_issues: str


def write_index(reports_dir: Path, now: dt.datetime) -> Path:
    """(Re)write ``index.html``: every ``YYYY-MM-DD/report.html`` in the reports folder, newest first.

    The figures come from each day's report.json; a day whose JSON is missing or unreadable is still
    listed with its link.
    """
    reports_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for folder in sorted(reports_dir.iterdir(), reverse=True):
        if not (folder.is_dir() and _DAY_DIR.fullmatch(folder.name) and (folder / HTML_NAME).is_file()):
            continue
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        entries.append(_index_entry(folder, day))
    index_path = reports_dir / INDEX_NAME
    html = _ENV.get_template("index.html.j2").render(entries=entries, updated=now, csp=CSP)
    write_atomically(index_path, html.encode())
    return index_path


def _index_entry(folder: Path, day: dt.date) -> IndexEntry:
    summary: dict[str, Any] = {}
    titles: list[str] = []
    json_path = folder / JSON_NAME
    try:
        stored = json.loads(json_path.read_text(encoding="utf-8"))
        summary = stored.get("summary") or {}
        titles = [plain_text(item.get("title"), 80) for item in stored.get("rising") or []][:4]
    except (OSError, ValueError, AttributeError):
        summary = {}

    def figure(key: str) -> int | None:
        value = summary.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    failing, silent = figure("n_failing_feeds"), figure("n_silent_feeds")
    return IndexEntry(
        day=day.isoformat(),
        weekday=day.strftime("%A"),
        html_href=f"{folder.name}/{HTML_NAME}",
        md_href=f"{folder.name}/{MARKDOWN_NAME}" if (folder / MARKDOWN_NAME).is_file() else None,
        json_href=f"{folder.name}/{JSON_NAME}" if json_path.is_file() else None,
        n_rising=figure("n_rising"),
        rising_titles=titles,
        n_confirmed_matches=figure("n_confirmed_matches"),
        n_clusters=figure("n_clusters"),
        feed_issues="—" if failing is None or silent is None else f"{failing} / {silent}",
    )
