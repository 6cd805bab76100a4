"""What the match step learns from stored data: language backgrounds and analysts' verdicts.

- Backgrounds (:func:`attach_calibration`): for each article language, the newest stored articles of
  that language embedded in the collection (up to ``BACKGROUND_ARTICLES``, published before the
  window's end) are scored against every seed; their score distribution per seed calibrates the
  scores of that language (:mod:`narrwatch.domain.background`). The bundled cold-start texts
  (``BACKGROUND_TEXTS``) are the prior a language with few articles leans on. Backgrounds are per
  collection, hence per model, and follow the stored articles: every run uses the newest ones.
- Verdicts (:func:`load_verdict_passages`, :func:`apply_verdicts`): each newest verdict per
  (article, seed) in the collection becomes a labelled passage (the article's passage closest to
  the seed); they join the seeds' phrasings and, with enough of them, train a per-seed head
  (:mod:`narrwatch.domain.verdicts`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from narrwatch.db.models import Article, ArticleEmbedding, Verdict
from narrwatch.domain.background import BackgroundFigures, background_figures, language_key, shrink
from narrwatch.domain.scoring import BACKGROUND_TEXTS, SeedScore, build_seed_vectors
from narrwatch.domain.stance import article_stance
from narrwatch.domain.verdicts import LabelledPassage, SeedHead, examples_for, train_head

if TYPE_CHECKING:
    from narrwatch.context import AppContext
    from narrwatch.domain.scoring import Array
    from narrwatch.ports import Encoder
    from narrwatch.steps.match.prepare import PreparedSeeds
    from narrwatch.steps.match.stored import StoredArticle

#: Stored articles per language that make its background (the newest ones).
BACKGROUND_ARTICLES = 400


@dataclass
class LanguageCalibrator:
    """Per-language, per-seed background figures, loaded on first use of a language."""

    bundled: Array  # the cold-start texts' vectors, aligned with BACKGROUND_TEXTS
    load_background: Callable[[str], list[StoredArticle]]
    figures: dict[str, dict[str, BackgroundFigures]] = field(default_factory=dict)
    prior: dict[str, BackgroundFigures] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget every figure: the seeds' phrasings changed."""
        self.figures.clear()
        self.prior.clear()

    def for_language(self, prepared: PreparedSeeds, language: str | None) -> dict[str, BackgroundFigures]:
        key = language_key(language)
        if not self.prior:
            self.prior.update(prior_figures(prepared, self.bundled))
        if key not in self.figures:
            articles = self.load_background(key)
            raw: dict[str, list[float]] = {seed_id: [] for seed_id in prepared.vectors}
            for article in articles:
                for seed_id, score in prepared.raw_scores(article.vectors, article.passage_texts).items():
                    raw[seed_id].append(score.calibration_input)
            self.figures[key] = {
                seed_id: shrink(background_figures(values), self.prior[seed_id])
                for seed_id, values in raw.items()
            }
        return self.figures[key]


def calibrate_scores(
    scores: Mapping[str, SeedScore], figures: Mapping[str, BackgroundFigures]
) -> dict[str, SeedScore]:
    return {
        seed_id: replace(
            score, score=figures[seed_id].calibrate(score.calibration_input), raw_score=score.score
        )
        for seed_id, score in scores.items()
    }


def with_stance(scores: Mapping[str, SeedScore], text: str) -> dict[str, SeedScore]:
    stance = article_stance(text)
    hits = stance.debunk_hits + stance.reporting_hits
    return {
        seed_id: replace(score, stance=stance.label, stance_hits=hits) for seed_id, score in scores.items()
    }


def prior_figures(prepared: PreparedSeeds, background_vectors: Array) -> dict[str, BackgroundFigures]:
    """Cold start: the bundled unrelated texts, each scored as a one-passage article."""
    raw: dict[str, list[float]] = {seed_id: [] for seed_id in prepared.vectors}
    for vector, text in zip(background_vectors, BACKGROUND_TEXTS, strict=True):
        for seed_id, score in prepared.raw_scores(vector[np.newaxis, :], [text]).items():
            raw[seed_id].append(score.calibration_input)
    return {seed_id: background_figures(values) for seed_id, values in raw.items()}


def background_loader(
    ctx: AppContext, collection: str, before: dt.datetime
) -> Callable[[str], list[StoredArticle]]:
    from narrwatch.steps.match.stored import load_stored_articles

    def load(language: str) -> list[StoredArticle]:
        condition = Article.language.is_(None) if language == "und" else Article.language == language
        with ctx.transaction() as session:
            ids = list(
                session.scalars(
                    select(Article.id)
                    .join(ArticleEmbedding)
                    .where(
                        ArticleEmbedding.collection == collection,
                        ArticleEmbedding.n_passages > 0,
                        Article.published_at < before,
                        condition,
                    )
                    .order_by(Article.published_at.desc(), Article.id.desc())
                    .limit(BACKGROUND_ARTICLES)
                )
            )
            articles, _missing = load_stored_articles(session, ctx.vector_store, collection, sorted(ids))
        return articles

    return load


def attach_calibration(
    ctx: AppContext, prepared: PreparedSeeds, collection: str, before: dt.datetime
) -> None:
    """Give ``prepared`` the per-language calibration of ``collection`` (backgrounds before ``before``)."""
    from narrwatch.steps.match.prepare import encode_cached

    bundled = encode_cached(ctx.encoder, BACKGROUND_TEXTS, "passage")
    prepared.calibrator = LanguageCalibrator(bundled, background_loader(ctx, collection, before))


def attach_calibration_bundled(encoder: Encoder, prepared: PreparedSeeds) -> None:
    """Calibration from the bundled cold-start background alone (no SQL store to read)."""
    from narrwatch.steps.match.prepare import encode_cached

    bundled = encode_cached(encoder, BACKGROUND_TEXTS, "passage")
    prepared.calibrator = LanguageCalibrator(bundled, lambda _language: [])


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
        score = prepared.score(article.vectors, article.passage_texts, language=article.language)[seed_id]
        passages.append(
            LabelledPassage(
                narrative_id=seed_id,
                text=article.passage_texts[score.evidence_idx],
                vector=article.vectors[score.evidence_idx],
                score=score.score,
                confirmed=verdict == "confirm",
            )
        )
    return passages


def apply_verdicts(prepared: PreparedSeeds, verdicts: Sequence[LabelledPassage]) -> dict[str, SeedHead]:
    """Add verdict passages to the seeds' phrasings and train the heads that have enough verdicts.

    The calibration's background figures are dropped: new phrasings move the background scores too.
    """
    if not verdicts:
        return {}
    parents = prepared.parents
    for seed_id, seed in list(prepared.vectors.items()):
        extra = examples_for(seed_id, verdicts, parents, seed.positives.shape[1])
        if not len(extra.positives) and not len(extra.negatives):
            continue
        prepared.vectors[seed_id] = build_seed_vectors(
            seed_id,
            [*seed.positive_texts, *extra.positives],
            np.vstack([seed.positives, extra.positive_vectors]),
            [*seed.negative_texts, *extra.negatives],
            np.vstack([seed.negatives, extra.negative_vectors]),
            prepared.background,
            seed.keywords,
            prepared.params,
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


def learn_from_store(ctx: AppContext, prepared: PreparedSeeds, collection: str, before: dt.datetime) -> None:
    """Calibration per language, then the verdicts of ``collection``: what `match` scores with."""
    if ctx.settings.match_calibration:
        attach_calibration(ctx, prepared, collection, before)
    if not ctx.settings.match_learn_from_verdicts:
        return
    verdicts = load_verdict_passages(ctx, prepared, collection, list(prepared.vectors))
    apply_verdicts(prepared, verdicts)
    material = sorted((v.narrative_id, v.text, v.confirmed) for v in verdicts)
    prepared.learned = hashlib.sha256(repr(material).encode("utf-8")).hexdigest()[:16] if material else ""
