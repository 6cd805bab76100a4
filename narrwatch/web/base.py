"""What every handler shares: the store, templates, the signed session, who is asking, CSRF checks."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from narrwatch.context import AppContext
from narrwatch.steps.report.render import template_environment
from narrwatch.steps.report.safety import plain_text, safe_url
from narrwatch.web.accounts import Account, account_by_id, account_by_name, allowed
from narrwatch.web.security import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LoginLimiter,
    SessionData,
    Sessions,
    csrf_ok,
    trusted_client,
)
from narrwatch.web.settings import WebSettings


def utcnow() -> dt.datetime:
    """The request's time: the app is where a use case's ``now`` comes from."""
    return dt.datetime.now(dt.UTC)


def _environment() -> Environment:
    env = template_environment(PackageLoader("narrwatch.web", "templates"), keep_trailing_newline=False)
    env.filters["clean"] = plain_text
    env.filters["safe_url"] = safe_url
    return env


class Forbidden(Exception):
    pass


@dataclass
class Caller:
    """Who is asking: an account (or None) and the session that came with the request."""

    account: Account | None
    session: SessionData

    @property
    def name(self) -> str:
        return self.account.username if self.account else "anonymous"

    def can(self, permission: str) -> bool:
        return self.account is not None and allowed(self.account.role, permission)


class Web:
    def __init__(self, ctx: AppContext, web: WebSettings, secret: str) -> None:
        self.ctx = ctx
        self.web = web
        self.env = _environment()
        self.sessions = Sessions(secret, int(web.session_hours * 3600), web.cookie_secure)
        self.limiter = LoginLimiter(web.login_attempts, web.login_window_s)
        # The encoder and the local vector store are loaded once and are not safe to load twice at once.
        self.model_lock = threading.Lock()
        self.static_dir = Path(__file__).resolve().parent / "static"

    def release_vector_store(self) -> None:
        release_vector_store(self.ctx)

    # --- who is asking ----------------------------------------------------------------------

    def caller(self, request: Request) -> Caller:
        session = self.sessions.load(request.cookies.get(COOKIE))
        account: Account | None = None
        header = self.web.trusted_user_header
        client = request.client.host if request.client else None
        with self.ctx.transaction() as db:
            if header and trusted_client(client, self.web.trusted_proxies) and request.headers.get(header):
                account = account_by_name(db, request.headers[header].strip())
            elif session.uid is not None:
                account = account_by_id(db, session.uid)
        return Caller(account, session)

    async def check_post(self, request: Request, caller: Caller, permission: str) -> FormData:
        """The form of a POST after the CSRF and role checks (raises Forbidden)."""
        form = await request.form()
        sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not csrf_ok(caller.session, sent if isinstance(sent, str) else None):
            raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
        if not caller.can(permission):
            raise Forbidden(f"your role may not do this ({permission})")
        return form

    # --- responses --------------------------------------------------------------------------

    def render(
        self, request: Request, caller: Caller, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            me=caller.account,
            can=caller.can,
            csrf=caller.session.csrf,
            path=request.url.path,
            query=lambda **params: urlencode({k: v for k, v in params.items() if v not in (None, "")}),
            **values,
        )
        response = HTMLResponse(html, status_code=status_code)
        self.keep_session(response, caller.session)
        return response

    def keep_session(self, response: Response, session: SessionData) -> None:
        if session.fresh:
            response.headers.append("set-cookie", self.sessions.cookie_header(session))
            session.fresh = False

    def redirect(self, url: str, session: SessionData | None = None) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        if session is not None:
            self.keep_session(response, session)
        return response

    def forbidden(self, request: Request, caller: Caller, message: str) -> HTMLResponse:
        return self.render(request, caller, "error.html", status_code=403, title="Refused", message=message)

    def not_found(self, request: Request, caller: Caller, message: str) -> HTMLResponse:
        return self.render(request, caller, "error.html", status_code=404, title="Not found", message=message)


Handler = Callable[[Request], Awaitable[Response]]


def page(web: Web, permission: str, body: Callable[[Request, Caller], Response]) -> Handler:
    """A GET page: readers and up (or the given permission); anonymous visitors go to the login."""

    async def handler(request: Request) -> Response:
        caller = await run_in_threadpool(web.caller, request)
        if caller.account is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return web.redirect("/login?" + urlencode({"next": target}), caller.session)
        if not caller.can(permission):
            return web.forbidden(request, caller, f"your role ({caller.account.role}) may not see this page")
        return await run_in_threadpool(body, request, caller)

    return handler


def action(web: Web, permission: str, body: Callable[[Request, Caller, FormData], Response]) -> Handler:
    """A POST: CSRF token and role checked before ``body`` runs; refusals are 403 pages."""

    async def handler(request: Request) -> Response:
        caller = await run_in_threadpool(web.caller, request)
        try:
            form = await web.check_post(request, caller, permission)
        except Forbidden as exc:
            return web.forbidden(request, caller, str(exc))
        return await run_in_threadpool(body, request, caller, form)

    return handler


def release_vector_store(ctx: AppContext) -> None:
    """Close Qdrant's local mode after each use: it holds a lock that the pipeline's commands need.

    A Qdrant server (``NARRWATCH_QDRANT_URL``) and an in-memory store (tests) are kept open.
    """
    in_memory = str(ctx.settings.qdrant_path) == ":memory:"
    if ctx.settings.qdrant_url is None and not in_memory and ctx._vector_store is not None:  # noqa: SLF001 - the app owns ctx
        ctx._vector_store.close()  # noqa: SLF001
        ctx._vector_store = None  # noqa: SLF001
