"""Per-language calibration of seed scores: the backgrounds the match step calibrates against.

For each article language (Serbian split by script), the newest stored articles of that language
embedded in the collection (up to ``BACKGROUND_ARTICLES``, published before the window's end) are
scored against every seed; their score distribution per seed calibrates the scores of that language
(:mod:`narrwatch.domain.background`). A bundled background per language (``data/background.tsv.gz``:
200 parallel news sentences in each of the region's languages, from NTREX-128, CC BY-SA 4.0) is the
prior a language with few stored articles leans on, and its English part is the reference scale.
Backgrounds are per collection, hence per model, and follow the stored articles: every run uses the
newest ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from narrwatch.db.models import Article, ArticleEmbedding
from narrwatch.domain.background import (
    REFERENCE_LANGUAGE,
    BackgroundFigures,
    background_figures,
    bundled_key,
    language_figures,
    language_key,
    script_variants,
)
from narrwatch.domain.scoring import SeedScore
from narrwatch.domain.text import text_script
from narrwatch.embeddings.build_lock import exclusive_build
from narrwatch.files import write_atomically

if TYPE_CHECKING:
    from narrwatch.context import AppContext
    from narrwatch.domain.scoring import Array
    from narrwatch.ports import Encoder
    from narrwatch.steps.match.prepare import PreparedSeeds
    from narrwatch.steps.match.stored import StoredArticle

#: Stored articles per language that make its background (the newest ones).
BACKGROUND_ARTICLES = 400
BUNDLED_BACKGROUND = Path(__file__).with_name("data") / "background.tsv.gz"


@cache
def bundled_background_texts() -> dict[str, tuple[str, ...]]:
    """The bundled background: language key -> its sentences (aligned: row i is one sentence)."""
    with gzip.open(BUNDLED_BACKGROUND, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {language: tuple(row[language] for row in rows) for language in rows[0]}


def bundled_background_vectors(encoder: Encoder, cache_dir: Path | None) -> dict[str, Array]:
    """The bundled background encoded by ``encoder``; kept in ``cache_dir`` (per model and backend)."""
    from narrwatch.steps.match.prepare import encoder_key

    texts = bundled_background_texts()
    digest = hashlib.sha256(repr((encoder_key(encoder), sorted(texts.items()))).encode()).hexdigest()[:16]
    path = cache_dir / f"background-{digest}.npz" if cache_dir is not None else None
    if path is None:
        return _encode_background(encoder, texts)
    if not path.exists():
        with exclusive_build(path):  # a concurrent first run waits for these vectors, not encodes them too
            if not path.exists():
                buffer = io.BytesIO()
                np.savez(buffer, **_encode_background(encoder, texts))  # type: ignore[arg-type]
                write_atomically(path, buffer.getvalue())  # a reader sees nothing or the whole file
    with np.load(path) as stored:
        return {language: stored[language] for language in texts}


def _encode_background(encoder: Encoder, texts: Mapping[str, Sequence[str]]) -> dict[str, Array]:
    # In batches, unlike seed texts (encode_cached): a vector may move by 1e-6 with its batch-mates,
    # and these sentences are always encoded together in the same order, so their batches never
    # change. 1,800 sentences take 10 s here against 26 s one at a time.
    return {
        language: np.asarray(encoder.encode_passages(list(rows)), dtype=np.float32)
        for language, rows in texts.items()
    }


@dataclass
class LanguageCalibrator:
    """Per-language, per-seed background figures, worked out on first use of a language."""

    bundled: Mapping[str, Array]  # language key -> bundled sentences' vectors
    load_background: Callable[[str], list[StoredArticle]]
    figures: dict[str, dict[str, BackgroundFigures]] = field(default_factory=dict)
    priors: dict[str, dict[str, BackgroundFigures]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget every figure: the seeds' phrasings changed."""
        self.figures.clear()
        self.priors.clear()

    def _prior(self, prepared: PreparedSeeds, key: str) -> dict[str, BackgroundFigures]:
        source = bundled_key(key, list(self.bundled))
        if source not in self.priors:
            sentences = zip(self.bundled[source], bundled_background_texts()[source], strict=True)
            raw = prepared.calibration_inputs([(vector[np.newaxis, :], [text]) for vector, text in sentences])
            self.priors[source] = {seed_id: background_figures(values) for seed_id, values in raw.items()}
        return self.priors[source]

    def reference(self, prepared: PreparedSeeds) -> dict[str, BackgroundFigures]:
        return self._prior(prepared, REFERENCE_LANGUAGE)

    def for_key(self, prepared: PreparedSeeds, key: str) -> dict[str, BackgroundFigures]:
        if key not in self.figures:
            prior = self._prior(prepared, key)
            articles = self.load_background(key)
            raw = prepared.calibration_inputs(
                [(article.vectors, article.passage_texts) for article in articles]
            )
            reference = self.reference(prepared)
            self.figures[key] = {
                seed_id: language_figures(values, prior[seed_id], reference[seed_id])
                for seed_id, values in raw.items()
            }
        return self.figures[key]

    def calibrate(
        self, prepared: PreparedSeeds, scores: Mapping[str, SeedScore], language: str | None, text: str
    ) -> dict[str, SeedScore]:
        figures = self.for_key(prepared, language_key(language, text_script(text)))
        reference = self.reference(prepared)
        return {
            seed_id: replace(
                score,
                score=figures[seed_id].calibrate(score.calibration_input, reference[seed_id]),
                raw_score=score.score,
            )
            for seed_id, score in scores.items()
        }

    def raw_threshold(
        self, prepared: PreparedSeeds, seed_id: str, language: str | None, calibrated: float
    ) -> float:
        """The lowest raw score that reaches ``calibrated`` in any script of ``language``."""
        reference = self.reference(prepared)[seed_id]
        return min(
            self.for_key(prepared, key)[seed_id].raw_for(calibrated, reference)
            for key in script_variants(language)
        )


def background_loader(
    ctx: AppContext, collection: str, before: dt.datetime
) -> Callable[[str], list[StoredArticle]]:
    from narrwatch.steps.match.stored import load_stored_articles

    def load(key: str) -> list[StoredArticle]:
        language, _, script = key.partition("-")
        condition = Article.language.is_(None) if language == "und" else Article.language == language
        # Serbian articles are stored as "sr" in both scripts: read twice as many, keep one script.
        limit = BACKGROUND_ARTICLES * (2 if script else 1)
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
                    .limit(limit)
                )
            )
            articles, _missing = load_stored_articles(session, ctx.vector_store, collection, sorted(ids))
        if script:
            articles = [a for a in articles if text_script(" ".join(a.passage_texts)) == script]
        return articles[:BACKGROUND_ARTICLES]

    return load


def attach_calibration(
    ctx: AppContext,
    prepared: PreparedSeeds,
    collection: str,
    before: dt.datetime,
    load: Callable[[str], list[StoredArticle]] | None = None,
) -> None:
    """Give ``prepared`` the per-language calibration of ``collection`` (backgrounds before ``before``);
    ``load``: a reader of those backgrounds to share (default: a new :func:`background_loader`)."""
    bundled = bundled_background_vectors(ctx.encoder, ctx.settings.resolved_models_dir)
    prepared.calibrator = LanguageCalibrator(bundled, load or background_loader(ctx, collection, before))


def attach_calibration_bundled(encoder: Encoder, prepared: PreparedSeeds, cache_dir: Path | None) -> None:
    """Calibration from the bundled backgrounds alone (no SQL store to read)."""
    bundled = bundled_background_vectors(encoder, cache_dir)
    prepared.calibrator = LanguageCalibrator(bundled, lambda _key: [])
