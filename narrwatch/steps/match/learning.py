"""What the match step learns from stored data: language backgrounds and analysts' verdicts.

- Backgrounds: per-language calibration (:mod:`narrwatch.steps.match.calibration`).
- Verdicts (:func:`load_verdict_passages`, :func:`apply_verdicts`): each newest verdict per
  (article, seed) in the collection becomes a labelled passage (the article's passage closest to
  the seed); they join the seeds' phrasings and, with enough of them, train a per-seed head and
  the collection's stream head (:mod:`narrwatch.domain.verdicts`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from narrwatch.db.models import Verdict
from narrwatch.domain.background import language_key
from narrwatch.domain.scoring import Array, SeedScore, build_seed_vectors, stream_floor
from narrwatch.domain.stance import article_stance
from narrwatch.domain.text import text_script
from narrwatch.domain.verdicts import (
    LabelledPassage,
    SeedHead,
    StreamHead,
    decision_features,
    examples_for,
    train_head,
    train_stream_head,
)

if TYPE_CHECKING:
    from narrwatch.context import AppContext
    from narrwatch.steps.match.prepare import PreparedSeeds
    from narrwatch.steps.match.stored import StoredArticle


def with_stance(scores: Mapping[str, SeedScore], text: str) -> dict[str, SeedScore]:
    stance = article_stance(text)
    hits = stance.debunk_hits + stance.reporting_hits
    return {
        seed_id: replace(score, stance=stance.label, stance_hits=hits) for seed_id, score in scores.items()
    }


def stream_say(head: StreamHead, scores: Mapping[str, SeedScore], passages: Array) -> dict[str, SeedScore]:
    """The stream head's probability for every seed of the row that has no head of its own."""
    seeds = [seed_id for seed_id, score in scores.items() if score.head_probability is None]
    if not seeds:
        return dict(scores)
    features = np.stack(
        [
            decision_features(scores[seed_id], scores, passages[scores[seed_id].evidence_idx], len(passages))
            for seed_id in seeds
        ]
    )
    said = dict(scores)
    for seed_id, probability in zip(seeds, head.probabilities(features), strict=True):
        said[seed_id] = replace(scores[seed_id], stream_probability=float(probability), stream_cut=head.cut)
    return said


# --- verdicts -----------------------------------------------------------------------------------


def load_verdict_passages(
    ctx: AppContext, prepared: PreparedSeeds, collection: str, seed_ids: Sequence[str]
) -> list[LabelledPassage]:
    """The newest verdict per (article, seed) of this collection, as labelled passages.

    The passage is the article's passage closest to the seed as it is now (verdicts outlive
    re-splitting and seed edits); its score is the seed's calibrated score for the article.
    """
    from narrwatch.steps.match.stored import load_stored_articles

    wanted = set(seed_ids)
    with ctx.transaction() as session:
        newest: dict[tuple[int, str], str] = {}
        for row in session.execute(
            select(Verdict.article_id, Verdict.narrative_id, Verdict.verdict)
            .where(Verdict.collection == collection)
            .order_by(Verdict.created_at, Verdict.id)
        ):
            if row.narrative_id in wanted:
                newest[(row.article_id, row.narrative_id)] = row.verdict
        articles, _missing = load_stored_articles(
            session, ctx.vector_store, collection, sorted({article_id for article_id, _ in newest})
        )
    by_id = {article.id: article for article in articles}
    passages: list[LabelledPassage] = []
    for (article_id, seed_id), verdict in sorted(newest.items()):
        article = by_id.get(article_id)
        if article is None:
            continue
        scores = prepared.score(article.vectors, article.passage_texts, language=article.language)
        key = language_key(article.language, text_script(" ".join(article.passage_texts)))
        passages.append(
            labelled_passage(
                seed_id, scores, article.vectors, article.passage_texts, verdict == "confirm", key
            )
        )
    return passages


def labelled_passage(
    seed_id: str,
    row: Mapping[str, SeedScore],
    vectors: Array,
    texts: Sequence[str],
    confirmed: bool,
    stream_key: str | None,
) -> LabelledPassage:
    """A verdict on ``seed_id`` for an article scored ``row``: its evidence passage and features."""
    score = row[seed_id]
    vector = vectors[score.evidence_idx]
    return LabelledPassage(
        narrative_id=seed_id,
        text=texts[score.evidence_idx],
        vector=vector,
        score=score.score,
        confirmed=confirmed,
        stream_key=stream_key,
        features=decision_features(score, row, vector, len(vectors)),
    )


def apply_verdicts(
    prepared: PreparedSeeds,
    verdicts: Sequence[LabelledPassage],
    streams: Mapping[str, Array] | None = None,
) -> dict[str, SeedHead]:
    """Add verdict passages to the seeds' phrasings and train the heads that have enough verdicts:
    the per-seed heads (returned) and the collection's stream head (``prepared.stream_head``).

    ``streams``: stored passage vectors per language key. A verdict passage is written the way its
    outlets write everything, so it can sit close to the whole stream (a tweet to every tweet, a
    state agency's boilerplate to all its copy); against the bundled news sentences alone its floor
    would be too low and every article of that stream would rise with it. Its floor is therefore
    the higher of the bundled one and the same quantile read off its own language's stream.
    The calibration's background figures are dropped: new phrasings move the background scores too.
    """
    prepared.stream_head = train_stream_head(verdicts)
    if not verdicts:
        return {}
    parents = prepared.parents
    for seed_id, seed in list(prepared.vectors.items()):
        extra = examples_for(seed_id, verdicts, parents, seed.positives.shape[1])
        if not len(extra.positives) and not len(extra.negatives):
            continue
        built = build_seed_vectors(
            seed_id,
            [*seed.positive_texts, *extra.positives],
            np.vstack([seed.positives, extra.positive_vectors]),
            [*seed.negative_texts, *extra.negatives],
            np.vstack([seed.negatives, extra.negative_vectors]),
            prepared.background,
            seed.keywords,
            prepared.params,
        )
        prepared.vectors[seed_id] = replace(
            built,
            positive_floor=_raised(
                built.positive_floor,
                len(seed.positive_texts),
                _stream_floors(prepared, extra.positive_vectors, extra.positive_keys, streams),
            ),
            negative_floor=_raised(
                built.negative_floor,
                len(seed.negative_texts),
                _stream_floors(prepared, extra.negative_vectors, extra.negative_keys, streams),
            ),
        )
    if prepared.calibrator is not None:
        prepared.calibrator.reset()
    heads = {}
    for seed_id in prepared.vectors:
        head = train_head(seed_id, verdicts)
        if head is not None:
            heads[seed_id] = head
    prepared.heads = heads
    return heads


def _stream_floors(
    prepared: PreparedSeeds,
    vectors: Array,
    keys: Sequence[str | None],
    streams: Mapping[str, Array] | None,
) -> Array:
    floors = np.zeros(len(vectors), dtype=np.float32)
    for key, stream in (streams or {}).items():
        rows = [row for row, row_key in enumerate(keys) if row_key == key]
        if rows:
            floors[rows] = stream_floor(
                vectors[rows], stream, len(prepared.background), prepared.params.background_top_n
            )
    return floors


def _raised(floor: Array, own: int, stream_floors: Array) -> Array:
    """The seed's own phrasings keep their floors; verdict rows take the higher of the two."""
    return np.concatenate([floor[:own], np.maximum(floor[own:], stream_floors)]).astype(np.float32)


def stream_passages(
    load: Callable[[str], list[StoredArticle]], keys: Iterable[str | None]
) -> dict[str, Array]:
    """Stored passage vectors per language key, for the verdict passages' floors."""
    streams: dict[str, Array] = {}
    for key in sorted({key for key in keys if key}):
        vectors = [article.vectors for article in load(key) if len(article.vectors)]
        if vectors:
            streams[key] = np.vstack(vectors).astype(np.float32)
    return streams


def learn_from_store(ctx: AppContext, prepared: PreparedSeeds, collection: str, before: dt.datetime) -> None:
    """Calibration per language, then the verdicts of ``collection``: what `match` scores with."""
    from narrwatch.steps.match.calibration import attach_calibration, background_loader

    # one read of each language's stored articles serves the calibration and the verdict floors
    load = cache(background_loader(ctx, collection, before))
    if ctx.settings.match_calibration:
        attach_calibration(ctx, prepared, collection, before, load)
    if not ctx.settings.match_learn_from_verdicts:
        return
    verdicts = load_verdict_passages(ctx, prepared, collection, list(prepared.vectors))
    apply_verdicts(prepared, verdicts, stream_passages(load, (v.stream_key for v in verdicts)))
    material = sorted((v.narrative_id, v.text, v.confirmed) for v in verdicts)
    prepared.learned = hashlib.sha256(repr(material).encode("utf-8")).hexdigest()[:16] if material else ""
