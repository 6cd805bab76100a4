"""Scores calibrated against each language's unrelated news, per seed. Pure numpy.

A raw seed score (see :mod:`narrwatch.domain.scoring`) means different things in different
languages: against an English seed a multilingual model scores unrelated Serbian Cyrillic news
higher than unrelated Russian news, so one raw threshold passes several times more unrelated articles
in one language than in another (bench/match_languages.py measures it on parallel news).

Calibration maps each language's scores onto one reference scale, per seed: where the language's
unrelated news sits (``centre``, the median) and how far its top tail reaches (``spread``, the 99th
percentile minus the median) are mapped onto the same two figures of the reference background
(English news, bundled):

    calibrated = ref.centre + (raw - centre[seed, language]) * ref.spread / spread[seed, language]

so a calibrated score reads as "the English score that is as far above English unrelated news", and
one seed threshold passes about the same share of unrelated news in every language. The spread is
taken at the 99th percentile because thresholds live in the top percent of unrelated news: a
bulk measure (the median absolute deviation) matched languages' middles and missed their tails.

``centre`` and ``spread`` come from background articles of the language (the newest stored ones,
leaving out those that already look related to the seed, :data:`RELATED_ABOVE`). While a language
has few stored articles its figures lean on a bundled background of the same language by shrinkage,
so a new language starts calibrated and becomes its own as articles arrive.
Serbian is two backgrounds, one per script (:func:`language_key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Smallest spread a seed may get: with near-identical background scores the ratio would explode.
MIN_SPREAD = 0.005
#: Weight of the bundled background, in articles: a language with this many stored background
#: articles counts half its own figures, half the bundled ones.
PRIOR_WEIGHT = 100.0
#: Where the spread is read: thresholds pass about the top percent of unrelated news.
TAIL_QUANTILE = 0.99
#: Languages with no bundled background borrow the nearest one that is bundled.
BORROWED_BACKGROUND = {"sr": "sr-Latn", "cnr": "bs", "me": "bs", "hbs": "hr", "uk": "ru", "be": "ru"}
#: The reference scale: calibrated scores read as scores of English news.
REFERENCE_LANGUAGE = "en"
#: A stored article whose score, calibrated by the bundled background alone, reaches this is taken
#: to be about the seed and left out of the seed's background: in a language where state outlets
#: push a narrative daily, its own articles would otherwise set the bar it is measured against. Set
#: above the default confirm thresholds so that unrelated news loses only its far tail.
RELATED_ABOVE = 0.40


@dataclass(frozen=True)
class BackgroundFigures:
    """Where unrelated articles of one language score against one seed."""

    centre: float
    spread: float
    n: int

    def calibrate(self, raw: float, reference: BackgroundFigures) -> float:
        """``raw`` on the reference scale, clipped to the [-1, 1] that seed thresholds allow."""
        mapped = reference.centre + (raw - self.centre) * reference.spread / self.spread
        return float(np.clip(mapped, -1.0, 1.0))

    def raw_for(self, calibrated: float, reference: BackgroundFigures) -> float:
        """The raw score that calibrates to ``calibrated`` (the inverse, for vector-search floors)."""
        return self.centre + (calibrated - reference.centre) * self.spread / reference.spread


def background_figures(raw_scores: Sequence[float] | np.ndarray) -> BackgroundFigures:
    """Centre (median) and tail spread (99th percentile minus median) of background scores."""
    scores = np.asarray(raw_scores, dtype=np.float64)
    if scores.size == 0:
        return BackgroundFigures(0.0, 1.0, 0)
    centre = float(np.median(scores))
    spread = float(np.quantile(scores, TAIL_QUANTILE)) - centre
    return BackgroundFigures(centre, max(spread, MIN_SPREAD), int(scores.size))


def shrink(
    own: BackgroundFigures, prior: BackgroundFigures, prior_weight: float = PRIOR_WEIGHT
) -> BackgroundFigures:
    """A language's own figures pulled towards the bundled ones, by how few articles it has."""
    if own.n == 0:
        return prior
    weight = own.n / (own.n + prior_weight)
    centre = weight * own.centre + (1.0 - weight) * prior.centre
    spread = weight * own.spread + (1.0 - weight) * prior.spread
    return BackgroundFigures(centre, max(spread, MIN_SPREAD), own.n)


def language_figures(
    raw_scores: Sequence[float] | np.ndarray, prior: BackgroundFigures, reference: BackgroundFigures
) -> BackgroundFigures:
    """A language's figures for one seed from its stored articles' raw scores: those that already look
    related (:data:`RELATED_ABOVE` under the bundled ``prior``) left out, the rest shrunk to ``prior``."""
    related = prior.raw_for(RELATED_ABOVE, reference)
    scores = np.asarray(raw_scores, dtype=np.float64)
    return shrink(background_figures(scores[scores < related]), prior)


def language_key(language: str | None, script: str | None = None) -> str:
    """The background a language uses: its stored code, Serbian split by script, ``und`` if unknown."""
    code = (language or "und").strip() or "und"
    if code == "sr" and script in ("Cyrl", "Latn"):
        return f"sr-{script}"
    return code


def script_variants(language: str | None) -> list[str]:
    """Every background key articles stored under ``language`` can use (Serbian: both scripts)."""
    key = language_key(language)
    return ["sr-Cyrl", "sr-Latn"] if key == "sr" else [key]


def bundled_key(key: str, bundled: Sequence[str]) -> str:
    """The bundled background a key leans on: its own, a borrowed neighbour's, or the reference."""
    if key in bundled:
        return key
    borrowed = BORROWED_BACKGROUND.get(key.split("-")[0], REFERENCE_LANGUAGE)
    return borrowed if borrowed in bundled else REFERENCE_LANGUAGE
