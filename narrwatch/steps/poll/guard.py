"""The fetcher's guards: which addresses may be connected to (SSRF policy, re-checked at connect time
for every redirect) and the total deadline that shuts a slow socket."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from narrwatch.domain.polling import ErrorKind

PUBLIC_PORTS = frozenset({80, 443, 8080, 8443})


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class _Failure(Exception):
    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        self.kind = kind
        self.status = status
        super().__init__(message)


class AddressRefused(Exception):
    """The host resolves only to addresses the policy refuses. Not an OSError: urllib3 must not
    wrap or retry it."""


class ConnectFailed(Exception):
    """DNS or TCP connect failed (kept apart from OSError for the same reason)."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        self.timed_out = timed_out
        super().__init__(message)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses (IPv4 embedded in IPv6 checked too)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return bool(
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
        and not address.is_private
    )


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool
    connect_timeout_s: float

    def check_port(self, port: int) -> None:
        if not self.allow_private and port not in PUBLIC_PORTS:
            raise _Failure(ErrorKind.HARD, f"port {port} refused: only {sorted(PUBLIC_PORTS)} are allowed")

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return self.allow_private or is_public_address(address)

    def connect(self, host: str, port: int, timeout: float | None, options: Any) -> socket.socket:
        """Resolve ``host``, drop refused addresses, connect to the first allowed one that answers."""
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ConnectFailed(f"cannot resolve {host}: {exc}") from exc
        refused: list[str] = []
        last_error: OSError | None = None
        for family, socktype, proto, _name, sockaddr in infos:
            literal = str(sockaddr[0]).split("%", 1)[0]
            try:
                address = ipaddress.ip_address(literal)
            except ValueError:
                refused.append(literal)
                continue
            if not self.allows(address):
                refused.append(literal)
                continue
            sock = socket.socket(family, socktype, proto)
            try:
                for level, name, value in options or ():
                    sock.setsockopt(level, name, value)
                sock.settimeout(timeout if timeout is not None else self.connect_timeout_s)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            _watch_socket(sock)
            return sock
        if last_error is not None:
            timed_out = isinstance(last_error, TimeoutError)
            raise ConnectFailed(f"cannot connect to {host}:{port}: {last_error}", timed_out=timed_out)
        raise AddressRefused(
            f"{host} resolves only to non-public addresses ({', '.join(sorted(set(refused)))}); "
            "set NARRWATCH_ALLOW_PRIVATE_NETWORKS=true to allow them"
        )


class _GuardedConnectionMixin:
    _dns_host: str
    port: int
    timeout: Any
    socket_options: Any
    sock: socket.socket | None

    def __init__(self, *args: Any, address_policy: AddressPolicy, **kwargs: Any) -> None:
        self._address_policy = address_policy
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        return self._address_policy.connect(self._dns_host, self.port, timeout, self.socket_options)

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if self.sock is not None:
            _watch_socket(self.sock)  # for https: the TLS socket that replaced the raw one

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.sock is not None:
            _watch_socket(self.sock)  # a kept-alive connection used by a new fetch
        return super().request(*args, **kwargs)  # type: ignore[misc]


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class _Deadline:
    """Shuts down every socket of one fetch when its total time is up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shutdown(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_current = threading.local()


def _watch_socket(sock: socket.socket) -> None:
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)
