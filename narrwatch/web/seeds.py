"""The seed editor: edit, try a text, backtest, activate or retire; promote a cluster to a draft seed."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from narrwatch.analyst.backtest import backtest
from narrwatch.analyst.promote import promote_cluster
from narrwatch.analyst.try_text import test_text
from narrwatch.db.models import Article
from narrwatch.steps.cluster.cluster import ClusteringError
from narrwatch.steps.match.seed_yaml import parse_seed_file
from narrwatch.steps.match.seeds import NarrativeError
from narrwatch.steps.match.seedstore import SeedSaveError, save_seed, seed_document
from narrwatch.steps.match.versions import sync_narratives
from narrwatch.web import queries
from narrwatch.web.accounts import record
from narrwatch.web.base import Caller, Web, utcnow

STATUSES = ("draft", "active", "retired")
#: Every field the editor shows, so that a new or half-filled seed renders.
EMPTY: dict[str, Any] = {
    "id": "",
    "title": "",
    "description": "",
    "examples": [],
    "negatives": [],
    "keywords": [],
    "languages": [],
    "tags": [],
    "parent": None,
    "thresholds": None,
    "status": "draft",
}
MAX_TEXT = 20_000


def _lines(value: Any) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def _float(value: Any) -> float | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise SeedSaveError(f"thresholds: {text!r} is not a number") from None


def document_from_form(form: FormData, base: dict[str, Any] | None) -> dict[str, Any]:
    """The edited seed: the form's fields over the stored text (fields the form lacks are kept)."""
    document = dict(base or {})
    document["id"] = str(form.get("id") or document.get("id") or "").strip()
    for name in ("title", "description"):
        document[name] = str(form.get(name) or "").strip()
    for name in ("examples", "negatives", "keywords", "languages", "tags"):
        document[name] = _lines(form.get(name))
    document["parent"] = str(form.get("parent") or "").strip() or None
    status = str(form.get("status") or document.get("status") or "draft")
    document["status"] = status if status in STATUSES else "draft"
    suggest, confirm = _float(form.get("suggest")), _float(form.get("confirm"))
    document["thresholds"] = (
        {"suggest": suggest, "confirm": confirm} if (suggest, confirm) != (None, None) else None
    )
    return document


def _editor(
    web: Web,
    request: Request,
    caller: Caller,
    narrative_id: str | None,
    *,
    document: dict[str, Any] | None = None,
    error: str | None = None,
    message: str | None = None,
    backtest_result: Any = None,
    status_code: int = 200,
) -> Response:
    with web.ctx.transaction() as session:
        head = queries.seed_head(session, narrative_id) if narrative_id else None
        versions = queries.versions(session, narrative_id) if narrative_id else []
        all_heads = [h.narrative_id for h in queries.seed_heads(session)]
        revision = head.revision if head else None
        stored = dict(head.document) if head else None
        for row in versions:
            session.expunge(row)
    if narrative_id and head is None:
        return web.not_found(
            request, caller, f"no seed {narrative_id!r} in the store (run `narrwatch narratives import`)"
        )
    return web.render(
        request,
        caller,
        "seed_edit.html",
        status_code=status_code,
        narrative_id=narrative_id,
        doc={**EMPTY, **(document or stored or {})},
        revision=revision,
        versions=versions,
        parents=[sid for sid in all_heads if sid != narrative_id],
        statuses=STATUSES,
        error=error,
        message=message,
        backtest=backtest_result,
        backtest_days=int(request.query_params.get("days") or 30),
    )


def edit(web: Web, request: Request, caller: Caller) -> Response:
    return _editor(
        web,
        request,
        caller,
        request.path_params.get("narrative_id"),
        message=request.query_params.get("saved"),
    )


def new(web: Web, request: Request, caller: Caller) -> Response:
    return _editor(web, request, caller, None)


def _store(web: Web, caller: Caller, document: dict[str, Any], expected: int | None, source: str) -> str:
    """Save, record the matching version, audit; the message to show."""
    now = utcnow()
    head = save_seed(web.ctx, document, caller.name, now, expected_revision=expected, source=source)
    synced = sync_narratives(web.ctx, now)
    created = [
        entry for entry in synced.created + synced.reactivated if entry.startswith(f"{head.narrative_id}@")
    ]
    with web.ctx.transaction() as session:
        record(
            session,
            caller.name,
            "seed.save" if source == "web" else f"seed.{source}",
            f"seed:{head.narrative_id}",
            {
                "revision": head.revision,
                "status": head.document.get("status"),
                "version": created[0].split("@")[1] if created else None,
            },
            now,
        )
    version = f", matching version {created[0].split('@')[1]}" if created else ""
    return f"saved revision {head.revision}{version}"


def save(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    narrative_id = request.path_params.get("narrative_id")
    expected_text = str(form.get("revision") or "")
    expected = int(expected_text) if expected_text.isdigit() else None
    with web.ctx.transaction() as session:
        head = queries.seed_head(session, narrative_id) if narrative_id else None
        base = dict(head.document) if head else None
    try:
        document = document_from_form(form, base)
        if narrative_id:
            document["id"] = narrative_id  # the id is the key: renaming is a new seed
        action = str(form.get("action") or "save")
        if action in ("activate", "retire", "draft"):
            document["status"] = {"activate": "active", "retire": "retired", "draft": "draft"}[action]
        message = _store(web, caller, document, expected, "web")
    except (SeedSaveError, NarrativeError) as exc:
        return _editor(
            web,
            request,
            caller,
            narrative_id,
            document=document_or(form, base),
            error=str(exc),
            status_code=422,
        )
    return web.redirect(f"/seeds/{document['id']}/edit?saved=" + message.replace(" ", "+"))


def document_or(form: FormData, base: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return document_from_form(form, base)
    except SeedSaveError:
        return dict(base or {})


def try_text(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    """Every seed's score for a pasted text (drafts as if active), as a fragment or a page."""
    text = str(form.get("text") or "")[:MAX_TEXT]
    focus = str(form.get("seed") or "")
    error, result = None, None
    if text.strip():
        try:
            with web.model_lock:
                result = test_text(web.ctx, text)
        except (ValueError, NarrativeError) as exc:
            error = str(exc)
    fragment = request.headers.get("x-fragment") == "1"
    return web.render(
        request,
        caller,
        "try_result.html" if fragment else "try_page.html",
        text=text,
        focus=focus,
        result=result,
        error=error,
    )


def backtest_end(web: Web) -> dt.datetime:
    """The backtest window ends now, or just after the newest stored article if the store is older
    (a replayed demo store): "the last N days" then means the last N days of the data."""
    now = utcnow()
    with web.ctx.transaction() as session:
        newest = session.scalar(select(func.max(Article.published_at)))
    if newest is None or newest >= now:
        return now
    return newest + dt.timedelta(seconds=1)


def run_backtest(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    narrative_id = str(request.path_params["narrative_id"])
    days_text = str(form.get("days") or "30")
    days = max(1, min(365, int(days_text))) if days_text.isdigit() else 30
    try:
        with web.model_lock:
            try:
                result = backtest(web.ctx, narrative_id, days, backtest_end(web), top_n=25)
            finally:
                web.release_vector_store()
    except (KeyError, NarrativeError, ValueError) as exc:
        return _editor(web, request, caller, narrative_id, error=f"backtest: {exc}", status_code=422)
    with web.ctx.transaction() as session:
        record(
            session,
            caller.name,
            "seed.backtest",
            f"seed:{narrative_id}",
            {"days": days, "found": result.total},
            utcnow(),
        )
    return _editor(web, request, caller, narrative_id, backtest_result=result)


def promote(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    """The cluster's draft seed (clustering's own promotion) stored as a new seed in SQL."""
    cluster_id = int(request.path_params["cluster_id"])
    now = utcnow()
    with tempfile.TemporaryDirectory(prefix="narrwatch-promote-") as scratch:
        try:
            with web.model_lock:
                try:
                    path = promote_cluster(web.ctx, cluster_id, Path(scratch), now)
                finally:
                    web.release_vector_store()
        except ClusteringError as exc:
            return web.render(
                request, caller, "error.html", status_code=409, title="Cannot promote", message=str(exc)
            )
        seed, problems = parse_seed_file(path)
    if seed is None or problems:
        message = "; ".join(map(str, problems))
        return web.render(
            request, caller, "error.html", status_code=409, title="Cannot promote", message=message
        )
    try:
        _store(web, caller, seed_document(seed), None, "promote")
    except SeedSaveError as exc:
        return web.render(
            request, caller, "error.html", status_code=409, title="Cannot promote", message=str(exc)
        )
    return web.redirect(f"/seeds/{seed.id}/edit?saved=draft+seed+from+cluster+{cluster_id}")
