"""The analyst's commands end to end: test (text, file, loopback URL), backtest, review, label, calibrate."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from narratives_support import NATO_TEXT, RUSSIA_TEXT, T0, WEATHER_TEXT, embed, store_articles
from typer.testing import CliRunner

from narrwatch import config
from narrwatch.cli import narratives as cli_narratives
from narrwatch.cli.narratives import register
from narrwatch.context import AppContext
from narrwatch.db import rules as rules_mod
from narrwatch.steps.match import match as matching

pytestmark = pytest.mark.db

PAGE = f"""<!doctype html><html><head><title>Brothers</title></head><body>
<nav>Home | World | Sport</nav>
<article><h1>Brothers in need</h1>
<p>{RUSSIA_TEXT}</p>
<p>{"The speaker said that only Moscow had stood by Belgrade in every hard moment of its history. " * 3}</p>
</article><footer>Contact us</footer></body></html>"""


@pytest.fixture
def cli(nctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    # The commands open (and close) their own context: give them the test's, whose Qdrant is in
    # memory and would be empty if opened again.
    monkeypatch.setattr(config, "get_settings", lambda: nctx.settings)
    monkeypatch.setattr(cli_narratives, "_context", lambda: nctx)
    monkeypatch.setattr(nctx, "close", lambda: None)
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def page_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/story"
    finally:
        server.shutdown()
        server.server_close()


def test_narratives_test_from_text_file_and_url(cli: typer.Typer, tmp_path: Path, page_url: str) -> None:
    runner = CliRunner()
    from_text = runner.invoke(cli, ["narratives", "test", NATO_TEXT, "--top", "2"])
    assert from_text.exit_code == 0, from_text.output
    assert "confirm  nato-aggressor" in from_text.output and "evidence [0]:" in from_text.output
    article = tmp_path / "article.txt"
    article.write_text(WEATHER_TEXT, encoding="utf-8")
    from_file = runner.invoke(cli, ["narratives", "test", "--file", str(article), "--json"])
    assert from_file.exit_code == 0, from_file.output
    assert all(seed["level"] is None for seed in json.loads(from_file.stdout)["seeds"])
    from_url = runner.invoke(cli, ["narratives", "test", "--url", page_url, "--json"])
    assert from_url.exit_code == 0, from_url.output
    best = json.loads(from_url.stdout)["seeds"][0]
    assert best["narrative_id"] == "russia-true-friend" and RUSSIA_TEXT in best["evidence_text"]
    assert "Contact us" not in best["evidence_text"]  # boilerplate removed by the extractor
    both = runner.invoke(cli, ["narratives", "test", "x", "--file", str(article)])
    assert both.exit_code == 2 and "exactly one of" in both.output
    refused = runner.invoke(cli, ["narratives", "test", "--url", "file:///etc/passwd"])
    assert refused.exit_code == 2 and "--url file:///etc/passwd" in refused.output


def test_backtest_review_label_calibrate(cli: typer.Typer, nctx: AppContext) -> None:
    ids = store_articles(nctx, [("NATO", NATO_TEXT), ("Weather", WEATHER_TEXT)])
    embed(nctx)
    now = T0 + dt.timedelta(days=2)
    matching.match_articles(nctx, T0, now, now)
    runner = CliRunner()
    backtest = runner.invoke(
        cli, ["narratives", "backtest", "nato-aggressor", "--days", "7", "--now", now.isoformat()]
    )
    assert backtest.exit_code == 0, backtest.output
    assert "nato-aggressor: 1 match(es) among 2 embedded articles" in backtest.output
    assert "0 new, 0 gone, 0 changed level" in backtest.output
    unknown = runner.invoke(cli, ["narratives", "backtest", "no-such-seed"])
    assert unknown.exit_code == 2 and "no seed narrative with id 'no-such-seed'" in unknown.output

    review = runner.invoke(cli, ["review", "--narrative", "nato-aggressor", "--json"])
    [item] = json.loads(review.stdout)
    assert item["narrative_id"] == "nato-aggressor" and NATO_TEXT in item["evidence_text"]
    labelled = runner.invoke(cli, ["label", str(item["match_id"]), "reject", "--note", "a report"])
    assert labelled.exit_code == 0 and "reject" in labelled.output
    assert "nothing to review" in runner.invoke(cli, ["review", "--narrative", "nato-aggressor"]).output
    bad = runner.invoke(cli, ["label", str(item["match_id"]), "maybe"])
    assert bad.exit_code == 2 and "confirm or reject" in bad.output
    missing = runner.invoke(cli, ["label", "12345", "confirm"])
    assert missing.exit_code == 2 and "no match with id 12345" in missing.output

    too_few = runner.invoke(cli, ["narratives", "calibrate", "nato-aggressor"])
    assert too_few.exit_code == 1 and "too few verdicts: 1" in too_few.output
    calibrated = runner.invoke(
        cli, ["narratives", "calibrate", "nato-aggressor", "--min-verdicts", "1", "--json"]
    )
    assert calibrated.exit_code == 0, calibrated.output
    result = json.loads(calibrated.stdout)
    assert result["stored"] and result["confirm"] > result["previous"]["confirm"]
    assert "these thresholds decide its matches, not the stream head" in result["head"]
    assert ids[0] not in {m.article_id for m in _report_rows(nctx)}


def _report_rows(ctx: AppContext) -> list[object]:
    with ctx.transaction() as session:
        return list(session.scalars(rules_mod.counted_matches_query()))
