"""The rising test on simulated timelines: weekday baselines, overdispersion, bursts, volume gates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrwatch.domain.rising import (
    RisingParams,
    assess_rising,
    count_day,
    dispersion,
    reference_from_cross_section,
    weekday_factors,
)

START = dt.date(2025, 1, 6)  # a Monday
WEEKDAY_PATTERN = np.array([1.12, 1.15, 1.14, 1.12, 1.07, 0.75, 0.65])
PARAMS = RisingParams()


def days(n: int) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(n)]


def simulate(rng: np.random.Generator, level: float, n_days: int, burst: dict[int, float] | None = None):
    """Poisson outlet counts with the weekday pattern; ``burst`` maps day index -> rate multiplier."""
    calendar = days(n_days)
    rates = np.array([level * WEEKDAY_PATTERN[d.weekday()] for d in calendar])
    for index, factor in (burst or {}).items():
        rates[index] *= factor
    return calendar, {d: int(c) for d, c in zip(calendar, rng.poisson(rates), strict=True)}


def test_copies_count_once_per_outlet() -> None:
    records = [("a", "wire-1"), ("b", "wire-1"), ("c", "wire-1"), ("a", "wire-1"), ("a", "own-2")]
    count = count_day(records)
    assert (count.n_articles, count.n_stories, count.n_outlets) == (5, 4, 3)


def test_weekday_factors_follow_the_prior_when_data_are_sparse() -> None:
    calendar = days(28)
    sparse = [1 if i % 9 == 0 else 0 for i in range(28)]
    factors = weekday_factors(sparse, [d.weekday() for d in calendar], WEEKDAY_PATTERN, strength=10.0)
    assert np.allclose(factors / factors.mean(), WEEKDAY_PATTERN / WEEKDAY_PATTERN.mean(), atol=0.15)


def test_weekday_factors_learn_a_busy_subjects_own_pattern() -> None:
    calendar = days(28)
    own = np.array([40, 40, 40, 40, 40, 5, 5])
    counts = [own[d.weekday()] for d in calendar]
    factors = weekday_factors(counts, [d.weekday() for d in calendar], None, strength=10.0)
    assert factors[5] < 0.3 < 1.2 < factors[0]


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 50), min_size=7, max_size=40),
    strength=st.floats(0.1, 50.0),
)
def test_weekday_factors_average_one_over_the_baseline(counts: list[int], strength: float) -> None:
    weekdays = [d.weekday() for d in days(len(counts))]
    factors = weekday_factors(counts, weekdays, WEEKDAY_PATTERN, strength)
    assert np.all(factors > 0)
    assert float(factors[weekdays].mean()) == pytest.approx(1.0)


def test_dispersion_is_near_zero_for_poisson_and_positive_for_swinging_days() -> None:
    rng = np.random.default_rng(1)
    mu = np.full(2000, 10.0)
    assert dispersion(rng.poisson(mu), mu) < 0.01
    swinging = rng.poisson(mu * rng.gamma(5.0, 0.2, mu.size))  # squared CV 0.2
    assert dispersion(swinging, mu) == pytest.approx(0.2, abs=0.05)


def test_a_quiet_weekend_does_not_make_monday_rise() -> None:
    """Without weekday factors Monday's normal 12 outlets would look like a jump from the weekend."""
    calendar = days(36)
    pattern = {0: 12, 1: 12, 2: 12, 3: 12, 4: 12, 5: 3, 6: 3}
    series = {d: pattern[d.weekday()] for d in calendar}
    monday = calendar[-1]
    assert monday.weekday() == 0
    result = assess_rising(monday, series, PARAMS)
    assert result is not None and not result.flagged
    assert result.rate_ratio == pytest.approx(1.0, abs=0.15)


def test_flat_timelines_raise_at_most_one_false_flag_per_seed_per_90_days() -> None:
    rng = np.random.default_rng(7)
    prior = WEEKDAY_PATTERN / WEEKDAY_PATTERN.mean()
    flags = []
    for level in (3.0, 8.0, 20.0):
        for _ in range(8):
            calendar, series = simulate(rng, level, 28 + 90)
            flagged = 0
            for day in calendar[28:]:
                if series[day] >= PARAMS.min_outlets:
                    result = assess_rising(day, series, PARAMS, weekday_prior=prior)
                    flagged += bool(result and result.flagged)
            flags.append(flagged)
    assert np.mean(flags) <= 0.5
    assert max(flags) <= 2


def test_a_tripling_is_flagged_on_its_first_day() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(20):
        calendar, series = simulate(rng, 10.0, 28 + 10, burst={30: 3.0})  # a Wednesday
        result = assess_rising(calendar[30], series, PARAMS, weekday_prior=WEEKDAY_PATTERN)
        hits += bool(result and result.flagged)
    assert hits >= 17


def test_a_doubling_at_high_volume_is_flagged_by_its_second_day() -> None:
    rng = np.random.default_rng(12)
    hits = 0
    for _ in range(20):
        calendar, series = simulate(rng, 30.0, 28 + 10, burst={33: 2.0, 34: 2.0, 35: 2.0})
        first, second = (
            assess_rising(calendar[i], series, PARAMS, weekday_prior=WEEKDAY_PATTERN) for i in (33, 34)
        )
        hits += bool((first and first.flagged) or (second and second.flagged))
    assert hits >= 18


def test_the_two_day_window_catches_a_sustained_rise_one_day_misses() -> None:
    calendar = days(34)
    series = dict.fromkeys(calendar, 10)
    series[calendar[-2]] = 19
    series[calendar[-1]] = 19
    both = assess_rising(calendar[-1], series, PARAMS)
    today_only = assess_rising(calendar[-1], series, RisingParams(windows=(1,)))
    assert both is not None and today_only is not None
    assert both.flagged and not today_only.flagged
    assert both.decisive is not None and both.decisive.days == 2
    assert both.decisive.count == 38


def test_minimum_volume_and_ratio_gate_flags() -> None:
    calendar = days(33)
    series = dict.fromkeys(calendar, 0)
    series[calendar[-1]] = 2  # far above a zero baseline, but only two outlets
    result = assess_rising(calendar[-1], series, PARAMS)
    assert result is not None and not result.flagged and "outlets" in result.reason
    busy = dict.fromkeys(calendar, 200)
    busy[calendar[-1]] = 260  # significant at this volume, but only x1.3
    result = assess_rising(calendar[-1], busy, PARAMS)
    assert result is not None and not result.flagged and "ratio" in result.reason
    assert result.p_value < PARAMS.alpha


def test_days_before_a_subject_existed_are_not_baseline() -> None:
    calendar = days(33)
    series = {calendar[-1]: 6}
    assert assess_rising(calendar[-1], series, PARAMS, observed_from=calendar[-3]) is None
    as_zeros = assess_rising(calendar[-1], series, PARAMS)
    assert as_zeros is not None and as_zeros.flagged  # what the guard prevents


def test_a_new_cluster_is_compared_with_a_typical_story() -> None:
    reference = reference_from_cross_section([1, 1, 2, 1, 3, 1, 1, 2, 1, 1])
    assert reference is not None
    calendar = days(33)
    today = calendar[-1]
    typical = assess_rising(today, {today: 3}, PARAMS, observed_from=today, reference=reference)
    broad = assess_rising(today, {today: 12}, PARAMS, observed_from=today, reference=reference)
    assert typical is not None and not typical.flagged
    assert broad is not None and broad.flagged


def test_details_explain_the_flag() -> None:
    calendar = days(33)
    series = dict.fromkeys(calendar, 5)
    series[calendar[-1]] = 20
    result = assess_rising(calendar[-1], series, PARAMS)
    assert result is not None and result.flagged
    details = result.details()
    assert details["baseline_days"] == 28 and details["baseline_total"] == 140
    assert {"weekday_factor", "dispersion", "window_days", "windows", "rate_per_day"} <= set(details)
    assert result.rate_ratio == pytest.approx(20 / result.decisive.expected)  # type: ignore[union-attr]
