"""The ASGI app: routes, login, feed actions, static files. ``create_app`` builds it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from narrwatch.context import AppContext
from narrwatch.db.search import ensure_search_index
from narrwatch.steps.match.seedstore import has_seed_store, import_seeds
from narrwatch.steps.poll.operate import set_paused
from narrwatch.steps.poll.sync import UnknownFeedError
from narrwatch.web import pages, review, seeds
from narrwatch.web.accounts import authenticate, record
from narrwatch.web.base import Caller, Handler, Web, action, page, utcnow
from narrwatch.web.security import SecurityHeaders, Sessions
from narrwatch.web.settings import WebSettings, load_web_settings, secret_key

REPORT_CSS = "report.css"


def _safe_next(target: str | None) -> str:
    """Only a path of this app: ``next`` must not send a fresh login to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


async def login_form(web: Web, request: Request) -> Response:
    caller = await run_in_threadpool(web.caller, request)
    return web.render(
        request, caller, "login.html", next=_safe_next(request.query_params.get("next")), error=None
    )


async def login(web: Web, request: Request) -> Response:
    caller = await run_in_threadpool(web.caller, request)
    form = await request.form()
    username = str(form.get("username") or "").strip()[:100]
    password = str(form.get("password") or "")[:1000]
    target = _safe_next(str(form.get("next") or "/"))
    client = request.client.host if request.client else "?"
    from narrwatch.web.security import CSRF_FIELD, csrf_ok

    if not csrf_ok(caller.session, str(form.get(CSRF_FIELD) or "")):
        return web.forbidden(
            request, caller, "the login form's CSRF token is missing or wrong: reload the page"
        )
    if web.limiter.blocked(client, username):
        return web.render(
            request,
            caller,
            "login.html",
            status_code=429,
            next=target,
            error="Too many failed logins: wait a few minutes and try again.",
        )
    account = await run_in_threadpool(authenticate, web.ctx, username, password, utcnow())
    if account is None:
        web.limiter.failed(client, username)
        return web.render(
            request, caller, "login.html", status_code=401, next=target, error="Wrong user name or password."
        )
    web.limiter.succeeded(client, username)
    return web.redirect(target, Sessions.new_login(account.id))


def logout(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    session = web.sessions.load(None)
    return web.redirect("/login", session)


def feed_action(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    feed_id = str(request.path_params["feed_id"])
    verb = request.path_params["verb"]
    if verb not in ("pause", "resume"):
        return web.not_found(request, caller, f"no feed action {verb!r}")
    paused = verb == "pause"
    try:
        set_paused(web.ctx, feed_id, paused)
    except (UnknownFeedError, ValueError) as exc:
        return web.render(
            request, caller, "error.html", status_code=409, title="Feed unchanged", message=str(exc)
        )
    with web.ctx.transaction() as session:
        record(
            session, caller.name, "feed.pause" if paused else "feed.resume", f"feed:{feed_id}", {}, utcnow()
        )
    return web.redirect("/feeds")


def prepare_store(ctx: AppContext) -> None:
    """What serving needs in the store: the search index, and the seeds in SQL (imported once from
    the narratives folder, so that the app can edit them)."""
    ensure_search_index(ctx.engine)
    with ctx.transaction() as session:
        stored = has_seed_store(session)
    if not stored and ctx.settings.narratives_dir.is_dir():
        import_seeds(ctx, ctx.settings.narratives_dir, utcnow(), "import")


def create_app(ctx: AppContext | None = None, web_settings: WebSettings | None = None) -> Starlette:
    ctx = ctx or AppContext.from_settings()
    web_settings = web_settings or load_web_settings()
    prepare_store(ctx)
    web = Web(ctx, web_settings, secret_key(web_settings, ctx.settings.data_dir))

    def get(permission: str, body: Callable[[Web, Request, Caller], Response]) -> Handler:
        return page(web, permission, partial(body, web))

    def post(permission: str, body: Callable[[Web, Request, Caller, FormData], Response]) -> Handler:
        return action(web, permission, partial(body, web))

    async def report_css(request: Request) -> Response:
        from importlib import resources

        path = resources.files("narrwatch.steps.report") / "templates" / REPORT_CSS
        return FileResponse(str(path), media_type="text/css")

    routes = [
        Route("/", get("read", pages.today)),
        Route("/day/{day}", get("read", lambda w, r, c: pages.today(w, _with_day(r), c))),
        Route("/archive", get("read", pages.archive_page)),
        Route("/narratives/{narrative_id}", get("read", pages.narrative)),
        Route("/clusters/{cluster_id:int}", get("read", pages.cluster)),
        Route("/clusters/{cluster_id:int}/promote", post("promote", seeds.promote), methods=["POST"]),
        Route("/review", get("read", review.queue)),
        Route("/review/verdict", post("verdict", review.verdict), methods=["POST"]),
        Route("/review/undo", post("verdict", review.undo), methods=["POST"]),
        Route("/seeds", get("read", pages.seeds)),
        Route("/seeds/new", get("seed", seeds.new)),
        Route("/seeds/new", post("seed", seeds.save), methods=["POST"]),
        Route("/seeds/try", post("read", seeds.try_text), methods=["POST"]),
        Route("/seeds/{narrative_id}/edit", get("read", seeds.edit)),
        Route("/seeds/{narrative_id}/edit", post("seed", seeds.save), methods=["POST"]),
        Route("/seeds/{narrative_id}/backtest", post("seed", seeds.run_backtest), methods=["POST"]),
        Route("/search", get("read", pages.search)),
        Route("/feeds", get("read", pages.feeds)),
        Route("/feeds/{feed_id}/{verb:str}", post("feeds", feed_action), methods=["POST"]),
        Route("/audit", get("audit", pages.audit)),
        Route("/login", partial(login_form, web), methods=["GET"]),
        Route("/login", partial(login, web), methods=["POST"]),
        Route("/logout", post("read", logout), methods=["POST"]),
        Route("/static/report.css", report_css),
        Mount("/static", app=StaticFiles(directory=str(web.static_dir)), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    app.state.web = web

    return app


def _with_day(request: Request) -> Request:
    """/day/2026-11-20 is / with ?day=2026-11-20 (a link that reads well and caches well)."""
    scope = dict(request.scope)
    scope["query_string"] = f"day={request.path_params['day']}".encode()
    return Request(scope, request.receive)
