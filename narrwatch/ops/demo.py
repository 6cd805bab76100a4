"""The offline demo: made-up outlets served as RSS on 127.0.0.1, replayed day by day.

The bundled data (``narrwatch/demo_data``) covers 35 days of made-up outlets writing in their own
languages and scripts (Serbian Cyrillic and Latin, Croatian, Bosnian, Montenegrin, Albanian,
Macedonian, Russian, English). One seed narrative rises over the last three days across outlets and
languages, and a small claim no seed describes is pushed by several outlets over the last days.
Routine news is one story per outlet, so it gives the clusterer nothing to group. Each replayed day
polls every feed at the end of that day, embeds, matches, clusters, detects and (for the last week)
writes the report, with ``now`` set to the replayed time: exactly what the DAGs would have done on
those days.

Item links point at fictional ``.example`` domains, so canonical URLs stay the same whatever port
the feed server gets: a second run stores nothing new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

#: Day 0 of the demo data is a Monday; the data's weekday pattern relies on it.
DEMO_START = dt.date(2026, 10, 19)
#: Items a feed document carries, newest first, as real feeds cap theirs.
FEED_WINDOW_ITEMS = 30
#: Replayed days that get a report (older days only get counts and flags).
REPORT_DAYS = 7


@dataclass(frozen=True)
class DemoOutlet:
    id: str
    name: str
    country: str
    languages: list[str]
    script: str  # ISO 15924 (Cyrl, Latn): Serbian outlets write in either
    group: str
    state_affiliated: bool
    tags: list[str]
    slug: str


@dataclass(frozen=True)
class DemoItem:
    outlet: str
    published: dt.datetime
    title: str
    summary: str
    slug: str
    guid: str | None
    labels: tuple[str, ...]
    # Why the item is there beyond its labels: "rebuttal", "report", "syndicated-from:...",
    # "unseeded-claim:..."; empty for everyday news.
    note: str = ""

    def link(self, outlet: DemoOutlet) -> str:
        return f"https://www.{outlet.slug}.example/news/{self.slug}"


@dataclass(frozen=True)
class DemoData:
    outlets: dict[str, DemoOutlet]
    items: list[DemoItem]

    @property
    def n_days(self) -> int:
        return max((item.published.date() - DEMO_START).days for item in self.items) + 1


@dataclass
class DemoResult:
    report_html: Path
    days: int
    flags: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # (subject kind, subject id) -> [(language, articles)] of each item rising on the last day
    language_mix: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)


def load_demo_data() -> DemoData:
    folder = resources.files("narrwatch") / "demo_data"
    raw_outlets = yaml.safe_load((folder / "outlets.yaml").read_text(encoding="utf-8"))
    if isinstance(raw_outlets, dict):
        raw_outlets = raw_outlets["outlets"]
    outlets = {
        entry["id"]: DemoOutlet(
            id=entry["id"],
            name=entry["name"],
            country=entry["country"],
            languages=list(entry.get("languages") or ["en"]),
            script=entry.get("script", "Latn"),
            group=entry.get("group", "demo"),
            state_affiliated=bool(entry.get("state_affiliated", False)),
            tags=list(entry.get("tags") or []),
            slug=entry.get("slug", entry["id"]),
        )
        for entry in raw_outlets
    }
    items = []
    for line_no, line in enumerate(
        (folder / "items.jsonl").read_text(encoding="utf-8").splitlines(), start=1
    ):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["outlet"] not in outlets:
            raise ValueError(f"demo_data/items.jsonl line {line_no}: unknown outlet {row['outlet']!r}")
        published = dt.datetime.combine(
            DEMO_START + dt.timedelta(days=int(row["day"])),
            dt.time(int(row.get("hour", 12)), int(row.get("minute", 0))),
            tzinfo=dt.UTC,
        )
        items.append(
            DemoItem(
                outlet=row["outlet"],
                published=published,
                title=row["title"],
                summary=row["summary"],
                slug=row["slug"],
                guid=row.get("guid"),
                labels=tuple(row.get("labels") or ()),
                note=row.get("note", ""),
            )
        )
    items.sort(key=lambda item: (item.published, item.outlet, item.slug))
    return DemoData(outlets=outlets, items=items)


def render_rss(outlet: DemoOutlet, items: list[DemoItem]) -> bytes:
    entries = []
    for item in items:
        link = item.link(outlet)
        entries.append(
            "<item>"
            f"<title>{escape(item.title)}</title>"
            f"<link>{escape(link)}</link>"
            f'<guid isPermaLink="false">{escape(item.guid or link)}</guid>'
            f"<pubDate>{format_datetime(item.published)}</pubDate>"
            f"<description>{escape(item.summary)}</description>"
            "</item>"
        )
    document = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0"><channel>'
        f"<title>{escape(outlet.name)}</title>"
        f"<link>https://www.{outlet.slug}.example/</link>"
        f"<description>{escape(outlet.name)} (narrwatch demo)</description>"
        f"<language>{escape(outlet.languages[0])}</language>" + "".join(entries) + "</channel></rss>"
    )
    return document.encode("utf-8")


class DemoFeedServer:
    """Serves each outlet's feed as it stood at ``self.now`` (the replayed time)."""

    def __init__(self, data: DemoData, now: dt.datetime | None = None) -> None:
        self.data = data
        self.now = now or dt.datetime.max.replace(tzinfo=dt.UTC)
        self._server: ThreadingHTTPServer | None = None

    def feed_body(self, outlet_id: str) -> bytes | None:
        outlet = self.data.outlets.get(outlet_id)
        if outlet is None:
            return None
        visible = [i for i in self.data.items if i.outlet == outlet_id and i.published <= self.now]
        return render_rss(outlet, list(reversed(visible))[:FEED_WINDOW_ITEMS])

    @contextmanager
    def running(self, port: int = 0) -> Iterator[str]:
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outlet_id = self.path.strip("/").removesuffix("/rss.xml")
                body = server_ref.feed_body(outlet_id)
                if body is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # the pipeline logs its own view of each fetch

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self._server.server_address[1]}"
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)


def write_feeds_file(data: DemoData, base_url: str, path: Path) -> None:
    groups = sorted({outlet.group for outlet in data.outlets.values()})
    document = {
        "groups": {
            group: {"schedule": "*/30 * * * *", "description": f"demo outlets ({group})"} for group in groups
        },
        "feeds": [
            {
                "id": outlet.id,
                "name": outlet.name,
                "outlet": outlet.id,
                "country": outlet.country,
                "languages": outlet.languages,
                "url": f"{base_url}/{outlet.id}/rss.xml",
                "group": outlet.group,
                "state_affiliated": outlet.state_affiliated,
                "tags": [*outlet.tags, "demo"],
            }
            for outlet in data.outlets.values()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")


def demo_settings(data_dir: Path, feeds_file: Path) -> Any:
    from narrwatch.config import get_settings

    base = get_settings()
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "qdrant_url": None,
            "qdrant_path": None,
            "reports_dir": None,
            "feeds_file": feeds_file,
            # Exports of the model are shared with other runs: the demo's own data may be wiped.
            "models_dir": base.resolved_models_dir,
            # The demo's feeds are on loopback, all on one host.
            "allow_private_networks": True,
            "fetch_per_host_delay_s": 0.0,
        }
    )


def default_demo_dir() -> Path:
    """``<NARRWATCH_DATA_DIR>/demo``: ``var/demo`` under the default settings."""
    from narrwatch.config import get_settings

    return get_settings().data_dir / "demo"


def run_demo(
    data_dir: Path | None = None,
    *,
    fresh: bool = False,
    echo: Callable[[str], Any] = print,
    on_day: Callable[[], Any] | None = None,
) -> DemoResult:
    """`narrwatch demo` / `make demo`: the demo in a folder of its own (see narrwatch.ops.demo_folder)."""
    from narrwatch.ops.demo_folder import prepare_demo_folder

    folder = prepare_demo_folder(data_dir if data_dir is not None else default_demo_dir(), fresh=fresh)
    return run_demo_with(demo_settings(folder, folder / "feeds.yaml"), echo, on_day)


def run_demo_with(
    settings: Any, echo: Callable[[str], Any] = print, on_day: Callable[[], Any] | None = None
) -> DemoResult:
    """Serve the demo feeds, migrate the store named by ``settings`` and replay every day."""
    from narrwatch.context import AppContext
    from narrwatch.db.migrate import upgrade

    data = load_demo_data()
    server = DemoFeedServer(data)
    with server.running() as base_url:
        write_feeds_file(data, base_url, Path(settings.feeds_file))
        upgrade(settings.resolved_database_url)
        ctx = AppContext.from_settings(settings)
        try:
            return replay(ctx, server, data, echo, on_day)
        finally:
            ctx.close()


def replay(
    ctx: Any,
    server: DemoFeedServer,
    data: DemoData,
    echo: Callable[[str], Any],
    on_day: Callable[[], Any] | None = None,
    *,
    last_days: int | None = None,
) -> DemoResult:
    """Replay every day, or only the ``last_days`` (the first of them polls each feed's whole window)."""
    from narrwatch import pipeline

    n_days = data.n_days
    first_offset = 0 if last_days is None else max(0, n_days - last_days)
    echo(f"demo: {len(data.outlets)} outlets, {len(data.items)} items over {n_days} days")
    report_html = Path()
    flags: list[dict[str, Any]] = []
    for offset in range(first_offset, n_days):
        day = DEMO_START + dt.timedelta(days=offset)
        now = dt.datetime.combine(day, dt.time(23, 30), tzinfo=dt.UTC)
        server.now = now
        polled = pipeline.poll(ctx, now, force=True)
        embedded = pipeline.embed(ctx, now)
        matched = pipeline.match_recent(ctx, now)
        pipeline.cluster_recent(ctx, now)
        detected = pipeline.detect(ctx, day, now)
        line = (
            f"{day}: {polled.get('new_articles', 0)} new articles, "
            f"{embedded.get('articles_embedded', 0)} embedded, "
            f"{matched.get('matches_confirm', 0)} confirmed matches in the window, "
            f"{detected.get('n_flags', 0)} rising flags"
        )
        if offset >= n_days - REPORT_DAYS:
            report_html = Path(pipeline.report(ctx, day, now)["html"])
        echo(line)
        if on_day is not None:
            on_day()
    flags = rising_flags_for(ctx, DEMO_START + dt.timedelta(days=n_days - 1))
    mixes = language_mix_in_report(report_html)
    for flag in flags:
        scope = "" if flag["dimension"] == "all" else f" [{flag['dimension']} {flag['dimension_value']}]"
        mix = mixes.get((flag["subject_kind"], flag["subject_id"])) if flag["dimension"] == "all" else None
        languages = f", languages {', '.join(f'{lang} {n}' for lang, n in mix)}" if mix else ""
        echo(
            f"rising on {flag['day']}: {flag['subject_kind']} {flag['subject_id']}{scope}: "
            f"count {flag['count']} vs baseline {flag['baseline']:.2f}, "
            f"{flag['n_outlets']} distinct outlets, rate ratio {flag['rate_ratio']:.1f}, "
            f"p={flag['p_value']:.2g}{languages}"
        )
    return DemoResult(
        report_html=report_html, days=n_days, flags=flags, counts=table_counts(ctx), language_mix=mixes
    )


def language_mix_in_report(report_html: Path) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """Each rising item's language mix as the day's report.json states it (what a reader sees)."""
    report_json = report_html.with_name("report.json")
    if not report_json.is_file():
        return {}
    report = json.loads(report_json.read_text(encoding="utf-8"))
    return {
        (item["kind"], item["subject_id"]): [
            (share["language"], share["n_articles"]) for share in item["language_mix"]
        ]
        for item in report.get("rising", [])
    }


def rising_flags_for(ctx: Any, day: dt.date) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from narrwatch.db.models import RisingFlag

    with ctx.transaction() as session:
        rows = session.scalars(
            select(RisingFlag).where(RisingFlag.day == day).order_by(RisingFlag.p_value)
        ).all()
        return [
            {
                "day": row.day.isoformat(),
                "subject_kind": row.subject_kind,
                "subject_id": row.subject_id,
                "dimension": row.dimension,
                "dimension_value": row.dimension_value,
                "count": row.count,
                "baseline": row.baseline,
                "n_outlets": row.n_outlets,
                "rate_ratio": row.rate_ratio,
                "p_value": row.p_value,
            }
            for row in rows
        ]


def table_counts(ctx: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from narrwatch.db.models import Article, ArticleSighting, Match, Passage, RisingFlag

    with ctx.transaction() as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in (
                ("articles", Article),
                ("sightings", ArticleSighting),
                ("passages", Passage),
                ("matches", Match),
                ("rising_flags", RisingFlag),
            )
        }
