"""What a seed as it is on disk would match in stored history, found through the vector store, and
how that differs from the stored matches."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from narrwatch.context import AppContext
from narrwatch.db.models import Article, ArticleEmbedding, Match, NarrativeVersion, Passage
from narrwatch.db.rules import chunked
from narrwatch.domain.backtest import compare_levels, levels_per_day, raw_cutoff, rescale
from narrwatch.domain.scoring import Thresholds, score_upper_bound, search_floor
from narrwatch.embeddings.points import canonical_id
from narrwatch.steps.match.learning import learn_from_store
from narrwatch.steps.match.prepare import (
    PreparedSeeds,
    load_calibrations,
    prepare_configured_seeds,
    resolve_seed_thresholds,
)
from narrwatch.steps.match.seedstore import load_seeds
from narrwatch.steps.match.stored import StoredArticle, load_stored_articles

if TYPE_CHECKING:
    from narrwatch.ports import VectorStore

#: Ids per IN (...) list: SQLite allows 32,766 bound parameters per statement.
SQL_CHUNK = 5000


#: Hits asked for by a backtest's first search per phrasing (see ``backtest``).
FIRST_SEARCH_LIMIT = 1024


@dataclass
class BacktestMatch:
    article_id: int
    day: str
    title: str
    outlet: str
    url: str
    score: float
    level: str
    evidence_idx: int
    evidence_text: str
    evidence_example: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BacktestResult:
    narrative_id: str
    collection: str
    window_start: dt.datetime
    window_end: dt.datetime
    thresholds: dict[str, float | str]
    articles_in_window: int
    candidates: int
    per_day: dict[str, dict[str, int]]
    top: list[BacktestMatch]
    stored_versions: list[int]
    added: list[int]  # article ids the seed on disk matches and the stored matches do not
    removed: list[int]  # article ids stored as matched that the seed on disk no longer matches
    level_changed: list[int]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(day["suggest"] + day["confirm"] for day in self.per_day.values())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        data["total"] = self.total
        return data


def backtest(
    ctx: AppContext, narrative_id: str, days: int, now: dt.datetime, *, top_n: int = 10
) -> BacktestResult:
    """What the seed as it is stored (draft or not) would match among stored articles of the last ``days``.

    Candidates come from the vector store: each positive phrasing's nearest passages down to the
    lowest similarity that could still reach ``suggest`` (so no match is missed); the candidates are
    then scored exactly as ``match`` scores (negatives, keywords, the parent gating a sub-narrative)
    and compared with the matches stored for the seed in the same window.
    """
    import time

    from narrwatch.embeddings.collections import collection_for

    started = time.perf_counter()
    narratives = load_seeds(ctx, now)
    narratives.get(narrative_id)
    narratives = narratives.with_status(narrative_id, "active")
    collection = collection_for(ctx.encoder)
    start = now - dt.timedelta(days=days)
    with ctx.transaction() as session:
        calibrations = load_calibrations(session, collection)
        window = _window_facts(session, collection, start, now)
    thresholds = resolve_seed_thresholds(ctx.settings, ctx.encoder.model_name, narratives, calibrations)
    chain = [narrative_id, *narratives.ancestors(narrative_id)]
    prepared = prepare_configured_seeds(ctx, ctx.encoder, narratives, chain, thresholds)
    learn_from_store(ctx, prepared, collection, now)
    # Thresholds are on the calibrated scale; the vector search works on raw scores: search down to
    # the lowest raw score that reaches suggest in any language of the window.
    with ctx.transaction() as session:
        languages = session.scalars(
            select(Article.language)
            .join(ArticleEmbedding)
            .where(ArticleEmbedding.collection == collection, Article.published_at >= start)
            .distinct()
        ).all()
    raw_suggest = min(
        prepared.raw_threshold(narrative_id, language, thresholds[narrative_id].suggest)
        for language in [*languages, None]
    )
    search_thresholds = {narrative_id: Thresholds(raw_suggest, raw_suggest)}
    notes: list[str] = []
    total_points = ctx.vector_store.count(collection)
    if window.in_window and not total_points:
        notes.append(
            f"the vector store has no points in {collection} although SQL has embedded articles: "
            "run `narrwatch vectors reconcile` and `narrwatch embed`"
        )
    best = _nearest_passages(
        ctx.vector_store, collection, prepared, narrative_id, search_thresholds, window, total_points
    )
    with ctx.transaction() as session:
        candidate_ids = _candidates(session, collection, best, prepared, narrative_id, search_thresholds)
        found, missing = _score_stored(
            session, ctx.vector_store, collection, candidate_ids, prepared, narrative_id
        )
        stored = _stored_levels(session, narrative_id, collection, start, now)
    if missing:
        notes.append(f"{len(missing)} candidate article(s) have lost vectors and were not scored")
    levels = {item.article_id: item.level for item in found}
    diff = compare_levels(levels, {row.article_id: row.level for row in stored})
    return BacktestResult(
        narrative_id=narrative_id,
        collection=collection,
        window_start=start,
        window_end=now,
        thresholds=thresholds[narrative_id].as_dict(),
        articles_in_window=window.in_window,
        candidates=len(candidate_ids),
        per_day=levels_per_day((item.day, item.level) for item in found),
        top=found[:top_n],
        stored_versions=sorted({row.version for row in stored}),
        added=diff.added,
        removed=diff.removed,
        level_changed=diff.level_changed,
        seconds=round(time.perf_counter() - started, 3),
        notes=notes,
    )


@dataclass(frozen=True)
class _Window:
    start: dt.datetime
    end: dt.datetime
    in_window: int
    covers_all: bool  # every embedded article lies in the window: no filter needed


def _window_facts(session: Session, collection: str, start: dt.datetime, end: dt.datetime) -> _Window:
    # the oldest and newest embedded article: walks the publication-time index from either end and
    # stops at the first embedded article, instead of joining the whole history
    embedded = select(Article.published_at).where(
        exists().where(ArticleEmbedding.article_id == Article.id, ArticleEmbedding.collection == collection)
    )
    oldest = session.scalar(embedded.order_by(Article.published_at).limit(1))
    newest = session.scalar(embedded.order_by(Article.published_at.desc()).limit(1))
    in_window = session.scalar(
        select(func.count())
        .select_from(Article)
        .join(ArticleEmbedding)
        .where(
            ArticleEmbedding.collection == collection,
            Article.published_at >= start,
            Article.published_at < end,
        )
    )
    covers_all = oldest is not None and newest is not None and oldest >= start and newest < end
    return _Window(start, end, int(in_window or 0), covers_all)


def _nearest_passages(
    store: VectorStore,
    collection: str,
    prepared: PreparedSeeds,
    narrative_id: str,
    thresholds: Mapping[str, Thresholds],
    window: _Window,
    total_points: int,
) -> dict[str, float]:
    """Best rescaled similarity of each passage (point) to any one positive phrasing, for every
    passage that could still reach ``suggest``."""
    from narrwatch.ports import SearchFilter

    seed_vectors = prepared.vectors[narrative_id]
    floor = search_floor(thresholds[narrative_id], prepared.params)
    # A filter every stored point passes is left out: Qdrant's local mode evaluates filters in
    # Python, an order of magnitude slower than the plain search.
    flt = None if window.covers_all else SearchFilter(published_from=window.start, published_to=window.end)
    best: dict[str, float] = {}
    for vector, background in zip(seed_vectors.positives, seed_vectors.positive_floor, strict=True):
        cutoff = raw_cutoff(float(background), floor)
        # Ask for more hits until the weakest is below the cutoff (or every point was returned).
        limit = min(FIRST_SEARCH_LIMIT, max(1, total_points))
        while True:
            hits = store.search(collection, vector, limit, flt, with_payload=False)
            for hit in hits:
                if hit.score >= cutoff:
                    best[hit.id] = max(best.get(hit.id, -1.0), rescale(hit.score, float(background)))
            if len(hits) < limit or hits[-1].score < cutoff or limit >= total_points:
                break
            limit = min(limit * 4, total_points)
    return best


def _candidates(
    session: Session,
    collection: str,
    best: Mapping[str, float],
    prepared: PreparedSeeds,
    narrative_id: str,
    thresholds: Mapping[str, Thresholds],
) -> list[int]:
    """Articles whose score could reach ``suggest``: certain ones by their best passage alone, the
    rest by an upper bound that reads their text for keywords and rebuttal cues."""
    bound_of: dict[int, float] = {}
    for chunk in chunked(sorted(best), SQL_CHUNK):
        for article_id, point_id in session.execute(
            select(Passage.article_id, Passage.point_id).where(
                Passage.collection == collection, Passage.point_id.in_(chunk)
            )
        ):
            bound_of[article_id] = max(bound_of.get(article_id, -1.0), best[canonical_id(point_id)])
    suggest = thresholds[narrative_id].suggest
    params = prepared.params
    # Certain without the text: a bound that the rebuttal penalty cannot pull below suggest.
    certain = {a for a, similarity in bound_of.items() if similarity - params.rebuttal_weight >= suggest}
    texts: dict[int, list[str]] = defaultdict(list)
    for uncertain in chunked(sorted(set(bound_of) - certain), SQL_CHUNK):
        for article_id, text in session.execute(
            select(Passage.article_id, Passage.text)
            .where(Passage.collection == collection, Passage.article_id.in_(uncertain))
            .order_by(Passage.article_id, Passage.idx)
        ):
            texts[article_id].append(text)
    keywords = prepared.vectors[narrative_id].keywords
    possible = {
        article_id
        for article_id, parts in texts.items()
        if score_upper_bound(bound_of[article_id], keywords, " ".join(parts), params) >= suggest - 1e-9
    }
    return sorted(certain | possible)


def _score_stored(
    session: Session,
    store: VectorStore,
    collection: str,
    candidate_ids: Sequence[int],
    prepared: PreparedSeeds,
    narrative_id: str,
) -> tuple[list[BacktestMatch], list[int]]:
    """The candidates scored (see ``_score_candidates``), strongest first, read a thousand at a time
    so that memory holds one chunk of passages and vectors, not the whole window's candidates; and the
    candidates whose vectors are lost."""
    found: list[BacktestMatch] = []
    missing: list[int] = []
    for candidates in chunked(candidate_ids, 1000):
        articles, missing_here = load_stored_articles(session, store, collection, candidates)
        missing.extend(missing_here)
        info = {
            row.id: row
            for row in session.execute(
                select(Article.id, Article.title, Article.outlet, Article.url).where(
                    Article.id.in_([article.id for article in articles])
                )
            )
        }
        found.extend(_score_candidates(articles, info, prepared, narrative_id))
    found.sort(key=lambda item: -item.score)
    return found, missing


def _stored_levels(
    session: Session, narrative_id: str, collection: str, start: dt.datetime, end: dt.datetime
) -> list[Any]:
    return list(
        session.execute(
            select(Match.article_id, Match.level, NarrativeVersion.version)
            .join(NarrativeVersion, NarrativeVersion.id == Match.narrative_version_id)
            .where(
                Match.narrative_id == narrative_id,
                Match.collection == collection,
                Match.published_at >= start,
                Match.published_at < end,
            )
        ).all()
    )


def _score_candidates(
    articles: Sequence[StoredArticle], info: Mapping[int, Any], prepared: PreparedSeeds, narrative_id: str
) -> list[BacktestMatch]:
    """The candidates scored exactly as ``match`` scores them, strongest first."""
    found: list[BacktestMatch] = []
    for article in articles:
        scores = prepared.score(article.vectors, article.passage_texts, language=article.language)
        level = prepared.decide(scores).get(narrative_id)
        if level is None:
            continue
        score = scores[narrative_id]
        meta = info[article.id]
        found.append(
            BacktestMatch(
                article_id=article.id,
                day=article.published_at.date().isoformat(),
                title=meta.title,
                outlet=meta.outlet,
                url=meta.url,
                score=round(score.score, 4),
                level=level,
                evidence_idx=article.passage_idx[score.evidence_idx],
                evidence_text=article.passage_texts[score.evidence_idx],
                evidence_example=score.nearest_positive,
            )
        )
    found.sort(key=lambda item: -item.score)
    return found
