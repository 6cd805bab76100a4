"""`narrwatch poll` exit codes, and a broken feeds.yaml that keeps the last good catalogue polled."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from feeds_support import Item, LoopbackServer, rss, write_feeds_file
from typer.testing import CliRunner

from narrwatch.context import AppContext
from narrwatch.steps.poll.outcome import POLL_ALL_FAILED, POLL_OK, POLL_UNKNOWN_FEED

# The package's `main` attribute is the entry function, so the module is imported by name.
cli = importlib.import_module("narrwatch.cli.main")

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def poll_cli(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> AppContext:
    @contextmanager
    def shared() -> Iterator[AppContext]:
        yield ctx

    monkeypatch.setattr(cli, "app_context", shared)
    return ctx


def poll(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["poll", "--now", NOW.isoformat(), "--force", *args])
    return result.exit_code, result.stderr


def configure(ctx: AppContext, path: Path, urls: dict[str, str]) -> None:
    write_feeds_file(path, [{"id": feed_id, "url": url} for feed_id, url in urls.items()])
    ctx.settings = ctx.settings.model_copy(
        update={
            "feeds_file": path,
            "fetch_deadline_s": 1.5,
            "allow_private_networks": True,
            "fetch_per_host_delay_s": 0.0,
        }
    )


def test_poll_exit_codes(poll_cli: AppContext, server: LoopbackServer, tmp_path: Path) -> None:
    good = server.serve("/good.xml", rss([Item("A title", "https://example.test/a", published=NOW)]))
    bad = server.serve("/bad.xml", b"gone", status=404)
    configure(poll_cli, tmp_path / "feeds.yaml", {"good-feed": good, "bad-feed": bad})

    code, err = poll("--feed", "good-fed")
    assert code == POLL_UNKNOWN_FEED and "no such feed: good-fed" in err
    code, err = poll("--feed", "bad-feed")
    assert code == POLL_ALL_FAILED and "every feed polled failed (1 of 1)" in err
    code, err = poll()
    assert code == POLL_OK, err


def test_a_broken_feeds_file_keeps_the_last_good_catalogue_and_says_so(
    poll_cli: AppContext, server: LoopbackServer, tmp_path: Path
) -> None:
    path = tmp_path / "feeds.yaml"
    first = server.serve("/first.xml", rss([Item("First", "https://example.test/1", published=NOW)]))
    configure(poll_cli, path, {"first-feed": first})
    assert poll()[0] == POLL_OK
    # the file breaks: no traceback, the stored catalogue is polled and the warning names the file
    path.write_text(
        path.read_text(encoding="utf-8").replace("country: RS", "country: SERBIA"), encoding="utf-8"
    )
    result = CliRunner().invoke(
        cli.app, ["poll", "--now", (NOW + dt.timedelta(hours=1)).isoformat(), "--force", "--json"]
    )
    assert result.exit_code == POLL_OK, result.output
    assert f"warning: {path} cannot be used, polling the last good catalogue (1 feeds)" in result.stderr
    assert "country" in result.stderr and "Traceback" not in result.output
    assert server.hits("/first.xml") == 2


def test_a_broken_feeds_file_with_nothing_stored_is_an_error(poll_cli: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: [\n", encoding="utf-8")
    poll_cli.settings = poll_cli.settings.model_copy(update={"feeds_file": path})
    result = CliRunner().invoke(cli.app, ["poll", "--now", NOW.isoformat()])
    assert isinstance(result.exception, cli.FeedsFileError)  # main() prints its problems, exit 2
