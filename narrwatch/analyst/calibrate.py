"""Thresholds for a target precision from the analysts' verdicts, per seed and model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from narrwatch.context import AppContext
from narrwatch.db.models import (
    Calibration,
    Verdict,
)
from narrwatch.db.session import dialect_insert
from narrwatch.domain.calibration import thresholds_from_verdicts
from narrwatch.domain.verdicts import MIN_CONFIRMED, MIN_REJECTED, train_head
from narrwatch.steps.match.calibration import attach_calibration
from narrwatch.steps.match.learning import load_verdict_passages
from narrwatch.steps.match.prepare import (
    PreparedSeeds,
    load_calibrations,
    prepare_configured_seeds,
    resolve_seed_thresholds,
)
from narrwatch.steps.match.seedstore import load_seeds
from narrwatch.steps.match.stored import StoredArticle, load_stored_articles


@dataclass
class CalibrationResult:
    narrative_id: str
    collection: str
    target_precision: float
    n_verdicts: int
    n_confirmed: int
    n_rejected: int
    stored: bool
    message: str
    suggest: float | None = None
    confirm: float | None = None
    previous: dict[str, float | str] | None = None
    precision_at_confirm: float | None = None
    confirmed_kept: int | None = None  # confirmed verdicts at or above the new confirm threshold
    recall_kept: float | None = None  # confirmed_kept over the confirmed verdicts
    head: str | None = None  # the seed's verdict head and its cross-validated precision, or why none

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate(
    ctx: AppContext,
    narrative_id: str,
    target_precision: float,
    now: dt.datetime,
    *,
    min_verdicts: int = 10,
) -> CalibrationResult:
    """Thresholds for ``narrative_id`` from its verdicts, stored as a ``calibrations`` row.

    Labelled articles are scored again with the seed as it is on disk (scores of an older version
    would not fit the current one); one whose vectors are gone keeps the score it had when labelled.
    ``confirm`` becomes the lowest score at which the labelled matches at or above it reach
    ``target_precision``; ``suggest`` stays where it was unless that is above the new ``confirm``.
    """
    from narrwatch.embeddings.collections import collection_for

    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target precision must be in (0, 1]")
    narratives = load_seeds(ctx)
    narratives.get(narrative_id)  # a clear KeyError for an unknown id
    encoder = ctx.encoder
    collection = collection_for(encoder)
    with ctx.transaction() as session:
        newest = _newest_verdicts(session, narrative_id)
        calibrations = load_calibrations(session, collection)
        articles, _missing = load_stored_articles(session, ctx.vector_store, collection, sorted(newest))
    verdicts = _comparable_verdicts(newest, articles, collection)
    others = {k: v for k, v in calibrations.items() if k != narrative_id}
    base = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, others)
    current = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, calibrations)
    result = CalibrationResult(
        narrative_id=narrative_id,
        collection=collection,
        target_precision=target_precision,
        n_verdicts=len(verdicts),
        n_confirmed=sum(row.verdict == "confirm" for row in verdicts),
        n_rejected=sum(row.verdict == "reject" for row in verdicts),
        stored=False,
        message="",
        previous=current[narrative_id].as_dict(),
    )
    if len(verdicts) < min_verdicts:
        result.message = (
            f"too few verdicts: {len(verdicts)} for {narrative_id} in {collection}, need at least "
            f"{min_verdicts} (label more matches with `narrwatch label`); thresholds unchanged"
        )
        return result
    prepared = prepare_configured_seeds(ctx, encoder, narratives, [narrative_id], base)
    if ctx.settings.match_calibration:
        attach_calibration(ctx, prepared, collection, now)
    rescored = _rescore(prepared, articles, narrative_id)
    labelled = [(rescored.get(row.article_id, row.score), row.verdict == "confirm") for row in verdicts]
    chosen = thresholds_from_verdicts(labelled, target_precision, base[narrative_id].suggest)
    result.message = chosen.message
    result.suggest, result.confirm = round(chosen.suggest, 6), round(chosen.confirm, 6)
    result.precision_at_confirm = chosen.precision
    result.confirmed_kept = chosen.confirmed_kept
    result.recall_kept = chosen.recall_kept
    result.head = _describe_head(ctx, prepared, collection, narrative_id)
    details = {
        "version_hash": narratives.content_hash(narrative_id),
        "rescored": len(rescored),
        "n_confirmed": result.n_confirmed,
        "n_rejected": result.n_rejected,
        "precision_at_confirm": chosen.precision,
        "confirmed_kept": chosen.confirmed_kept,
        "recall_kept": chosen.recall_kept,
        "head": result.head,
        "model_name": encoder.model_name,
    }
    with ctx.transaction() as session:
        _store(session, result, target_precision, details, now)
    result.stored = True
    return result


def _comparable_verdicts(
    newest: dict[int, Any], articles: Sequence[StoredArticle], collection: str
) -> list[Any]:
    """The verdicts whose article can be scored again here or whose stored score fits this model."""
    # A stored score is only comparable when it was made in this collection (same model).
    rescorable = {a.id for a in articles}
    return [row for row in newest.values() if row.collection == collection or row.article_id in rescorable]


def _rescore(
    prepared: PreparedSeeds, articles: Sequence[StoredArticle], narrative_id: str
) -> dict[int, float]:
    """Each labelled article's score for the seed as it is now, by article id."""
    return {
        article.id: prepared.score(article.vectors, article.passage_texts, language=article.language)[
            narrative_id
        ].score
        for article in articles
    }


def _describe_head(ctx: AppContext, prepared: PreparedSeeds, collection: str, narrative_id: str) -> str:
    """The seed's verdict head trained on its verdicts, or why it has none yet and what decides instead."""
    head = train_head(narrative_id, load_verdict_passages(ctx, prepared, collection, [narrative_id]))
    if head is not None:
        return head.describe()
    return (
        f"no verdict head yet: it needs {MIN_CONFIRMED} confirmed and {MIN_REJECTED} rejected verdicts; "
        "until then these thresholds decide its matches, not the stream head learned from all seeds"
    )


def _newest_verdicts(session: Session, narrative_id: str) -> dict[int, Any]:
    """The newest verdict per article on the seed, whatever collection it was given in."""
    newest: dict[int, Any] = {}
    for row in session.execute(
        select(Verdict.article_id, Verdict.verdict, Verdict.score, Verdict.collection)
        .where(Verdict.narrative_id == narrative_id)
        .order_by(Verdict.created_at, Verdict.id)
    ):
        newest[row.article_id] = row
    return newest


def _store(
    session: Session,
    result: CalibrationResult,
    target_precision: float,
    details: dict[str, Any],
    now: dt.datetime,
) -> None:
    insert = dialect_insert(session, Calibration).values(
        narrative_id=result.narrative_id,
        collection=result.collection,
        suggest=result.suggest,
        confirm=result.confirm,
        target_precision=target_precision,
        n_verdicts=result.n_verdicts,
        details=details,
        created_at=now,
    )
    updated = ("suggest", "confirm", "target_precision", "n_verdicts", "details", "created_at")
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["narrative_id", "collection"],
            set_={name: insert.excluded[name] for name in updated},
        )
    )


def reset_calibration(ctx: AppContext, narrative_id: str, collection: str) -> bool:
    with ctx.transaction() as session:
        result = session.execute(
            delete(Calibration).where(
                Calibration.narrative_id == narrative_id, Calibration.collection == collection
            )
        )
        return bool(getattr(result, "rowcount", 0))
