"""Is a subject (seed or cluster) rising today? Three windows sharing one false-flag budget.

Pure: numpy and scipy only. The caller hands in one subject's daily counts (and, optionally, the
outlets behind them and each day's exposure); nothing here knows where they come from.

The counted quantity is **distinct outlets per day** (outlet-days). A story that one outlet publishes
five times, or that twenty portals copy from one wire, says less about a narrative spreading than
the number of independent outlets carrying it.

Regional narratives live at one to five outlets a day, so the test is built for small counts:

1. *Windows.* The day, the last 3 days and the last 7 days are each compared with one baseline (the
   ``baseline_days`` before the week, less a guard band of ``guard_days`` so that a rise already
   under way does not enter its own baseline). A doubling is invisible in one day at 4 outlets but
   plain over a week; a tripling shows on its first day. The windows share one false-flag budget
   ``alpha`` (per subject and day) through a weighted min-p statistic: the smallest window p-value
   divided by its window's weight (``window_weights``) is judged by the chance that *some* window
   reaches that much under the baseline, computed exactly over the nested windows
   (``narrwatch/domain/rising_windows.py``). Bonferroni shares would pay twice for the windows'
   overlap and waste what discrete tails leave unspent. The day weighs double: a one-day rise shows
   in no other window, while a longer one reaches the 3 days and the week on several days.
2. *Exposure.* A day's expected count is scaled by its exposure: the share of the subject's usual
   outlets that published anything that day (a feed group that went silent lowers it) times the
   day's volume per active outlet against its weekday's median (a holiday lowers it). Days with
   exposure below ``low_exposure`` are left out of the baseline, so an outage or a holiday neither
   drags the baseline down (which would make the return look like a rise) nor reads as a fall.
3. *Weekday factors.* A subject's factor for weekday w is its own share of that weekday shrunk
   towards the weekday pattern of all stored articles: ``f_w = (S_w + k p_w) / (m n_w + k)``,
   over the long baseline (``long_baseline_days``) even for a busy subject whose level comes from
   four weeks: a weekly rhythm drifts less than a level, and four days of a weekday leave its
   factor uncertain by a tenth at 8 outlets a day. The factors' remaining errors add to the days'
   noise; scaled to average 1, they cancel over a whole week, so a window adds their covariance.
   ``k`` comes from how far the catalogue's seeds stray from the pattern (empirical Bayes): where
   seeds keep the news' weekly rhythm, a quiet seed's factors are the pattern's, not its own noise.
4. *Rate, gamma-Poisson.* The rate per unit of exposure has a Gamma prior worth ``prior.days``
   pseudo-days at the catalogue's rate (every active seed's mean; for clusters a typical story's
   outlets per day); without a prior, Jeffreys' ``shape 1/2``. The posterior after the baseline is
   ``Gamma(shape0 + S, days0 + E)`` with ``S`` the baseline's outlet-days and ``E`` its weekday- and
   exposure-weighted days. Days of zero are evidence of a low rate, not missing data; a new seed
   with no baseline at all is tested against the prior alone, whose wide predictive keeps it quiet
   until it stands out.
5. *Overdispersion.* ``var = mu + a mu^2`` with ``a`` estimated from the long baseline's
   residuals by moments and pooled with the catalogue's ``a`` (``prior.dispersion``, spread
   ``dispersion_prior_sd``) by precision: the estimate's precision grows with the square of the
   level, so a busy seed's own swings count and a quiet seed's noisy few days barely move it. The
   test uses the pooled estimate's upper bound at ``dispersion_confidence``.
6. *Test.* Each window's count is compared with its predictive distribution: given the rate, days
   are negative binomials of mean ``mu_d``; the rate is the estimate times a Gamma variable of
   shape ``shape / (1 + a m)`` (the uncertainty of the estimated rate, widened by the day noise of
   the baseline's ``m`` outlets a day). A window's p-value is its exact upper tail
   ``P(X >= count)``; the statistic is the rate ratio ``count / M``.

A flag needs (the minimum evidence rule): at least one outlet today, at least ``min_outlets``
distinct outlets in the window that fired, its rate ratio at least ``min_ratio``, and the weighted
min-p statistic's p-value within ``alpha``. The budget is spent on windows that can fire: a
window's critical count is never below ``min_outlets`` or ``min_ratio`` times its expected count.

Steps 2 to 5 (exposure, weekday factors, the prior, the dispersion) live in
``narrwatch/domain/rising_baseline.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from narrwatch.domain.rising_baseline import (
    FloatArray,
    Reference,
    dispersion,
    dispersion_information,
    pooled_dispersion,
    weekday_factor_covariance,
    weekday_factors,
    weekday_parameters,
)
from narrwatch.domain.rising_windows import Predictive, critical_count, union_tail, window_tail

STATISTIC_NAME = "nb_rate_ratio"


@dataclass(frozen=True)
class RisingParams:
    baseline_days: int = 28
    #: A quiet subject (fewer than ``min_baseline_total`` outlet-days in ``baseline_days``) takes its
    #: baseline from up to ``long_baseline_days``: at one outlet a day, four weeks leave the rate
    #: uncertain by a quarter, and that uncertainty costs more power than an older baseline does.
    #: Every subject's weekday factors and dispersion come from these days.
    long_baseline_days: int = 84
    min_baseline_total: int = 120
    #: Distinct outlets in the window that fired: one outlet's campaign is not a rising narrative.
    min_outlets: int = 3
    #: False flags per subject and day, shared between the windows: 0.0011 is 0.1 per 90 days.
    alpha: float = 0.0011
    min_ratio: float = 1.5
    #: Test windows in days ending today (nested, shortest first); they share ``alpha``.
    windows: tuple[int, ...] = (1, 3, 7)
    #: The windows' weights in sharing ``alpha`` (one per window): the statistic is the smallest
    #: ``p / weight``. The day weighs double: a one-day rise has no other window to show in, while a
    #: longer one reaches the 3 days and the week on several days and needs less of the budget.
    window_weights: tuple[float, ...] = (2.0, 1.0, 1.0)
    #: Fewer usable baseline days than this and a subject without a prior is not tested.
    min_baseline_days: int = 7
    #: Days left out between the baseline and the tested window (as in the CDC's EARS C2 method).
    guard_days: int = 2
    #: Pseudo-counts pulling a subject's weekday factors towards the prior pattern, unless the
    #: subject's prior (the catalogue) measured how far seeds stray from it.
    weekday_prior_strength: float = 10.0
    #: Spread of seeds' true dispersions about the catalogue's: a subject's own estimate moves its
    #: ``a`` by as much as its days pin it down (a busy seed's month far more than a quiet one's).
    dispersion_prior_sd: float = 0.05
    #: One-sided confidence of the upper bound of ``a`` the test uses (its estimate is uncertain,
    #: and a low plug-in value turns ordinary days into flags), and of the catalogue's bound on how
    #: far seeds' weekday factors stray from the prior pattern.
    dispersion_confidence: float = 0.8
    #: Days whose exposure is below this are left out of the baseline (outages, holidays).
    low_exposure: float = 0.5
    #: A flag is new when the subject was not flagged in this many days before.
    new_after_days: int = 7

    def __post_init__(self) -> None:
        if not self.windows or min(self.windows) < 1:
            raise ValueError("rising windows must be positive numbers of days")
        if list(self.windows) != sorted(set(self.windows)):
            raise ValueError("rising windows must be distinct and listed shortest first")
        if len(self.window_weights) != len(self.windows) or min(self.window_weights) <= 0:
            raise ValueError("rising windows need one positive weight each")
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days cannot exceed baseline_days")
        if self.weekday_prior_strength <= 0:
            raise ValueError("weekday_prior_strength must be positive")
        if self.guard_days < 0:
            raise ValueError("guard_days cannot be negative")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must lie between 0 and 1")

    @property
    def span_days(self) -> int:
        """Days before the tested day that any window's baseline can reach."""
        return max(self.baseline_days, self.long_baseline_days) + self.guard_days + max(self.windows) - 1

    def baseline_for(self, day: dt.date, window_days: int = 1, length: int | None = None) -> list[dt.date]:
        """The baseline days of the window of ``window_days`` days ending on ``day``, oldest first."""
        last = day - dt.timedelta(days=window_days + self.guard_days)
        n = self.baseline_days if length is None else length
        return [last - dt.timedelta(days=i) for i in range(n - 1, -1, -1)]


@dataclass(frozen=True)
class DayCount:
    n_articles: int
    n_stories: int  # distinct (outlet, story_key): a republished story counts once per outlet
    n_outlets: int


def count_day(records: Iterable[tuple[str, str]]) -> DayCount:
    """Counts for one subject-day from its articles' ``(outlet, story_key)`` pairs."""
    rows = list(records)
    return DayCount(
        n_articles=len(rows),
        n_stories=len(set(rows)),
        n_outlets=len({outlet for outlet, _ in rows}),
    )


@dataclass(frozen=True)
class WindowTest:
    days: int
    count: int  # outlet-days in the window
    expected: float
    rate_ratio: float
    p_value: float  # the window's own upper tail
    distinct_outlets: int  # distinct outlets over the window (the minimum-evidence rule)

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "count": self.count,
            "expected": round(self.expected, 6),
            "rate_ratio": round(self.rate_ratio, 6),
            "p_value": self.p_value,
            "distinct_outlets": self.distinct_outlets,
        }


@dataclass(frozen=True)
class RisingTest:
    day: dt.date
    today_count: int
    today_expected: float
    flagged: bool
    reason: str  # why it is or is not flagged, for the report and logs
    decisive: WindowTest | None  # the window whose p-value stands for the subject
    #: weighted min-p over the windows: the chance some window gets this far (1: no evidence); when
    #: even the decisive window's own p-value exceeds alpha, that p-value (the min-p is at least as large)
    p_value: float
    weekday_factor: float
    dispersion: float
    baseline_days: int  # usable days in the baseline of the 1-day window
    baseline_total: int
    rate_per_day: float
    windows: tuple[WindowTest, ...] = field(default_factory=tuple)

    @property
    def rate_ratio(self) -> float:
        return self.decisive.rate_ratio if self.decisive else 0.0

    def details(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "weekday_factor": round(self.weekday_factor, 6),
            "dispersion": round(self.dispersion, 6),
            "baseline_days": self.baseline_days,
            "baseline_total": self.baseline_total,
            "rate_per_day": round(self.rate_per_day, 6),
            "today_expected": round(self.today_expected, 6),
            "window_days": self.decisive.days if self.decisive else None,
            "windows": [w.as_dict() for w in self.windows],
        }


@dataclass(frozen=True)
class _Baseline:
    factors: FloatArray  # weekday factors
    rate: float  # outlets per unit of weekday- and exposure-weighted day
    shape: float  # Gamma shape of the rate's posterior
    dispersion: float
    factor_covariance: FloatArray  # relative covariance of the weekday factors (7 x 7)
    days: int  # usable baseline days
    total: int  # outlet-days in them


def _baseline(
    day: dt.date,
    counts: Mapping[dt.date, int],
    params: RisingParams,
    weekday_prior: FloatArray,
    observed_from: dt.date | None,
    prior: Reference | None,
    exposure: Mapping[dt.date, float],
) -> _Baseline | None:
    """One baseline for every window: the days before the longest window and its guard band."""
    longest = max(params.windows)

    def usable(length: int) -> list[dt.date]:
        return [
            d
            for d in params.baseline_for(day, longest, length)
            if (observed_from is None or d >= observed_from) and exposure.get(d, 1.0) >= params.low_exposure
        ]

    # the level may drift, so a busy subject takes it from the recent weeks; the shape of its days
    # (weekday factors, dispersion) is steadier and is measured over the long baseline, where a
    # month's four days of each weekday would leave each factor uncertain by a tenth or more
    shape_days = usable(params.long_baseline_days)
    baseline = usable(params.baseline_days)
    if sum(counts.get(d, 0) for d in baseline) < params.min_baseline_total:
        baseline = shape_days
    if len(baseline) < params.min_baseline_days and prior is None:
        return None
    y = np.asarray([counts.get(d, 0) for d in shape_days], dtype=np.float64)
    wd = [d.weekday() for d in shape_days]
    strength = params.weekday_prior_strength
    if prior is not None and prior.weekday_strength is not None:
        strength = prior.weekday_strength
    factors = weekday_factors(y, wd, weekday_prior, strength)
    weights = np.asarray([factors[d.weekday()] * exposure.get(d, 1.0) for d in baseline], dtype=np.float64)
    total = float(sum(counts.get(d, 0) for d in baseline))
    shape = total + (prior.days * prior.rate if prior is not None else 0.5)
    rate = shape / (float(weights.sum()) + (prior.days if prior is not None else 0.0))
    own, information = 0.0, 0.0
    if len(shape_days) >= params.min_baseline_days and y.sum() > 0:
        shape_weights = factors[wd] * np.asarray([exposure.get(d, 1.0) for d in shape_days])
        fitted = (float(y.sum()) / float(shape_weights.sum())) * shape_weights
        n_params = weekday_parameters(y, wd, strength)
        own = dispersion(y, fitted, n_params, clip=False)
        information = dispersion_information(fitted, prior.dispersion if prior is not None else 0.0)
    _, a = pooled_dispersion(
        own,
        information,
        prior.dispersion if prior is not None else 0.0,
        params.dispersion_prior_sd,
        params.dispersion_confidence,
    )
    # day-to-day swings also blur the baseline's own mean: its relative variance grows by 1 + a m
    baseline_mean = total / len(baseline) if baseline else 0.0
    return _Baseline(
        factors=factors,
        rate=rate,
        shape=shape / (1.0 + a * baseline_mean),
        dispersion=a,
        factor_covariance=weekday_factor_covariance(y, wd, weekday_prior, strength, a),
        days=len(baseline),
        total=int(total),
    )


def window_floor(params: RisingParams, expected: float) -> int:
    """The least count a window can fire with: ``min_outlets`` and ``min_ratio`` times expected."""
    return max(params.min_outlets, 1, int(np.ceil(params.min_ratio * expected - 1e-9)))


def assess_rising(
    day: dt.date,
    counts: Mapping[dt.date, int],
    params: RisingParams,
    *,
    weekday_prior: npt.ArrayLike | None = None,
    observed_from: dt.date | None = None,
    reference: Reference | None = None,
    exposure: Mapping[dt.date, float] | None = None,
    outlets: Mapping[dt.date, Set[str]] | None = None,
) -> RisingTest | None:
    """Test one subject on ``day``; ``counts`` are its distinct outlets per day (missing days are 0).

    ``observed_from`` is the first day the subject could have been counted; earlier days are left
    out of the baseline rather than taken as zeros. ``reference`` is the Gamma prior (catalogue or
    typical story). ``exposure`` scales each day's expectation (missing days: 1). ``outlets`` gives
    the outlets behind each day's count, for the distinct-outlet evidence rule. Returns None when
    there is not enough baseline.
    """
    prior_pattern = np.ones(7) if weekday_prior is None else np.asarray(weekday_prior, dtype=np.float64)
    exposures = exposure or {}
    base = _baseline(day, counts, params, prior_pattern, observed_from, reference, exposures)
    if base is None:
        return None
    longest = max(params.windows)
    recent = [day - dt.timedelta(days=i) for i in range(longest - 1, -1, -1)]
    mu = np.asarray([base.rate * base.factors[d.weekday()] * exposures.get(d, 1.0) for d in recent])
    recent_weekdays = [d.weekday() for d in recent]
    predictive = Predictive(
        mu=np.maximum(mu, 1e-9),
        dispersion=np.full(longest, base.dispersion),
        shape=base.shape,
        factor_covariance=base.factor_covariance[np.ix_(recent_weekdays, recent_weekdays)],
    )
    windows = tuple(_window(predictive, recent[longest - w :], counts, outlets) for w in params.windows)
    today = int(counts.get(day, 0))
    evident = [
        w
        for w in windows
        if w.count >= window_floor(params, w.expected) and w.distinct_outlets >= params.min_outlets
    ]
    weight = dict(zip(params.windows, params.window_weights, strict=True))
    decisive = min(evident or list(windows), key=lambda w: (w.p_value / weight[w.days], w.days))
    p_value = 1.0 if not evident else decisive.p_value
    # the statistic's p-value is never below the decisive window's own: beyond alpha, that settles it
    if evident and decisive.p_value <= params.alpha:
        level = decisive.p_value / weight[decisive.days]
        critical = [
            critical_count(predictive, w.days, level * weight[w.days], window_floor(params, w.expected))
            for w in windows
        ]
        # the union lies between its largest part and the sum of its parts (the sum also stands in
        # where 1 - P(no window fires) has lost its digits to rounding)
        parts = sum(window_tail(predictive, w, c) for w, c in zip(params.windows, critical, strict=True))
        p_value = max(decisive.p_value, min(parts, union_tail(predictive, params.windows, critical)))
    if today < 1:
        flagged, reason = False, "no outlet today"
    elif not any(w.distinct_outlets >= params.min_outlets for w in windows):
        flagged, reason = False, f"fewer than {params.min_outlets} distinct outlets in every window"
    elif not evident:
        flagged, reason = False, f"rate ratio below {params.min_ratio}"
    elif p_value > params.alpha:
        flagged, reason = False, f"p-value {p_value:.3g} above {params.alpha:.3g}"
    else:
        flagged = True
        reason = (
            f"{decisive.distinct_outlets} outlets, {decisive.count} outlet-days in {decisive.days} day(s) "
            f"against {decisive.expected:.2f} expected (x{decisive.rate_ratio:.2f}), p={p_value:.3g}"
        )
    return RisingTest(
        day=day,
        today_count=today,
        today_expected=float(mu[-1]),
        flagged=flagged,
        reason=reason,
        decisive=decisive,
        p_value=p_value,
        weekday_factor=float(base.factors[day.weekday()]),
        dispersion=base.dispersion,
        baseline_days=base.days,
        baseline_total=base.total,
        rate_per_day=base.rate,
        windows=windows,
    )


def _window(
    predictive: Predictive,
    days: list[dt.date],
    counts: Mapping[dt.date, int],
    outlets: Mapping[dt.date, Set[str]] | None,
) -> WindowTest:
    count = int(sum(counts.get(d, 0) for d in days))
    expected = predictive.mean_of(len(days))
    if outlets is not None:
        distinct = len(set().union(*(outlets.get(d, set()) for d in days)))
    else:
        distinct = count  # outlet-days: an upper bound of the distinct outlets
    return WindowTest(
        days=len(days),
        count=count,
        expected=expected,
        rate_ratio=count / expected,
        p_value=window_tail(predictive, len(days), count),
        distinct_outlets=distinct,
    )


@dataclass(frozen=True)
class FlagRun:
    """Where a flag stands in its subject's run of flags."""

    new: bool  # no flag in the ``new_after_days`` before
    run_day: int  # 1 for a new flag, K on the K-th day since the run began
    run_start: dt.date


def flag_run(day: dt.date, earlier_flags: Iterable[dt.date], new_after_days: int) -> FlagRun:
    """New or continuing: a run is a sequence of flags with gaps shorter than ``new_after_days``."""
    start = day
    for earlier in sorted({d for d in earlier_flags if d < day}, reverse=True):
        if (start - earlier).days > new_after_days:
            break
        start = earlier
    return FlagRun(new=start == day, run_day=(day - start).days + 1, run_start=start)
