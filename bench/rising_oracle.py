"""What sharing one false-flag budget between the windows costs, before any baseline is estimated.

    .venv/bin/python bench/rising_oracle.py [--trials 20000] [--seed N]

narrwatch's windows (the day, 3 days, the week) share ``alpha`` through the weighted min-p
statistic (``narrwatch/domain/rising_windows.py``). This prints, for the rises of
``bench/rising.py``, the power of that min-p test when the baseline is *known* (Poisson days at the
level times the weekday pattern, the minimum evidence rule applied), beside the limit's: the exact
Poisson test of the rise's own window at ``alpha``. Their ratio is the most the detector can reach
at the budget; the estimated baseline (rate, weekday factors, dispersion) only lowers it. As in
``bench/rising.py``, a rise counts as caught when any of its days is flagged, and ratios are
printed where the limit catches at least 10 %.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
from scipy.stats import poisson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rising_timelines import DURATIONS, LEVELS, RISES, WEEKDAY_PATTERN, limit_critical  # noqa: E402

from narrwatch.config import Settings  # noqa: E402
from narrwatch.domain.rising import RisingParams, window_floor  # noqa: E402
from narrwatch.domain.rising_windows import Predictive, critical_count, union_tail  # noqa: E402
from narrwatch.steps.detect.detect import params_from_settings  # noqa: E402


@functools.cache
def known_region(params: RisingParams, level: float, last_weekday: int) -> list[int]:
    """Critical counts of the windows for a known baseline at ``level`` outlets a day on the days of
    the longest window ending on ``last_weekday``: the largest level (times each window's weight)
    whose union of window tails stays within ``alpha``."""
    longest = max(params.windows)
    mu = level * WEEKDAY_PATTERN[[(last_weekday - longest + 1 + k) % 7 for k in range(longest)]]
    known = Predictive(mu=mu, dispersion=np.zeros(longest), shape=1e9)

    def critical(level: float) -> list[int]:
        floors = [window_floor(params, known.mean_of(w)) for w in params.windows]
        return [
            critical_count(known, w, level * weight, f)
            for w, weight, f in zip(params.windows, params.window_weights, floors, strict=True)
        ]

    low, high = np.log(1e-9), np.log(params.alpha)
    for _ in range(40):
        middle = (low + high) / 2.0
        if union_tail(known, params.windows, critical(float(np.exp(middle)))) <= params.alpha:
            low = middle
        else:
            high = middle
    return critical(float(np.exp(low)))


def cell(
    rng: np.random.Generator, params: RisingParams, level: float, rise: float, duration: int, trials: int
) -> tuple[float, float]:
    """Power of the known-baseline min-p test and of the limit, averaged over the rise's first weekday."""
    longest = max(params.windows)
    powers, limits = [], []
    for first_weekday in range(7):
        # the week before the rise, then the rise
        weekdays = [(first_weekday - longest + k) % 7 for k in range(longest + duration)]
        baseline = level * WEEKDAY_PATTERN[weekdays]
        expected = baseline.copy()
        expected[longest:] *= rise
        counts = rng.poisson(expected, size=(trials, expected.size))
        caught = np.zeros(trials, dtype=bool)
        for end in range(longest, longest + duration):
            region = known_region(params, level, weekdays[end])
            for window, critical in zip(params.windows, region, strict=True):
                caught |= counts[:, end - window + 1 : end + 1].sum(axis=1) >= critical
        powers.append(float(caught.mean()))
        rise_baseline = float(baseline[longest:].sum())
        critical = limit_critical(rise_baseline, params.alpha)
        limits.append(float(poisson.sf(critical - 1, rise * rise_baseline)))
    return float(np.mean(powers)), float(np.mean(limits))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--trials", type=int, default=20000, help="simulated rises per cell and weekday")
    parser.add_argument("--seed", type=int, default=20250106, help="random seed")
    args = parser.parse_args(argv)
    params = params_from_settings(Settings(_env_file=None))
    rng = np.random.default_rng(args.seed)
    print(f"known baseline, alpha {params.alpha} per day, windows {params.windows}")
    print(f"{'outlets/day':>11} {'rise':>14} {'min-p':>7} {'limit':>7} {'ratio':>7}")
    for level in LEVELS:
        for rise in RISES:
            for duration in DURATIONS:
                power, limit = cell(rng, params, level, rise, duration, args.trials)
                ratio = f"{power / limit:.2f}" if limit >= 0.1 else "-"
                name = f"x{rise:g} over {duration}d"
                print(f"{level:>11g} {name:>14} {power:>7.3f} {limit:>7.3f} {ratio:>7}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
