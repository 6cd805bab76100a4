"""Scores calibrated against each language's unrelated news, per seed. Pure numpy.

A raw seed score (see :mod:`narrwatch.domain.scoring`) means different things in different
languages and for different seeds: a multilingual model scores unrelated Russian news higher
against an English seed than unrelated English news, and a seed about a broad topic scores
everything higher than a narrow one. The calibrated score is how many spreads an article's raw
score lies above what that language's unrelated articles score against that seed:

    calibrated = (raw - centre[seed, language]) / (SPREADS_PER_UNIT * spread[seed, language])

clipped to [-1, 1] so that thresholds keep the range seed files allow: 0.3 means three spreads
above the language's unrelated news.

``centre`` and ``spread`` come from background articles of the language (stored articles; most
stored news is unrelated to any one seed, and median-based figures keep the few related ones from
moving them). While a language has few stored articles its figures are pulled
towards a bundled cold-start background by shrinkage, so a new language starts usable and becomes
its own as articles arrive. One threshold on the calibrated score then passes about the same share
of unrelated news in every language and for every seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Smallest spread a seed may get: with near-identical background scores the ratio would explode.
MIN_SPREAD = 0.005
#: Weight of the cold-start background, in articles: a language with this many stored background
#: articles counts half its own, half the bundled figures.
PRIOR_WEIGHT = 30.0
#: Spreads per unit of calibrated score (scores stay in [-1, 1] up to ten spreads).
SPREADS_PER_UNIT = 10.0


@dataclass(frozen=True)
class BackgroundFigures:
    """Where unrelated articles of one language score against one seed."""

    centre: float
    spread: float
    n: int

    def calibrate(self, raw: float) -> float:
        return float(np.clip((raw - self.centre) / (SPREADS_PER_UNIT * self.spread), -1.0, 1.0))

    def raw_for(self, calibrated: float) -> float:
        """The raw score that calibrates to ``calibrated`` (the inverse, for vector-search floors)."""
        return self.centre + calibrated * SPREADS_PER_UNIT * self.spread


def background_figures(raw_scores: Sequence[float] | np.ndarray) -> BackgroundFigures:
    """Centre (median) and spread (1.4826 x median absolute deviation) of background scores.

    Both are robust: the few related articles in a language's background barely move them, and
    for normally distributed scores they equal the mean and the standard deviation.
    """
    scores = np.asarray(raw_scores, dtype=np.float64)
    if scores.size == 0:
        return BackgroundFigures(0.0, 1.0, 0)
    centre = float(np.median(scores))
    spread = float(1.4826 * np.median(np.abs(scores - centre)))
    return BackgroundFigures(centre, max(spread, MIN_SPREAD), int(scores.size))


def shrink(
    own: BackgroundFigures, prior: BackgroundFigures, prior_weight: float = PRIOR_WEIGHT
) -> BackgroundFigures:
    """A language's own figures pulled towards the cold-start ones, by how few articles it has."""
    if own.n == 0:
        return prior
    weight = own.n / (own.n + prior_weight)
    centre = weight * own.centre + (1.0 - weight) * prior.centre
    spread = weight * own.spread + (1.0 - weight) * prior.spread
    return BackgroundFigures(centre, max(spread, MIN_SPREAD), own.n)


def language_key(language: str | None) -> str:
    """The background a language uses: its code as stored (scripts kept apart), ``und`` when unknown."""
    return (language or "und").strip() or "und"
