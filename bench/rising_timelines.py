"""Simulated seeds for bench/rising.py: who carries a seed each day, and what the detector is told.

Each simulated seed has 150 outlets of uneven size (Gamma(0.7) weights); each outlet carries the seed
on a day with probability ``1 - exp(-rate * multiplier)``, so distinct outlets per day (what the test
counts) come from real outlet sets. Multipliers hold the weekday pattern, holidays and the rise; a
silent feed group removes its outlets. 93 days of history (the long baseline of a quiet seed) precede the
evaluated days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import poisson

from narrwatch.config import Settings
from narrwatch.domain.rising import RisingParams
from narrwatch.domain.rising_baseline import (
    Reference,
    baseline_dispersion,
    catalogue_prior,
    regular_outlets,
    subject_coverage,
    volume_exposure,
    weekday_factors,
)

#: Monday..Sunday volume relative to the weekly mean (weekends about half of weekdays).
WEEKDAY_PATTERN = np.array([1.12, 1.15, 1.14, 1.12, 1.07, 0.75, 0.65])
#: A seed whose own pattern differs from the news as a whole (a weekday-only topic).
OWN_WEEKDAY_PATTERN = np.array([1.3, 1.3, 1.3, 1.3, 1.3, 0.25, 0.25])
N_OUTLETS = 150
HISTORY = 93  # the long baseline (84 days), the guard band and the week
EVALUATED = 90
LEVELS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
RISES = (2.0, 3.0, 5.0)
DURATIONS = (1, 3, 7)
START = dt.date(2025, 1, 6)  # a Monday
DAYS = [START + dt.timedelta(days=i) for i in range(HISTORY + EVALUATED)]
WEEKDAYS = np.array([d.weekday() for d in DAYS])
DAY_NOISE = 0.1  # squared CV of day-to-day news-cycle swings
HOLIDAY_VOLUME = 0.3
SILENT_DAYS = 10
SILENT_SHARE = 0.3  # of the outlets
#: Days of stored articles scored against a seed when it is added (the recompute step's window).
RESCORED_DAYS = int(Settings.model_fields["recompute_window_days"].default)


@dataclass
class Timeline:
    """One simulated seed: who carried it each day, and what the detector is told about the days."""

    carried: np.ndarray  # days x outlets, bool
    expected: np.ndarray  # true expected distinct outlets per day (without a rise: the limit's baseline)
    volume: np.ndarray  # articles per active outlet, all subjects (for the holiday exposure)
    active: np.ndarray  # days x outlets, bool: the outlet published anything that day
    chance: np.ndarray  # days x outlets: the probability that the outlet carries the seed that day
    observed_from: dt.date | None = None
    counts: dict[dt.date, int] = field(default_factory=dict)
    outlets: dict[dt.date, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {d: int(c) for d, c in zip(DAYS, self.carried.sum(axis=1), strict=True)}
        self.outlets = {
            d: {f"o{i}" for i in np.flatnonzero(row)} for d, row in zip(DAYS, self.carried, strict=True)
        }


def outlet_rates(rng: np.random.Generator, level: float) -> np.ndarray:
    """Per-outlet rates giving ``level`` expected distinct outlets on an average day."""
    weights = rng.gamma(0.7, 1.0, N_OUTLETS)
    weights /= weights.sum()
    if level <= 0:
        return np.zeros(N_OUTLETS)
    return weights * brentq(lambda c: float(np.sum(1.0 - np.exp(-c * weights))) - level, 1e-9, 1e5)


def expected_outlets(rates: np.ndarray, multiplier: float) -> float:
    return float(np.sum(1.0 - np.exp(-rates * multiplier)))


def scale_for(rates: np.ndarray, multiplier: float, target: float) -> float:
    """Factor on the day's multiplier that makes the expected distinct outlets ``target``."""
    target = min(target, N_OUTLETS - 0.5)
    return float(brentq(lambda c: expected_outlets(rates, c * multiplier) - target, 1e-9, 1e6))


@dataclass
class Scenario:
    name: str
    level: float
    rise: float = 1.0
    duration: int = 0  # 0: flat
    own_weekdays: bool = False
    holidays: bool = False
    silent: str = ""  # "" | "random" (30% of outlets) | "carrier" (the seed's main outlets)
    day_noise: float = 0.0
    appears: bool = False  # 0 -> 3 outlets a day over a week
    #: added by an analyst on the rise's first day: only the stored days the recompute step scores
    #: against a new seed (``RESCORED_DAYS``) are its history
    new_seed: bool = False


def simulate(rng: np.random.Generator, sc: Scenario) -> tuple[Timeline, int]:
    """A timeline and the index of the rise's first day (or -1)."""
    n = len(DAYS)
    pattern = OWN_WEEKDAY_PATTERN if sc.own_weekdays else WEEKDAY_PATTERN
    base = pattern[WEEKDAYS].astype(np.float64)
    global_volume = WEEKDAY_PATTERN[WEEKDAYS] * rng.normal(1.0, 0.03, n)
    if sc.holidays:
        for day in rng.choice(np.arange(10, n - 2), size=4, replace=False):
            base[day] *= HOLIDAY_VOLUME
            global_volume[day] *= HOLIDAY_VOLUME
    if sc.day_noise > 0:
        base = base * rng.gamma(1.0 / sc.day_noise, sc.day_noise, n)
    rates = outlet_rates(rng, 3.0 if sc.appears else sc.level)
    active = np.ones((n, N_OUTLETS), dtype=bool)
    if sc.silent:
        if sc.silent == "carrier":
            order = np.argsort(-rates)
            group = order[: int(np.searchsorted(np.cumsum(rates[order]) / rates.sum(), 0.6)) + 1]
        else:
            group = rng.choice(N_OUTLETS, size=int(SILENT_SHARE * N_OUTLETS), replace=False)
        first = int(rng.integers(HISTORY - 5, HISTORY + EVALUATED - SILENT_DAYS - 20))
        active[first : first + SILENT_DAYS, group] = False
    expected = np.array([expected_outlets(rates, m) for m in base])
    multipliers = base.copy()
    start = -1
    if sc.appears:
        start = HISTORY + int(rng.integers(0, EVALUATED - 7))
        multipliers[:start] = 0.0
        multipliers[start + 7 :] = 0.0
        for k in range(7):
            day = start + k
            multipliers[day] = scale_for(rates, 1.0, 3.0 * (k + 1) / 7) * base[day]
        expected = np.zeros(n)
    elif sc.duration:
        start = HISTORY + int(rng.integers(0, EVALUATED - sc.duration + 1))
        for day in range(start, start + sc.duration):
            multipliers[day] = scale_for(rates, base[day], sc.rise * expected[day]) * base[day]
    probability = 1.0 - np.exp(-np.outer(multipliers, rates))
    carried = (rng.random((n, N_OUTLETS)) < probability) & active
    # articles per active outlet: the whole news volume does not notice a silent group
    timeline = Timeline(
        carried=carried, expected=expected, volume=global_volume, active=active, chance=probability * active
    )
    if sc.new_seed:
        timeline.observed_from = DAYS[max(0, start - RESCORED_DAYS)]
    return timeline, start


def exposure_of(timeline: Timeline, sc: Scenario) -> dict[dt.date, float]:
    """What detect_rising tells the test about each day: coverage of the seed's outlets x volume."""
    volume = volume_exposure({d: float(v) for d, v in zip(DAYS, timeline.volume, strict=True)})
    if not sc.silent:
        return volume
    history = timeline.carried[:HISTORY].sum(axis=0)
    weights = {f"o{i}": float(w) for i, w in enumerate(history) if w > 0}
    active = {d: {f"o{i}" for i in np.flatnonzero(row)} for d, row in zip(DAYS, timeline.active, strict=True)}
    coverage = subject_coverage(weights, active, DAYS, regular_outlets(active, DAYS[:HISTORY]))
    return {d: coverage[d] * volume[d] for d in DAYS}


def global_prior(rng: np.random.Generator) -> np.ndarray:
    """The weekday pattern of all stored articles, as detect_rising estimates it."""
    volume = rng.poisson(1500.0 * WEEKDAY_PATTERN[WEEKDAYS[:28]])
    return weekday_factors(volume, WEEKDAYS[:28].tolist(), None, strength=1.0)


def catalogue(rng: np.random.Generator, sc: Scenario, params: RisingParams) -> Reference:
    """The catalogue prior as detect_rising builds it: every seed's rate and dispersion (here, seeds
    at all simulated levels under the scenario's conditions)."""
    rates, dispersions, information = [], [], []
    baselines = []
    for level in LEVELS:
        for _ in range(4):
            timeline, _ = simulate(
                rng, Scenario("catalogue", level, own_weekdays=sc.own_weekdays, day_noise=sc.day_noise)
            )
            y = timeline.carried[:28].sum(axis=1)
            own, info = baseline_dispersion(
                y, WEEKDAYS[:28].tolist(), WEEKDAY_PATTERN, params.weekday_prior_strength
            )
            rates.append(float(y.mean()))
            dispersions.append(own)
            information.append(info)
            baselines.append((y.tolist(), WEEKDAYS[:28].tolist()))
    prior = catalogue_prior(
        rates,
        dispersions,
        information,
        baselines=baselines,
        weekday_prior=WEEKDAY_PATTERN,
        confidence=params.dispersion_confidence,
    )
    assert prior is not None
    return prior


def limit_critical(mu0: float, rate: float) -> int:
    """Smallest count whose upper Poisson tail under the true baseline is within ``rate``: the
    limit's critical count, for ``bench/rising.py`` and ``bench/rising_oracle.py`` alike."""
    if mu0 <= 0:
        return 1
    return int(poisson.isf(rate, mu0)) + 1
