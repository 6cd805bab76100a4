"""Sessions in signed cookies, CSRF tokens, login rate limiting and the security headers.

One cookie carries ``{"csrf": token, "uid": id}`` signed with itsdangerous (tamper-evident, expiring);
an anonymous visitor gets one too, so the login form has a CSRF token. Every POST must send the
cookie's token back (form field ``csrf_token`` or header ``X-CSRF-Token``), compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "narrwatch_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

#: Scripts, styles, images and fetches from the app's own origin only; nothing inline, no frames.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass
class SessionData:
    csrf: str
    uid: int | None = None
    fresh: bool = False  # not from a valid cookie: it must be sent

    def dump(self) -> dict[str, Any]:
        return {"csrf": self.csrf, "uid": self.uid}


class Sessions:
    def __init__(self, secret: str, max_age_s: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="narrwatch-session")
        self.max_age_s = max_age_s
        self.secure = secure

    def load(self, cookie: str | None) -> SessionData:
        if cookie:
            try:
                data = self._serializer.loads(cookie, max_age=self.max_age_s)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                uid = data.get("uid")
                return SessionData(csrf=data["csrf"], uid=uid if isinstance(uid, int) else None)
        return SessionData(csrf=secrets.token_urlsafe(32), fresh=True)

    def cookie_header(self, session: SessionData) -> str:
        value = self._serializer.dumps(session.dump())
        parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={self.max_age_s}"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    @staticmethod
    def new_login(uid: int) -> SessionData:
        # A new CSRF token at login: a token seen before login is worth nothing after it.
        return SessionData(csrf=secrets.token_urlsafe(32), uid=uid, fresh=True)


def csrf_ok(session: SessionData, sent: str | None) -> bool:
    return bool(sent) and not session.fresh and hmac.compare_digest(session.csrf, str(sent))


class LoginLimiter:
    """At most ``attempts`` failed logins per (address, user name) in ``window_s`` seconds, in memory.

    Per process: behind several workers each keeps its own count (the limit then multiplies by them).
    """

    def __init__(self, attempts: int, window_s: int) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def blocked(self, address: str, username: str) -> bool:
        with self._lock:
            return len(self._recent((address, username.casefold()), time.monotonic())) >= self.attempts

    def failed(self, address: str, username: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent((address, username.casefold()), now).append(now)

    def succeeded(self, address: str, username: str) -> None:
        with self._lock:
            self._failures.pop((address, username.casefold()), None)


def trusted_client(address: str | None, proxies: list[str]) -> bool:
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


class SecurityHeaders:
    """Adds the security headers to every response (pages, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
