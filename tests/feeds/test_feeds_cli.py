"""`narrwatch feeds ...` commands."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
import typer
import yaml
from feeds_support import FIXTURES, Item, LoopbackServer, rss, write_feeds_file
from typer.testing import CliRunner

from narrwatch.cli import feeds as cli_feeds
from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.steps.poll import poll as poll_mod
from narrwatch.steps.poll import sync as sync_mod

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(cli_feeds, "_settings", lambda: settings)
    application = typer.Typer()
    cli_feeds.register(application)
    return application


def invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_passes_on_the_shipped_file(app: typer.Typer) -> None:
    code, out, _err = invoke(app, "feeds", "validate", "--file", str(REPO / "feeds.yaml"))
    assert code == 0, out
    assert "OK:" in out and "countries:" in out and "group fast:" in out


def test_validate_names_entry_and_field_of_a_broken_copy(app: typer.Typer, tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "feeds.yaml").read_text(encoding="utf-8"))
    document["feeds"][5]["country"] = "YU"
    del document["feeds"][7]["url"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    code, _out, err = invoke(app, "feeds", "validate", "--file", str(broken))
    assert code == 1
    feed5, feed7 = document["feeds"][5]["id"], document["feeds"][7]["id"]
    assert f"feeds[5] (id='{feed5}'): country: 'YU' is not an ISO 3166-1 alpha-2 code" in err
    assert f"feeds[7] (id='{feed7}'): url: Field required" in err
    assert "Traceback" not in err


def test_validate_checks_group_schedules_as_schedule_show_does(app: typer.Typer, tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "feeds.yaml").read_text(encoding="utf-8"))
    group = sorted(document["groups"])[0]
    document["groups"][group]["schedule"] = "every tuesday"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    code, _out, err = invoke(app, "feeds", "validate", "--file", str(broken))
    assert code == 1
    assert f"{broken}: groups.{group}.schedule: 'every tuesday' is not a cron expression" in err


def test_list_as_table_and_json(app: typer.Typer) -> None:
    code, out, _ = invoke(app, "feeds", "list", "--file", str(REPO / "feeds.yaml"), "--group", "fast")
    assert code == 0 and "sputnik-rs-cyr" in out and "dw-serbian" not in out
    code, out, _ = invoke(app, "feeds", "list", "--file", str(REPO / "feeds.yaml"), "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) >= 40 and {"id", "url", "country", "languages"} <= set(listed[0])


def _entries(out: str) -> dict:
    return json.loads(out)


def test_parse_prints_entries_with_utc_dates_or_null(app: typer.Typer) -> None:
    code, out, _ = invoke(app, "feeds", "parse", str(FIXTURES / "dates.xml"), "--json")
    assert code == 0
    document = _entries(out)
    assert set(document) == {"entries", "errors"}
    by_title = {entry["title"]: entry for entry in document["entries"]}
    assert by_title["Ispravan RFC 822 datum"]["published"] == "2026-03-03T08:00:00Z"
    assert by_title["Bez datuma"]["published"] is None  # no fallback to the fetch time here
    assert by_title["Pokvaren datum"]["published"] is None
    assert by_title["Regionalni format datuma"]["published"] == "2026-03-03T09:30:00Z"
    assert set(document["entries"][0]) == {"title", "link", "published", "language"}


def test_parse_detects_languages_and_reads_gzip(app: typer.Typer, tmp_path: Path) -> None:
    packed = tmp_path / "cyrillic.xml.gz"
    packed.write_bytes(gzip.compress((FIXTURES / "windows1251.xml").read_bytes()))
    code, out, _ = invoke(app, "feeds", "parse", str(packed), "--json")
    document = _entries(out)
    assert code == 0 and [entry["language"] for entry in document["entries"]] == ["sr", "sr"]
    assert document["entries"][0]["title"] == "Вучић: Србија неће признати независност Косова"
    code, out, _ = invoke(app, "feeds", "parse", str(FIXTURES / "koi8r.xml"))
    assert code == 0 and " ru " in out and "1 entries" in out


def test_parse_reports_problems_but_exits_zero_when_the_file_was_read(
    app: typer.Typer, tmp_path: Path
) -> None:
    code, out, _ = invoke(app, "feeds", "parse", str(FIXTURES / "not_a_feed.html"), "--json")
    document = _entries(out)
    assert code == 0 and document["entries"] == [] and any("not a feed" in e for e in document["errors"])
    bomb = tmp_path / "bomb.xml.gz"
    bomb.write_bytes(gzip.compress(b"<" * (20 * 1024 * 1024)))
    code, out, _ = invoke(app, "feeds", "parse", str(bomb), "--json")
    assert code == 0 and "after decompression" in _entries(out)["errors"][0]
    corrupt = tmp_path / "corrupt.xml.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00garbage")
    code, out, _ = invoke(app, "feeds", "parse", str(corrupt), "--json")
    assert code == 0 and _entries(out)["errors"][0].startswith("gzip: cannot decompress")


def test_parse_fails_when_the_file_cannot_be_read(app: typer.Typer, tmp_path: Path) -> None:
    code, out, err = invoke(app, "feeds", "parse", str(tmp_path / "absent.xml"), "--json")
    assert code == 1 and out == "" and "cannot read" in err


@pytest.mark.db
def test_health_pause_resume_reset(
    app: typer.Typer, ctx: AppContext, server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = server.serve("/good", rss([Item("Vest za zdravlje izvora vesti", "https://x.example/1", "1")]))
    path = write_feeds_file(
        tmp_path / "feeds.yaml", [{"id": "good", "url": good}, {"id": "bad", "url": server.url("/404")}]
    )
    ctx.settings = ctx.settings.model_copy(update={"feeds_file": path})
    monkeypatch.setattr(cli_feeds, "_settings", lambda: ctx.settings)
    now = dt.datetime(2026, 3, 3, 12, tzinfo=dt.UTC)
    sync_mod.sync_feeds(ctx, now)
    poll_mod.poll_feeds(ctx, now)

    code, out, _ = invoke(app, "feeds", "health", "--now", "2026-03-03T12:05:00Z")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(("good", "bad"))}
    assert "degraded" in lines["bad"] and "never" in lines["bad"] and "HTTP 404" in lines["bad"]
    assert "ok" in lines["good"] and "5m ago" in lines["good"]
    code, out, _ = invoke(app, "feeds", "health", "--json", "--now", "2026-03-03T12:05:00Z")
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["bad"]["state"] == "degraded" and rows["good"]["last_success_at"].startswith(
        "2026-03-03T12:00"
    )

    assert invoke(app, "feeds", "pause", "good")[0] == 0
    assert "paused" in invoke(app, "feeds", "health", "--now", "2026-03-03T12:05:00Z")[1]
    assert invoke(app, "feeds", "resume", "good")[0] == 0
    code, out, _ = invoke(app, "feeds", "reset", "bad")
    assert code == 0 and "polled on the next poll" in out
    assert poll_mod.poll_feeds(ctx, now + dt.timedelta(minutes=1)).feeds_due == 1
    code, _out, err = invoke(app, "feeds", "pause", "nope")
    assert code == 1 and "no feed 'nope'" in err
