"""Per-language, per-seed calibration, stance rules and verdict heads: pure, no I/O."""

from __future__ import annotations

import numpy as np
import pytest

from narrwatch.domain.background import (
    MIN_SPREAD,
    SPREADS_PER_UNIT,
    BackgroundFigures,
    background_figures,
    language_key,
    shrink,
)
from narrwatch.domain.scoring import SeedScore, Thresholds, decide
from narrwatch.domain.stance import StanceRules, article_stance
from narrwatch.domain.verdicts import LabelledPassage, examples_for, train_head


def test_figures_ignore_the_top_tail_of_the_background() -> None:
    unrelated = list(np.linspace(0.2, 0.4, 95))
    with_related = unrelated + [0.95] * 5  # the few related articles hiding in the background
    clean = background_figures(unrelated)
    assert background_figures(with_related).centre == pytest.approx(clean.centre, abs=0.01)
    assert background_figures(with_related).spread == pytest.approx(clean.spread, rel=0.1)


def test_calibration_maps_the_centre_to_zero_and_inverts() -> None:
    figures = BackgroundFigures(centre=0.5, spread=0.05, n=100)
    assert figures.calibrate(0.5) == 0.0
    assert figures.calibrate(0.5 + 3 * 0.05) == pytest.approx(3 / SPREADS_PER_UNIT)
    assert figures.raw_for(figures.calibrate(0.62)) == pytest.approx(0.62)
    assert figures.calibrate(10.0) == 1.0  # clipped: seed thresholds live in [-1, 1]


def test_one_threshold_passes_the_same_share_in_two_languages() -> None:
    rng = np.random.default_rng(7)
    english = rng.normal(0.30, 0.05, 40000)  # unrelated English news against a seed
    russian = rng.normal(0.62, 0.02, 40000)  # the same seed against unrelated Russian news: shifted
    threshold = 0.2
    rates = []
    for scores in (english, russian):
        figures = background_figures(scores[:20000])
        rates.append(np.mean([figures.calibrate(s) >= threshold for s in scores[20000:]]))
    assert rates[0] > 0 and rates[1] > 0
    assert max(rates) / min(rates) < 1.5
    # The raw threshold that suits English passes nearly all Russian news.
    raw = background_figures(english[:20000]).raw_for(threshold)
    assert np.mean(russian >= raw) > 0.9


def test_shrinkage_leans_on_the_cold_start_while_a_language_is_new() -> None:
    prior = BackgroundFigures(0.4, 0.1, 30)
    assert shrink(BackgroundFigures(0.0, 1.0, 0), prior) == prior
    few = shrink(BackgroundFigures(0.8, 0.05, 3), prior)
    many = shrink(BackgroundFigures(0.8, 0.05, 3000), prior)
    assert 0.4 < few.centre < 0.5 and many.centre == pytest.approx(0.8, abs=0.01)
    assert background_figures([0.3, 0.3, 0.3]).spread == MIN_SPREAD
    assert language_key(None) == "und" and language_key("sr-Cyrl") == "sr-Cyrl"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The photo is a hoax: there is no evidence the shark swam in the flooded street.", "debunking"),
        ("Фотографија је лажна и нема доказа да се то догодило.", "debunking"),
        ("The West has abandoned Serbia and only Russia stands by it.", "promoting"),
        ("Reportedly the mayor said the claim was unconfirmed.", "promoting"),
    ],
)
def test_stance_of_an_article(text: str, label: str) -> None:
    assert article_stance(text).label == label


def test_reporting_rule_when_switched_on() -> None:
    text = "Reportedly, according to unconfirmed sources, the troops left."
    assert article_stance(text, StanceRules(debunk_min=2, reporting_min=2)).label == "reporting"


def _score(value: float, stance: str = "promoting", head: float | None = None) -> SeedScore:
    return SeedScore("s", value, value, 0.0, 0, value, "x", -1.0, False, stance=stance, head_probability=head)


def test_a_debunking_article_is_never_confirmed_on_its_score() -> None:
    thresholds = Thresholds(0.2, 0.3)
    assert decide(_score(0.9), thresholds) == "confirm"
    assert decide(_score(0.9, "debunking"), thresholds) == "suggest"
    assert decide(_score(0.1), thresholds) is None


def test_a_head_takes_over_from_the_thresholds() -> None:
    thresholds = Thresholds(0.2, 0.3)
    assert decide(_score(0.9, head=0.1), thresholds) is None
    assert decide(_score(0.1, head=0.9), thresholds) == "confirm"
    assert decide(_score(0.1, head=0.3), thresholds) == "suggest"


def _passages(
    seed: str, n: int, confirmed: bool, centre: np.ndarray, rng: np.random.Generator
) -> list[LabelledPassage]:
    rows = []
    for i in range(n):
        vector = centre + rng.normal(0, 0.3, centre.shape)
        vector /= np.linalg.norm(vector)
        rows.append(
            LabelledPassage(seed, f"{seed}-{confirmed}-{i}", vector.astype(np.float32), 0.3, confirmed)
        )
    return rows


def test_head_needs_enough_verdicts_and_reports_cross_validated_precision() -> None:
    rng = np.random.default_rng(3)
    push, near_miss = np.eye(16)[0], np.eye(16)[1]
    few = _passages("s", 9, True, push, rng) + _passages("s", 20, False, near_miss, rng)
    assert train_head("s", few) is None
    enough = _passages("s", 12, True, push, rng) + _passages("s", 12, False, near_miss, rng)
    head = train_head("s", enough)
    assert head is not None and head.cv_precision is not None and head.cv_precision >= 0.9
    assert (
        head.probability(push.astype(np.float32), 0.3)
        > 0.5
        > head.probability(near_miss.astype(np.float32), 0.3)
    )
    assert "cross-validated precision" in head.describe()


def test_verdicts_feed_the_seed_and_its_parent() -> None:
    rng = np.random.default_rng(5)
    parents: dict[str, str | None] = {"parent": None, "child": "parent"}
    verdicts = _passages("child", 2, True, np.eye(8)[0], rng) + _passages(
        "child", 1, False, np.eye(8)[1], rng
    )
    child = examples_for("child", verdicts, parents, 8)
    parent = examples_for("parent", verdicts, parents, 8)
    assert len(child.positives) == 2 and len(child.negatives) == 1
    assert len(parent.positives) == 2 and len(parent.negatives) == 0  # a rejected child is not a wrong parent
    assert all(text.startswith("verdict: ") for text in child.positives)
