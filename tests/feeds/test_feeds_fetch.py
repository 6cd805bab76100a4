"""The guarded fetcher against loopback servers: one test per behaviour."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

import pytest
from feeds_support import LoopbackServer, send

from narrwatch.config import Settings
from narrwatch.domain.polling import ErrorKind
from narrwatch.steps.poll import guard as guard_module
from narrwatch.steps.poll.fetch import AddressPolicy, AddressRefused, GuardedFetcher
from narrwatch.steps.poll.guard import is_public_address

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
def fetch_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fetch_deadline_s": 1.0, "fetch_connect_timeout_s": 1.0})


@pytest.fixture
def fetcher(fetch_settings: Settings) -> Iterator[GuardedFetcher]:
    with GuardedFetcher(fetch_settings) as guarded:
        yield guarded


@pytest.fixture
def second_server() -> Iterator[LoopbackServer]:
    """A server on another loopback address: another host for politeness and redirect tests."""
    loopback = LoopbackServer(host="127.0.0.2")
    loopback.start()
    try:
        yield loopback
    finally:
        loopback.stop()


def test_plain_get_sends_identity_and_hashes_the_body(
    server: LoopbackServer, fetcher: GuardedFetcher
) -> None:
    url = server.serve("/feed", FEED)
    result = fetcher.fetch(url)
    assert result.ok and result.status == 200 and result.body == FEED
    assert result.body_sha256 == hashlib.sha256(FEED).hexdigest()
    seen = server.requests[-1].headers
    assert seen["User-Agent"].startswith("narrwatch/")
    assert "gzip" in seen["Accept-Encoding"] and "rss" in seen["Accept"]
    assert fetcher.fetch(url).body_sha256 == result.body_sha256  # unchanged body, same hash


def test_conditional_get_and_304(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    def handler(request: BaseHTTPRequestHandler) -> None:
        if request.headers.get("If-None-Match") == '"v1"':
            send(request, b"", 304, {"ETag": '"v1"', "Last-Modified": "Mon, 02 Mar 2026 10:00:00 GMT"})
        else:
            send(request, FEED, 200, {"ETag": '"v1"', "Last-Modified": "Mon, 02 Mar 2026 09:00:00 GMT"})

    url = server.route("/feed", handler)
    first = fetcher.fetch(url)
    assert first.etag == '"v1"' and first.last_modified == "Mon, 02 Mar 2026 09:00:00 GMT"
    second = fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)
    assert server.requests[-1].headers["If-None-Match"] == '"v1"'
    assert server.requests[-1].headers["If-Modified-Since"] == "Mon, 02 Mar 2026 09:00:00 GMT"
    assert second.not_modified and second.body == b""
    assert second.etag == '"v1"'
    assert second.last_modified == "Mon, 02 Mar 2026 10:00:00 GMT"  # RFC 9111 4.3.4: update from the 304


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ErrorKind.SOFT),
        (403, ErrorKind.SOFT),
        (410, ErrorKind.HARD),
        (500, ErrorKind.TEMPORARY),
        (503, ErrorKind.TEMPORARY),
        (429, ErrorKind.TEMPORARY),
    ],
)
def test_http_errors_are_classified(
    server: LoopbackServer, fetcher: GuardedFetcher, status: int, kind: ErrorKind
) -> None:
    result = fetcher.fetch(server.serve("/x", b"error page", status, {"Content-Type": "text/html"}))
    assert result.error is not None and result.error.kind is kind
    assert result.status == status and f"HTTP {status}" in result.error.message


def test_retry_after_in_seconds_and_as_http_date(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    seconds = fetcher.fetch(server.serve("/a", b"slow down", 429, {"Retry-After": "120"}))
    assert seconds.retry_after_s == 120 and seconds.error is not None
    dated = fetcher.fetch(
        server.serve(
            "/b",
            b"maintenance",
            503,
            {"Retry-After": "Mon, 02 Mar 2026 10:30:00 GMT", "Date": "Mon, 02 Mar 2026 10:00:00 GMT"},
        )
    )
    assert dated.retry_after_s == 1800  # measured from the server's own Date header


def test_redirects_are_followed_and_recorded(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    server.serve("/old", b"", 301, {"Location": "/middle"})
    server.serve("/middle", b"", 302, {"Location": server.url("/new")})
    server.serve("/new", FEED)
    result = fetcher.fetch(server.url("/old"))
    assert result.ok and result.body == FEED
    assert result.final_url == server.url("/new")
    assert result.redirects == (server.url("/middle"), server.url("/new"))


def test_redirect_loops_and_too_many_redirects_fail_softly(
    server: LoopbackServer, fetcher: GuardedFetcher
) -> None:
    server.serve("/a", b"", 302, {"Location": "/b"})
    server.serve("/b", b"", 302, {"Location": "/a"})
    loop = fetcher.fetch(server.url("/a"))
    assert loop.error is not None and loop.error.kind is ErrorKind.SOFT and "loop" in loop.error.message
    for hop in range(8):
        server.serve(f"/hop{hop}", b"", 307, {"Location": f"/hop{hop + 1}"})
    chain = fetcher.fetch(server.url("/hop0"))
    assert chain.error is not None and "more than 5 redirects" in chain.error.message
    assert server.hits("/hop6") == 0  # stopped after five redirects


def test_redirect_to_another_scheme_is_refused(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    result = fetcher.fetch(server.serve("/r", b"", 302, {"Location": "file:///etc/passwd"}))
    assert result.error is not None and result.error.kind is ErrorKind.HARD
    assert "scheme 'file' refused" in result.error.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.test/feed", "scheme 'ftp' refused"),
        ("gopher://127.0.0.1:70/", "scheme 'gopher' refused"),
        ("https://user:secret@example.test/feed", "credentials are refused"),
        ("http://[::1/feed", "malformed URL"),
    ],
)
def test_bad_urls_are_hard_errors(fetcher: GuardedFetcher, url: str, message: str) -> None:
    result = fetcher.fetch(url)
    assert result.error is not None and result.error.kind is ErrorKind.HARD
    assert message in result.error.message


def test_private_addresses_and_odd_ports_are_refused_by_default(
    server: LoopbackServer, fetch_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = fetch_settings.model_copy(update={"allow_private_networks": False})
    url = server.serve("/feed", FEED)
    with GuardedFetcher(strict) as guarded:
        port_refused = guarded.fetch(url)
        assert port_refused.error is not None and "port" in port_refused.error.message
        monkeypatch.setattr(guard_module, "PUBLIC_PORTS", frozenset({server._server.server_address[1]}))  # type: ignore[union-attr]
        address_refused = guarded.fetch(url)
    assert address_refused.error is not None and address_refused.error.kind is ErrorKind.HARD
    assert "non-public addresses (127.0.0.1)" in address_refused.error.message
    assert server.hits("/feed") == 0


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::6810:84e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("240.0.0.1", False),
    ],
)
def test_address_classification(address: str, public: bool) -> None:
    import ipaddress

    assert is_public_address(ipaddress.ip_address(address)) is public


def test_address_is_checked_after_resolution_on_every_connection(
    server: LoopbackServer, fetch_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that resolves to an allowed address at first and to a refused one
    later is caught, because the check runs on the resolved address of each new connection."""
    port = server._server.server_address[1]  # type: ignore[union-attr]
    server.serve("/feed", FEED)
    answers = iter(["127.0.0.1", "127.0.0.2"])
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_resolver(host: str, *args: object, **kwargs: object) -> list:
        if host == "news.rebind.test":
            address = next(answers)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_resolver)
    monkeypatch.setattr(guard_module, "PUBLIC_PORTS", frozenset({port}))
    monkeypatch.setattr(
        guard_module, "is_public_address", lambda address: str(address) == "127.0.0.1"
    )  # pretend 127.0.0.1 is a public server and 127.0.0.2 an internal one
    strict = fetch_settings.model_copy(update={"allow_private_networks": False})
    with GuardedFetcher(strict) as first:
        assert first.fetch(f"http://news.rebind.test:{port}/feed").ok
    with GuardedFetcher(strict) as second:
        rebound = second.fetch(f"http://news.rebind.test:{port}/feed")
    assert rebound.error is not None and "non-public addresses (127.0.0.2)" in rebound.error.message


def test_redirect_to_a_refused_address_is_caught_on_that_hop(
    server: LoopbackServer,
    second_server: LoopbackServer,
    fetch_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    internal = second_server.serve("/admin", b"secret")
    server.serve("/feed", b"", 302, {"Location": internal})
    ports = {s._server.server_address[1] for s in (server, second_server)}  # type: ignore[union-attr]
    monkeypatch.setattr(guard_module, "PUBLIC_PORTS", frozenset(ports))
    monkeypatch.setattr(guard_module, "is_public_address", lambda address: str(address) == "127.0.0.1")
    with GuardedFetcher(fetch_settings.model_copy(update={"allow_private_networks": False})) as guarded:
        result = guarded.fetch(server.url("/feed"))
    assert result.error is not None and result.error.kind is ErrorKind.HARD
    assert second_server.hits("/admin") == 0


def test_address_policy_refuses_loopback_directly() -> None:
    with pytest.raises(AddressRefused):
        AddressPolicy(allow_private=False, connect_timeout_s=1).connect("localhost", 80, 1.0, None)


def test_slow_drip_body_is_cut_at_the_deadline(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    def drip(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.end_headers()
        for _ in range(200):
            request.wfile.write(b"<")
            request.wfile.flush()
            time.sleep(0.1)

    started = time.monotonic()
    result = fetcher.fetch(server.route("/drip", drip))
    elapsed = time.monotonic() - started
    assert result.error is not None and result.error.kind is ErrorKind.TEMPORARY
    assert "deadline of 1 s exceeded" in result.error.message
    assert 0.95 <= elapsed < 2.5


def test_slow_drip_headers_are_cut_at_the_deadline(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    def drip_headers(request: BaseHTTPRequestHandler) -> None:
        request.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for index in range(100):
            request.wfile.write(f"X-Slow-{index}: ".encode())
            for char in "abcdefghij":
                request.wfile.write(char.encode())
                request.wfile.flush()
                time.sleep(0.05)
            request.wfile.write(b"\r\n")

    started = time.monotonic()
    result = fetcher.fetch(server.route("/drip", drip_headers))
    assert result.error is not None and "deadline" in result.error.message
    assert time.monotonic() - started < 2.5


def test_silent_server_times_out(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    server.route("/silent", lambda request: time.sleep(5))
    started = time.monotonic()
    result = fetcher.fetch(server.url("/silent"))
    assert result.error is not None and result.error.kind is ErrorKind.TEMPORARY
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_decompression_bombs_stop_at_the_cap_with_bounded_memory(
    server: LoopbackServer, fetch_settings: Settings, encoding: str
) -> None:
    inflated = 256 * 1024 * 1024  # 256 MiB of zeros, 17 times the cap
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    chunk = b"\0" * (1024 * 1024)
    bomb = b"".join(compressor.compress(chunk) for _ in range(inflated // len(chunk))) + compressor.flush()
    assert len(bomb) < 2 * 1024 * 1024
    server.serve("/bomb", bomb, 200, {"Content-Encoding": encoding})
    capped = fetch_settings.model_copy(
        update={"fetch_max_body_bytes": 15 * 1024 * 1024, "fetch_deadline_s": 8}
    )
    tracemalloc.start()
    try:
        started = time.monotonic()
        with GuardedFetcher(capped) as guarded:
            result = guarded.fetch(server.url("/bomb"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error is not None and result.error.kind is ErrorKind.SOFT
    assert "larger than 15728640 bytes after decompression" in result.error.message
    assert peak < 200 * 1024 * 1024
    assert time.monotonic() - started < 10


def test_plain_oversized_body_and_empty_body(server: LoopbackServer, fetch_settings: Settings) -> None:
    server.serve("/big", b"x" * 200_000)
    server.serve("/empty", b"")
    with GuardedFetcher(fetch_settings.model_copy(update={"fetch_max_body_bytes": 100_000})) as guarded:
        big = guarded.fetch(server.url("/big"))
        empty = guarded.fetch(server.url("/empty"))
    assert big.error is not None and "larger than 100000 bytes" in big.error.message
    assert empty.error is not None and empty.error.message == "empty body"


def test_gzip_body_is_decoded(server: LoopbackServer, fetcher: GuardedFetcher) -> None:
    result = fetcher.fetch(server.serve("/gz", gzip.compress(FEED), 200, {"Content-Encoding": "gzip"}))
    assert result.ok and result.body == FEED


def test_connection_refused_is_temporary(fetcher: GuardedFetcher) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetcher.fetch(f"http://127.0.0.1:{port}/feed")
    assert result.error is not None and result.error.kind is ErrorKind.TEMPORARY


def test_environment_proxies_are_ignored(
    server: LoopbackServer, fetcher: GuardedFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/")
    assert fetcher.fetch(server.serve("/feed", FEED)).ok


def test_one_host_is_polled_politely_and_hosts_in_parallel(
    server: LoopbackServer, second_server: LoopbackServer, fetch_settings: Settings
) -> None:
    starts: dict[str, list[float]] = {"127.0.0.1": [], "127.0.0.2": []}
    lock = threading.Lock()

    def slow(request: BaseHTTPRequestHandler) -> None:
        with lock:
            starts[request.server.server_address[0]].append(time.monotonic())  # type: ignore[index]
        time.sleep(0.3)
        send(request, FEED)

    for loopback in (server, second_server):
        for index in range(3):
            loopback.route(f"/f{index}", slow)
    polite = fetch_settings.model_copy(update={"fetch_per_host_delay_s": 0.5})
    urls = [loopback.url(f"/f{index}") for index in range(3) for loopback in (server, second_server)]
    started = time.monotonic()
    with GuardedFetcher(polite) as guarded, ThreadPoolExecutor(6) as pool:
        results = list(pool.map(guarded.fetch, urls))
    elapsed = time.monotonic() - started
    assert all(result.ok for result in results)
    for host_starts in starts.values():
        host_starts.sort()
        gaps = [later - earlier for earlier, later in zip(host_starts, host_starts[1:], strict=False)]
        # The gate spaces request starts by 0.5 s on the client; the server sees them after a
        # connect and a thread switch, which can shift one arrival by a few ms on a busy machine.
        # A gate that only serialised requests would show gaps of 0.3 s (the response time).
        assert min(gaps) >= 0.45
    # Two hosts in parallel: about 3 x 0.5 s, not 6 x 0.5 s.
    assert elapsed < 2.6
