"""Thresholds from verdicts, without a store."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from narrwatch.domain.calibration import choose_threshold, thresholds_from_verdicts

# Thresholds are capped at 1.0, so a labelled cosine of exactly 1.0 cannot be left below "confirm":
# scores stop just short of it.
labelled_sets = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=0.99, allow_nan=False), st.booleans()),
    min_size=1,
    max_size=40,
)


@given(labelled=labelled_sets, target=st.floats(min_value=0.05, max_value=1.0))
def test_the_chosen_confirm_reaches_the_target_on_what_it_keeps(
    labelled: list[tuple[float, bool]], target: float
) -> None:
    chosen = thresholds_from_verdicts(labelled, target, base_suggest=0.5)
    kept = [ok for score, ok in labelled if score >= chosen.confirm]
    assert chosen.suggest <= chosen.confirm
    assert chosen.confirmed_kept == sum(kept)
    if chosen.precision is not None:
        assert sum(kept) / len(kept) >= target - 1e-12
    else:
        assert kept == []  # nothing reached the target: confirm sits above every labelled score


def test_the_lowest_threshold_that_reaches_the_target_is_chosen() -> None:
    labelled = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.5, False)]
    assert choose_threshold(labelled, 0.75) == (0.6, 0.75)
    chosen = thresholds_from_verdicts(labelled, 0.9, base_suggest=0.7)
    assert (chosen.confirm, chosen.suggest, chosen.confirmed_kept) == (0.8, 0.7, 2)
