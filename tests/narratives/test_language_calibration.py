"""Per-language, per-seed calibration, stance rules and verdict heads: pure, no I/O."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from narrwatch.domain.background import (
    MIN_SPREAD,
    BackgroundFigures,
    background_figures,
    bundled_key,
    language_figures,
    language_key,
    script_variants,
    shrink,
)
from narrwatch.domain.scoring import ScoringParams, SeedScore, Thresholds, decide
from narrwatch.domain.stance import StanceRules, article_stance
from narrwatch.domain.text import text_script
from narrwatch.domain.verdicts import LabelledPassage, examples_for, train_head
from narrwatch.steps.match.calibration import LanguageCalibrator, bundled_background_texts
from narrwatch.steps.match.stored import StoredArticle


def test_figures_are_the_median_and_the_top_percent() -> None:
    scores = np.linspace(0.0, 1.0, 1001)
    figures = background_figures(scores)
    assert figures.centre == pytest.approx(0.5)
    assert figures.spread == pytest.approx(0.49)  # 99th percentile minus median
    assert background_figures([0.3, 0.3, 0.3]).spread == MIN_SPREAD


def test_calibration_maps_onto_the_reference_and_inverts() -> None:
    reference = BackgroundFigures(centre=0.1, spread=0.2, n=200)
    figures = BackgroundFigures(centre=0.5, spread=0.05, n=100)
    assert figures.calibrate(0.5, reference) == pytest.approx(0.1)
    assert figures.calibrate(0.55, reference) == pytest.approx(0.3)  # its top percent is the reference's
    assert figures.raw_for(figures.calibrate(0.52, reference), reference) == pytest.approx(0.52)
    assert figures.calibrate(10.0, reference) == 1.0  # clipped: seed thresholds live in [-1, 1]
    assert reference.calibrate(0.23, reference) == pytest.approx(0.23)  # the reference is unchanged


def test_one_threshold_passes_the_same_share_in_two_languages() -> None:
    rng = np.random.default_rng(7)
    english = rng.normal(0.30, 0.05, 40000)  # unrelated English news against a seed
    russian = rng.gamma(4.0, 0.01, 40000) + 0.55  # the same seed against Russian news: shifted, skewed
    reference = background_figures(english[:20000])
    threshold = float(np.quantile(english, 0.995))
    rates = []
    for scores in (english, russian):
        figures = background_figures(scores[:20000])
        rates.append(np.mean([figures.calibrate(s, reference) >= threshold for s in scores[20000:]]))
    assert rates[0] > 0 and rates[1] > 0
    assert max(rates) / min(rates) < 1.5
    # Uncalibrated, the threshold that suits English passes all Russian news.
    assert np.mean(russian >= threshold) > 0.99


def test_shrinkage_leans_on_the_bundled_background_while_a_language_is_new() -> None:
    prior = BackgroundFigures(0.4, 0.1, 200)
    assert shrink(BackgroundFigures(0.0, 1.0, 0), prior) == prior
    few = shrink(BackgroundFigures(0.8, 0.05, 10), prior)
    many = shrink(BackgroundFigures(0.8, 0.05, 30000), prior)
    assert 0.4 < few.centre < 0.5 and many.centre == pytest.approx(0.8, abs=0.01)


def test_a_language_full_of_the_narrative_keeps_its_unrelated_figures() -> None:
    rng = np.random.default_rng(3)
    reference = BackgroundFigures(0.0, 0.2, 200)
    prior = BackgroundFigures(0.1, 0.2, 200)  # the bundled background of the language
    unrelated = rng.normal(0.1, 0.08, 300)
    pushed = rng.normal(0.75, 0.05, 120)  # a state outlet pushing the seed's narrative every day
    clean = language_figures(unrelated, prior, reference)
    contaminated = language_figures(np.concatenate([unrelated, pushed]), prior, reference)
    assert contaminated.centre == pytest.approx(clean.centre, abs=0.01)
    assert contaminated.spread == pytest.approx(clean.spread, rel=0.05)
    # Kept in, the pushed articles would have set the bar: the pushed ones would no longer stand out.
    naive = shrink(background_figures(np.concatenate([unrelated, pushed])), prior)
    assert naive.spread > 2 * clean.spread


def test_background_keys() -> None:
    assert language_key(None) == "und" and language_key("hr") == "hr"
    assert language_key("sr", "Cyrl") == "sr-Cyrl" and language_key("sr", "Latn") == "sr-Latn"
    assert script_variants("sr") == ["sr-Cyrl", "sr-Latn"] and script_variants("mk") == ["mk"]
    bundled = ["en", "sr-Cyrl", "sr-Latn", "bs", "ru"]
    assert bundled_key("sr-Cyrl", bundled) == "sr-Cyrl"
    assert bundled_key("sr", bundled) == "sr-Latn"  # script unknown
    assert bundled_key("cnr", bundled) == "bs" and bundled_key("uk", bundled) == "ru"
    assert bundled_key("de", bundled) == "en" and bundled_key("und", bundled) == "en"


def test_the_bundled_background_is_parallel_news_in_the_regions_languages() -> None:
    texts = bundled_background_texts()
    assert set(texts) == {"en", "sr-Cyrl", "sr-Latn", "hr", "bs", "sq", "mk", "ru", "bg"}
    assert {len(sentences) for sentences in texts.values()} == {200}
    assert text_script(texts["sr-Cyrl"][0]) == "Cyrl" and text_script(texts["sr-Latn"][0]) == "Latn"


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


class _StubSeeds:
    """Scores one seed "s": the vector score is a passage vector's first component; a passage text
    holding "KEY" earns the full keyword bonus (what score_article adds on the raw scale)."""

    def __init__(self) -> None:
        self.vectors = {"s": None}
        self.params = ScoringParams()

    def raw_scores(self, vectors: np.ndarray, texts: list[str]) -> dict[str, SeedScore]:
        vector = float(vectors[0][0])
        bonus = self.params.lexical_weight if any("KEY" in text for text in texts) else 0.0
        total = vector + bonus
        return {
            "s": SeedScore(
                "s", total, vector, 1.0 if bonus else 0.0, 0, vector, "x", -1.0, False, unclipped=total
            )
        }

    def calibration_inputs(self, articles: list[tuple[np.ndarray, list[str]]]) -> dict[str, list[float]]:
        return {"s": [self.raw_scores(vectors, texts)["s"].calibration_input for vectors, texts in articles]}


def _calibrator(rng: np.random.Generator) -> tuple[LanguageCalibrator, _StubSeeds]:
    # English cosines spread widely, Russian ones are compressed to a fifth around a higher centre.
    bundled = {"en": rng.normal(0.0, 0.10, (200, 1)), "ru": rng.normal(0.3, 0.02, (200, 1))}
    stored = {"en": rng.normal(0.0, 0.10, 400), "ru": rng.normal(0.3, 0.02, 400)}

    def load(key: str) -> list[StoredArticle]:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        return [
            StoredArticle(i, now, key, "", [0], ["news"], np.array([[v]])) for i, v in enumerate(stored[key])
        ]

    return LanguageCalibrator(bundled, load), _StubSeeds()


def test_the_raw_threshold_misses_no_article_whatever_its_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "narrwatch.steps.match.calibration.bundled_background_texts",
        lambda: {"en": ("news",) * 200, "ru": ("news",) * 200},
    )
    calibrator, seeds = _calibrator(np.random.default_rng(6))
    for language in ("en", "ru"):
        floor = calibrator.raw_threshold(seeds, "s", language, 0.28)  # type: ignore[arg-type]
        for text in ("text", "text KEY"):
            for vector in np.linspace(-0.2, 0.6, 801):
                raw = seeds.raw_scores(np.array([[vector]]), [text])
                calibrated = calibrator.calibrate(seeds, raw, language, text)["s"].score  # type: ignore[arg-type]
                if calibrated >= 0.28:
                    assert raw["s"].score >= floor - 1e-9
