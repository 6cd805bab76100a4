"""The report in a real browser: headless Chromium (Debian package ``chromium``), no CDP, no driver.

Every host name the page could reach is mapped to a loopback trap server that counts connections
(``--host-resolver-rules``); other names resolve nowhere, so Chromium's own background traffic is not
counted. Hostile payloads in the fixture point at the trap (directly or through such names) and try to
change ``document.title``. ``--dump-dom`` prints the DOM after scripts ran, so a changed title or a
counted connection means something in the page executed or loaded.

Control pages without our escaping prove the harness sees both a script running and a request.
"""

from __future__ import annotations

import shutil
import socketserver
import struct
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import DAY, NOW, RISING_SEED, RISING_TITLE, Hostile, build_report_fixture

from narrwatch.context import AppContext
from narrwatch.steps.report import render_report
from narrwatch.steps.report.render import CSP

pytestmark = pytest.mark.db

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
    None,
)
REPORT_TITLE = f"narrwatch daily report {DAY.isoformat()}"
WINDOW = (1280, 2200)


class Trap(socketserver.ThreadingTCPServer):
    """Counts every TCP connection; records the HTTP request line and Host, or 'TLS' for a handshake."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TrapHandler)
        self.seen: list[str] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _TrapHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(2)
        try:
            head = self.request.recv(2048)
        except OSError:
            head = b""
        if head[:1] == b"\x16":
            what = "TLS handshake"
        else:
            lines = head.decode("latin-1").split("\r\n")
            host = next((line for line in lines if line.lower().startswith("host:")), "")
            what = f"{lines[0]} ({host})"
        server: Trap = self.server  # type: ignore[assignment]
        with server.lock:
            server.seen.append(what)
        try:
            self.request.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass


@pytest.fixture
def trap() -> Iterator[Trap]:
    server = Trap()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def chromium(page: Path, trap: Trap, profile: Path, *mode: str) -> str:
    if CHROMIUM is None:
        pytest.fail("headless Chromium is not installed: `make browser` installs Debian's chromium")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # every name a page could use goes to the trap; anything else resolves nowhere
        f"--host-resolver-rules=MAP *.example 127.0.0.1:{trap.port}, MAP *.test 127.0.0.1:{trap.port}, "
        "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=3000",  # let timers, refreshes and lazy loads fire before the dump
        *mode,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class DomSummary(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_title = False
        self._svg_title_of: str | None = None
        self.chart_titles: dict[str, str] = {}
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "title":
            self._in_title = True
            self._svg_title_of = None
            title_id = attributes.get("id") or ""
            if title_id.startswith("chart-title-"):
                self._svg_title_of = title_id.removeprefix("chart-title-")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self._svg_title_of = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title and self._svg_title_of:
            self.chart_titles[self._svg_title_of] = self.chart_titles.get(self._svg_title_of, "") + data
        elif self._in_title and not self.title:
            self.title = data


def test_harness_sees_scripts_run_and_requests_leave(tmp_path: Path, trap: Trap) -> None:
    control = tmp_path / "control.html"
    control.write_text(
        "<!doctype html><title>before</title>"
        f'<img src="http://127.0.0.1:{trap.port}/direct.png"><img src="http://beacon.test/mapped.png">'
        "<script>document.title = 'control-ran'</script>"
    )
    dom = DomSummary(chromium(control, trap, tmp_path / "profile-control", "--dump-dom"))
    assert dom.title == "control-ran"
    assert any("/direct.png" in seen for seen in trap.seen), trap.seen
    assert any("/mapped.png" in seen and "beacon.test" in seen for seen in trap.seen), trap.seen


def test_hostile_report_is_inert_in_chromium_and_shows_the_rising_seed(
    ctx: AppContext, tmp_path: Path, trap: Trap, capsys: pytest.CaptureFixture[str]
) -> None:
    build_report_fixture(ctx, Hostile(beacon=f"http://127.0.0.1:{trap.port}"))
    result = render_report(ctx, DAY, NOW, out_dir=tmp_path / "report")
    shipped = result.html.read_text(encoding="utf-8")
    csp_meta = f'<meta http-equiv="Content-Security-Policy" content="{CSP.replace(chr(39), "&#39;")}">'
    assert csp_meta in shipped
    # the same page without its CSP: escaping alone must keep it inert
    no_csp = tmp_path / "report" / "no-csp.html"
    no_csp.write_text(shipped.replace(csp_meta, ""), encoding="utf-8")

    for page, profile in ((result.html, "profile-report"), (no_csp, "profile-no-csp")):
        dom = DomSummary(chromium(page, trap, tmp_path / profile, "--dump-dom"))
        assert dom.title == REPORT_TITLE, f"{page.name}: a script changed the title to {dom.title!r}"
        names = {tag for tag, _ in dom.tags}
        assert not names & {"script", "img", "iframe", "link", "object", "embed"}, page.name
        assert not [a for _, attrs in dom.tags for a in attrs if a.startswith("on")], page.name
        anchor = f"narrative-{RISING_SEED}"
        assert ("article", anchor) in [(tag, attrs.get("id")) for tag, attrs in dom.tags]
        charts = [attrs for tag, attrs in dom.tags if tag == "svg" and attrs.get("data-chart-for") == anchor]
        assert charts and charts[0].get("role") == "img"
        assert RISING_TITLE in dom.chart_titles[anchor]
        text = "".join(dom.text)
        assert "NATO bombed us before and now it wants our army." in text  # the evidence passage
        assert "<script>document.title='PWNED-script'</script>" in text  # shown, not run
    assert trap.seen == [], f"the report made requests: {trap.seen}"

    screenshot = tmp_path / "report.png"
    chromium(
        result.html,
        trap,
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
    )
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == WINDOW
    assert trap.seen == [], f"the screenshot run made requests: {trap.seen}"
    with capsys.disabled():
        print(f"\nreport screenshot: {screenshot}")
