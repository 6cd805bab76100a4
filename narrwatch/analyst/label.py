"""Analysts' verdicts on matches: confirm or reject, recorded with who and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import (
    Match,
    Verdict,
)
from narrwatch.db.session import dialect_insert

Verdict_ = Literal["confirm", "reject"]


class MatchNotFound(LookupError):
    pass


@dataclass(frozen=True)
class LabelResult:
    match_id: int
    article_id: int
    narrative_id: str
    verdict: str
    score: float
    replaced: str | None  # the earlier verdict, if there was one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_match(
    ctx: AppContext, match_id: int, verdict: Verdict_, now: dt.datetime, note: str | None = None
) -> LabelResult:
    """Store an analyst's verdict on a match (a second verdict on the same article and seed replaces it)."""
    if verdict not in ("confirm", "reject"):
        raise ValueError(f"verdict must be confirm or reject, not {verdict!r}")
    with ctx.transaction() as session:
        match = session.get(Match, match_id)
        if match is None:
            raise MatchNotFound(f"no match with id {match_id} (see `narrwatch review`)")
        earlier = session.scalar(
            select(Verdict.verdict).where(
                Verdict.article_id == match.article_id,
                Verdict.narrative_id == match.narrative_id,
                Verdict.collection == match.collection,
            )
        )
        values = {
            "article_id": match.article_id,
            "narrative_id": match.narrative_id,
            "match_id": match.id,
            "verdict": verdict,
            "score": match.score,
            "collection": match.collection,
            "note": note,
            "created_at": now,
        }
        insert = dialect_insert(session, Verdict).values(values)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["article_id", "narrative_id", "collection"],
                set_={
                    name: insert.excluded[name]
                    for name in ("match_id", "verdict", "score", "note", "created_at")
                },
            )
        )
        rules.mark_counts_stale(session, [match.published_at.date()])
        return LabelResult(match.id, match.article_id, match.narrative_id, verdict, match.score, earlier)
