"""The rising test without I/O: windows sharing the budget, gamma-Poisson baselines, exposure, runs."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import nbinom, poisson

from narrwatch.domain.rising import (
    RisingParams,
    assess_rising,
    count_day,
    flag_run,
)
from narrwatch.domain.rising_baseline import (
    Reference,
    catalogue_prior,
    dispersion,
    dispersion_information,
    pooled_dispersion,
    reference_from_cross_section,
    regular_outlets,
    subject_coverage,
    volume_exposure,
    weekday_factor_covariance,
    weekday_factors,
    weekday_prior_strength,
)
from narrwatch.domain.rising_windows import Predictive, critical_count, union_tail, window_tail

START = dt.date(2025, 1, 6)  # a Monday
HISTORY = 93  # the long baseline, the guard band and the week
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


def test_weekday_factor_covariance_matches_the_spread_of_estimated_factors() -> None:
    """Against the factors of many simulated baselines: their errors, and their cancelling over a week."""
    rng = np.random.default_rng(11)
    weekdays = [d.weekday() for d in days(84)]
    truth = WEEKDAY_PATTERN[weekdays]
    samples = rng.poisson(8.0 * truth, size=(4000, 84))
    errors = np.asarray([weekday_factors(y, weekdays, WEEKDAY_PATTERN) for y in samples])
    errors = errors / (WEEKDAY_PATTERN / WEEKDAY_PATTERN.mean()) - 1.0
    covariance = weekday_factor_covariance(8.0 * truth, weekdays, WEEKDAY_PATTERN, 10.0, 0.0)
    empirical = np.cov(errors, rowvar=False)
    assert covariance == pytest.approx(empirical, abs=0.25 * float(np.diag(empirical).max()))
    assert np.all(np.diag(covariance) > 0)
    # scaled to average 1, the factors of a whole week cannot all be off in the same direction: a
    # week's expected count (days weighted by their factors) carries none of their error
    week = WEEKDAY_PATTERN
    assert abs(float(week @ covariance @ week)) < 1e-9 < float(np.trace(covariance))


def catalogue_baselines(rng: np.random.Generator, pattern: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """Four weeks of Poisson counts for seeds at 0.5 to 16 outlets a day following ``pattern``."""
    calendar = days(28)
    weekdays = [d.weekday() for d in calendar]
    return [
        (rng.poisson(level * pattern[weekdays]).tolist(), weekdays)
        for level in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
        for _ in range(4)
    ]


def test_weekday_prior_strength_is_large_when_seeds_keep_the_prior_pattern() -> None:
    rng = np.random.default_rng(5)
    weekday_only = np.array([1.3, 1.3, 1.3, 1.3, 1.3, 0.25, 0.25])
    alike = weekday_prior_strength(catalogue_baselines(rng, WEEKDAY_PATTERN), WEEKDAY_PATTERN, 0.0, 0.8)
    own = weekday_prior_strength(catalogue_baselines(rng, weekday_only), WEEKDAY_PATTERN, 0.0, 0.8)
    assert alike is not None and own is not None
    # weekday-only topics stray from the news' rhythm by about 1 / 0.1 in relative variance
    assert own < 20 < 100 < alike
    assert weekday_prior_strength([([0, 0, 0], [0, 1, 2])], None, 0.0, 0.8) is None


def test_a_small_catalogue_keeps_the_weekday_prior_modest() -> None:
    """Four seeds say little about how far seeds stray: the bound stays wide, the strength small."""
    rng = np.random.default_rng(6)
    many = weekday_prior_strength(catalogue_baselines(rng, WEEKDAY_PATTERN), WEEKDAY_PATTERN, 0.0, 0.8)
    few = weekday_prior_strength(catalogue_baselines(rng, WEEKDAY_PATTERN)[:4], WEEKDAY_PATTERN, 0.0, 0.8)
    assert many is not None and few is not None and few < many / 3


def test_the_catalogues_weekday_strength_sets_a_quiet_subjects_factors() -> None:
    rng = np.random.default_rng(8)
    calendar, series = simulate(rng, 1.0, HISTORY)
    prior = WEEKDAY_PATTERN / WEEKDAY_PATTERN.mean()
    baselines = catalogue_baselines(rng, WEEKDAY_PATTERN)
    rates = [float(np.mean(y)) for y, _ in baselines]
    catalogue = catalogue_prior(rates, [0.0] * len(rates), baselines=baselines, weekday_prior=prior)
    assert catalogue is not None and catalogue.weekday_strength is not None
    fixed = Reference(rate=catalogue.rate, dispersion=0.0, days=catalogue.days)
    day = calendar[-1]
    pinned = assess_rising(day, series, PARAMS, weekday_prior=prior, reference=catalogue)
    own = assess_rising(day, series, PARAMS, weekday_prior=prior, reference=fixed)
    assert pinned is not None and own is not None
    expected = prior[day.weekday()] / float(np.mean(prior[[d.weekday() for d in calendar[:84]]]))
    # seeds that keep the pattern pull a quiet subject's factor most of the way back to it
    assert abs(pinned.weekday_factor - expected) < abs(own.weekday_factor - expected) / 3


def test_a_busy_subject_takes_its_weekday_factors_from_the_long_baseline() -> None:
    rng = np.random.default_rng(12)
    calendar, series = simulate(rng, 16.0, HISTORY + 1)
    today = calendar[-1]
    result = assess_rising(today, series, PARAMS, weekday_prior=WEEKDAY_PATTERN)
    long_days = PARAMS.baseline_for(today, max(PARAMS.windows), PARAMS.long_baseline_days)
    factors = weekday_factors(
        [series[d] for d in long_days], [d.weekday() for d in long_days], WEEKDAY_PATTERN, 10.0
    )
    assert result is not None and result.baseline_days == PARAMS.baseline_days  # the level: four weeks
    assert result.weekday_factor == pytest.approx(float(factors[today.weekday()]))


def test_dispersion_is_near_zero_for_poisson_and_positive_for_swinging_days() -> None:
    rng = np.random.default_rng(1)
    mu = np.full(2000, 10.0)
    assert dispersion(rng.poisson(mu), mu) < 0.01
    swinging = rng.poisson(mu * rng.gamma(5.0, 0.2, mu.size))  # squared CV 0.2
    assert dispersion(swinging, mu) == pytest.approx(0.2, abs=0.05)


def test_dispersion_information_is_the_precision_of_the_moment_estimate() -> None:
    """Over many simulated months, the estimate's spread is what ``dispersion_information`` says."""
    rng = np.random.default_rng(3)
    for level, a in ((0.5, 0.0), (4.0, 0.05), (16.0, 0.1)):
        mu = np.full(28, level)
        size = 1.0 / a if a > 0 else None
        estimates = []
        for _ in range(3000):
            y = rng.poisson(mu * rng.gamma(size, 1.0 / size, mu.size)) if size else rng.poisson(mu)
            estimates.append(dispersion(y, np.full(mu.size, y.mean()), clip=False))
        assert np.var(estimates) * dispersion_information(mu, a) == pytest.approx(1.0, abs=0.35)


@settings(max_examples=80, deadline=None)
@given(
    own=st.floats(-2.0, 2.0),
    information=st.floats(0.0, 1e5),
    prior=st.floats(0.0, 0.5),
    prior_sd=st.floats(0.01, 0.5),
    confidence=st.floats(0.5, 0.99),
)
def test_pooled_dispersion_lies_between_its_sources_and_its_bound_above_it(
    own: float, information: float, prior: float, prior_sd: float, confidence: float
) -> None:
    mean, bound = pooled_dispersion(own, information, prior, prior_sd, confidence)
    assert max(0.0, min(own, prior)) - 1e-12 <= mean <= max(own, prior, 0.0) + 1e-12
    assert bound >= mean
    more_mean, more_bound = pooled_dispersion(own, information * 4 + 1.0, prior, prior_sd, confidence)
    # more information moves the estimate towards the subject's own and narrows the bound
    assert abs(max(own, 0.0) - more_mean) <= abs(max(own, 0.0) - mean) + 1e-9
    assert more_bound - more_mean <= bound - mean + 1e-9


def test_a_quiet_subject_keeps_the_catalogues_dispersion_and_a_busy_one_learns_its_own() -> None:
    """Half an outlet a day says almost nothing about day-to-day swings; sixteen say a lot."""
    quiet = pooled_dispersion(0.6, dispersion_information(np.full(84, 0.5), 0.0), 0.0, 0.05, 0.8)
    busy = pooled_dispersion(0.15, dispersion_information(np.full(28, 16.0), 0.0), 0.0, 0.05, 0.8)
    assert quiet[0] < 0.05 < 0.12 < busy[0]


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


def flagged_within(series: dict[dt.date, int], calendar: list[dt.date], first: int, last: int) -> bool:
    prior = WEEKDAY_PATTERN / WEEKDAY_PATTERN.mean()
    for day in calendar[first : last + 1]:
        if series[day] >= 1:
            result = assess_rising(day, series, PARAMS, weekday_prior=prior)
            if result is not None and result.flagged:
                return True
    return False


def test_flat_timelines_stay_near_the_false_flag_budget() -> None:
    rng = np.random.default_rng(7)
    flags = []
    for level in (1.0, 4.0, 16.0):
        for _ in range(6):
            calendar, series = simulate(rng, level, HISTORY + 90)
            flags.append(sum(flagged_within(series, calendar, i, i) for i in range(HISTORY, HISTORY + 90)))
    # budget 0.1 per seed per 90 days; 18 seeds: more than 3 flags would be far above it
    assert sum(flags) <= 3


def test_a_tripling_over_three_days_at_four_outlets_is_caught_within_them() -> None:
    rng = np.random.default_rng(11)
    burst = {HISTORY + 2 + i: 3.0 for i in range(3)}
    hits = 0
    for _ in range(20):
        calendar, series = simulate(rng, 4.0, HISTORY + 10, burst=burst)
        hits += flagged_within(series, calendar, HISTORY + 2, HISTORY + 4)
    assert hits >= 16


def test_a_doubling_over_a_week_at_four_outlets_is_caught_within_the_week() -> None:
    rng = np.random.default_rng(12)
    burst = {HISTORY + i: 2.0 for i in range(7)}
    hits = 0
    for _ in range(20):
        calendar, series = simulate(rng, 4.0, HISTORY + 10, burst=burst)
        hits += flagged_within(series, calendar, HISTORY, HISTORY + 6)
    assert hits >= 13


def test_the_week_catches_a_sustained_rise_the_day_misses() -> None:
    calendar = days(HISTORY + 7)
    series = dict.fromkeys(calendar, 4)
    for day in calendar[-7:]:
        series[day] = 8
    windows = assess_rising(calendar[-1], series, PARAMS)
    today_only = assess_rising(calendar[-1], series, RisingParams(windows=(1,), window_weights=(1.0,)))
    assert windows is not None and today_only is not None
    assert windows.flagged and not today_only.flagged
    assert windows.decisive is not None and windows.decisive.days in (3, 7)


@settings(max_examples=60, deadline=None)
@given(
    baseline=st.lists(st.integers(0, 12), min_size=40, max_size=40),
    recent=st.lists(st.integers(0, 30), min_size=7, max_size=7),
)
def test_the_windows_share_one_budget(baseline: list[int], recent: list[int]) -> None:
    """The weighted min-p p-value lies between the best window's own p-value and the weighted
    Bonferroni bound (the best window's p-value over its share of the weights)."""
    calendar = days(47)
    series = dict(zip(calendar, baseline + recent, strict=True))
    result = assess_rising(calendar[-1], series, PARAMS)
    assert result is not None and result.decisive is not None
    for window in result.windows:  # the p-value of every window is an upper tail, in [0, 1]
        assert 0.0 <= window.p_value <= 1.0
    if result.p_value < 1.0:
        best = result.decisive.p_value
        weight = dict(zip(PARAMS.windows, PARAMS.window_weights, strict=True))[result.decisive.days]
        assert best <= result.p_value <= sum(PARAMS.window_weights) / weight * best * (1 + 1e-6)
    if result.flagged:
        assert result.p_value <= PARAMS.alpha
        assert result.decisive.distinct_outlets >= PARAMS.min_outlets and series[calendar[-1]] >= 1


def test_windows_must_nest_shortest_first() -> None:
    with pytest.raises(ValueError):
        RisingParams(windows=(7, 1, 3))


def test_windows_need_one_positive_weight_each() -> None:
    with pytest.raises(ValueError):
        RisingParams(window_weights=(2.0, 1.0))
    with pytest.raises(ValueError):
        RisingParams(window_weights=(2.0, 0.0, 1.0))


def test_a_heavier_day_spends_more_of_the_budget_on_a_one_day_spike() -> None:
    """The day's weight lowers the others' share: a spike decided by the day costs less."""
    calendar = days(HISTORY + 7)
    series = dict.fromkeys(calendar, 4)
    series[calendar[-1]] = 13
    heavy = assess_rising(calendar[-1], series, RisingParams(window_weights=(2.0, 1.0, 1.0)))
    equal = assess_rising(calendar[-1], series, RisingParams(window_weights=(1.0, 1.0, 1.0)))
    assert heavy is not None and equal is not None
    assert heavy.decisive is not None and heavy.decisive.days == 1
    assert heavy.decisive.p_value == equal.decisive.p_value  # type: ignore[union-attr]
    assert heavy.p_value < equal.p_value


@settings(max_examples=60, deadline=None)
@given(count=st.integers(0, 200), mean=st.floats(0.05, 100.0), shape=st.floats(2.0, 500.0))
def test_a_window_on_an_uncertain_rate_has_a_negative_binomial_tail(
    count: int, mean: float, shape: float
) -> None:
    """Poisson days on a Gamma rate sum to a negative binomial: the quadrature must give its tail."""
    predictive = Predictive(mu=np.full(7, mean / 7), dispersion=np.zeros(7), shape=shape)
    expected = 1.0 if count == 0 else float(nbinom.sf(count - 1, shape, shape / (shape + mean)))
    assert window_tail(predictive, 7, count) == pytest.approx(expected, rel=0.01, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    mu=st.lists(st.floats(0.2, 4.0), min_size=7, max_size=7),
    critical=st.tuples(st.integers(1, 8), st.integers(1, 14), st.integers(1, 25)),
)
def test_the_union_of_windows_is_exact_for_known_poisson_days(
    mu: list[float], critical: tuple[int, int, int]
) -> None:
    """Against brute force over the three nested blocks (the day, the two before, the four before)."""
    known = Predictive(mu=np.asarray(mu), dispersion=np.zeros(7), shape=1e9)
    day, two, four = mu[6], mu[4] + mu[5], sum(mu[:4])
    grid = np.arange(60)
    p1, p2, p4 = (poisson.pmf(grid, m) for m in (day, two, four))
    joint = p1[:, None, None] * p2[None, :, None] * p4[None, None, :]
    x1, x2, x4 = np.meshgrid(grid, grid, grid, indexing="ij")
    fired = (x1 >= critical[0]) | (x1 + x2 >= critical[1]) | (x1 + x2 + x4 >= critical[2])
    assert union_tail(known, (1, 3, 7), critical) == pytest.approx(float(joint[fired].sum()), abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(
    mean=st.floats(0.05, 400.0),
    dispersion=st.floats(0.0, 0.5),
    shape=st.floats(0.5, 5000.0),
    days=st.sampled_from([1, 3, 7]),
    level=st.floats(1e-7, 0.2),
    floor=st.integers(0, 40),
)
def test_the_critical_count_is_the_first_count_a_scan_from_the_floor_finds(
    mean: float, dispersion: float, shape: float, days: int, level: float, floor: int
) -> None:
    """Bisection against the plain scan it replaced: every count from the floor up, the first whose
    tail is within the level."""
    predictive = Predictive(mu=np.full(7, mean / 7), dispersion=np.full(7, dispersion), shape=shape)
    scanned = next(c for c in itertools.count(floor) if window_tail(predictive, days, c) <= level)
    assert critical_count(predictive, days, level, floor) == scanned


def test_the_critical_count_is_the_least_within_the_level() -> None:
    predictive = Predictive(mu=np.full(7, 2.0), dispersion=np.full(7, 0.05), shape=200.0)
    c = critical_count(predictive, 3, 0.001, floor=3)
    assert window_tail(predictive, 3, c) <= 0.001 < window_tail(predictive, 3, c - 1)


def test_evidence_is_counted_in_distinct_outlets() -> None:
    calendar = days(HISTORY + 1)
    series = dict.fromkeys(calendar, 0)
    today = calendar[-1]
    series[today] = 2
    series[calendar[-2]] = 2
    series[calendar[-3]] = 2
    same_two = {d: {"a", "b"} for d in calendar[-3:]}
    three = {calendar[-3]: {"a", "b"}, calendar[-2]: {"a", "c"}, today: {"a", "b"}}
    not_enough = assess_rising(today, series, PARAMS, outlets=same_two)
    enough = assess_rising(today, series, PARAMS, outlets=three)
    assert not_enough is not None and not not_enough.flagged and "distinct outlets" in not_enough.reason
    assert enough is not None and enough.flagged


def test_zero_days_are_evidence_of_a_low_rate() -> None:
    calendar = days(HISTORY + 1)
    series = dict.fromkeys(calendar, 0)
    series[calendar[-1]] = 4
    result = assess_rising(calendar[-1], series, PARAMS)
    assert result is not None and result.flagged and result.baseline_days == PARAMS.long_baseline_days


def test_a_new_seed_is_tested_against_the_catalogue_only_when_it_stands_out() -> None:
    calendar = days(HISTORY + 1)
    today = calendar[-1]
    prior = Reference(rate=3.0, dispersion=0.05, days=2.0)
    assert assess_rising(today, {today: 4}, PARAMS, observed_from=today) is None  # no baseline, no prior
    typical = assess_rising(today, {today: 4}, PARAMS, observed_from=today, reference=prior)
    broad = assess_rising(today, {today: 40}, PARAMS, observed_from=today, reference=prior)
    assert typical is not None and not typical.flagged
    assert broad is not None and broad.flagged


def test_catalogue_prior_is_weak_when_seeds_differ_and_strong_when_they_agree() -> None:
    varied = catalogue_prior([0.5, 1, 2, 4, 8, 16], [0.0] * 6)
    alike = catalogue_prior([3.9, 4.0, 4.1, 4.0], [0.1, 0.2, 0.1, 0.1])
    assert varied is not None and alike is not None
    assert varied.days < 1 < alike.days
    assert alike.rate == pytest.approx(4.0) and alike.dispersion == pytest.approx(0.1)


def test_a_silent_feed_group_is_not_a_fall_and_its_return_not_a_rise() -> None:
    calendar = days(HISTORY + 30)
    series = dict.fromkeys(calendar, 4)
    silent = calendar[HISTORY - 40 : HISTORY + 20]
    for day in silent:
        series[day] = 0
    exposure = dict.fromkeys(silent, 0.0)
    back = calendar[HISTORY + 22]
    told = assess_rising(back, series, PARAMS, exposure=exposure)
    not_told = assess_rising(back, series, PARAMS)
    assert told is not None and not told.flagged
    assert told.rate_per_day == pytest.approx(4.0, rel=0.15)  # the outage left out of the baseline
    assert not_told is not None and not_told.rate_per_day < 2.0  # what the exposure prevents


def test_coverage_counts_only_regular_outlets_as_silent() -> None:
    calendar = days(10)
    active = {d: {"big", "small"} if i % 5 == 0 else {"big"} for i, d in enumerate(calendar)}
    active[calendar[-1]] = {"small"}
    regular = regular_outlets(active, calendar[:-1])
    assert regular == {"big"}
    coverage = subject_coverage({"big": 3.0, "small": 1.0}, active, calendar, regular)
    assert coverage[calendar[1]] == 1.0  # "small" publishes rarely: its absence is not an outage
    assert coverage[calendar[-1]] == pytest.approx(0.25)


def test_a_holiday_lowers_the_days_volume_exposure() -> None:
    calendar = days(28)
    per_outlet = {d: 10.0 * WEEKDAY_PATTERN[d.weekday()] for d in calendar}
    per_outlet[calendar[9]] *= 0.3
    exposure = volume_exposure(per_outlet)
    assert exposure[calendar[9]] == pytest.approx(0.3)
    assert exposure[calendar[2]] == pytest.approx(1.0)


@settings(max_examples=80, deadline=None)
@given(offsets=st.sets(st.integers(1, 40), max_size=15), gap=st.integers(1, 10))
def test_flag_runs_say_new_or_continuing(offsets: set[int], gap: int) -> None:
    today = dt.date(2025, 6, 1)
    earlier = [today - dt.timedelta(days=o) for o in offsets]
    run = flag_run(today, earlier, gap)
    assert run.new == (not any(o <= gap for o in offsets))
    assert run.run_day == (today - run.run_start).days + 1 >= 1
    assert run.run_start == today or run.run_start in earlier


def test_consecutive_flags_count_the_days_of_the_run() -> None:
    today = dt.date(2025, 6, 10)
    earlier = [today - dt.timedelta(days=i) for i in (1, 2, 20)]
    run = flag_run(today, earlier, 7)
    assert not run.new and run.run_day == 3


def test_minimum_ratio_gates_a_busy_subject() -> None:
    calendar = days(HISTORY + 1)
    busy = dict.fromkeys(calendar, 200)
    busy[calendar[-1]] = 260  # significant at this volume, but only x1.3
    result = assess_rising(calendar[-1], busy, PARAMS)
    assert result is not None and not result.flagged and "ratio" in result.reason


def test_days_before_a_subject_existed_are_not_baseline() -> None:
    calendar = days(HISTORY + 1)
    series = {calendar[-1]: 6}
    assert assess_rising(calendar[-1], series, PARAMS, observed_from=calendar[-3]) is None
    as_zeros = assess_rising(calendar[-1], series, PARAMS)
    assert as_zeros is not None and as_zeros.flagged  # what the guard prevents


def test_a_new_cluster_is_compared_with_a_typical_story() -> None:
    reference = reference_from_cross_section([1, 1, 2, 1, 3, 1, 1, 2, 1, 1])
    assert reference is not None
    today = days(33)[-1]
    typical = assess_rising(today, {today: 3}, PARAMS, observed_from=today, reference=reference)
    broad = assess_rising(today, {today: 12}, PARAMS, observed_from=today, reference=reference)
    assert typical is not None and not typical.flagged
    assert broad is not None and broad.flagged


def test_details_explain_the_flag() -> None:
    calendar = days(HISTORY + 1)
    series = dict.fromkeys(calendar, 5)
    series[calendar[-1]] = 20
    result = assess_rising(calendar[-1], series, PARAMS)
    assert result is not None and result.flagged
    details = result.details()
    assert details["baseline_days"] == 28 and details["baseline_total"] == 140
    assert {"weekday_factor", "dispersion", "window_days", "windows", "rate_per_day"} <= set(details)
    assert result.rate_ratio == pytest.approx(20 / result.decisive.expected)  # type: ignore[union-attr]
