"""Ingestion against loopback feeds and the SQL store: dedup layers, sightings, failures, health."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from feeds_support import Item, LoopbackServer, rss, send, write_feeds_file
from sqlalchemy import func, select

from narrwatch.context import AppContext
from narrwatch.db.models import Article, ArticleSighting, Feed, FeedFetch, Tombstone
from narrwatch.domain.polling import HealthState
from narrwatch.domain.text import story_key
from narrwatch.steps.poll import decide as decide_mod
from narrwatch.steps.poll import operate as operate_mod
from narrwatch.steps.poll import persist as persist_mod
from narrwatch.steps.poll import poll as poll_mod
from narrwatch.steps.poll import sync as sync_mod
from narrwatch.steps.poll.extract import EXTRACTOR

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)
EARLIER = NOW - dt.timedelta(hours=2)

Setup = Callable[..., AppContext]


@pytest.fixture
def setup(ctx: AppContext, tmp_path: Path) -> Setup:
    """Write a feeds file of ``feeds``, point the settings at it and sync it into the store."""

    def _setup(
        feeds: list[dict[str, Any]], groups: dict[str, Any] | None = None, **settings: Any
    ) -> AppContext:
        path = write_feeds_file(tmp_path / "feeds.yaml", feeds, groups)
        ctx.settings = ctx.settings.model_copy(
            update={"feeds_file": path, "fetch_deadline_s": 1.5, **settings}
        )
        sync_mod.sync_feeds(ctx, NOW)
        return ctx

    return _setup


def count(ctx: AppContext, model: Any) -> int:
    with ctx.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def articles(ctx: AppContext) -> list[Article]:
    with ctx.transaction() as session:
        rows = list(session.scalars(select(Article).order_by(Article.id)))
        for row in rows:
            _ = row.sightings  # load while the session is open
        return rows


def feed_row(ctx: AppContext, feed_id: str) -> Feed:
    with ctx.transaction() as session:
        row = session.get(Feed, feed_id)
        assert row is not None
        return row


def test_cyrillic_and_latin_titles_of_one_outlet_are_one_article_with_two_sightings(
    server: LoopbackServer, setup: Setup
) -> None:
    cyrillic = server.serve(
        "/cyr",
        rss(
            [
                Item(
                    "Вучић: Србија неће признати независност Косова",
                    "https://sputnik.example/20260303/vucic-kosovo.html",
                    "c-1",
                    EARLIER,
                )
            ]
        ),
    )
    latin = server.serve(
        "/lat",
        rss(
            [
                Item(
                    "Vučić: Srbija neće priznati nezavisnost Kosova",
                    "https://lat.sputnik.example/20260303/vucic-kosovo.html",
                    "l-1",
                    EARLIER,
                )
            ]
        ),
    )
    other = server.serve(
        "/other",
        rss(
            [
                Item(
                    "Vučić: Srbija neće priznati nezavisnost Kosova",
                    "https://other.example/vucic",
                    "o-1",
                    EARLIER,
                )
            ]
        ),
    )
    ctx = setup(
        [
            {"id": "sputnik-cyr", "outlet": "sputnik", "url": cyrillic, "country": "RU"},
            {"id": "sputnik-lat", "outlet": "sputnik", "url": latin, "country": "RU"},
            {"id": "other", "url": other},
        ]
    )
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.feeds_failed == 0 and report.new_sightings == 3
    stored = articles(ctx)
    sputnik = [article for article in stored if article.outlet == "sputnik"]
    assert len(sputnik) == 1
    assert sorted((s.feed_id, s.matched_by) for s in sputnik[0].sightings) in (
        [("sputnik-cyr", "new"), ("sputnik-lat", "title")],
        [("sputnik-cyr", "title"), ("sputnik-lat", "new")],
    )
    # Title dedup is per outlet: another outlet's copy is its own article, in the same story.
    assert len(stored) == 2
    assert stored[0].story_key == stored[1].story_key
    # Serbian in either script is Serbian; the script of the stored text is recorded beside it.
    other_copy = next(article for article in stored if article.outlet != "sputnik")
    assert (other_copy.language, other_copy.script) == ("sr", "Latn")
    assert sputnik[0].language == "sr" and sputnik[0].script in ("Cyrl", "Latn")
    assert report.duplicates["title"] == 1


def test_one_url_with_and_without_tracking_parameters_is_one_article_with_two_sightings(
    server: LoopbackServer, setup: Setup
) -> None:
    plain = "https://n1.example/vesti/budzet-usvojen"
    tracked = f"{plain}/?utm_source=rss&utm_medium=feed&fbclid=xyz#comments"
    first = server.serve("/a", rss([Item("Budžet usvojen u skupštini Srbije", tracked, "a-1", EARLIER)]))
    second = server.serve("/b", rss([Item("Skupština usvojila budžet za 2027.", plain, "b-1", EARLIER)]))
    ctx = setup(
        [
            {"id": "n1-main", "outlet": "n1", "url": first},
            {"id": "n1-politics", "outlet": "n1", "url": second},
        ]
    )
    poll_mod.poll_feeds(ctx, NOW)
    [article] = articles(ctx)
    assert article.canonical_url == "https://n1.example/vesti/budzet-usvojen"
    assert len(article.sightings) == 2
    assert {s.matched_by for s in article.sightings} == {"new", "canonical_url"}
    assert {s.url for s in article.sightings} == {plain, tracked}


def test_article_fields(server: LoopbackServer, setup: Setup) -> None:
    item = Item(
        "Влада је усвојила предлог закона о буџету",
        "https://rts.example/ci/budzet",
        "g1",
        EARLIER,
        "<p>Влада Србије је на данашњој седници <b>усвојила</b> предлог закона.</p><script>x()</script>",
    )
    ctx = setup([{"id": "rts-cyr", "outlet": "rts", "url": server.serve("/f", rss([item]))}])
    poll_mod.poll_feeds(ctx, NOW)
    [article] = articles(ctx)
    assert article.title == item.title and article.url == item.link
    assert article.text == "Влада Србије је на данашњој седници усвојила предлог закона."
    assert article.summary == article.text and article.text_source == "feed"
    assert article.language == "sr" and article.language_detector.startswith("lingua")
    assert article.published_at == EARLIER and not article.published_estimated
    assert article.fetched_at == NOW and article.country == "RS" and article.feed_id == "rts-cyr"
    assert article.story_key == story_key(item.title, article.canonical_url)
    assert len(article.title_key) == 64 and len(article.content_hash) == 64


def test_undated_and_future_entries_fall_back_to_the_fetch_time(server: LoopbackServer, setup: Setup) -> None:
    items = [
        Item("Vest bez ikakvog datuma objave danas", "https://x.example/1", "1"),
        Item(
            "Vest sa datumom iz budućnosti koja stiže", "https://x.example/2", "2", NOW + dt.timedelta(days=3)
        ),
    ]
    ctx = setup([{"id": "x", "url": server.serve("/f", rss(items))}])
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.undated_entries == 1
    for article in articles(ctx):
        assert article.published_at == NOW and article.published_estimated
    assert feed_row(ctx, "x").undated_items_total == 1


def test_failing_feeds_never_stop_the_others_and_health_says_why(
    server: LoopbackServer, setup: Setup
) -> None:
    def slow(request: BaseHTTPRequestHandler) -> None:
        time.sleep(3)
        send(request, rss([]))

    bomb = gzip.compress(b"<" * (40 * 1024 * 1024))
    feeds = {
        "good": server.serve(
            "/good", rss([Item("Dobra vest koja uvek stiže", "https://good.example/1", "1", EARLIER)])
        ),
        "timeout": server.route("/slow", slow),
        "gone": server.url("/missing"),
        "broken": server.serve("/500", b"oops", 500, {"Content-Type": "text/plain"}),
        "garbage": server.serve(
            "/html", b"<html><body><h1>Not a feed</h1></body></html>", 200, {"Content-Type": "text/html"}
        ),
        "bomb": server.serve("/bomb", bomb, 200, {"Content-Encoding": "gzip"}),
    }
    ctx = setup(
        [{"id": feed_id, "url": url} for feed_id, url in feeds.items()], fetch_max_body_bytes=10 * 1024 * 1024
    )
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.feeds_polled == 6 and report.feeds_failed == 5 and report.new_articles == 1
    assert report.failures_by_kind == {"temporary": 2, "soft": 3}
    expected = {
        "timeout": "temporary: fetch: deadline of 1.5 s exceeded",
        "gone": "soft: fetch: HTTP 404",
        "broken": "temporary: fetch: HTTP 500",
        "garbage": "soft: parse: not a feed",
        "bomb": "soft: fetch: body larger than 10485760 bytes after decompression",
    }
    health = {row.id: row for row in operate_mod.feed_health(ctx, NOW)}
    for feed_id, reason in expected.items():
        assert reason in (health[feed_id].last_error or ""), (feed_id, health[feed_id].last_error)
        assert health[feed_id].state is HealthState.DEGRADED and health[feed_id].last_success_at is None
        assert report.failures[feed_id].startswith(reason.split(": ")[0])
        row = feed_row(ctx, feed_id)
        assert row.consecutive_failures == 1 and row.next_poll_at is not None and row.next_poll_at > NOW
    assert health["good"].state is HealthState.OK and health["good"].last_success_at == NOW
    with ctx.transaction() as session:
        outcomes = dict(session.execute(select(FeedFetch.feed_id, FeedFetch.outcome)).all())
    assert outcomes == {"good": "new", **dict.fromkeys(expected, "error")}
    json.dumps(report.as_dict())  # small and JSON-able for pipeline_runs and XCom


def test_unchanged_repoll_stores_nothing_new(server: LoopbackServer, setup: Setup) -> None:
    body = rss(
        [
            Item(f"Vest broj {n} iz dnevnog izveštaja", f"https://x.example/{n}", f"g{n}", EARLIER)
            for n in range(5)
        ]
    )
    etag_requests: list[str | None] = []

    def with_etag(request: BaseHTTPRequestHandler) -> None:
        etag_requests.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            send(request, b"", 304, {"ETag": '"v1"'})
        else:
            send(request, body, 200, {"ETag": '"v1"'})

    ctx = setup(
        [
            {"id": "etag", "outlet": "a", "url": server.route("/etag", with_etag)},
            {
                "id": "hash",
                "outlet": "b",
                "url": server.serve("/hash", body.replace(b"x.example", b"y.example")),
            },
        ]
    )
    first = poll_mod.poll_feeds(ctx, NOW)
    assert first.new_articles == 10
    before = (count(ctx, Article), count(ctx, ArticleSighting))
    again = poll_mod.poll_feeds(ctx, NOW + dt.timedelta(hours=1), force=True)
    assert (count(ctx, Article), count(ctx, ArticleSighting)) == before
    assert again.new_articles == 0 and again.new_sightings == 0 and again.feeds_failed == 0
    assert again.feeds_not_modified == 1 and again.feeds_unchanged == 1
    assert etag_requests == [None, '"v1"']
    with ctx.transaction() as session:
        last = session.scalars(select(FeedFetch.outcome).where(FeedFetch.started_at > NOW)).all()
    assert sorted(last) == ["not_modified", "unchanged"]


def test_changed_feed_adds_only_new_items(server: LoopbackServer, setup: Setup) -> None:
    old = [Item("Prva vest o vremenskoj prognozi danas", "https://x.example/1", "1", EARLIER)]
    server.serve("/f", rss(old))
    ctx = setup([{"id": "x", "url": server.url("/f")}])
    poll_mod.poll_feeds(ctx, NOW)
    server.serve("/f", rss([Item("Druga vest o saobraćaju u gradu", "https://x.example/2", "2", NOW), *old]))
    report = poll_mod.poll_feeds(ctx, NOW + dt.timedelta(hours=1), force=True)
    assert report.new_articles == 1 and report.duplicates == {"entry_key": 1}
    assert count(ctx, Article) == 2 and feed_row(ctx, "x").last_new_item_at == NOW + dt.timedelta(hours=1)


def test_unusable_guids_switch_the_feed_to_link_keys(server: LoopbackServer, setup: Setup) -> None:
    items = [
        Item(f"Vest broj {n} sa istim identifikatorom", f"https://x.example/{n}", "same-guid", EARLIER)
        for n in range(4)
    ]
    ctx = setup([{"id": "x", "url": server.serve("/f", rss(items))}])
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.new_articles == 4
    assert feed_row(ctx, "x").guid_unreliable
    with ctx.transaction() as session:
        keys = session.scalars(select(ArticleSighting.entry_key)).all()
    assert len(keys) == 4 and all(key.startswith("link:") for key in keys)
    again = poll_mod.poll_feeds(ctx, NOW + dt.timedelta(hours=1), force=True)
    assert again.new_sightings == 0  # unchanged body: nothing to do


def test_a_rare_repeated_guid_is_told_apart_by_link(server: LoopbackServer, setup: Setup) -> None:
    items = [
        Item(f"Jedinstvena vest broj {n} iz regiona", f"https://x.example/{n}", f"g{n}", EARLIER)
        for n in range(40)
    ]
    items.append(Item("Vest sa ponovljenim identifikatorom danas", "https://x.example/extra", "g0", EARLIER))
    ctx = setup([{"id": "x", "url": server.serve("/f", rss(items))}])
    assert poll_mod.poll_feeds(ctx, NOW).new_articles == 41
    assert not feed_row(ctx, "x").guid_unreliable  # 1 of 41 is under FreshRSS's 5%


def test_tombstoned_urls_are_not_stored_again(server: LoopbackServer, setup: Setup) -> None:
    ctx = setup(
        [
            {
                "id": "x",
                "url": server.serve(
                    "/f",
                    rss(
                        [
                            Item(
                                "Stara vest koja je obrisana iz baze",
                                "https://x.example/old?utm_source=rss",
                                "1",
                                EARLIER,
                            ),
                            Item("Nova vest koja se čuva u bazi", "https://x.example/new", "2", EARLIER),
                        ]
                    ),
                ),
            }
        ]
    )
    with ctx.transaction() as session:
        session.add(Tombstone(canonical_url="https://x.example/old", article_id=99, deleted_at=EARLIER))
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.tombstoned == 1 and [a.canonical_url for a in articles(ctx)] == ["https://x.example/new"]


def test_title_dedup_holds_only_within_the_window(server: LoopbackServer, setup: Setup) -> None:
    title = "Sednica vlade o budžetu zakazana za četvrtak"
    server.serve(
        "/f",
        rss(
            [
                Item(title, "https://x.example/a", "a", NOW - dt.timedelta(days=20)),
                Item(title, "https://x.example/b", "b", NOW - dt.timedelta(days=10)),
                Item(title, "https://x.example/c", "c", NOW - dt.timedelta(days=9)),
            ]
        ),
    )
    ctx = setup([{"id": "x", "url": server.url("/f")}])
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.new_articles == 2 and report.duplicates["title"] == 1
    assert count(ctx, ArticleSighting) == 3


def test_poll_is_idempotent_and_a_crash_in_one_feed_is_recovered_by_a_rerun(
    server: LoopbackServer, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = [
        {
            "id": f"f{n}",
            "url": server.serve(
                f"/f{n}",
                rss(
                    [
                        Item(
                            f"Vest {n}-{m} o lokalnim izborima u opštini",
                            f"https://x{n}.example/{m}",
                            f"{m}",
                            EARLIER,
                        )
                        for m in range(3)
                    ]
                ),
            ),
        }
        for n in range(3)
    ]
    ctx = setup(feeds)
    real_persist = persist_mod.persist_plan

    def crash_for_f1(session: Any, feed_id: str, *args: Any) -> Any:
        result = real_persist(session, feed_id, *args)
        if feed_id == "f1":
            raise RuntimeError("disk full")  # after writing: the transaction must roll back
        return result

    monkeypatch.setattr(persist_mod, "persist_plan", crash_for_f1)
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.feeds_failed == 1 and "store: RuntimeError: disk full" in report.failures["f1"]
    assert count(ctx, Article) == 6
    assert "disk full" in (feed_row(ctx, "f1").last_error or "")
    monkeypatch.setattr(persist_mod, "persist_plan", real_persist)
    rerun = poll_mod.poll_feeds(ctx, NOW + dt.timedelta(minutes=5), force=True)
    assert rerun.new_articles == 3 and count(ctx, Article) == 9 and count(ctx, ArticleSighting) == 9
    assert feed_row(ctx, "f1").last_error is None
    third = poll_mod.poll_feeds(ctx, NOW + dt.timedelta(minutes=10), force=True)
    assert third.new_articles == 0 and count(ctx, Article) == 9 and count(ctx, ArticleSighting) == 9


def test_two_feeds_of_one_outlet_racing_store_each_article_once(
    server: LoopbackServer, setup: Setup, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pollers decide "new" for the same URL (lookups blinded): the upsert keeps one article."""
    shared = [
        Item(f"Zajednička vest broj {n} o regionu", f"https://shared.example/{n}", f"s{n}", EARLIER)
        for n in range(10)
    ]
    ctx = setup(
        [
            {"id": "one", "outlet": "same", "url": server.serve("/one", rss(shared))},
            {"id": "two", "outlet": "same", "url": server.serve("/two", rss(shared[::-1]))},
        ]
    )
    blind = decide_mod.Lookups(frozenset(), {}, frozenset(), {})
    monkeypatch.setattr(persist_mod, "_load_lookups", lambda *args: blind)
    other = AppContext.from_settings(ctx.settings)  # a second process on the same store
    try:
        threads = [
            threading.Thread(target=poll_mod.poll_feeds, args=(context, NOW), kwargs={"feed_ids": [feed_id]})
            for context, feed_id in ((ctx, "one"), (other, "two"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        other.close()
    assert count(ctx, Article) == 10 and count(ctx, ArticleSighting) == 20
    with ctx.transaction() as session:
        feeds_failed = session.scalars(select(Feed.id).where(Feed.consecutive_failures > 0)).all()
    assert feeds_failed == []


def test_sync_keeps_state_marks_removed_feeds_and_resets_moved_ones(
    server: LoopbackServer, setup: Setup
) -> None:
    body = rss([Item("Vest o sinhronizaciji spiska izvora", "https://x.example/1", "1", EARLIER)])
    ctx = setup(
        [
            {"id": "a", "url": server.serve("/a", body, headers={"ETag": '"e"'})},
            {"id": "b", "url": server.serve("/b", body)},
        ]
    )
    poll_mod.poll_feeds(ctx, NOW)
    assert feed_row(ctx, "a").etag == '"e"'
    path = write_feeds_file(
        Path(ctx.settings.feeds_file),
        [
            {"id": "a", "url": server.serve("/a2", body), "name": "A moved"},
            {"id": "c", "url": server.serve("/c", body)},
        ],
    )
    assert path == Path(ctx.settings.feeds_file)
    report = sync_mod.sync_feeds(ctx, NOW)
    assert report.added == ["c"] and report.removed == ["b"] and report.updated == ["a"]
    moved, removed = feed_row(ctx, "a"), feed_row(ctx, "b")
    assert moved.etag is None and moved.body_hash is None and moved.name == "A moved"
    assert moved.last_success_at == NOW  # health history is kept
    assert not removed.in_config
    polled = poll_mod.poll_feeds(ctx, NOW + dt.timedelta(hours=1), force=True)
    assert polled.feeds_due == 2  # b is no longer polled
    assert sync_mod.sync_feeds(ctx, NOW).as_dict()["updated"] == 0  # nothing changed: nothing updated


def test_selection_by_group_shard_ids_pause_and_due_time(server: LoopbackServer, setup: Setup) -> None:
    body = rss([Item("Vest za proveru rasporeda preuzimanja", "https://x.example/1", "1", EARLIER)])
    feeds = [
        {
            "id": f"f{n}",
            "outlet": f"o{n}",
            "url": server.serve(f"/f{n}", body),
            "group": "a" if n < 3 else "b",
        }
        for n in range(6)
    ]
    ctx = setup(feeds, groups={"a": {"schedule": "@hourly"}, "b": {}})
    assert poll_mod.poll_feeds(ctx, NOW, group="a").feeds_due == 3
    assert poll_mod.poll_feeds(ctx, NOW, group="a").feeds_due == 0  # not due again yet
    shards = [poll_mod.poll_feeds(ctx, NOW, shard=s, shards=3, force=True).feeds_due for s in range(3)]
    assert sum(shards) == 6 and max(shards) < 6
    picked = poll_mod.poll_feeds(ctx, NOW, feed_ids=["f1", "nope"], force=True)
    assert picked.feeds_due == 1 and picked.unknown_feed_ids == ["nope"]
    operate_mod.set_paused(ctx, "f4", True)
    paused = poll_mod.poll_feeds(ctx, NOW, group="b", force=True)
    assert paused.feeds_paused == 1 and paused.feeds_due == 2
    with pytest.raises(ValueError):
        poll_mod.poll_feeds(ctx, NOW, shard=1)
    with pytest.raises(ValueError):
        poll_mod.poll_feeds(ctx, NOW, shard=3, shards=3)


def test_operator_pause_resume_and_reset(server: LoopbackServer, setup: Setup) -> None:
    ctx = setup(
        [
            {"id": "x", "url": server.url("/missing")},
            {"id": "frozen", "url": server.url("/missing-too"), "poll": {"paused": True}},
        ]
    )
    poll_mod.poll_feeds(ctx, NOW)
    assert feed_row(ctx, "x").consecutive_failures == 1
    assert poll_mod.poll_feeds(ctx, NOW + dt.timedelta(minutes=1)).feeds_due == 0  # backing off
    operate_mod.reset_feed(ctx, "x")
    row = feed_row(ctx, "x")
    assert row.consecutive_failures == 0 and row.last_error is None and row.next_poll_at is None
    assert poll_mod.poll_feeds(ctx, NOW + dt.timedelta(minutes=2)).feeds_due == 1
    operate_mod.set_paused(ctx, "x", True)
    health = {row.id: row.state for row in operate_mod.feed_health(ctx, NOW)}
    assert health == {"x": HealthState.PAUSED, "frozen": HealthState.PAUSED}
    operate_mod.set_paused(ctx, "x", False)
    with pytest.raises(ValueError, match="paused in feeds.yaml"):
        operate_mod.set_paused(ctx, "frozen", False)
    with pytest.raises(sync_mod.UnknownFeedError):
        operate_mod.reset_feed(ctx, "nope")


def test_retry_after_postpones_the_next_poll(server: LoopbackServer, setup: Setup) -> None:
    ctx = setup([{"id": "x", "url": server.serve("/f", b"busy", 503, {"Retry-After": "7200"})}])
    poll_mod.poll_feeds(ctx, NOW)
    row = feed_row(ctx, "x")
    assert row.retry_after_until == NOW + dt.timedelta(seconds=7200)
    assert row.next_poll_at is not None and row.next_poll_at >= NOW + dt.timedelta(seconds=7200)


def test_a_feed_without_new_items_turns_silent(server: LoopbackServer, setup: Setup) -> None:
    ctx = setup(
        [
            {
                "id": "x",
                "url": server.serve(
                    "/f",
                    rss(
                        [
                            Item(
                                "Jedina vest ovog izvora ikada objavljena",
                                "https://x.example/1",
                                "1",
                                EARLIER,
                            )
                        ]
                    ),
                ),
            }
        ]
    )
    poll_mod.poll_feeds(ctx, NOW)
    later = NOW + dt.timedelta(days=2)
    poll_mod.poll_feeds(ctx, later, force=True)
    [health] = operate_mod.feed_health(ctx, later)
    assert health.state is HealthState.SILENT and health.last_success_at == later
    assert health.last_new_item_at == NOW


def test_full_text_is_fetched_for_new_articles(server: LoopbackServer, setup: Setup) -> None:
    paragraph = (
        "Vlada je danas usvojila set zakona o energetici, a ministarka je rekla da će cene struje "
        "ostati iste do kraja godine, uprkos pritisku evropskih tržišta i rastu potražnje."
    )
    page = (
        f"<html><head><title>x</title></head><body><nav>Meni</nav><article><h1>Energetika</h1>"
        f"<p>{paragraph}</p><p>{paragraph.replace('danas', 'juče')}</p></article></body></html>"
    ).encode()
    article_url = server.serve("/clanak", page, headers={"Content-Type": "text/html; charset=utf-8"})
    ctx = setup(
        [
            {
                "id": "x",
                "full_text": True,
                "url": server.serve(
                    "/f",
                    rss(
                        [
                            Item(
                                "Vlada usvojila zakone o energetici danas",
                                article_url,
                                "1",
                                EARLIER,
                                "Kratak sažetak.",
                            )
                        ]
                    ),
                ),
            }
        ]
    )
    report = poll_mod.poll_feeds(ctx, NOW)
    assert report.full_text_fetched == 1
    [article] = articles(ctx)
    assert (
        article.text_source == EXTRACTOR
        and paragraph in article.text
        and article.summary == "Kratak sažetak."
    )
    assert server.hits("/clanak") == 1
    poll_mod.poll_feeds(ctx, NOW + dt.timedelta(hours=1), force=True)
    assert server.hits("/clanak") == 1  # known articles are not fetched again
