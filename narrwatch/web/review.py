"""The review queue: matches awaiting a verdict, what matters today first; verdicts, batches, undo."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from narrwatch.analyst.label import MatchNotFound, label_match
from narrwatch.analyst.review import ReviewItem, match_reason, pending_reviews
from narrwatch.analyst.withdraw import withdraw_verdict
from narrwatch.db.models import AuditEvent, Match
from narrwatch.web import queries
from narrwatch.web.accounts import record
from narrwatch.web.base import Caller, Web, utcnow

#: How many pending matches the queue orders at once (the rest waits for the next page load).
QUEUE_WINDOW = 2000


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool


def keyword_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    """The seed's keywords as one case-insensitive pattern; ``*`` ends a word prefix, as in seeds."""
    parts = []
    for keyword in keywords:
        words = [
            re.escape(word.rstrip("*")) + (r"\w*" if word.endswith("*") else "") for word in keyword.split()
        ]
        if words:
            parts.append(r"\s+".join(words))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)


def highlight(text: str, pattern: re.Pattern[str] | None) -> list[Segment]:
    """Plain segments of ``text`` with the keyword hits marked (escaped by the template, never markup)."""
    if pattern is None:
        return [Segment(text, False)]
    segments, position = [], 0
    for hit in pattern.finditer(text):
        if hit.start() > position:
            segments.append(Segment(text[position : hit.start()], False))
        segments.append(Segment(hit.group(0), True))
        position = hit.end()
    if position < len(text):
        segments.append(Segment(text[position:], False))
    return segments


def ordered_queue(web: Web) -> tuple[list[ReviewItem], set[str], int]:
    """Pending matches: seeds rising on the latest day first, then the newest day, then confirm-level
    before suggest-level, then the highest score."""
    items = pending_reviews(web.ctx, limit=QUEUE_WINDOW)
    with web.ctx.transaction() as session:
        rising = queries.rising_subjects(session, queries.latest_day(session))
        total = queries.pending_count(session)
    items.sort(
        key=lambda item: (
            item.narrative_id not in rising,
            -item.published_at.toordinal(),
            item.level != "confirm",
            -item.score,
            item.match_id,
        )
    )
    return items, rising, total


def queue(web: Web, request: Request, caller: Caller) -> Response:
    items, rising, total = ordered_queue(web)
    seed = request.query_params.get("seed") or None
    if seed:
        items = [item for item in items if item.narrative_id == seed]
    shown = items[: web.web.page_size]
    with web.ctx.transaction() as session:
        heads = {head.narrative_id: head.document for head in queries.seed_heads(session)}
        names = queries.outlets(session)
    patterns = {sid: keyword_pattern(list(doc.get("keywords") or [])) for sid, doc in heads.items()}
    rows = [
        {
            "item": item,
            "segments": highlight(item.evidence_text, patterns.get(item.narrative_id)),
            "seed_title": (heads.get(item.narrative_id) or {}).get("title", item.narrative_id),
            "rising": item.narrative_id in rising,
            "why": match_reason(item),
        }
        for item in shown
    ]
    undo = [int(x) for x in request.query_params.getlist("undo") if x.isdigit()]
    return web.render(
        request, caller, "review.html", rows=rows, total=total, seed=seed, names=names, undo=undo
    )


def recount_days(web: Web, days: set[dt.date], now: dt.datetime) -> None:
    """Re-run the day's detection (the detect step itself) for the days whose verdicts changed, so
    the stored daily counts, the timeline and the flags follow the analysts' verdicts."""
    from narrwatch import pipeline

    for day in sorted(days):
        pipeline.detect(web.ctx, day, now)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def verdict(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    """One or more verdicts (batch: several ``match_id`` fields); each is audited with its predecessor."""
    choice = str(form.get("verdict") or "")
    if choice not in ("confirm", "reject"):
        return web.forbidden(request, caller, "verdict must be confirm or reject")
    verdict_value: Literal["confirm", "reject"] = "confirm" if choice == "confirm" else "reject"
    ids = [int(str(value)) for value in form.getlist("match_id") if str(value).isdigit()]
    now = utcnow()
    audit_ids: list[int] = []
    days: set[dt.date] = set()
    for match_id in ids:
        try:
            result = label_match(web.ctx, match_id, verdict_value, now)
        except MatchNotFound:
            continue
        with web.ctx.transaction() as session:
            match = session.get(Match, match_id)
            details: dict[str, Any] = {
                "match_id": match_id,
                "article_id": result.article_id,
                "narrative_id": result.narrative_id,
                "collection": match.collection if match else None,
                "score": result.score,
                "previous": result.replaced,
            }
            event = AuditEvent(
                at=now,
                username=caller.name,
                action=f"verdict.{verdict_value}",
                subject=f"match:{match_id}",
                details=details,
            )
            session.add(event)
            session.flush()
            audit_ids.append(event.id)
            if match is not None:
                days.add(match.published_at.date())
    recount_days(web, days, now)
    if _wants_json(request):
        return JSONResponse({"ok": True, "verdict": verdict_value, "matches": ids, "undo": audit_ids})
    back = "/review?" + "&".join(f"undo={audit_id}" for audit_id in audit_ids)
    return web.redirect(back)


def undo(web: Web, request: Request, caller: Caller, form: FormData) -> Response:
    """Put back what a verdict replaced (the earlier verdict, or none) for the given audit events."""
    ids = [int(str(value)) for value in form.getlist("event_id") if str(value).isdigit()]
    now = utcnow()
    undone = []
    days: set[dt.date] = set()
    for event_id in ids:
        with web.ctx.transaction() as session:
            event = session.get(AuditEvent, event_id)
            if event is None or not event.action.startswith("verdict.") or event.action == "verdict.undo":
                continue
            details = dict(event.details or {})
        previous = details.get("previous")
        if previous in ("confirm", "reject"):
            label_match(web.ctx, int(str(details["match_id"])), previous, now)
        else:
            withdraw_verdict(
                web.ctx, int(details["article_id"]), str(details["narrative_id"]), str(details["collection"])
            )
        with web.ctx.transaction() as session:
            record(
                session,
                caller.name,
                "verdict.undo",
                f"match:{details.get('match_id')}",
                {"undid_event": event_id, "restored": previous},
                now,
            )
        undone.append(event_id)
        with web.ctx.transaction() as session:
            match = session.get(Match, int(details["match_id"]))
            if match is not None:
                days.add(match.published_at.date())
    recount_days(web, days, now)
    if _wants_json(request):
        return JSONResponse({"ok": True, "undone": undone})
    return web.redirect("/review")
