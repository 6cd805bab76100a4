"""The review queue: matches awaiting an analyst's verdict."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select

from narrwatch.context import AppContext
from narrwatch.db.models import (
    Article,
    Match,
    Verdict,
)
from narrwatch.domain.scoring import (
    Level,
)
from narrwatch.domain.text import shorten


@dataclass(frozen=True)
class ReviewItem:
    match_id: int
    narrative_id: str
    level: str
    score: float
    title: str
    outlet: str
    url: str
    published_at: dt.datetime
    evidence_text: str
    evidence_example: str | None
    collection: str
    raw_score: float | None = None
    stance: str | None = None
    stance_cues: str | None = None
    head_probability: float | None = None
    head_kind: str | None = None
    head_cut: float | None = None


def pending_reviews(
    ctx: AppContext,
    *,
    narrative_id: str | None = None,
    level: Level | None = None,
    limit: int = 50,
) -> list[ReviewItem]:
    """Matches without a verdict (in any collection) on their article and seed, newest first."""
    query = (
        select(Match, Article.title, Article.outlet, Article.url)
        .join(Article, Article.id == Match.article_id)
        .where(
            ~exists().where(
                Verdict.article_id == Match.article_id, Verdict.narrative_id == Match.narrative_id
            )
        )
        .order_by(Match.published_at.desc(), Match.score.desc(), Match.id)
        .limit(limit)
    )
    if narrative_id is not None:
        query = query.where(Match.narrative_id == narrative_id)
    if level is not None:
        query = query.where(Match.level == level)
    with ctx.transaction() as session:
        rows = session.execute(query).all()
    return [
        ReviewItem(
            match_id=match.id,
            narrative_id=match.narrative_id,
            level=match.level,
            score=match.score,
            title=title,
            outlet=outlet,
            url=url,
            published_at=match.published_at,
            evidence_text=match.evidence_text,
            evidence_example=match.evidence_example,
            collection=match.collection,
            raw_score=match.raw_score,
            stance=match.stance,
            stance_cues=match.stance_cues,
            head_probability=match.head_probability,
            head_kind=match.head_kind,
            head_cut=match.head_cut,
        )
        for match, title, outlet, url in rows
    ]


def match_reason(item: ReviewItem) -> str:
    """Why a match matched, in one line: the closest phrasing or verdict, the calibrated and raw
    scores, the stance with its cue words, and the verdict head that decided, if one did."""
    raw = "n/a" if item.raw_score is None else f"{item.raw_score:.3f}"
    cues = f" ({item.stance_cues})" if item.stance_cues else ""
    head = ""
    if item.head_probability is not None:
        kind = {"seed": "the seed's verdict head", "stream": "the stream head"}.get(
            item.head_kind or "", "verdict head"
        )
        cut = "" if item.head_cut is None else f" (confirms at {item.head_cut:.2f})"
        head = f" · {kind} p={item.head_probability:.2f}{cut}"
    closest = shorten(item.evidence_example or "", 90)
    stance = item.stance or "n/a"
    return f"closest: {closest} · calibrated {item.score:.2f} · raw {raw} · stance {stance}{cues}{head}"
