"""The match step: score embedded articles of a window against the active seeds.

``match_articles`` keeps one ``matches`` row per (article, seed, collection) at or above ``suggest``,
with its evidence, and a ``match_states`` row per article saying which seed versions it was scored
against, so a rerun scores only what changed. Which matches *count* is a read rule
(``narrwatch.db.rules``); the scoring itself is pure (``narrwatch.domain.scoring``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, exists, func, select, update

from narrwatch.claims import Claimer
from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import (
    Article,
    ArticleEmbedding,
    Match,
    MatchState,
    NarrativeVersion,
)
from narrwatch.db.session import dialect_insert
from narrwatch.domain.scoring import (
    Level,
    SeedScore,
    deciding_head,
)
from narrwatch.steps.match.seeds import NarrativeSet
from narrwatch.steps.match.seedstore import load_seeds

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

from narrwatch.steps.match.learning import learn_from_store
from narrwatch.steps.match.prepare import (
    PreparedSeeds,
    load_calibrations,
    prepare_configured_seeds,
    resolve_seed_thresholds,
    seeds_key,
)
from narrwatch.steps.match.stored import StoredArticle, load_stored_articles
from narrwatch.steps.match.versions import current_versions, sync_narratives

log = logging.getLogger(__name__)


#: Articles scored per transaction.
MATCH_BATCH = 200


@dataclass
class MatchReport:
    window_start: dt.datetime
    window_end: dt.datetime
    collection: str
    model_name: str
    recompute: bool
    seeds: int = 0
    articles_scored: int = 0
    articles_up_to_date: int = 0
    articles_missing_vectors: int = 0
    matches_suggest: int = 0
    matches_confirm: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_removed: int = 0
    versions: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        return data


@dataclass(frozen=True)
class _Decision:
    article: StoredArticle
    seed_id: str
    level: Level
    score: SeedScore


def match_articles(
    ctx: AppContext,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    *,
    recompute: bool = False,
    narratives: NarrativeSet | None = None,
) -> MatchReport:
    """Match articles embedded in the configured model's collection and published in ``[start, end)``.

    Each article ends with exactly one row per active seed it reaches ``suggest`` for (parents
    gating their sub-narratives) and none for the others. Without ``recompute`` articles already
    scored against the current seeds (same versions, thresholds and recipe: ``match_states``) are
    skipped; with it every article of the window is scored again and the window's rows of this
    collection are replaced. Rows of other windows and other collections are never touched.
    """
    from narrwatch.embeddings.collections import collection_for

    if start >= end:
        raise ValueError(f"empty window: start {start.isoformat()} is not before end {end.isoformat()}")
    if narratives is None:
        narratives = load_seeds(ctx, now)
    sync_narratives(ctx, now, narratives)
    encoder = ctx.encoder
    store = ctx.vector_store
    collection = collection_for(encoder)
    report = MatchReport(start, end, collection, encoder.model_name, recompute)
    with ctx.transaction() as session:
        versions = current_versions(session, narratives)
        calibrations = load_calibrations(session, collection)
    active = [seed.id for seed in narratives.active()]
    thresholds = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, calibrations)
    prepared = prepare_configured_seeds(ctx, encoder, narratives, active, thresholds)
    learn_from_store(ctx, prepared, collection, end)
    key = seeds_key(prepared, versions)
    report.seeds = len(active)
    report.versions = {seed_id: versions[seed_id].version for seed_id in active}

    in_window = _embedded_in_window(collection, start, end)
    with ctx.transaction() as session:
        total = session.scalar(
            select(func.count()).select_from(Article).join(ArticleEmbedding).where(in_window)
        )
    # Claims let several match workers share the window without scoring an article twice.
    claimer = Claimer("match", collection, dt.timedelta(seconds=ctx.settings.work_claim_lease_s))
    try:
        after_id = 0
        while True:
            query = select(Article.id).join(ArticleEmbedding).where(in_window, Article.id > after_id)
            if not recompute:
                query = query.where(~_scored_with(key, collection))
            with ctx.transaction() as session:
                ids = claimer.claim(session, query, MATCH_BATCH)
            if not ids:
                break
            after_id = ids[-1]
            with ctx.transaction() as session:
                articles, missing = load_stored_articles(session, store, collection, ids)
            report.articles_missing_vectors += len(missing)
            decisions = _decide(prepared, articles)
            with ctx.transaction() as session:
                _write_matches(session, collection, prepared, versions, articles, decisions, now, report)
                _write_states(session, collection, key, [a.id for a in articles], now)
                claimer.release(session, ids)
            report.articles_scored += len(articles)
    except BaseException:
        # Hand unfinished batches back at once rather than when the lease runs out.
        with ctx.transaction() as session:
            claimer.release_all(session)
        raise
    if recompute:
        with ctx.transaction() as session:
            report.rows_removed += _remove_unembedded(session, collection, start, end)
    report.articles_up_to_date = int(total or 0) - report.articles_scored - report.articles_missing_vectors
    return report


def _embedded_in_window(collection: str, start: dt.datetime, end: dt.datetime) -> Any:
    """SQL: the article has passages in ``collection`` and was published in ``[start, end)``."""
    return and_(
        ArticleEmbedding.collection == collection,
        ArticleEmbedding.n_passages > 0,
        Article.published_at >= start,
        Article.published_at < end,
    )


def _decide(prepared: PreparedSeeds, articles: Sequence[StoredArticle]) -> list[_Decision]:
    """Score each article against the prepared seeds; one decision per seed it reaches a level for."""
    return [
        _Decision(article, seed_id, level, scores[seed_id])
        for article in articles
        for scores in [prepared.score(article.vectors, article.passage_texts, language=article.language)]
        for seed_id, level in prepared.decide(scores).items()
    ]


def _scored_with(key: str, collection: str) -> Any:
    """SQL: the article was already scored in ``collection`` against the seeds behind ``key``."""
    return exists().where(
        MatchState.article_id == Article.id, MatchState.collection == collection, MatchState.seeds_key == key
    )


def _remove_unembedded(session: Session, collection: str, start: dt.datetime, end: dt.datetime) -> int:
    """Delete the window's rows whose article is no longer embedded here (re-split, unmarked)."""
    gone = (
        delete(Match)
        .where(
            Match.collection == collection,
            Match.published_at >= start,
            Match.published_at < end,
            ~exists().where(
                ArticleEmbedding.article_id == Match.article_id,
                ArticleEmbedding.collection == collection,
                ArticleEmbedding.n_passages > 0,
            ),
        )
        .execution_options(synchronize_session=False)
        .returning(Match.published_at)
    )
    days = [published_at.date() for published_at in session.scalars(gone)]
    rules.mark_counts_stale(session, days)
    return len(days)


def _match_values(
    decision: _Decision,
    collection: str,
    prepared: PreparedSeeds,
    versions: Mapping[str, NarrativeVersion],
    now: dt.datetime,
) -> dict[str, Any]:
    article, score = decision.article, decision.score
    thresholds = prepared.thresholds[decision.seed_id]
    head = deciding_head(score, thresholds)
    return {
        "article_id": article.id,
        "narrative_id": decision.seed_id,
        "narrative_version_id": versions[decision.seed_id].id,
        "collection": collection,
        "model_name": prepared.model_name,
        "score": round(score.score, 6),
        "level": decision.level,
        "evidence_text": article.passage_texts[score.evidence_idx],
        "evidence_idx": article.passage_idx[score.evidence_idx],
        "evidence_score": round(score.evidence_score, 6),
        "evidence_language": article.language,
        "evidence_example": score.nearest_positive,
        "lexical_score": round(score.lexical_score, 6),
        "threshold_suggest": thresholds.suggest,
        "threshold_confirm": thresholds.confirm,
        "published_at": article.published_at,
        "matched_at": now,
        "raw_score": None if score.raw_score is None else round(score.raw_score, 6),
        "stance": score.stance,
        "stance_cues": ", ".join(score.stance_hits) or None,
        "head_probability": None if head is None else round(head.probability, 6),
        "head_kind": None if head is None else head.kind,
        "head_cut": None if head is None else head.cut,
    }


#: Fields whose change makes a stored match row out of date (matched_at then moves too).
_COMPARED = (
    "narrative_version_id",
    "model_name",
    "score",
    "level",
    "evidence_text",
    "evidence_idx",
    "evidence_score",
    "evidence_language",
    "evidence_example",
    "lexical_score",
    "threshold_suggest",
    "threshold_confirm",
    "published_at",
    "raw_score",
    "stance",
    "stance_cues",
    "head_probability",
    "head_kind",
    "head_cut",
)


def _write_matches(
    session: Session,
    collection: str,
    prepared: PreparedSeeds,
    versions: Mapping[str, NarrativeVersion],
    articles: Sequence[StoredArticle],
    decisions: Sequence[_Decision],
    now: dt.datetime,
    report: MatchReport,
) -> None:
    article_ids = [article.id for article in articles]
    if not article_ids:
        return
    existing = {
        (row.article_id, row.narrative_id): row
        for row in session.scalars(
            select(Match).where(Match.collection == collection, Match.article_id.in_(article_ids))
        )
    }
    wanted = set()
    # days where a match came, went or changed what counting reads: what seeds and clusters count moved
    counts_changed: list[dt.date] = []
    for decision in decisions:
        values = _match_values(decision, collection, prepared, versions, now)
        key = (decision.article.id, decision.seed_id)
        wanted.add(key)
        if decision.level == "confirm":
            report.matches_confirm += 1
        else:
            report.matches_suggest += 1
        row = existing.get(key)
        if row is None:
            insert = dialect_insert(session, Match).values(values)
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=["article_id", "narrative_id", "collection"],
                    set_={name: insert.excluded[name] for name in (*_COMPARED, "matched_at")},
                )
            )
            report.rows_created += 1
            counts_changed.append(decision.article.published_at.date())
        elif any(getattr(row, name) != values[name] for name in _COMPARED):
            if row.level != values["level"] or row.published_at != values["published_at"]:
                # a recalibrated threshold moves the seed's count that day (a re-dated article: two days)
                counts_changed.extend({row.published_at.date(), values["published_at"].date()})
            session.execute(
                update(Match)
                .where(Match.id == row.id)
                .values({name: values[name] for name in (*_COMPARED, "matched_at")})
            )
            report.rows_updated += 1
    stale = [row for key, row in existing.items() if key not in wanted]
    if stale:
        session.execute(
            delete(Match)
            .where(Match.id.in_([row.id for row in stale]))
            .execution_options(synchronize_session=False)
        )
        report.rows_removed += len(stale)
        counts_changed.extend(row.published_at.date() for row in stale)
    rules.mark_counts_stale(session, counts_changed)


def _write_states(
    session: Session, collection: str, key: str, article_ids: Sequence[int], now: dt.datetime
) -> None:
    if not article_ids:
        return
    insert = dialect_insert(session, MatchState).values(
        [
            {"article_id": article_id, "collection": collection, "seeds_key": key, "matched_at": now}
            for article_id in article_ids
        ]
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["article_id", "collection"],
            set_={"seeds_key": insert.excluded.seeds_key, "matched_at": insert.excluded.matched_at},
        )
    )
