"""Is a subject (seed or cluster) rising today? Weekday-aware baselines and a negative-binomial test.

Pure: numpy and scipy only. The caller hands in one subject's daily counts; nothing here knows where
they come from.

The counted quantity is **distinct outlets per day** (outlet-days). A story that one outlet publishes
five times, or that twenty portals copy from one wire, says less about a narrative spreading than
the number of independent outlets carrying it; articles and stories (distinct (outlet, story_key)
pairs) are kept alongside for the report but do not drive the test.

The model, for one subject (the baseline is the ``baseline_days`` before the tested window, less a
two-day guard band right before it):

1. *Weekday factors.* News volume depends on the weekday (HealthMap saw 58-66% less on weekends). A
   subject's factor for weekday w is its own share of that weekday shrunk towards a prior pattern
   (the weekday pattern of all stored articles): ``f_w = (S_w + k p_w) / (m n_w + k)`` with ``S_w``
   the subject's baseline count on weekday w, ``n_w`` the number of such days, ``m`` the subject's
   mean per day and ``k`` pseudo-counts. With four weeks of a sparse subject the prior dominates, so
   the factor is stable; a busy subject earns its own pattern. Factors average 1 over the baseline.
2. *Rate.* The weekday-adjusted rate per day is Gamma distributed given the baseline: shape
   ``S + 1/2`` (Jeffreys), rate ``E`` (the sum of the factors of the observed baseline days). A
   reference level (clusters: a typical story's outlets per day) can add ``d`` pseudo-days.
3. *Overdispersion.* Day-to-day extra variance ``var = mu + alpha mu^2`` is estimated from the
   baseline residuals by moments, corrected for the fitted parameters and taken at an 80% upper
   confidence bound (four weeks of days estimate a variance only roughly).
4. *Test.* The count in the test window (today, or today and yesterday) is compared with its
   predictive distribution: negative binomial with mean ``M`` = rate x the window's weekday factors
   and ``1/size = alpha sum(mu_d^2)/M^2 + 1/shape`` (day noise plus the uncertainty of a baseline
   estimated from four weeks). The p-value is the upper tail ``P(X >= count)``; the statistic is the
   rate ratio ``count / M``. Several windows are Bonferroni-corrected.

A flag needs: at least ``min_outlets`` distinct outlets today, adjusted p-value <= ``alpha`` and
rate ratio >= ``min_ratio``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2, nbinom

FloatArray = npt.NDArray[np.float64]

STATISTIC_NAME = "nb_rate_ratio"


@dataclass(frozen=True)
class RisingParams:
    baseline_days: int = 28
    min_outlets: int = 3
    alpha: float = 0.001
    min_ratio: float = 1.5
    #: Test windows in days ending today. Two days catch a doubling by its second day far more often
    #: than today alone (bench/rising.py); the p-values are Bonferroni-corrected for the number used.
    windows: tuple[int, ...] = (1, 2)
    #: Fewer observed baseline days than this and a subject without a reference level is not tested.
    min_baseline_days: int = 7
    #: Days left out between the baseline and the tested window (a guard band, as in the CDC's EARS
    #: C2 method): a rise already under way would otherwise enter its own baseline, read as
    #: overdispersion, and the third day of a burst would no longer stand out.
    guard_days: int = 2
    #: Pseudo-counts pulling a subject's weekday factors towards the prior pattern.
    weekday_prior_strength: float = 10.0
    #: Upper confidence level of the baseline's residual variance used for the dispersion. On
    #: simulated days with news-cycle swings it cut false flags about threefold for a few points of
    #: power (bench/rising.py).
    dispersion_confidence: float = 0.8

    def __post_init__(self) -> None:
        if not self.windows or min(self.windows) < 1:
            raise ValueError("rising windows must be positive numbers of days")
        if self.min_baseline_days > self.baseline_days:
            raise ValueError("min_baseline_days cannot exceed baseline_days")
        if self.weekday_prior_strength <= 0:
            raise ValueError("weekday_prior_strength must be positive")
        if self.guard_days < 0:
            raise ValueError("guard_days cannot be negative")

    @property
    def span_days(self) -> int:
        """Days before the tested day that any window's baseline can reach."""
        return self.baseline_days + self.guard_days + max(self.windows) - 1

    def baseline_for(self, day: dt.date, window_days: int = 1) -> list[dt.date]:
        """The baseline days of the window of ``window_days`` days ending on ``day``, oldest first."""
        last = day - dt.timedelta(days=window_days + self.guard_days)
        return [last - dt.timedelta(days=i) for i in range(self.baseline_days - 1, -1, -1)]


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


def weekday_factors(
    counts: npt.ArrayLike,
    weekdays: Sequence[int],
    prior: npt.ArrayLike | None = None,
    strength: float = 10.0,
) -> FloatArray:
    """Seven multiplicative factors (Monday first), shrunk towards ``prior``, averaging 1 over the days.

    Averaging 1 over the given days (not over the week) keeps ``sum(counts) / len(counts)`` the
    weekday-free rate even when the baseline is not a whole number of weeks.
    """
    y = np.asarray(counts, dtype=np.float64)
    wd = np.asarray(weekdays, dtype=np.int64)
    if y.shape != wd.shape:
        raise ValueError("counts and weekdays differ in length")
    p = np.ones(7) if prior is None else np.asarray(prior, dtype=np.float64)
    if p.shape != (7,) or np.any(p <= 0):
        raise ValueError("the weekday prior needs seven positive factors")
    if strength <= 0:
        raise ValueError("weekday prior strength must be positive: a weekday never seen cannot be zero")
    if y.size == 0:
        return p / p.mean()
    mean = float(y.mean())
    sums = np.bincount(wd, weights=y, minlength=7)
    days = np.bincount(wd, minlength=7).astype(np.float64)
    factors = p.copy()
    if mean > 0:
        factors = (sums + strength * p) / (mean * days + strength)
    return factors * (y.size / float(factors[wd].sum()))


def weekday_parameters(counts: npt.ArrayLike, weekdays: Sequence[int], strength: float) -> float:
    """Effective number of parameters fitted by the mean and the shrunk weekday factors.

    A weekday's factor follows the subject's own data with weight ``m n_w / (m n_w + k)``; six of
    the seven factors are free once they are normalised.
    """
    y = np.asarray(counts, dtype=np.float64)
    if y.size == 0:
        return 0.0
    days = np.bincount(np.asarray(weekdays, dtype=np.int64), minlength=7).astype(np.float64)
    own = float(y.mean()) * days
    weights = own / (own + strength)
    return 1.0 + float(weights.sum()) * 6.0 / 7.0


def dispersion(
    counts: npt.ArrayLike, expected: npt.ArrayLike, n_params: float = 1.0, confidence: float = 0.0
) -> float:
    """Moment estimate of ``alpha`` in ``var = mu + alpha mu^2`` (0 for Poisson-like data).

    ``expected`` was fitted to the same days with ``n_params`` effective parameters, so the squared
    residuals are scaled by ``n / (n - n_params)``. With ``confidence`` > 0 the residual variance is
    taken at that one-sided upper confidence bound (chi-square with ``n - n_params`` degrees of
    freedom): four weeks give a rough variance, and a plug-in estimate that happens to be low turns
    ordinary busy days into flags.
    """
    y = np.asarray(counts, dtype=np.float64)
    mu = np.asarray(expected, dtype=np.float64)
    denominator = float(np.sum(mu * mu))
    if y.size < 2 or denominator == 0:
        return 0.0
    residual_dof = max(1.0, y.size - n_params)
    squares = float(np.sum((y - mu) ** 2)) * y.size / residual_dof
    if confidence > 0:
        squares *= residual_dof / float(chi2.ppf(1.0 - confidence, residual_dof))
    return max(0.0, (squares - float(np.sum(y))) / denominator)


@dataclass(frozen=True)
class Reference:
    """A level to compare a subject with when its own history is short (pseudo-days of evidence)."""

    rate: float
    dispersion: float
    days: float


def reference_from_cross_section(values: Sequence[int], days: float = 7.0) -> Reference | None:
    """A typical active subject-day (for clusters: how many outlets a story usually gets in a day).

    Only days with at least one outlet count, so the level is that of a story that is being covered,
    which makes the comparison conservative.
    """
    y = np.asarray([v for v in values if v > 0], dtype=np.float64)
    if y.size < 2:
        return None
    mean = float(y.mean())
    return Reference(rate=mean, dispersion=dispersion(y, np.full(y.size, mean)), days=days)


@dataclass(frozen=True)
class WindowTest:
    days: int
    count: int
    expected: float
    rate_ratio: float
    p_value: float  # unadjusted upper tail

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "count": self.count,
            "expected": round(self.expected, 6),
            "rate_ratio": round(self.rate_ratio, 6),
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class RisingTest:
    day: dt.date
    today_count: int
    today_expected: float
    flagged: bool
    reason: str  # why it is or is not flagged, for the report and logs
    decisive: WindowTest | None  # the window whose p-value stands for the subject
    p_value: float  # Bonferroni-adjusted over the windows tested
    weekday_factor: float
    dispersion: float
    baseline_days: int  # observed days in the baseline of the 1-day window
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
class _WindowResult:
    test: WindowTest
    weekday_factor: float  # today's
    dispersion: float
    baseline_days: int
    baseline_total: int
    rate_per_day: float
    today_expected: float


def _window_test(
    day: dt.date,
    days: int,
    counts: Mapping[dt.date, int],
    params: RisingParams,
    weekday_prior: npt.ArrayLike,
    observed_from: dt.date | None,
    reference: Reference | None,
) -> _WindowResult | None:
    window = [day - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    baseline = params.baseline_for(day, days)
    if observed_from is not None:
        baseline = [d for d in baseline if d >= observed_from]
    if len(baseline) < params.min_baseline_days and reference is None:
        return None
    y = np.asarray([counts.get(d, 0) for d in baseline], dtype=np.float64)
    wd = [d.weekday() for d in baseline]
    factors = weekday_factors(y, wd, weekday_prior, params.weekday_prior_strength)
    exposure = float(factors[wd].sum()) if baseline else 0.0
    total = float(y.sum())
    shape = total + 0.5
    rate_denominator = exposure
    if reference is not None:
        shape += reference.days * reference.rate
        rate_denominator += reference.days
    rate = shape / rate_denominator
    if len(baseline) >= params.min_baseline_days:
        fitted = (total / exposure) * factors[wd]
        n_params = weekday_parameters(y, wd, params.weekday_prior_strength)
        alpha = dispersion(y, fitted, n_params, params.dispersion_confidence)
    else:
        alpha = reference.dispersion if reference is not None else 0.0
    mu = np.asarray([rate * factors[d.weekday()] for d in window])
    expected = float(mu.sum())
    count = int(sum(counts.get(d, 0) for d in window))
    inverse_size = alpha * float(np.sum(mu * mu)) / expected**2 + 1.0 / shape
    size = 1.0 / inverse_size
    p_value = float(nbinom.sf(count - 1, size, size / (size + expected))) if count > 0 else 1.0
    test = WindowTest(days, count, expected, count / expected, min(1.0, p_value))
    return _WindowResult(
        test=test,
        weekday_factor=float(factors[day.weekday()]),
        dispersion=alpha,
        baseline_days=len(baseline),
        baseline_total=int(total),
        rate_per_day=rate,
        today_expected=float(mu[-1]),
    )


def assess_rising(
    day: dt.date,
    counts: Mapping[dt.date, int],
    params: RisingParams,
    *,
    weekday_prior: npt.ArrayLike | None = None,
    observed_from: dt.date | None = None,
    reference: Reference | None = None,
) -> RisingTest | None:
    """Test one subject on ``day``; ``counts`` are its distinct outlets per day (missing days are 0).

    ``observed_from`` is the first day the subject could have been counted (a seed added last week
    has no history before it); earlier days are left out of the baseline rather than taken as zeros.
    Returns None when no window has enough baseline.
    """
    prior = np.ones(7) if weekday_prior is None else np.asarray(weekday_prior, dtype=np.float64)
    results = [
        r
        for w in sorted(set(params.windows))
        if (r := _window_test(day, w, counts, params, prior, observed_from, reference)) is not None
    ]
    if not results:
        return None
    windows = tuple(r.test for r in results)
    first = results[0]
    today = int(counts.get(day, 0))
    n_tests = len(windows)
    passing = [w for w in windows if w.rate_ratio >= params.min_ratio]
    decisive = min(passing or list(windows), key=lambda w: (w.p_value, w.days))
    adjusted = min(1.0, decisive.p_value * n_tests)
    if today < params.min_outlets:
        flagged, reason = False, f"{today} outlets today, fewer than {params.min_outlets}"
    elif not passing:
        flagged, reason = False, f"rate ratio below {params.min_ratio}"
    elif adjusted > params.alpha:
        flagged, reason = False, f"p-value {adjusted:.3g} above {params.alpha}"
    else:
        flagged = True
        reason = (
            f"{decisive.count} outlet-days in {decisive.days} day(s) against {decisive.expected:.2f} "
            f"expected (x{decisive.rate_ratio:.2f}), p={adjusted:.3g}"
        )
    return RisingTest(
        day=day,
        today_count=today,
        today_expected=first.today_expected,
        flagged=flagged,
        reason=reason,
        decisive=decisive,
        p_value=adjusted,
        weekday_factor=first.weekday_factor,
        dispersion=first.dispersion,
        baseline_days=first.baseline_days,
        baseline_total=first.baseline_total,
        rate_per_day=first.rate_per_day,
        windows=windows,
    )
