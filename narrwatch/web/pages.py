"""The read pages: Today, Narrative, Cluster, Search, Feeds, Audit, Seeds list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from narrwatch.db.models import Article, Cluster, Passage
from narrwatch.db.search import search_articles
from narrwatch.domain.clock import day_bounds
from narrwatch.embeddings.points import passage_vectors_of
from narrwatch.steps.cluster.cluster import members_of
from narrwatch.steps.poll.operate import feed_health
from narrwatch.steps.report.collect import collect_report_data
from narrwatch.web import queries
from narrwatch.web.accounts import audit_events
from narrwatch.web.base import Caller, Web, utcnow


def _int(value: str | None, default: int, low: int = 0, high: int = 10_000) -> int:
    try:
        return max(low, min(high, int(value))) if value is not None else default
    except ValueError:
        return default


def _day(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def today(web: Web, request: Request, caller: Caller) -> Response:
    now = utcnow()
    with web.ctx.transaction() as session:
        day = _day(request.query_params.get("day")) or queries.latest_day(session) or now.date()
        nav = queries.day_nav(session, day)
        outlets = queries.outlets(session)
        countries = queries.breakdown(session, day, "country")
        languages = queries.breakdown(session, day, "language")
        days = queries.archive(session, limit=14)
    # The report's own collector: the page and report.html cannot disagree on what counts, and its
    # rising items come new flags first.
    report = collect_report_data(web.ctx, day, max(now, day_bounds(day)[1]))
    return web.render(
        request,
        caller,
        "today.html",
        r=report,
        nav=nav,
        outlets=outlets,
        countries=countries,
        languages=languages,
        archive=days,
    )


def archive_page(web: Web, request: Request, caller: Caller) -> Response:
    with web.ctx.transaction() as session:
        days = queries.archive(session, limit=400)
    return web.render(request, caller, "archive.html", archive=days)


def narrative(web: Web, request: Request, caller: Caller) -> Response:
    narrative_id = request.path_params["narrative_id"]
    settings = web.ctx.settings
    page_size = web.web.page_size
    page_no = _int(request.query_params.get("page"), 1, 1)
    with web.ctx.transaction() as session:
        head = queries.seed_head(session, narrative_id)
        versions = queries.versions(session, narrative_id)
        if head is None and not versions:
            return web.not_found(request, caller, f"no seed narrative {narrative_id!r}")
        end = _day(request.query_params.get("day")) or queries.latest_day(session) or utcnow().date()
        days = _int(request.query_params.get("days"), 42, 7, 365)
        points = queries.timeline(
            session, "narrative", narrative_id, end, days, settings.rising_baseline_days
        )
        start = day_bounds(end - dt.timedelta(days=days - 1))[0]
        stop = day_bounds(end)[1]
        outlets = queries.counted_outlets(session, narrative_id, start, stop)
        countries = queries.counted_countries(session, narrative_id, start, stop)
        evidence, total = queries.evidence_page(
            session, narrative_id, limit=page_size, offset=(page_no - 1) * page_size
        )
        revisions = _revisions(session, narrative_id)
        names = queries.outlets(session)
        title = head.document.get("title") if head else versions[0].title
        status = head.document.get("status") if head else versions[0].status
    peak = max([p.n_outlets for p in points] + [p.baseline or 0 for p in points] + [1])
    return web.render(
        request,
        caller,
        "narrative.html",
        narrative_id=narrative_id,
        title=title,
        status=status,
        points=points,
        peak=peak,
        end=end,
        days=days,
        outlets=sorted(outlets.items(), key=lambda kv: (-kv[1], kv[0])),
        countries=sorted(countries.items(), key=lambda kv: (-kv[1], kv[0])),
        evidence=evidence,
        total=total,
        page_no=page_no,
        pages=max(1, -(-total // page_size)),
        versions=versions,
        revisions=revisions,
        names=names,
    )


def _revisions(session: Any, narrative_id: str) -> list[dict[str, Any]]:
    from narrwatch.steps.match.seedstore import changed_fields, revisions

    rows = revisions(session, narrative_id)
    listed = []
    for index, row in enumerate(rows):
        before = rows[index + 1].document if index + 1 < len(rows) else None
        listed.append(
            {
                "revision": row.revision,
                "author": row.author,
                "created_at": row.created_at,
                "source": row.source,
                "status": row.document.get("status"),
                "changed": changed_fields(before, row.document),
            }
        )
    return listed


def cluster(web: Web, request: Request, caller: Caller) -> Response:
    cluster_id = _int(request.path_params.get("cluster_id"), -1, -1, 2**31)
    with web.ctx.transaction() as session:
        row = session.get(Cluster, cluster_id)
        if row is None:
            return web.not_found(request, caller, f"no cluster {cluster_id}")
        ids = members_of(session, row.id, row.collection)
        members = queries.cluster_members(session, row, ids)
        names = queries.outlets(session)
        by_day: dict[dt.date, set[str]] = {}
        for article, _ in members:
            by_day.setdefault(article.published_at.date(), set()).add(article.outlet)
        session.expunge(row)
    outlets = sorted({article.outlet for article, _ in members})
    return web.render(
        request,
        caller,
        "cluster.html",
        cluster=row,
        members=members,
        outlets=outlets,
        names=names,
        days=sorted(((day, len(o)) for day, o in by_day.items()), reverse=True),
    )


def search(web: Web, request: Request, caller: Caller) -> Response:
    q = (request.query_params.get("q") or "").strip()[:300]
    like = _int(request.query_params.get("like"), 0, 0, 2**31)
    page_no = _int(request.query_params.get("page"), 1, 1)
    size = web.web.page_size
    results: list[tuple[Article, float]] = []
    source_passage: Passage | None = None
    note = ""
    with web.ctx.transaction() as session:
        names = queries.outlets(session)
        if like:
            source_passage = session.get(Passage, like)
        if source_passage is None and q:
            hits = search_articles(session.connection(), q, limit=size, offset=(page_no - 1) * size)
            articles = queries.articles_by_id(session, [hit.article_id for hit in hits])
            results = [(articles[hit.article_id], hit.rank) for hit in hits if hit.article_id in articles]
        passages = _first_passages(session, [article.id for article, _ in results])
        if source_passage is not None:
            session.expunge(source_passage)
    if source_passage is not None:
        results, note = _more_like(web, source_passage, size)
        with web.ctx.transaction() as session:
            passages = _first_passages(session, [article.id for article, _ in results])
    return web.render(
        request,
        caller,
        "search.html",
        q=q,
        results=results,
        passages=passages,
        names=names,
        source=source_passage,
        note=note,
        page_no=page_no,
        size=size,
    )


def _first_passages(session: Any, article_ids: list[int]) -> dict[int, Passage]:
    """The best passage to show (and to ask "more like this" for) of each article: its first one."""
    if not article_ids:
        return {}
    found: dict[int, Passage] = {}
    for passage in session.scalars(
        select(Passage).where(Passage.article_id.in_(article_ids)).order_by(Passage.article_id, Passage.idx)
    ):
        found.setdefault(passage.article_id, passage)
    for passage in found.values():
        session.expunge(passage)
    return found


def _more_like(web: Web, passage: Passage, size: int) -> tuple[list[tuple[Article, float]], str]:
    """Articles whose passages lie nearest the given passage in the vector store."""
    with web.model_lock:
        store = web.ctx.vector_store
        try:
            vectors = passage_vectors_of(store, passage.collection, [passage])
            vector = next(iter(vectors.values()), None)
            if vector is None:
                return [], "this passage has no vector in the store (run `narrwatch vectors reconcile`)"
            hits = store.search(passage.collection, vector, size * 3, None)
        finally:
            web.release_vector_store()
    with web.ctx.transaction() as session:
        point_article = dict(
            session.execute(
                select(Passage.point_id, Passage.article_id).where(
                    Passage.collection == passage.collection, Passage.point_id.in_([hit.id for hit in hits])
                )
            ).all()
        )
        best: dict[int, float] = {}
        for hit in hits:
            article_id = point_article.get(hit.id)
            if article_id is not None and article_id != passage.article_id and article_id not in best:
                best[article_id] = hit.score
        articles = queries.articles_by_id(session, list(best)[:size])
        for article in articles.values():
            session.expunge(article)
    return [(articles[a], score) for a, score in best.items() if a in articles], ""


def feeds(web: Web, request: Request, caller: Caller) -> Response:
    rows = feed_health(web.ctx, utcnow())
    with web.ctx.transaction() as session:
        names = queries.outlets(session)
    return web.render(request, caller, "feeds.html", feeds=rows, names=names)


def audit(web: Web, request: Request, caller: Caller) -> Response:
    page_no = _int(request.query_params.get("page"), 1, 1)
    user = request.query_params.get("user") or None
    kind = request.query_params.get("action") or None
    size = 100
    with web.ctx.transaction() as session:
        events = audit_events(session, limit=size, offset=(page_no - 1) * size, username=user, action=kind)
        for event in events:
            session.expunge(event)
    return web.render(request, caller, "audit.html", events=events, page_no=page_no, user=user, action=kind)


def seeds(web: Web, request: Request, caller: Caller) -> Response:
    with web.ctx.transaction() as session:
        heads = queries.seed_heads(session)
        for head in heads:
            session.expunge(head)
    return web.render(request, caller, "seeds.html", heads=heads)
