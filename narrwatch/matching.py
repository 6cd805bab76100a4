"""Seed narratives against stored articles: versions, matches with evidence, the analyst's tools.

- ``sync_narratives``: a ``narrative_versions`` row per distinct content of each seed file.
- ``match_articles``: score embedded articles of a window against the active seeds, keep one
  ``matches`` row per (article, seed, collection) at or above ``suggest``, with its evidence.
- ``backtest``: what a seed as it is on disk would match in stored history, found through the vector
  store, and how that differs from the stored matches.
- ``test_text``: every seed's score for one text, with the evidence passage.
- ``calibrate``: thresholds for a target precision from the analysts' verdicts.
- ``pending_reviews`` / ``label_match``: the review queue and verdicts.
- ``active_matches_query``: the rule the report and the counts use (confirmed by score or by an
  analyst, never rejected).

The scoring itself is pure and lives in ``narrwatch.domain.scoring``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import Select, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from db.models import (
    Article,
    ArticleEmbedding,
    Calibration,
    Match,
    MatchState,
    NarrativeVersion,
    Passage,
    Verdict,
)
from db.session import dialect_insert
from narrwatch.claims import Claimer
from narrwatch.context import AppContext
from narrwatch.domain.scoring import (
    BACKGROUND_TEXTS,
    Level,
    ScoringParams,
    SeedScore,
    SeedVectors,
    Thresholds,
    build_seed_vectors,
    decide,
    gate_by_parent,
    resolve_thresholds,
    score_article,
    score_upper_bound,
    search_floor,
)
from narrwatch.narratives import NarrativeSet, load_narratives

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from narrwatch.config import Settings
    from narrwatch.domain.scoring import Array
    from narrwatch.ports import Encoder, VectorStore

log = logging.getLogger(__name__)

#: Bump when the scoring recipe changes in a way that changes scores: stored match states of the old
#: recipe then no longer count as up to date and the next `match` rescores its window.
SCORING_REVISION = "1"
#: Articles scored per transaction.
MATCH_BATCH = 200
#: Hits asked for by a backtest's first search per phrasing (see ``backtest``).
FIRST_SEARCH_LIMIT = 1024

Verdict_ = Literal["confirm", "reject"]


# --- versions -----------------------------------------------------------------------------------


@dataclass
class SyncReport:
    seeds: int = 0
    created: list[str] = field(default_factory=list)  # "seed-id@version"
    reactivated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_narratives(ctx: AppContext, now: dt.datetime, narratives: NarrativeSet | None = None) -> SyncReport:
    """Record a new version for every seed whose content changed since its newest version.

    A seed edited back to an earlier content gets that content's row back, renumbered to the next
    version (the content-hash key is unique): its stored matches stay valid and the version numbers
    still only increase. Raises ``NarrativeError`` (naming file and field) if a seed file is bad.
    """
    narratives = narratives or load_narratives(ctx.settings.narratives_dir)
    for attempt in range(3):
        try:
            return _sync_once(ctx, now, narratives)
        except IntegrityError:
            # Another process recorded the same version first: read its result and try again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sync_once(ctx: AppContext, now: dt.datetime, narratives: NarrativeSet) -> SyncReport:
    report = SyncReport(seeds=len(narratives))
    with ctx.transaction() as session:
        rows = session.scalars(
            select(NarrativeVersion).where(NarrativeVersion.narrative_id.in_(narratives.ids))
        ).all()
        by_seed: dict[str, list[NarrativeVersion]] = defaultdict(list)
        for row in rows:
            by_seed[row.narrative_id].append(row)
        for seed in narratives:
            content_hash = narratives.content_hash(seed.id)
            versions = by_seed.get(seed.id, [])
            newest = max(versions, key=lambda row: row.version, default=None)
            if newest is not None and newest.content_hash == content_hash:
                report.unchanged += 1
                continue
            next_version = newest.version + 1 if newest is not None else 1
            earlier = next((row for row in versions if row.content_hash == content_hash), None)
            if earlier is not None:
                earlier.version = next_version
                report.reactivated.append(f"{seed.id}@{next_version}")
                continue
            session.add(
                NarrativeVersion(
                    narrative_id=seed.id,
                    version=next_version,
                    content_hash=content_hash,
                    title=seed.title,
                    parent_id=seed.parent,
                    status=seed.status,
                    definition=narratives.matching_definition(seed.id),
                    source_file=str(narratives.path_of(seed.id)),
                    created_at=now,
                )
            )
            report.created.append(f"{seed.id}@{next_version}")
    return report


def current_versions(session: Session, narratives: NarrativeSet) -> dict[str, NarrativeVersion]:
    """The stored version row of each seed's content on disk (after ``sync_narratives``)."""
    rows = session.scalars(
        select(NarrativeVersion).where(NarrativeVersion.narrative_id.in_(narratives.ids))
    ).all()
    by_hash = {(row.narrative_id, row.content_hash): row for row in rows}
    found = {}
    for seed_id in narratives.ids:
        row = by_hash.get((seed_id, narratives.content_hash(seed_id)))
        if row is not None:
            found[seed_id] = row
    return found


# --- seeds ready to score -----------------------------------------------------------------------

#: Encoded seed texts, keyed by encoder identity, kind (query/passage) and text. A seed version's
#: texts are encoded once per process; an edit re-encodes only the changed phrasings.
_TEXT_VECTORS: dict[tuple[str, str, str], Array] = {}


def _encoder_key(encoder: Encoder) -> str:
    return f"{encoder.model_name}|{encoder.backend}|{encoder.fingerprint}"


def encode_cached(encoder: Encoder, texts: Sequence[str], kind: Literal["query", "passage"]) -> Array:
    key = _encoder_key(encoder)
    missing = list(dict.fromkeys(t for t in texts if (key, kind, t) not in _TEXT_VECTORS))
    encode = encoder.encode_queries if kind == "query" else encoder.encode_passages
    for text in missing:
        # One text per call: with dynamically quantised (int8) models a vector depends on the other
        # texts and the padding of its batch (cosine ~0.99 between batchings), so a seed's vectors
        # would depend on what the process happened to encode before.
        _TEXT_VECTORS[(key, kind, text)] = np.asarray(encode([text])[0], dtype=np.float32)
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    return np.stack([_TEXT_VECTORS[(key, kind, t)] for t in texts])


def scoring_params(settings: Settings) -> ScoringParams:
    return ScoringParams(min_passage_chars=settings.match_min_passage_chars)


@dataclass
class PreparedSeeds:
    """Seeds encoded for one encoder, with their resolved thresholds."""

    narratives: NarrativeSet
    vectors: dict[str, SeedVectors]
    thresholds: dict[str, Thresholds]
    params: ScoringParams
    model_name: str

    @property
    def parents(self) -> dict[str, str | None]:
        return self.narratives.parents()

    def score(
        self, passages: Array, texts: Sequence[str], lexical_text: str | None = None
    ) -> dict[str, SeedScore]:
        return {
            seed_id: score_article(passages, texts, seed_vectors, self.params, lexical_text)
            for seed_id, seed_vectors in self.vectors.items()
        }

    def decide(self, scores: Mapping[str, SeedScore]) -> dict[str, Level]:
        levels = {seed_id: decide(score, self.thresholds[seed_id]) for seed_id, score in scores.items()}
        return gate_by_parent(levels, self.parents)


def positive_texts(narratives: NarrativeSet, seed_id: str, params: ScoringParams) -> list[str]:
    seed = narratives.get(seed_id)
    texts = [seed.description] if params.use_description else []
    texts += seed.examples + narratives.inherited_examples(seed_id)
    return list(dict.fromkeys(texts))


def prepare_seeds(
    encoder: Encoder,
    narratives: NarrativeSet,
    seed_ids: Iterable[str],
    params: ScoringParams,
    thresholds: Mapping[str, Thresholds],
) -> PreparedSeeds:
    background = encode_cached(encoder, BACKGROUND_TEXTS, "passage")
    vectors = {}
    for seed_id in seed_ids:
        seed = narratives.get(seed_id)
        positives = positive_texts(narratives, seed_id, params)
        vectors[seed_id] = build_seed_vectors(
            seed_id,
            positives,
            encode_cached(encoder, positives, "query"),
            seed.negatives,
            encode_cached(encoder, seed.negatives, "query"),
            background,
            seed.keywords,
            params,
        )
    return PreparedSeeds(narratives, vectors, dict(thresholds), params, encoder.model_name)


def resolve_seed_thresholds(
    settings: Settings,
    model_name: str,
    narratives: NarrativeSet,
    calibrations: Mapping[str, tuple[float, float]],
) -> dict[str, Thresholds]:
    result = {}
    for seed in narratives:
        seed_pair = (seed.thresholds.suggest, seed.thresholds.confirm) if seed.thresholds else (None, None)
        result[seed.id] = resolve_thresholds(
            model_name,
            settings=(settings.match_suggest_threshold, settings.match_confirm_threshold),
            seed=seed_pair,
            calibration=calibrations.get(seed.id),
        )
    return result


def load_calibrations(session: Session, collection: str) -> dict[str, tuple[float, float]]:
    rows = session.execute(
        select(Calibration.narrative_id, Calibration.suggest, Calibration.confirm).where(
            Calibration.collection == collection
        )
    ).all()
    return {row.narrative_id: (row.suggest, row.confirm) for row in rows}


def seeds_key(prepared: PreparedSeeds, versions: Mapping[str, NarrativeVersion]) -> str:
    """What an article's match state must equal to be up to date: versions, thresholds, recipe."""
    material = {
        "revision": SCORING_REVISION,
        "params": asdict(prepared.params),
        "seeds": {
            seed_id: [versions[seed_id].content_hash, prepared.thresholds[seed_id].as_dict()]
            for seed_id in sorted(prepared.vectors)
        },
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


# --- stored articles ----------------------------------------------------------------------------


@dataclass
class StoredArticle:
    id: int
    published_at: dt.datetime
    language: str | None
    title: str
    passage_idx: list[int]
    passage_texts: list[str]
    vectors: Array


def load_stored_articles(
    session: Session, store: VectorStore, collection: str, article_ids: Sequence[int]
) -> tuple[list[StoredArticle], list[int]]:
    """Articles with their passages and vectors; second value: ids whose vectors are missing."""
    if not article_ids:
        return [], []
    meta = {
        row.id: row
        for row in session.execute(
            select(Article.id, Article.published_at, Article.language, Article.title).where(
                Article.id.in_(article_ids)
            )
        )
    }
    passages: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for row in session.execute(
        select(Passage.article_id, Passage.idx, Passage.text, Passage.point_id)
        .where(Passage.collection == collection, Passage.article_id.in_(article_ids))
        .order_by(Passage.article_id, Passage.idx)
    ):
        passages[row.article_id].append((row.idx, row.text, row.point_id))
    point_ids = [point_id for rows in passages.values() for _, _, point_id in rows]
    vectors = store.retrieve_vectors(collection, point_ids)
    found: list[StoredArticle] = []
    missing: list[int] = []
    for article_id in article_ids:
        rows = passages.get(article_id, [])
        article = meta.get(article_id)
        if article is None or not rows:
            continue
        try:
            matrix = np.stack([vectors[_canonical(point_id)] for _, _, point_id in rows])
        except KeyError:
            missing.append(article_id)  # Qdrant lost points: reconcile re-embeds, match retries then
            continue
        found.append(
            StoredArticle(
                id=article_id,
                published_at=article.published_at,
                language=article.language,
                title=article.title,
                passage_idx=[idx for idx, _, _ in rows],
                passage_texts=[text for _, text, _ in rows],
                vectors=matrix.astype(np.float32),
            )
        )
    return found, missing


def _canonical(point_id: str) -> str:
    return str(uuid.UUID(point_id))


#: Ids per IN (...) list: SQLite allows 32,766 bound parameters per statement.
SQL_CHUNK = 5000


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- match --------------------------------------------------------------------------------------


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
    ctx: AppContext, start: dt.datetime, end: dt.datetime, now: dt.datetime, *, recompute: bool = False
) -> MatchReport:
    """Match articles embedded in the configured model's collection and published in ``[start, end)``.

    Each article ends with exactly one row per active seed it reaches ``suggest`` for (parents
    gating their sub-narratives) and none for the others. Without ``recompute`` articles already
    scored against the current seeds (same versions, thresholds and recipe: ``match_states``) are
    skipped; with it every article of the window is scored again and the window's rows of this
    collection are replaced. Rows of other windows and other collections are never touched.
    """
    from narrwatch.vectorize import collection_for

    if start >= end:
        raise ValueError(f"empty window: start {start.isoformat()} is not before end {end.isoformat()}")
    narratives = load_narratives(ctx.settings.narratives_dir)
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
    prepared = prepare_seeds(encoder, narratives, active, scoring_params(ctx.settings), thresholds)
    key = seeds_key(prepared, versions)
    report.seeds = len(active)
    report.versions = {seed_id: versions[seed_id].version for seed_id in active}

    in_window = and_(
        ArticleEmbedding.collection == collection,
        ArticleEmbedding.n_passages > 0,
        Article.published_at >= start,
        Article.published_at < end,
    )
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
                query = query.where(
                    ~exists().where(
                        MatchState.article_id == Article.id,
                        MatchState.collection == collection,
                        MatchState.seeds_key == key,
                    )
                )
            with ctx.transaction() as session:
                ids = claimer.claim(session, query, MATCH_BATCH)
            if not ids:
                break
            after_id = ids[-1]
            with ctx.transaction() as session:
                articles, missing = load_stored_articles(session, store, collection, ids)
            report.articles_missing_vectors += len(missing)
            decisions: list[_Decision] = []
            for article in articles:
                scores = prepared.score(article.vectors, article.passage_texts)
                for seed_id, level in prepared.decide(scores).items():
                    decisions.append(_Decision(article, seed_id, level, scores[seed_id]))
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
            # Rows of the window whose article is no longer embedded here (re-split, unmarked).
            result = session.execute(
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
            )
            report.rows_removed += int(getattr(result, "rowcount", 0) or 0)
    report.articles_up_to_date = int(total or 0) - report.articles_scored - report.articles_missing_vectors
    return report


def _match_values(
    decision: _Decision,
    collection: str,
    prepared: PreparedSeeds,
    versions: Mapping[str, NarrativeVersion],
    now: dt.datetime,
) -> dict[str, Any]:
    article, score = decision.article, decision.score
    thresholds = prepared.thresholds[decision.seed_id]
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
        elif any(getattr(row, name) != values[name] for name in _COMPARED):
            session.execute(
                update(Match)
                .where(Match.id == row.id)
                .values({name: values[name] for name in (*_COMPARED, "matched_at")})
            )
            report.rows_updated += 1
    stale = [row.id for key, row in existing.items() if key not in wanted]
    if stale:
        session.execute(delete(Match).where(Match.id.in_(stale)).execution_options(synchronize_session=False))
        report.rows_removed += len(stale)


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


# --- the report's rule --------------------------------------------------------------------------


def latest_verdict_subquery() -> Any:
    """The newest verdict on the outer query's (article, seed), in whichever collection it was given.

    A verdict is about an article and a narrative, not about a model: it still holds after the
    model (and so the collection) changes.
    """
    return (
        select(Verdict.verdict)
        .where(Verdict.article_id == Match.article_id, Verdict.narrative_id == Match.narrative_id)
        .order_by(Verdict.created_at.desc(), Verdict.id.desc())
        .limit(1)
        .correlate(Match)
        .scalar_subquery()
    )


def active_matches_query(
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collection: str | None = None,
    narrative_ids: Sequence[str] | None = None,
) -> Select[Match]:
    """Matches that belong in the report and the counts: confirmed by score or by an analyst, and
    not rejected.

    A ``confirm``-level match an analyst rejected leaves the report; a ``suggest``-level match an
    analyst confirmed enters it. The newest verdict on the article and seed decides, so verdicts
    hold across recomputed matches and across models.
    """
    verdict = func.coalesce(latest_verdict_subquery(), "")
    query = select(Match).where(or_(Match.level == "confirm", verdict == "confirm"), verdict != "reject")
    if start is not None:
        query = query.where(Match.published_at >= start)
    if end is not None:
        query = query.where(Match.published_at < end)
    if collection is not None:
        query = query.where(Match.collection == collection)
    if narrative_ids is not None:
        query = query.where(Match.narrative_id.in_(list(narrative_ids)))
    return query


# --- review and verdicts ------------------------------------------------------------------------


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
        )
        for match, title, outlet, url in rows
    ]


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
        return LabelResult(match.id, match.article_id, match.narrative_id, verdict, match.score, earlier)


# --- calibration --------------------------------------------------------------------------------


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_threshold(
    labelled: Sequence[tuple[float, bool]], target_precision: float
) -> tuple[float, float] | None:
    """Lowest score whose labelled matches at or above it reach the target precision.

    ``labelled`` holds (score, confirmed). Returns (threshold, precision there), or None when no
    threshold reaches the target.
    """
    ordered = sorted(labelled, key=lambda item: -item[0])
    best: tuple[float, float] | None = None
    confirmed = 0
    for position, (score, is_confirmed) in enumerate(ordered, start=1):
        confirmed += int(is_confirmed)
        # Only cut between distinct scores: ties go together.
        if position < len(ordered) and ordered[position][0] == score:
            continue
        precision = confirmed / position
        if precision >= target_precision:
            best = (score, precision)
    return best


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
    from narrwatch.vectorize import collection_for

    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target precision must be in (0, 1]")
    narratives = load_narratives(ctx.settings.narratives_dir)
    narratives.get(narrative_id)  # a clear KeyError for an unknown id
    encoder = ctx.encoder
    collection = collection_for(encoder)
    with ctx.transaction() as session:
        newest: dict[int, Any] = {}
        for row in session.execute(
            select(Verdict.article_id, Verdict.verdict, Verdict.score, Verdict.collection)
            .where(Verdict.narrative_id == narrative_id)
            .order_by(Verdict.created_at, Verdict.id)
        ):
            newest[row.article_id] = row  # the newest verdict per article wins
        calibrations = load_calibrations(session, collection)
        articles, _missing = load_stored_articles(session, ctx.vector_store, collection, sorted(newest))
    # A stored score is only comparable when it was made in this collection (same model).
    verdicts = [
        row
        for row in newest.values()
        if row.collection == collection or row.article_id in {a.id for a in articles}
    ]
    base = resolve_seed_thresholds(
        ctx.settings,
        encoder.model_name,
        narratives,
        {k: v for k, v in calibrations.items() if k != narrative_id},
    )
    current = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, calibrations)[
        narrative_id
    ]
    result = CalibrationResult(
        narrative_id=narrative_id,
        collection=collection,
        target_precision=target_precision,
        n_verdicts=len(verdicts),
        n_confirmed=sum(row.verdict == "confirm" for row in verdicts),
        n_rejected=sum(row.verdict == "reject" for row in verdicts),
        stored=False,
        message="",
        previous=current.as_dict(),
    )
    if len(verdicts) < min_verdicts:
        result.message = (
            f"too few verdicts: {len(verdicts)} for {narrative_id} in {collection}, need at least "
            f"{min_verdicts} (label more matches with `narrwatch label`); thresholds unchanged"
        )
        return result
    prepared = prepare_seeds(encoder, narratives, [narrative_id], scoring_params(ctx.settings), base)
    rescored = {
        article.id: prepared.score(article.vectors, article.passage_texts)[narrative_id].score
        for article in articles
    }
    labelled = [(rescored.get(row.article_id, row.score), row.verdict == "confirm") for row in verdicts]
    chosen = choose_threshold(labelled, target_precision)
    if chosen is None:
        confirm = min(1.0, max(score for score, _ in labelled) + 1e-3)
        precision = None
        result.message = (
            f"no threshold reaches precision {target_precision:.2f} on the verdicts: confirm set just "
            "above every labelled match; rework the seed (negatives, examples)"
        )
    else:
        confirm, precision = chosen
        result.message = f"confirm threshold {confirm:.3f} keeps precision {precision:.2f} on the verdicts"
    suggest = min(base[narrative_id].suggest, confirm)
    result.suggest, result.confirm = round(suggest, 6), round(confirm, 6)
    result.precision_at_confirm = precision
    result.confirmed_kept = sum(1 for score, ok in labelled if ok and score >= confirm)
    details = {
        "version_hash": narratives.content_hash(narrative_id),
        "rescored": len(rescored),
        "n_confirmed": result.n_confirmed,
        "n_rejected": result.n_rejected,
        "precision_at_confirm": precision,
        "confirmed_kept": result.confirmed_kept,
        "model_name": encoder.model_name,
    }
    with ctx.transaction() as session:
        insert = dialect_insert(session, Calibration).values(
            narrative_id=narrative_id,
            collection=collection,
            suggest=result.suggest,
            confirm=result.confirm,
            target_precision=target_precision,
            n_verdicts=len(verdicts),
            details=details,
            created_at=now,
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["narrative_id", "collection"],
                set_={
                    name: insert.excluded[name]
                    for name in (
                        "suggest",
                        "confirm",
                        "target_precision",
                        "n_verdicts",
                        "details",
                        "created_at",
                    )
                },
            )
        )
    result.stored = True
    return result


def reset_calibration(ctx: AppContext, narrative_id: str, collection: str) -> bool:
    with ctx.transaction() as session:
        result = session.execute(
            delete(Calibration).where(
                Calibration.narrative_id == narrative_id, Calibration.collection == collection
            )
        )
        return bool(getattr(result, "rowcount", 0))


# --- backtest -----------------------------------------------------------------------------------


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
    """What the seed as it is on disk (draft or not) would match among stored articles of the last ``days``.

    Candidates come from the vector store: each positive phrasing's nearest passages down to the
    lowest similarity that could still reach ``suggest`` (so no match is missed); the candidates are
    then scored exactly as ``match`` scores (negatives, keywords, the parent gating a sub-narrative)
    and compared with the matches stored for the seed in the same window.
    """
    import time

    from narrwatch.ports import SearchFilter
    from narrwatch.vectorize import collection_for

    started = time.perf_counter()
    narratives = load_narratives(ctx.settings.narratives_dir)
    narratives.get(narrative_id)
    narratives = narratives.with_status(narrative_id, "active")
    chain = [narrative_id, *narratives.ancestors(narrative_id)]
    encoder = ctx.encoder
    store = ctx.vector_store
    collection = collection_for(encoder)
    start = now - dt.timedelta(days=days)
    with ctx.transaction() as session:
        calibrations = load_calibrations(session, collection)
        oldest, newest = session.execute(
            select(func.min(Article.published_at), func.max(Article.published_at))
            .join(ArticleEmbedding)
            .where(ArticleEmbedding.collection == collection)
        ).one()
        in_window = session.scalar(
            select(func.count())
            .select_from(Article)
            .join(ArticleEmbedding)
            .where(
                ArticleEmbedding.collection == collection,
                Article.published_at >= start,
                Article.published_at < now,
            )
        )
    thresholds = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, calibrations)
    prepared = prepare_seeds(encoder, narratives, chain, scoring_params(ctx.settings), thresholds)
    seed_vectors = prepared.vectors[narrative_id]
    floor = search_floor(thresholds[narrative_id], prepared.params)
    # A filter every stored point passes is left out: Qdrant's local mode evaluates filters in
    # Python, an order of magnitude slower than the plain search.
    covers_all = oldest is not None and oldest >= start and newest < now
    flt = None if covers_all else SearchFilter(published_from=start, published_to=now)
    total_points = store.count(collection)
    notes = []
    if in_window and not total_points:
        notes.append(
            f"the vector store has no points in {collection} although SQL has embedded articles: "
            "run `narrwatch vectors reconcile` and `narrwatch embed`"
        )
    # Best rescaled similarity of each passage (point) to any one positive phrasing.
    best: dict[str, float] = {}
    for vector, background in zip(seed_vectors.positives, seed_vectors.positive_floor, strict=True):
        # Raw cosine at which this phrasing's rescaled similarity reaches the floor.
        cutoff = float(background + floor * (1.0 - background))
        # Ask for more hits until the weakest is below the cutoff (or every point was returned).
        limit = min(FIRST_SEARCH_LIMIT, max(1, total_points))
        while True:
            hits = store.search(collection, vector, limit, flt)
            for hit in hits:
                if hit.score >= cutoff:
                    rescaled = (hit.score - float(background)) / (1.0 - float(background))
                    best[hit.id] = max(best.get(hit.id, -1.0), rescaled)
            if len(hits) < limit or hits[-1].score < cutoff or limit >= total_points:
                break
            limit = min(limit * 4, total_points)
    with ctx.transaction() as session:
        bound_of: dict[int, float] = {}
        for chunk in _chunks(sorted(best), SQL_CHUNK):
            for article_id, point_id in session.execute(
                select(Passage.article_id, Passage.point_id).where(
                    Passage.collection == collection, Passage.point_id.in_(chunk)
                )
            ):
                similarity = best[_canonical(point_id)]
                bound_of[article_id] = max(bound_of.get(article_id, -1.0), similarity)
        suggest = thresholds[narrative_id].suggest
        params = prepared.params
        # Certain without the text: a bound that the rebuttal penalty cannot pull below suggest.
        certain = {a for a, similarity in bound_of.items() if similarity - params.rebuttal_weight >= suggest}
        texts: dict[int, list[str]] = defaultdict(list)
        for chunk in _chunks(sorted(set(bound_of) - certain), SQL_CHUNK):
            for article_id, text in session.execute(
                select(Passage.article_id, Passage.text)
                .where(Passage.collection == collection, Passage.article_id.in_(chunk))
                .order_by(Passage.article_id, Passage.idx)
            ):
                texts[article_id].append(text)
        keywords = seed_vectors.keywords
        candidate_ids = sorted(
            certain
            | {
                article_id
                for article_id, parts in texts.items()
                if score_upper_bound(bound_of[article_id], keywords, " ".join(parts), params)
                >= suggest - 1e-9
            }
        )
        articles: list[StoredArticle] = []
        missing: list[int] = []
        for chunk in _chunks(candidate_ids, 1000):
            found_here, missing_here = load_stored_articles(session, store, collection, chunk)
            articles.extend(found_here)
            missing.extend(missing_here)
        if missing:
            notes.append(f"{len(missing)} candidate article(s) have lost vectors and were not scored")
        info = {
            row.id: row
            for row in session.execute(
                select(Article.id, Article.title, Article.outlet, Article.url).where(
                    Article.id.in_([article.id for article in articles])
                )
            )
        }
        stored = session.execute(
            select(Match.article_id, Match.level, NarrativeVersion.version)
            .join(NarrativeVersion, NarrativeVersion.id == Match.narrative_version_id)
            .where(
                Match.narrative_id == narrative_id,
                Match.collection == collection,
                Match.published_at >= start,
                Match.published_at < now,
            )
        ).all()
    found: list[BacktestMatch] = []
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: {"suggest": 0, "confirm": 0})
    levels: dict[int, str] = {}
    for article in articles:
        scores = prepared.score(article.vectors, article.passage_texts)
        level = prepared.decide(scores).get(narrative_id)
        if level is None:
            continue
        score = scores[narrative_id]
        day = article.published_at.date().isoformat()
        per_day[day][level] += 1
        levels[article.id] = level
        meta = info[article.id]
        found.append(
            BacktestMatch(
                article_id=article.id,
                day=day,
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
    stored_levels = {row.article_id: row.level for row in stored}
    found.sort(key=lambda item: -item.score)
    return BacktestResult(
        narrative_id=narrative_id,
        collection=collection,
        window_start=start,
        window_end=now,
        thresholds=thresholds[narrative_id].as_dict(),
        articles_in_window=int(in_window or 0),
        candidates=len(candidate_ids),
        per_day=dict(sorted(per_day.items())),
        top=found[:top_n],
        stored_versions=sorted({row.version for row in stored}),
        added=sorted(set(levels) - set(stored_levels)),
        removed=sorted(set(stored_levels) - set(levels)),
        level_changed=sorted(i for i in set(levels) & set(stored_levels) if levels[i] != stored_levels[i]),
        seconds=round(time.perf_counter() - started, 3),
        notes=notes,
    )


# --- test a text --------------------------------------------------------------------------------


@dataclass
class TextSeedResult:
    narrative_id: str
    status: str
    parent: str | None
    score: float
    level: str | None
    thresholds: dict[str, float | str]
    evidence_idx: int
    evidence_text: str
    evidence_example: str
    negative_score: float
    lexical_score: float
    keyword_hits: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TextTestResult:
    model_name: str
    passages: int
    seeds: list[TextSeedResult]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "passages": self.passages,
            "seeds": [seed.as_dict() for seed in self.seeds],
            "notes": self.notes,
        }


def test_text(ctx: AppContext, text: str, *, title: str = "", include_drafts: bool = True) -> TextTestResult:
    """Every seed's score for one text, best first, with the evidence passage.

    Drafts are scored as if active (that is what an analyst tests before activating one); retired
    seeds are left out. Calibrated thresholds are used when the SQL store has them.
    """
    from embeddings.passages import split_passages
    from narrwatch.vectorize import collection_for

    narratives = load_narratives(ctx.settings.narratives_dir)
    status_on_disk = {seed.id: seed.status for seed in narratives}
    if include_drafts:
        for seed in list(narratives):
            if seed.status == "draft":
                narratives = narratives.with_status(seed.id, "active")
    encoder = ctx.encoder
    notes: list[str] = []
    calibrations: dict[str, tuple[float, float]] = {}
    try:
        with ctx.transaction() as session:
            calibrations = load_calibrations(session, collection_for(encoder))
    except Exception as exc:  # no schema yet, no server: thresholds without calibrations still work
        notes.append(
            f"calibrations not read from the SQL store ({type(exc).__name__}); using seed/model thresholds"
        )
    passages = split_passages(title, text, encoder)
    if not passages:
        raise ValueError("the text is empty")
    vectors = encoder.encode_passages(passages)
    active = [seed.id for seed in narratives.active()]
    thresholds = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, calibrations)
    prepared = prepare_seeds(encoder, narratives, active, scoring_params(ctx.settings), thresholds)
    scores = prepared.score(np.asarray(vectors, dtype=np.float32), passages)
    levels = prepared.decide(scores)
    results = [
        TextSeedResult(
            narrative_id=seed_id,
            status=status_on_disk[seed_id],
            parent=narratives.get(seed_id).parent,
            score=round(score.score, 4),
            level=levels.get(seed_id),
            thresholds=thresholds[seed_id].as_dict(),
            evidence_idx=score.evidence_idx,
            evidence_text=passages[score.evidence_idx],
            evidence_example=score.nearest_positive,
            negative_score=round(score.negative_score, 4),
            lexical_score=round(score.lexical_score, 4),
            keyword_hits=list(score.keyword_hits),
        )
        for seed_id, score in scores.items()
    ]
    results.sort(key=lambda item: -item.score)
    return TextTestResult(encoder.model_name, len(passages), results, notes)


# Pytest collects functions named test_*; this one is a use case, not a test.
test_text.__test__ = False  # type: ignore[attr-defined]
