"""Polling benchmark: 200 feeds on loopback, a cold poll and an unchanged re-poll.

    .venv/bin/python bench/poll.py               # human-readable figures
    .venv/bin/python bench/poll.py --json        # one JSON object
    .venv/bin/python bench/poll.py --feeds 500 --items 30

Each feed is served by its own loopback address (127.0.x.y: Linux routes all of 127/8 to the loopback
interface), as real outlets live on their own hosts, so the default per-host politeness (one request
at a time per host, ``fetch_per_host_delay_s`` between two) applies as in production. Half of the
feeds answer conditional requests (ETag -> 304), the other half always send the full body, so the
re-poll exercises both ways of recognising an unchanged feed (304, and the body hash).

It runs the real use case (``narrwatch.steps.poll.poll.poll_feeds``: guarded fetch, isolated parse workers,
dedup, SQLite store) and prints, for both polls, the wall time, time per feed and the median and
95th percentile of the per-feed times recorded in ``feed_fetches``. Acceptance (issue 3): the
unchanged re-poll stores nothing new and takes at most 5 s; the exit status is 1 when it does not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

REPOLL_TARGET_S = 5.0
NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's name (reverse DNS): 50 ms per server here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


def feed_document(feed_index: int, items: int) -> bytes:
    entries = []
    for item in range(items):
        published = NOW - dt.timedelta(hours=item * 2 + feed_index % 7)
        entries.append(
            "<item>"
            f"<title>Izveštaj {feed_index}-{item}: vlada i opozicija o budžetu, izborima i regionu</title>"
            f"<link>https://outlet{feed_index}.example/vesti/{item}-izvestaj?utm_source=rss</link>"
            f'<guid isPermaLink="false">o{feed_index}-{item}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape('<p>Opširniji tekst vesti broj ' + str(item) + ' sa detaljima.</p>')}"
            "</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Outlet {feed_index}</title><link>https://outlet{feed_index}.example/</link>"
        f"{''.join(entries)}</channel></rss>"
    ).encode()


def loopback_address(index: int) -> str:
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def start_servers(n_feeds: int, items: int) -> tuple[list[str], list[ThreadingHTTPServer]]:
    urls: list[str] = []
    servers: list[ThreadingHTTPServer] = []
    for index in range(n_feeds):
        body = feed_document(index, items)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        conditional = index % 2 == 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            _body, _etag, _conditional = body, etag, conditional

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self._conditional and self.headers.get("If-None-Match") == self._etag:
                    self.send_response_only(304)
                    self.send_header("ETag", self._etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response_only(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(self._body)))
                if self._conditional:
                    self.send_header("ETag", self._etag)
                self.end_headers()
                self.wfile.write(self._body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        server = _QuietServer((loopback_address(index), 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        servers.append(server)
        urls.append(f"http://{loopback_address(index)}:{server.server_address[1]}/feed.xml")
    return urls, servers


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else 0.0


def run(n_feeds: int, items: int, data_dir: Path, concurrency: int | None) -> dict[str, Any]:
    import yaml
    from sqlalchemy import func, select

    from narrwatch.config import Settings
    from narrwatch.context import AppContext
    from narrwatch.db.models import Article, ArticleSighting, Base, FeedFetch
    from narrwatch.steps.poll.poll import poll_feeds
    from narrwatch.steps.poll.sync import sync_feeds

    urls, servers = start_servers(n_feeds, items)
    feeds_file = data_dir / "feeds.yaml"
    feeds_file.write_text(
        yaml.safe_dump(
            {
                "groups": {"bench": {"schedule": "*/15 * * * *"}},
                "feeds": [
                    {
                        "id": f"feed-{index:04d}",
                        "name": f"Outlet {index}",
                        "country": "RS",
                        "languages": ["sr"],
                        "url": url,
                        "group": "bench",
                    }
                    for index, url in enumerate(urls)
                ],
            }
        ),
        encoding="utf-8",
    )
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "feeds_file": feeds_file,
        "allow_private_networks": True,
    }
    if concurrency:
        overrides["fetch_concurrency"] = concurrency
    settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg]
    ctx = AppContext.from_settings(settings)
    try:
        Base.metadata.create_all(ctx.engine)
        sync_feeds(ctx, NOW)

        def counts() -> tuple[int, int]:
            with ctx.transaction() as session:
                return (
                    int(session.scalar(select(func.count()).select_from(Article)) or 0),
                    int(session.scalar(select(func.count()).select_from(ArticleSighting)) or 0),
                )

        def durations(at: dt.datetime) -> list[float]:
            with ctx.transaction() as session:
                rows = session.scalars(select(FeedFetch.duration_ms).where(FeedFetch.started_at == at))
                return [float(value) for value in rows]

        figures: dict[str, Any] = {
            "feeds": n_feeds,
            "items_per_feed": items,
            "fetch_concurrency": settings.fetch_concurrency,
            "per_host_delay_s": settings.fetch_per_host_delay_s,
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        for label, at in (("cold", NOW), ("repoll", NOW + dt.timedelta(hours=1))):
            before = counts()
            started = time.perf_counter()
            report = poll_feeds(ctx, at, force=True)
            wall = time.perf_counter() - started
            after = counts()
            per_feed = durations(at)
            figures[label] = {
                "wall_s": round(wall, 3),
                "per_feed_ms": round(1000 * wall / n_feeds, 2),
                "feed_time_p50_ms": round(statistics.median(per_feed), 1) if per_feed else None,
                "feed_time_p95_ms": round(_percentile(per_feed, 0.95), 1),
                "new_articles": after[0] - before[0],
                "new_sightings": after[1] - before[1],
                "feeds_failed": report.feeds_failed,
                "feeds_not_modified": report.feeds_not_modified,
                "feeds_unchanged": report.feeds_unchanged,
                "feeds_new": report.feeds_new,
            }
        repoll = figures["repoll"]
        figures["repoll_target_s"] = REPOLL_TARGET_S
        figures["repoll_ok"] = (
            repoll["wall_s"] <= REPOLL_TARGET_S
            and repoll["new_articles"] == 0
            and repoll["new_sightings"] == 0
            and repoll["feeds_failed"] == 0
        )
        return figures
    finally:
        ctx.close()
        with ThreadPoolExecutor(32) as pool:  # each shutdown waits up to one poll interval
            list(pool.map(lambda server: (server.shutdown(), server.server_close()), servers))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=20, help="Items per feed document.")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="fetch_concurrency (default: the setting)."
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="narrwatch-bench-poll-") as tmp:
        figures = run(args.feeds, args.items, Path(tmp), args.concurrency)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        print(
            f"{figures['feeds']} feeds x {figures['items_per_feed']} items on loopback, "
            f"fetch_concurrency {figures['fetch_concurrency']}, "
            f"per-host delay {figures['per_host_delay_s']} s, "
            f"{figures['cpu_count']} CPUs, load {figures['load_average_1m']}"
        )
        for label in ("cold", "repoll"):
            row = figures[label]
            print(
                f"{label:>6}: {row['wall_s']:.2f} s wall, {row['per_feed_ms']:.1f} ms/feed "
                f"(feed p50 {row['feed_time_p50_ms']} ms, p95 {row['feed_time_p95_ms']} ms); "
                f"new articles {row['new_articles']}, new sightings {row['new_sightings']}, "
                f"304 {row['feeds_not_modified']}, same hash {row['feeds_unchanged']}, "
                f"failed {row['feeds_failed']}"
            )
        verdict = "meets" if figures["repoll_ok"] else "MISSES"
        print(f"unchanged re-poll {verdict} the target: nothing new stored, <= {REPOLL_TARGET_S:g} s")
    return 0 if figures["repoll_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
