"""The served app in headless Chromium (Debian's, driven by Playwright without its own browser).

A demo-like store: the report fixture (a rising seed with six pending matches, one per outlet, a
cluster, failing feeds, hostile text in every field that comes from a feed) with its articles embedded
by the bundled model, the seeds imported into SQL, and four accounts. An analyst judges matches with
the keyboard, the Today page and the timeline follow; the analyst edits a seed, tries a text, runs a
backtest and activates it; a reader is refused; a form without its CSRF token is refused; nothing
hostile runs and no request leaves the app's origin (hostile links point at a loopback trap).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import DAY, RISING_SEED, Hostile, build_report_fixture
from sqlalchemy import select
from web_helpers import PASSWORD, add_users, web_settings

from narrwatch.context import AppContext
from narrwatch.db.models import AuditEvent, SeedHead, Verdict
from narrwatch.steps.match.seeds import check_narratives
from narrwatch.steps.match.seedstore import export_seeds, import_seeds

pytestmark = pytest.mark.db

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The first try and backtest of a session encode the seeds and the bundled calibration background on
#: a cold model cache: 60-90 s on a 2-core CPU without AVX-512 (torch fp32).
COLD_MODEL_MS = 300_000
EDITED_SEED = "eu-exploits-balkans"
NOW = dt.datetime(2025, 3, 13, 6, 0, tzinfo=dt.UTC)


class Trap(socketserver.ThreadingTCPServer):
    """Counts every connection: hostile payloads point here, so a count above zero means one fired."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), socketserver.BaseRequestHandler)
        self.connections = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(ctx: AppContext, tmp_path: Path) -> Iterator[dict[str, Any]]:
    import uvicorn

    from narrwatch import pipeline
    from narrwatch.web.app import create_app

    narratives = tmp_path / "narratives"
    shutil.copytree(ctx.settings.narratives_dir, narratives, ignore=shutil.ignore_patterns("*.md"))
    # torch: the bundled model loads in seconds, no ONNX export needed for a test.
    ctx.settings = ctx.settings.model_copy(
        update={"narratives_dir": narratives, "embedding_backend": "torch"}
    )
    trap = Trap()
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    beacon = f"http://127.0.0.1:{trap.server_address[1]}"
    build_report_fixture(ctx, Hostile(beacon))
    add_users(ctx)
    pipeline.embed(ctx, NOW)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx, web_settings()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield {"ctx": ctx, "base": f"http://127.0.0.1:{port}", "trap": trap}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        trap.shutdown()
        trap.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def _post_status(page: Any, url: str, data: dict[str, str], with_token: bool = True) -> int:
    """Status of a form POST sent from the page (the page's own CSRF token unless told otherwise)."""
    return int(
        page.evaluate(
            """async ([url, data, withToken]) => {
                const body = new URLSearchParams(data);
                if (withToken) body.append("csrf_token", document.body.dataset.csrf);
                const response = await fetch(url, {method: "POST", body, credentials: "same-origin"});
                return response.status;
            }""",
            [url, data, with_token],
        )
    )


def test_analyst_and_reader_in_a_real_browser(served: dict[str, Any], browser: Any) -> None:
    ctx, base, trap = served["ctx"], served["base"], served["trap"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    titles: list[str] = []
    page.on("load", lambda: titles.append(page.title()))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    _login(page, base, "ana")
    page.goto(f"{base}/day/{DAY}")
    assert page.inner_text("#n-matching") == "7"
    page.goto(f"{base}/narratives/{RISING_SEED}")
    bar = f"rect[data-day='{DAY}']"
    assert page.get_attribute(bar, "data-outlets") == "6"

    # --- the review queue, by keyboard ----------------------------------------------------------
    page.goto(base + "/review")
    first = page.locator(".review-item").first
    assert "NATO" in first.locator("blockquote.evidence").inner_text()
    order = page.eval_on_selector_all(".review-item", "items => items.map(i => i.dataset.match)")
    for done, (key, verdict) in enumerate(
        (("c", "Confirmed"), ("c", "Confirmed"), ("c", "Confirmed"), ("r", "Rejected")), 1
    ):
        page.keyboard.press(key)
        page.wait_for_function(
            "([word, n]) => document.getElementById('status').textContent.startsWith(word)"
            " && document.querySelectorAll('.review-item.done').length === n",
            arg=[verdict, done],
        )
    page.wait_for_function("() => document.querySelectorAll('.review-item.done').length === 4")
    with ctx.transaction() as session:
        verdicts = {
            v.match_id: v.verdict
            for v in session.scalars(select(Verdict).where(Verdict.match_id.is_not(None)))
        }
    judged = [int(m) for m in order[:4]]
    assert [verdicts.get(m) for m in judged] == ["confirm", "confirm", "confirm", "reject"]

    # --- Today and the timeline follow ----------------------------------------------------------
    page.goto(f"{base}/day/{DAY}")
    assert page.inner_text("#n-matching") == "6"
    page.goto(f"{base}/narratives/{RISING_SEED}")
    assert page.get_attribute(bar, "data-outlets") == "5"
    assert page.locator("li.not-counted").count() >= 1

    # --- the seed editor ------------------------------------------------------------------------
    page.goto(f"{base}/seeds/{EDITED_SEED}/edit")
    title = page.input_value("input[name=title]")
    page.fill("input[name=title]", title + " (browser edit)")
    examples = page.input_value("textarea[name=examples]")
    page.fill(
        "textarea[name=examples]",
        examples + "\nBrussels treats Serbia as a colony for its lithium and cheap labour.",
    )
    page.select_option("select[name=status]", "draft")
    page.click("button[value=save]")
    page.wait_for_selector("#saved")
    assert "revision 2" in page.inner_text("h1")
    page.fill("#try-form textarea", "The EU wants our lithium and our cheap labour, not Serbia as a member.")
    page.wait_for_selector("#try-table", timeout=COLD_MODEL_MS)
    assert EDITED_SEED in page.inner_text("#try-table")
    page.fill("#backtest-form input[name=days]", "30")
    page.click("#backtest-form button")
    page.wait_for_selector("#backtest-result", timeout=COLD_MODEL_MS)
    assert "would match" in page.inner_text("#backtest-result")
    page.click("button[value=activate]")
    page.wait_for_selector("#saved")
    heading = page.inner_text("h1")
    assert "revision 3" in heading and "active" in heading and "(browser edit)" in heading
    with ctx.transaction() as session:
        head = session.get(SeedHead, EDITED_SEED)
        assert head is not None and head.revision == 3 and head.document["status"] == "active"
    version = re.search(r"matching v(\d+)", heading)
    assert version is not None and int(version.group(1)) >= 2

    # --- the audit page lists all of it ---------------------------------------------------------
    page.goto(base + "/audit")
    rows = page.eval_on_selector_all("#audit tbody tr", "rows => rows.map(r => r.innerText)")
    for action, n in (("verdict.confirm", 3), ("verdict.reject", 1), ("seed.save", 2)):
        matching = [row for row in rows if f"\t{action}\t" in row]
        assert len(matching) == n, (action, rows)
        assert all(re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\tana\t", row) for row in matching)

    # --- the browser-edited seed exported, validated, imported unchanged ------------------------
    folder = ctx.settings.narratives_dir
    export_seeds(ctx, folder)
    narratives, problems = check_narratives(folder)
    assert problems == [] and narratives is not None
    assert narratives.get(EDITED_SEED).title.endswith("(browser edit)")
    report = import_seeds(ctx, folder, NOW, "import")
    assert (report.created, report.updated, report.conflicts) == ([], [], [])

    # --- a form without its CSRF token ----------------------------------------------------------
    assert (
        _post_status(page, "/review/verdict", {"verdict": "confirm", "match_id": order[5]}, with_token=False)
        == 403
    )
    page.goto(base + "/review")
    pending = page.eval_on_selector_all(".review-item", "items => items.map(i => i.dataset.match)")

    # --- a reader ----------------------------------------------------------------------------------
    page.click("form.who button")
    _login(page, base, "rita")
    page.goto(base + "/review")
    assert page.locator("form.verdict").count() == 0
    assert _post_status(page, "/review/verdict", {"verdict": "confirm", "match_id": pending[0]}) == 403
    page.goto(f"{base}/seeds/{EDITED_SEED}/edit")
    assert (
        _post_status(page, f"/seeds/{EDITED_SEED}/edit", {"title": "x", "description": "y", "examples": "z"})
        == 403
    )
    page.keyboard.press("c")
    with ctx.transaction() as session:
        assert session.scalar(select(Verdict).where(Verdict.match_id == int(pending[0]))) is None
        assert session.get(SeedHead, EDITED_SEED).revision == 3  # type: ignore[union-attr]
        readers = set(session.scalars(select(AuditEvent.username).where(AuditEvent.username == "rita")))
    assert readers == set()

    # --- nothing hostile ran, nothing left the origin ---------------------------------------------
    for path in ("/", f"/day/{DAY}", "/clusters/7", "/feeds", "/search?q=NATO", f"/narratives/{RISING_SEED}"):
        page.goto(base + path)
        assert "PWNED" not in page.title(), path
    assert not [t for t in titles if "PWNED" in t] and dialogs == []
    page.wait_for_timeout(300)
    assert trap.connections == 0
    foreign = [url for url in requests if not url.startswith(base + "/")]
    assert foreign == [], foreign
    context.close()
