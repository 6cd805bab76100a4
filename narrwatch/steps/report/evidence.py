"""The evidence the report shows for a seed: the articles that count for it, as the counting rule says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import (
    Article,
    NarrativeVersion,
)
from narrwatch.steps.report.model import (
    ArticleEvidence,
)
from narrwatch.steps.report.safety import plain_text, safe_url

TITLE_CHARS = 300


EVIDENCE_CHARS = 600


EXCERPT_CHARS = 280


@dataclass(frozen=True)
class _Seed:
    narrative_id: str
    version: int
    title: str
    description: str
    parent_id: str | None
    status: str
    content_hash: str


def _counted_seed_articles(
    session: Session, start: dt.datetime, end: dt.datetime
) -> dict[str, list[ArticleEvidence]]:
    """Per seed, the articles published in [start, end) that count for it, strongest match first: the
    evidence shown is the evidence counted (``rules.counted_seed_matches``)."""
    counted = rules.counted_seed_matches(session, start, end)
    version_ids = {match.narrative_version_id for rows in counted.values() for match, _ in rows}
    versions = dict(
        session.execute(
            select(NarrativeVersion.id, NarrativeVersion.version).where(NarrativeVersion.id.in_(version_ids))
        )
        .tuples()
        .all()
    )
    verdicts = rules.latest_verdicts(
        session, (article.id for rows in counted.values() for _, article in rows)
    )
    return {
        seed: [
            article_evidence(
                article,
                score=match.score,
                narrative_id=match.narrative_id,
                narrative_version=versions[match.narrative_version_id],
                evidence=plain_text(match.evidence_text, EVIDENCE_CHARS),
                evidence_score=round(match.evidence_score, 4),
                evidence_language=plain_text(match.evidence_language, 16) or None,
                model_name=plain_text(match.model_name, 200),
                analyst_verdict=verdicts.get((article.id, match.narrative_id)),
                evidence_example=plain_text(match.evidence_example, EVIDENCE_CHARS) or None,
                raw_score=None if match.raw_score is None else round(match.raw_score, 4),
                stance=plain_text(match.stance, 16) or None,
                stance_cues=plain_text(match.stance_cues, 200) or None,
            )
            for match, article in rows
        ]
        for seed, rows in counted.items()
    }


def members_evidence(session: Session, chosen: Sequence[tuple[int, float]]) -> list[ArticleEvidence]:
    """Cluster members chosen for showing, as (article id, similarity), made into evidence in that
    order: only they are loaded (a cluster's day or week holds thousands of members)."""
    articles = {
        article.id: article
        for article in session.scalars(
            select(Article).where(Article.id.in_([article_id for article_id, _ in chosen]))
        )
    }
    return [article_evidence(articles[article_id], score=score) for article_id, score in chosen]


def article_evidence(article: Article, *, score: float, **match_fields: Any) -> ArticleEvidence:
    """An article as the report shows it, made inert (plain text, safe links); ``match_fields`` fill
    the evidence of a seed match and stay empty for a cluster member."""
    fields: dict[str, Any] = {
        "narrative_id": None,
        "narrative_version": None,
        "evidence": None,
        "evidence_score": None,
        "evidence_language": None,
        "model_name": None,
        "analyst_verdict": None,
        "evidence_example": None,
        "raw_score": None,
        "stance": None,
        "stance_cues": None,
        **match_fields,
    }
    return ArticleEvidence(
        article_id=article.id,
        title=plain_text(article.title, TITLE_CHARS) or "(untitled)",
        url=safe_url(article.url),
        outlet=plain_text(article.outlet, 100),
        country=plain_text(article.country, 8).upper(),
        language=plain_text(article.language, 16) or None,
        published_at=article.published_at,
        score=round(score, 4),
        excerpt=plain_text(article.summary, EXCERPT_CHARS),
        **fields,
    )
