"""Baseline estimation for the rising test: weekday factors, dispersion, Gamma priors and exposure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

FloatArray = npt.NDArray[np.float64]


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


def weekday_factor_covariance(
    counts: npt.ArrayLike,
    weekdays: Sequence[int],
    prior: npt.ArrayLike | None,
    strength: float,
    dispersion: float,
) -> FloatArray:
    """Relative covariance (7 x 7) of the estimated weekday factors (0 where the prior alone sets them).

    A factor rests on the days of its weekday in the baseline, so a day's expectation is off by that
    much; the error adds to the day's noise like ``a`` does (``var = mu + (a + v) mu^2``). The
    factors are scaled to average 1 over the baseline, so their errors are tied: over a whole week
    they cancel, and a window of several days is less uncertain than the sum of its days.
    """
    y = np.asarray(counts, dtype=np.float64)
    wd = np.asarray(weekdays, dtype=np.int64)
    p = np.ones(7) if prior is None else np.asarray(prior, dtype=np.float64)
    if y.size == 0 or y.sum() <= 0:
        return np.zeros((7, 7))
    sums = np.bincount(wd, weights=y, minlength=7)
    days = np.bincount(wd, minlength=7).astype(np.float64)
    factors = weekday_factors(y, weekdays, p, strength)
    fitted = float(y.mean()) * factors
    # each weekday's raw factor, before the scaling, from its own days
    raw = days * (fitted + dispersion * fitted * fitted) / (sums + strength * p) ** 2
    # the scaling divides by the days' mean factor, which moves with every weekday's error
    share = days * factors / float(y.size)
    scaling = np.eye(7) - np.outer(np.ones(7), share)
    return np.asarray(scaling @ np.diag(raw) @ scaling.T, dtype=np.float64)


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
    counts: npt.ArrayLike, expected: npt.ArrayLike, n_params: float = 1.0, *, clip: bool = True
) -> float:
    """Moment estimate of ``a`` in ``var = mu + a mu^2`` (0 for Poisson-like data).

    ``expected`` was fitted to the same days with ``n_params`` effective parameters, so the squared
    residuals are scaled by ``n / (n - n_params)``. Without ``clip`` a negative estimate (days
    steadier than Poisson, or chance) is kept, so that pooling it with a prior stays unbiased.
    """
    y = np.asarray(counts, dtype=np.float64)
    mu = np.asarray(expected, dtype=np.float64)
    denominator = float(np.sum(mu * mu))
    if y.size < 2 or denominator == 0:
        return 0.0
    residual_dof = max(1.0, y.size - n_params)
    squares = float(np.sum((y - mu) ** 2)) * y.size / residual_dof
    estimate = (squares - float(np.sum(y))) / denominator
    return max(0.0, estimate) if clip else estimate


def dispersion_information(expected: npt.ArrayLike, dispersion: float) -> float:
    """Precision (1 / variance) of the moment estimate of ``a`` from days of these expectations,
    for days that are negative binomial with that ``a``: ``(sum mu^2)^2 / (2 sum var^2)``.

    It grows with the square of the level: a month at 16 outlets a day pins ``a`` to about 0.04, a
    quarter at half an outlet a day only to about 0.3.
    """
    mu = np.asarray(expected, dtype=np.float64)
    variance = mu + max(dispersion, 0.0) * mu * mu
    spread = 2.0 * float(np.sum(variance * variance))
    return float(np.sum(mu * mu)) ** 2 / spread if spread > 0 else 0.0


def pooled_dispersion(
    own: float, information: float, prior: float, prior_sd: float, confidence: float
) -> tuple[float, float]:
    """The subject's ``a`` pooled with the catalogue's by precision, and the upper bound used.

    The prior is normal around the catalogue's ``a`` with the spread ``prior_sd`` that seeds' true
    dispersions show about it; the subject's own estimate weighs ``information``. The bound is the
    posterior's one-sided ``confidence`` quantile (never below 0): a plug-in ``a`` that happens to
    be low turns a busy subject's ordinary days into flags, and a quiet subject's few days say
    almost nothing about ``a``, so it stays near the catalogue's.
    """
    prior_precision = 1.0 / prior_sd**2
    precision = prior_precision + max(information, 0.0)
    mean = (prior * prior_precision + own * max(information, 0.0)) / precision
    bound = mean + float(ndtri(confidence)) / np.sqrt(precision) if confidence > 0.5 else mean
    return max(0.0, mean), max(0.0, bound)


def baseline_dispersion(
    counts: npt.ArrayLike, weekdays: Sequence[int], weekday_prior: npt.ArrayLike | None, strength: float
) -> tuple[float, float]:
    """One subject's dispersion over a baseline and the information behind it (``sum(mu^2)``): what
    the catalogue prior pools over subjects."""
    y = np.asarray(counts, dtype=np.float64)
    if y.size < 2 or y.sum() == 0:
        return 0.0, 0.0
    fitted = float(y.mean()) * weekday_factors(y, weekdays, weekday_prior, strength)[list(weekdays)]
    n_params = weekday_parameters(y, weekdays, strength)
    return dispersion(y, fitted, n_params), float(np.sum(fitted**2))


@dataclass(frozen=True)
class Reference:
    """A Gamma prior on a subject's rate: ``days`` pseudo-days at ``rate`` outlets per day, and the
    dispersion subjects like it show (for seeds: the catalogue; for clusters: a typical story)."""

    rate: float
    dispersion: float
    days: float
    #: Pseudo outlet-days pulling a subject's weekday factors towards the prior pattern, from how far
    #: the catalogue's seeds stray from it (None: ``RisingParams.weekday_prior_strength``).
    weekday_strength: float | None = None


def weekday_prior_strength(
    baselines: Sequence[tuple[Sequence[float], Sequence[int]]],
    weekday_prior: npt.ArrayLike | None,
    dispersion: float,
    confidence: float,
) -> float | None:
    """Pseudo outlet-days ``k`` of the weekday factors' prior, from the seeds' own weekdays (empirical
    Bayes, DerSimonian-Laird moments): ``1 / tau^2`` with ``tau^2`` the relative variance of seeds'
    true factors about the prior pattern, at its one-sided ``confidence`` upper bound.

    A weekday's sum ``S_w`` over ``n_w`` days has relative sampling variance
    ``v_w = (1 + a m p_w) / (m n_w p_w)``; ``Q = sum (S_w / (m n_w p_w) - 1)^2 / v_w`` exceeds its
    degrees of freedom (a seed's weekdays less its mean) by ``tau^2`` times ``sum w - sum w^2 /
    sum w``. Seeds that follow the news' weekly rhythm make ``k`` large (their factors are the
    prior's, with no error to pay for); a catalogue of weekday-only topics makes it small. A small
    catalogue leaves the bound wide, and ``k`` modest.
    """
    statistic = freedom = scale = 0.0
    base_pattern = np.ones(7) if weekday_prior is None else np.asarray(weekday_prior, dtype=np.float64)
    for counts, weekdays in baselines:
        y = np.asarray(counts, dtype=np.float64)
        wd = np.asarray(weekdays, dtype=np.int64)
        if y.size < 2 or y.sum() <= 0:
            continue
        pattern = base_pattern / float(base_pattern[wd].mean())
        mean = float(y.mean())
        days = np.bincount(wd, minlength=7).astype(np.float64)
        present = days > 0
        expected = (mean * days * pattern)[present]
        sums = np.bincount(wd, weights=y, minlength=7)[present]
        weights = expected / (1.0 + max(dispersion, 0.0) * mean * pattern[present])
        statistic += float(np.sum(weights * (sums / expected - 1.0) ** 2))
        freedom += float(present.sum()) - 1.0
        scale += float(weights.sum() - np.sum(weights**2) / weights.sum())
    if freedom <= 0 or scale <= 0:
        return None
    # the bound adds the chi-square's spread when seeds keep the pattern exactly
    margin = float(ndtri(confidence)) * float(np.sqrt(2.0 * freedom)) / scale
    spread = max(0.0, (statistic - freedom) / scale) + margin
    return 1.0 / spread if spread > 0 else None


def catalogue_prior(
    rates: Sequence[float],
    dispersions: Sequence[float],
    weights: Sequence[float] | None = None,
    *,
    baselines: Sequence[tuple[Sequence[float], Sequence[int]]] = (),
    weekday_prior: npt.ArrayLike | None = None,
    confidence: float = 0.8,
) -> Reference | None:
    """The Gamma prior of one subject's rate from every comparable subject's baseline rate, fitted by
    moments (empirical Bayes): mean ``m`` and spread ``v`` of the rates give ``m / v`` pseudo-days at
    rate ``m``. Seeds of very different sizes make a weak prior, as they should; a catalogue of
    similar seeds pulls a new or quiet seed towards them.

    The dispersion is the weighted median of the subjects' estimates, weighted by their information
    (``sum(mu^2)`` of each baseline: a busy seed measures day-to-day swings far better than a quiet
    one); a median, so one seed with a burst in its baseline does not make every other seed deaf.
    The weekday factors' prior strength comes from the seeds' ``baselines`` (counts and weekdays;
    see ``weekday_prior_strength``).
    """
    usable = np.asarray([r for r in rates if r > 0], dtype=np.float64)
    if usable.size < 2:
        return None
    mean = float(usable.mean())
    spread = float(usable.var(ddof=1))
    days = mean / spread if spread > 0 else 28.0
    dispersion = weighted_median(dispersions, weights)
    return Reference(
        rate=mean,
        dispersion=dispersion,
        days=min(days, 28.0),
        weekday_strength=weekday_prior_strength(baselines, weekday_prior, dispersion, confidence),
    )


def weighted_median(values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    if not values:
        return 0.0
    v = np.asarray(values, dtype=np.float64)
    w = np.ones(v.size) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(v)
    cumulative = np.cumsum(w[order])
    if cumulative[-1] <= 0:
        return float(np.median(v))
    return float(v[order][int(np.searchsorted(cumulative, cumulative[-1] / 2.0))])


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


def regular_outlets(
    active: Mapping[dt.date, Set[str]], days: Sequence[dt.date], share: float = 0.8
) -> set[str]:
    """Outlets that published something on at least ``share`` of the days: only their silence says
    that a feed is down rather than that an occasional outlet had nothing to say."""
    seen: dict[str, int] = {}
    for day in days:
        for outlet in active.get(day, ()):
            seen[outlet] = seen.get(outlet, 0) + 1
    return {outlet for outlet, n in seen.items() if days and n >= share * len(days)}


def subject_coverage(
    outlet_weights: Mapping[str, float],
    active: Mapping[dt.date, Set[str]],
    days: Iterable[dt.date],
    regular: Set[str] | None = None,
) -> dict[dt.date, float]:
    """Per day, the share of the subject's usual outlets (weighted by how often they carried it) that
    were not silent. Only ``regular`` outlets (all when None) can be silent; days missing from
    ``active`` count as fully covered."""
    total = float(sum(outlet_weights.values()))
    out: dict[dt.date, float] = {}
    for day in days:
        published = active.get(day)
        if total <= 0 or published is None:
            out[day] = 1.0
            continue
        silent = sum(
            w
            for outlet, w in outlet_weights.items()
            if outlet not in published and (regular is None or outlet in regular)
        )
        out[day] = 1.0 - silent / total
    return out


def volume_exposure(per_active_outlet: Mapping[dt.date, float]) -> dict[dt.date, float]:
    """Each day's articles per active outlet against its weekday's median over the given days: 1 on
    an ordinary day, well below on a holiday. The weekday itself is left to the weekday factors."""
    by_weekday: dict[int, list[float]] = {}
    for day, value in per_active_outlet.items():
        by_weekday.setdefault(day.weekday(), []).append(value)
    medians = {w: float(np.median(v)) for w, v in by_weekday.items()}
    return {
        day: (float(np.clip(value / medians[day.weekday()], 0.0, 2.0)) if medians[day.weekday()] > 0 else 1.0)
        for day, value in per_active_outlet.items()
    }
