"""The windows' joint null distribution: one false-flag budget for the day, the 3 days and the week.

The windows end on the same day and nest (the day lies inside the 3 days, which lie inside the
week), so a chance excess in one shows in the others too. Splitting ``alpha`` between them
(Bonferroni) pays for that overlap twice; at small counts it also wastes what the discrete tails do
not reach. Here the subject is flagged on a weighted *min-p* statistic instead: the smallest of the
windows' p-values, each divided by its window's weight, judged by the chance, under the baseline,
that *some* window reaches that much (window ``w`` its weight times it): ``union_tail`` of the
windows' critical counts at those levels. That chance is computed exactly for the model of the test:

- the subject's rate is the baseline's estimate times ``theta``, a Gamma variable of mean 1 (the
  uncertainty of the estimate, shared by all days), integrated by Gauss-Laguerre quadrature;
- given ``theta``, days are negative binomials (``var = mu + a mu^2``) whose weekday factors carry
  correlated errors, and the sums of the nested blocks (the day, the two days before it, the four
  before those) are negative binomials matched in mean and variance (the blocks are taken as
  independent: their factor errors tend to cancel, so this overstates the week's spread a little);
- the probability that no window reaches its critical count is a running convolution of the
  blocks, truncated at each window's critical count.

Pure: numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.linalg import eigh_tridiagonal
from scipy.signal import fftconvolve
from scipy.special import betainc, gammainc, gammaln

FloatArray = npt.NDArray[np.float64]

#: Quadrature nodes over the rate's uncertainty; a shape below 8 (a new or quiet subject) has
#: most of its mass near zero and a long tail, and needs more. With these a window's tail is within
#: 1 % of the exact negative binomial for shapes from 2 and windows of up to 100 outlet-days.
NODES = 32
NODES_WIDE = 96


def gamma_quadrature(shape: float) -> tuple[FloatArray, FloatArray]:
    """Nodes and weights integrating over ``theta ~ Gamma(shape, rate=shape)`` (mean 1).

    Generalised Gauss-Laguerre by the Golub-Welsch eigenproblem, which stays finite at the shapes
    of busy subjects (thousands), where the closed-form weights overflow.
    """
    if not shape > 0:
        raise ValueError("the rate's Gamma shape must be positive")
    n = NODES_WIDE if shape < 8.0 else NODES
    i = np.arange(n, dtype=np.float64)
    diagonal = 2.0 * i + shape
    off_diagonal = np.sqrt(i[1:] * (i[1:] + shape - 1.0))
    nodes, vectors = eigh_tridiagonal(diagonal, off_diagonal)
    weights = vectors[0] ** 2
    return nodes / shape, weights / weights.sum()


@dataclass(frozen=True)
class Predictive:
    """What the baseline predicts for the days of the longest window (oldest first)."""

    mu: FloatArray  # expected outlets per day
    dispersion: FloatArray  # per day, ``a`` in ``var = mu + a mu^2`` (the day's own noise)
    shape: float  # Gamma shape of the rate's uncertainty (relative variance ``1 / shape``)
    #: relative covariance of the days' estimated weekday factors (None: exact factors); the
    #: factors average 1 over the baseline, so their errors partly cancel over several days
    factor_covariance: FloatArray | None = None

    @cached_property
    def quadrature(self) -> tuple[FloatArray, FloatArray]:
        return gamma_quadrature(self.shape)

    def size_of(self, days: int) -> float:
        """Negative-binomial size of the sum of the last ``days`` days given the rate (inf: Poisson)."""
        return self.block_size(slice(len(self.mu) - days, len(self.mu)))

    def block_size(self, block: slice) -> float:
        """Negative-binomial size matching the mean and variance of a block of days (inf: Poisson)."""
        mu = self.mu[block]
        noise = float(np.sum(self.dispersion[block] * mu * mu))
        if self.factor_covariance is not None:
            noise += float(mu @ self.factor_covariance[block, block] @ mu)
        return float(np.sum(mu)) ** 2 / noise if noise > 1e-12 else np.inf

    def mean_of(self, days: int) -> float:
        return float(np.sum(self.mu[len(self.mu) - days :]))


def _tails(counts: FloatArray, means: FloatArray, size: float) -> FloatArray:
    """``P(X >= count)`` for every count (columns) and mean (rows): negative binomial or Poisson."""
    c = counts[None, :]
    m = means[:, None]
    if np.isinf(size):
        out = gammainc(np.maximum(c, 1e-300), m)
    else:
        out = betainc(np.maximum(c, 1e-300), size, m / (size + m))
    return np.where(c <= 0, 1.0, np.where(m <= 0, 0.0, out))


def _pmfs(length: int, means: FloatArray, size: float) -> FloatArray:
    """Probabilities of 0..length-1 (columns) for every mean (rows)."""
    x = np.arange(length, dtype=np.float64)[None, :]
    m = np.maximum(means[:, None], 1e-300)
    if np.isinf(size):
        log = x * np.log(m) - m - gammaln(x + 1.0)
    else:
        log = (
            gammaln(x + size)
            - gammaln(size)
            - gammaln(x + 1.0)
            + size * np.log(size / (size + m))
            + x * np.log(m / (size + m))
        )
    out = np.exp(log)
    out[means <= 0, :] = 0.0
    out[means <= 0, 0] = 1.0
    return out


def window_tail(predictive: Predictive, days: int, count: int) -> float:
    """The marginal upper tail ``P(S >= count)`` of the sum of the last ``days`` days."""
    theta, weights = predictive.quadrature
    means = theta * predictive.mean_of(days)
    tail = _tails(np.asarray([float(count)]), means, predictive.size_of(days))[:, 0]
    return float(min(1.0, max(0.0, float(weights @ tail))))


def critical_count(predictive: Predictive, days: int, level: float, floor: int) -> int:
    """The smallest count, at least ``floor``, whose marginal upper tail is within ``level``.

    The tail falls as the count grows, so the count is bracketed by doubling steps and then bisected:
    a handful of tails, where scanning every count from the floor cost a busy subject thousands
    (detection runs this for every subject near its level)."""
    theta, weights = predictive.quadrature
    means = theta * predictive.mean_of(days)
    size = predictive.size_of(days)

    def within(count: int) -> bool:
        return float(weights @ _tails(np.asarray([float(count)]), means, size)[:, 0]) <= level

    low = max(floor, 0)
    if within(low):
        return low
    step = max(16, int(4.0 * np.sqrt(predictive.mean_of(days) + 1.0)))
    high = low + step
    while not within(high):  # the tail at ``low`` is above the level, and stays so below ``high``
        low, high, step = high, high + 2 * step, 2 * step
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if within(middle) else (middle, high)
    return high


def union_tail(predictive: Predictive, windows: Sequence[int], critical: Sequence[int]) -> float:
    """``P(some window w reaches critical[w])`` for nested windows ending on the last day."""
    order = np.argsort(windows)
    days = [int(windows[i]) for i in order]
    limits = [int(critical[i]) for i in order]
    if min(limits) <= 0:
        return 1.0
    theta, weights = predictive.quadrature
    # every quadrature node at once: one row of the running distribution per node
    running = np.ones((theta.size, 1))
    covered = 0
    for span, limit in zip(days, limits, strict=True):
        block = slice(len(predictive.mu) - span, len(predictive.mu) - covered)
        mean = float(np.sum(predictive.mu[block]))
        pmf = _pmfs(limit, theta * mean, predictive.block_size(block))
        running = _convolve_rows(running, pmf)[:, :limit]
        covered = span
    none = running.sum(axis=1)
    return float(min(1.0, max(0.0, 1.0 - float(weights @ none))))


def _convolve_rows(left: FloatArray, right: FloatArray) -> FloatArray:
    """Row-by-row full convolution of two matrices with the same number of rows (by FFT when long;
    its rounding, about 1e-16 of the largest probability, is far below any level tested)."""
    if min(left.shape[1], right.shape[1]) < 16:
        out = np.zeros((left.shape[0], left.shape[1] + right.shape[1] - 1))
        short, long_ = (left, right) if left.shape[1] <= right.shape[1] else (right, left)
        for j in range(short.shape[1]):
            out[:, j : j + long_.shape[1]] += short[:, j : j + 1] * long_
        return out
    return np.clip(fftconvolve(left, right, axes=1), 0.0, None)
