"""Pure metrics: hand-computed values and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrwatch.domain.metrics import coarse_mapper, evaluate, map_labels, sample_f1

LABELS = ["a", "b", "c", "a1"]
label_sets = st.lists(st.sets(st.sampled_from(LABELS), max_size=3), min_size=1, max_size=12)


def test_hand_computed_example() -> None:
    gold = [{"a"}, {"b"}, set(), {"a", "c"}]
    predicted = [{"a"}, {"a"}, set(), {"c"}]
    figures = evaluate(gold, predicted)
    # tp = 2 (a in 1, c in 4), predicted 3, gold 4
    assert figures.precision == pytest.approx(2 / 3)
    assert figures.recall == pytest.approx(2 / 4)
    assert figures.f1_micro == pytest.approx(2 * 2 / 7)
    # per label F1: a = 2*1/(2+2) = 0.5, b = 0, c = 1
    assert figures.f1_macro == pytest.approx((0.5 + 0 + 1) / 3)
    # per article: 1, 0, 1 (empty-empty), 2*1/(2+1)
    assert figures.f1_samples == pytest.approx((1 + 0 + 1 + 2 / 3) / 4)
    assert figures.per_label["a"].as_dict()["precision"] == 0.5


def test_predicting_nothing_scores_zero_micro_f1() -> None:
    gold = [{"a"}, set(), {"b", "c"}]
    figures = evaluate(gold, [set(), set(), set()])
    assert figures.f1_micro == 0.0 and figures.precision == 0.0 and figures.recall == 0.0
    assert figures.f1_macro == 0.0
    assert figures.f1_samples == pytest.approx(1 / 3)  # only the empty-empty article scores


@given(label_sets)
def test_perfect_prediction_scores_one(gold: list[set[str]]) -> None:
    figures = evaluate(gold, [set(row) for row in gold])
    assert figures.f1_samples == 1.0
    if any(gold):
        assert figures.precision == figures.recall == figures.f1_micro == figures.f1_macro == 1.0


@given(label_sets, st.data())
def test_figures_are_in_range_and_micro_f1_is_the_harmonic_mean(
    gold: list[set[str]], data: st.DataObject
) -> None:
    predicted = data.draw(
        st.lists(st.sets(st.sampled_from(LABELS), max_size=3), min_size=len(gold), max_size=len(gold))
    )
    figures = evaluate(gold, predicted)
    for value in (figures.precision, figures.recall, figures.f1_micro, figures.f1_macro, figures.f1_samples):
        assert 0.0 <= value <= 1.0
    p, r = figures.precision, figures.recall
    assert figures.f1_micro == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)


@given(st.sets(st.sampled_from(LABELS)), st.sets(st.sampled_from(LABELS)))
def test_sample_f1_is_symmetric(a: set[str], b: set[str]) -> None:
    assert sample_f1(a, b) == sample_f1(b, a)
    assert sample_f1(a, a) == 1.0


def test_coarse_level_maps_to_the_top_level_ancestor() -> None:
    parents = {"a": None, "a1": "a", "a1x": "a1", "b": None}
    to_top = coarse_mapper(parents)
    assert [to_top(x) for x in ("a", "a1", "a1x", "b", "unknown")] == ["a", "a", "a", "b", "unknown"]
    gold = map_labels([{"a1"}, {"b"}], to_top)
    predicted = map_labels([{"a"}, {"b"}], to_top)
    assert (
        evaluate(gold, predicted).f1_micro == 1.0
    )  # a sub-narrative confused with its parent is right at coarse
    assert evaluate([{"a1"}, {"b"}], [{"a"}, {"b"}]).f1_micro == pytest.approx(0.5)  # and wrong at fine


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        evaluate([set()], [set(), set()])
