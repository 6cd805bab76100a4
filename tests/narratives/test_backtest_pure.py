"""The pure parts of a backtest, without a store."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from narrwatch.domain.backtest import compare_levels, levels_per_day, raw_cutoff, rescale

unit = st.floats(min_value=-0.99, max_value=0.99, allow_nan=False)


@given(background=unit, floor=st.floats(min_value=-1.0, max_value=1.0, allow_nan=False))
def test_the_cutoff_is_where_the_rescaled_similarity_reaches_the_floor(
    background: float, floor: float
) -> None:
    assert abs(rescale(raw_cutoff(background, floor), background) - floor) < 1e-9


def test_compare_levels_names_what_was_added_removed_and_changed() -> None:
    diff = compare_levels(
        {1: "confirm", 2: "suggest", 4: "suggest"}, {2: "confirm", 3: "suggest", 4: "suggest"}
    )
    assert (diff.added, diff.removed, diff.level_changed) == ([1], [3], [2])


def test_levels_per_day_counts_both_levels_in_day_order() -> None:
    counted = levels_per_day(
        [("2026-11-02", "confirm"), ("2026-11-01", "suggest"), ("2026-11-02", "confirm")]
    )
    assert counted == {"2026-11-01": {"suggest": 1, "confirm": 0}, "2026-11-02": {"suggest": 0, "confirm": 2}}
