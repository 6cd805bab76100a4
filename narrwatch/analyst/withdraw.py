"""Taking back an analyst's verdict: the review queue's undo.

``matching.label_match`` stores and replaces verdicts; undoing a first verdict needs the row gone,
so that the match is back in the queue and counts again by its score alone.
"""

from __future__ import annotations

from sqlalchemy import delete

from narrwatch.context import AppContext
from narrwatch.db.models import Verdict


def withdraw_verdict(ctx: AppContext, article_id: int, narrative_id: str, collection: str) -> bool:
    """Delete the verdict on (article, seed, collection); True if there was one."""
    with ctx.transaction() as session:
        result = session.execute(
            delete(Verdict).where(
                Verdict.article_id == article_id,
                Verdict.narrative_id == narrative_id,
                Verdict.collection == collection,
            )
        )
        return bool(getattr(result, "rowcount", 0))
