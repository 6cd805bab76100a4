"""The one guarded HTTP fetcher, for feeds and for article pages (whose links an attacker chooses).

Guards (Miniflux's fetcher is the model; research/anchors-style-reliability.md, Part 2):

* http and https only, no credentials in URLs; ports 80/443/8080/8443 for public hosts (any port
  when private networks are allowed, i.e. tests and the demo);
* the address check runs on the *connection*, after DNS resolution and before the TCP connect, on
  every hop and every new connection, and the socket connects to the vetted address: DNS rebinding
  between check and use is impossible. Non-global addresses (private, loopback, link-local, CGNAT,
  multicast, reserved, and IPv4 embedded in IPv6) are refused unless ``allow_private_networks``;
* one total deadline per fetch, redirects included, enforced by a watchdog that shuts the socket
  down, so a server that drips its headers or body one byte at a time cannot hold a worker;
* the *decompressed* body is capped while it streams (gzip and deflate bombs stop at the cap);
* at most ``fetch_max_redirects`` redirects, followed by hand, each re-checked;
* no proxies or credentials from the environment (urllib3 reads none);
* conditional GET (``If-None-Match``, ``If-Modified-Since``), a sha256 of the body, ``Retry-After``;
* politeness: one request at a time per host and a minimum gap between two requests to a host;
  callers fetch different hosts concurrently from a thread pool (``fetch_concurrency``).

Errors are classified for the backoff (:class:`narrwatch.domain.polling.ErrorKind`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    DecodeError,
    HTTPError,
    LocationParseError,
    ProtocolError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from narrwatch.domain.polling import ErrorKind, parse_retry_after
from narrwatch.steps.poll.guard import (
    AddressPolicy,
    AddressRefused,
    ConnectFailed,
    _current,
    _Deadline,
    _Failure,
    _GuardedHTTPPool,
    _GuardedHTTPSPool,
)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


TEMPORARY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 509, 520, 521, 522, 523, 524})


HARD_STATUSES = frozenset({410})


_READ_CHUNK = 65_536


class FetchSettings(Protocol):
    """The part of ``narrwatch.config.Settings`` the fetcher reads."""

    allow_private_networks: bool
    fetch_connect_timeout_s: float
    fetch_deadline_s: float
    fetch_max_body_bytes: int
    fetch_max_redirects: int
    fetch_user_agent: str
    fetch_per_host_delay_s: float


@dataclass(frozen=True)
class FetchError:
    kind: ErrorKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


@dataclass(frozen=True)
class FetchResult:
    """What one fetch produced. ``error`` is None for a usable body or a 304."""

    url: str
    final_url: str
    status: int | None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    retry_after_s: float | None = None
    error: FetchError | None = None
    elapsed_s: float = 0.0
    redirects: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304


class HostGate:
    """One request at a time per host, and at least ``min_gap_s`` between two request starts."""

    def __init__(self, min_gap_s: float) -> None:
        self.min_gap_s = min_gap_s
        self._lock = threading.Lock()
        self._hosts: dict[str, tuple[threading.Lock, list[float]]] = {}

    @contextmanager
    def slot(self, host: str, timeout: float | None = None) -> Iterator[None]:
        with self._lock:
            lock, last_start = self._hosts.setdefault(host, (threading.Lock(), [float("-inf")]))
        if not lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            raise _Failure(ErrorKind.TEMPORARY, f"no turn for host {host} before the deadline")
        try:
            wait = last_start[0] + self.min_gap_s - time.monotonic()
            if wait > 0:
                time.sleep(wait if timeout is None else min(wait, max(0.0, timeout)))
            last_start[0] = time.monotonic()
            yield
        finally:
            lock.release()


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str
    port: int
    request_path: str


#: Headers that hold one value: a repeated one keeps its first value instead of a joined list.
_SINGLE_VALUE_HEADERS = frozenset(
    {"date", "etag", "last-modified", "retry-after", "content-type", "content-length", "location"}
)


def _lower_headers(headers: Any) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in headers.items():
        name = key.lower()
        if name not in merged:
            merged[name] = value
        elif name not in _SINGLE_VALUE_HEADERS:
            merged[name] = f"{merged[name]}, {value}"
    return merged


def _server_time(headers: Mapping[str, str]) -> dt.datetime:
    value = headers.get("date")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return dt.datetime.now(dt.UTC)


def classify_status(status: int) -> ErrorKind:
    if status in TEMPORARY_STATUSES or (500 <= status < 600 and status not in (501, 505)):
        return ErrorKind.TEMPORARY
    if status in HARD_STATUSES:
        return ErrorKind.HARD
    return ErrorKind.SOFT


class GuardedFetcher:
    """Thread-safe; one instance per poll (it keeps connections alive between fetches)."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_private_networks, settings.fetch_connect_timeout_s)
        self.gate = HostGate(settings.fetch_per_host_delay_s)
        self._pools: dict[tuple[str, str, int], HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()
        try:
            import certifi

            self._ca_certs: str | None = certifi.where()
        except ImportError:  # urllib3 falls back to the system's CA store
            self._ca_certs = None

    def __enter__(self) -> GuardedFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def _pool(self, target: _Target) -> HTTPConnectionPool:
        key = (target.scheme, target.host, target.port)
        with self._pools_lock:
            pool = self._pools.get(key)
            if pool is None:
                common: dict[str, Any] = {"maxsize": 2, "block": False, "retries": False}
                if target.scheme == "https":
                    pool = _GuardedHTTPSPool(
                        target.host,
                        target.port,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=self._ca_certs,
                        address_policy=self.policy,
                        **common,
                    )
                else:
                    pool = _GuardedHTTPPool(target.host, target.port, address_policy=self.policy, **common)
                self._pools[key] = pool
            return pool

    def _target(self, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _Failure(ErrorKind.HARD, f"malformed URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise _Failure(ErrorKind.HARD, f"scheme {scheme!r} refused: only http and https")
        if not parts.hostname:
            raise _Failure(ErrorKind.HARD, "URL has no host")
        if parts.username is not None or parts.password is not None:
            raise _Failure(ErrorKind.HARD, "URLs with credentials are refused")
        port = port or (443 if scheme == "https" else 80)
        self.policy.check_port(port)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return _Target(url=url, scheme=scheme, host=parts.hostname.lower(), port=port, request_path=path)

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` under every guard. Never raises for network or server trouble: see ``error``."""
        started = time.monotonic()
        cap = min(max_bytes or self.settings.fetch_max_body_bytes, self.settings.fetch_max_body_bytes)
        headers = {
            "User-Agent": self.settings.fetch_user_agent,
            "Accept": accept,
            "Accept-Encoding": "gzip, deflate",
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        redirects: list[str] = []
        deadline: _Deadline | None = None
        status: int | None = None
        try:
            for _hop in range(self.settings.fetch_max_redirects + 1):
                target = self._target(current)
                remaining = deadline.remaining() if deadline is not None else None
                with self.gate.slot(target.host, remaining):
                    if deadline is None:
                        # The deadline starts with the first request, not while queueing for the host.
                        deadline = _Deadline(self.settings.fetch_deadline_s)
                    _current.deadline = deadline
                    response = self._request(target, headers, deadline)
                    status = response.status
                    location = response.headers.get("location")
                    if status in REDIRECT_STATUSES and location:
                        response.close()
                        response.release_conn()
                        next_url = urljoin(current, location.strip())
                        if next_url == current or next_url in redirects or next_url == url:
                            raise _Failure(ErrorKind.SOFT, f"redirect loop at {next_url}", status)
                        redirects.append(next_url)
                        current = next_url
                        continue
                    return self._finish(
                        url, current, response, deadline, cap, etag, last_modified, redirects, started
                    )
            raise _Failure(ErrorKind.SOFT, f"more than {self.settings.fetch_max_redirects} redirects", status)
        except _Failure as failure:
            return self._failed(
                url, current, failure.status or status, failure.kind, str(failure), redirects, started
            )
        except Exception as exc:  # every other failure is described, never raised to the poller
            kind, message = self._describe(exc, deadline)
            return self._failed(url, current, status, kind, message, redirects, started)
        finally:
            if deadline is not None:
                deadline.cancel()
            _current.deadline = None

    def _request(self, target: _Target, headers: dict[str, str], deadline: _Deadline) -> Any:
        remaining = max(0.05, deadline.remaining())
        timeout = urllib3.Timeout(
            connect=min(self.settings.fetch_connect_timeout_s, remaining), read=remaining
        )
        return self._pool(target).urlopen(
            "GET",
            target.request_path,
            headers=headers,
            redirect=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
            decode_content=True,
            assert_same_host=False,
        )

    def _finish(
        self,
        url: str,
        final_url: str,
        response: Any,
        deadline: _Deadline,
        cap: int,
        etag: str | None,
        last_modified: str | None,
        redirects: list[str],
        started: float,
    ) -> FetchResult:
        status = int(response.status)
        headers = _lower_headers(response.headers)
        new_etag = headers.get("etag") or etag
        new_last_modified = headers.get("last-modified") or last_modified
        if status == 304:
            response.close()
            response.release_conn()
            return FetchResult(
                url=url,
                final_url=final_url,
                status=304,
                headers=headers,
                etag=new_etag,
                last_modified=new_last_modified,
                elapsed_s=time.monotonic() - started,
                redirects=tuple(redirects),
            )
        if not 200 <= status < 300:
            response.close()
            response.release_conn()
            retry_after = parse_retry_after(headers.get("retry-after"), _server_time(headers))
            return FetchResult(
                url=url,
                final_url=final_url,
                status=status,
                headers=headers,
                retry_after_s=retry_after,
                error=FetchError(classify_status(status), f"HTTP {status}"),
                elapsed_s=time.monotonic() - started,
                redirects=tuple(redirects),
            )
        body = self._read_body(response, deadline, cap)
        if not body:
            raise _Failure(ErrorKind.SOFT, "empty body", status)
        return FetchResult(
            url=url,
            final_url=final_url,
            status=status,
            body=body,
            headers=headers,
            etag=new_etag,
            last_modified=new_last_modified,
            body_sha256=hashlib.sha256(body).hexdigest(),
            retry_after_s=parse_retry_after(headers.get("retry-after"), _server_time(headers)),
            elapsed_s=time.monotonic() - started,
            redirects=tuple(redirects),
        )

    def _read_body(self, response: Any, deadline: _Deadline, cap: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if deadline.remaining() <= 0:
                    raise _Failure(ErrorKind.TEMPORARY, self._deadline_message(), response.status)
                chunk = response.read1(_READ_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise _Failure(
                        ErrorKind.SOFT,
                        f"body larger than {cap} bytes after decompression: stopped",
                        response.status,
                    )
                chunks.append(chunk)
            if deadline.expired:  # the watchdog shut the socket: what arrived is not the whole body
                raise _Failure(ErrorKind.TEMPORARY, self._deadline_message(), response.status)
        except BaseException:
            response.close()  # an unread body makes the connection unusable
            raise
        response.release_conn()
        return b"".join(chunks)

    def _deadline_message(self) -> str:
        return f"deadline of {self.settings.fetch_deadline_s:g} s exceeded"

    def _describe(self, exc: BaseException, deadline: _Deadline | None) -> tuple[ErrorKind, str]:
        timed_out = isinstance(exc, Urllib3Timeout | TimeoutError) or (
            isinstance(exc, ConnectFailed) and exc.timed_out
        )
        # The socket timeout is set to the time left, so it and the watchdog fire together.
        if deadline is not None and (deadline.expired or (timed_out and deadline.remaining() < 0.25)):
            return ErrorKind.TEMPORARY, self._deadline_message()
        if isinstance(exc, AddressRefused):
            return ErrorKind.HARD, f"address refused: {exc}"
        if isinstance(exc, ConnectFailed):
            return ErrorKind.TEMPORARY, ("connect timed out: " if exc.timed_out else "") + str(exc)
        if timed_out:
            return ErrorKind.TEMPORARY, "timed out waiting for the server"
        if isinstance(exc, DecodeError):
            return ErrorKind.SOFT, f"body cannot be decompressed: {exc}"
        if isinstance(exc, SSLError):
            return ErrorKind.SOFT, f"TLS error: {exc}"
        if isinstance(exc, LocationParseError):
            return ErrorKind.HARD, f"malformed URL: {exc}"
        if isinstance(exc, ProtocolError | HTTPError | OSError):
            return ErrorKind.TEMPORARY, f"connection failed: {exc}"
        return ErrorKind.SOFT, f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _failed(
        url: str,
        final_url: str,
        status: int | None,
        kind: ErrorKind,
        message: str,
        redirects: list[str],
        started: float,
    ) -> FetchResult:
        return FetchResult(
            url=url,
            final_url=final_url,
            status=status,
            error=FetchError(kind, message[:1000]),
            elapsed_s=time.monotonic() - started,
            redirects=tuple(redirects),
        )
