"""Rising detection against the statistical limit on simulated timelines, and the cluster threshold sweep.

    .venv/bin/python bench/rising.py [--trials 200] [--seeds 100] [--json]
    .venv/bin/python bench/rising.py clusters [--articles tests/rising/data/stories.jsonl] [--json]

Each simulated seed has 150 outlets of uneven size (Gamma(0.7) weights); each outlet carries the seed
on a day with probability ``1 - exp(-rate * multiplier)``, so distinct outlets per day (what the test
counts) come from real outlet sets. Multipliers hold the weekday pattern, holidays and the rise; a
silent feed group removes its outlets. 93 days of history (the long baseline of a quiet seed) precede the
evaluated days.

**The limit.** For a rise lasting ``d`` days, the best test that knows the true baseline is the exact
one-sided Poisson test of the ``d``-day window ending on the rise's last day, with the critical count
set so that a flat timeline is flagged at most ``alpha`` of the days (``alpha`` = 0.1 false flags per
90 days). Its power is measured on the same simulated trials; narrwatch counts as catching the rise
when it flags any day of it. The ratio is printed only where the limit's power is at least 0.1
(below that, both are chance).

**False flags** are flag-days per seed per 90 days on timelines without a rise (acceptance: <= 0.1),
with the global weekday pattern, a seed-specific weekday pattern, holidays, a feed group going
silent (its outlets publish nothing for ten days: neither the silence nor the return may flag) and
day-to-day news-cycle swings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import poisson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from narrwatch.config import Settings  # noqa: E402
from narrwatch.domain.rising import (  # noqa: E402
    RisingParams,
    assess_rising,
)
from narrwatch.domain.rising_baseline import (  # noqa: E402
    Reference,
    baseline_dispersion,
    catalogue_prior,
    regular_outlets,
    subject_coverage,
    volume_exposure,
    weekday_factors,
)
from narrwatch.steps.detect.detect import params_from_settings  # noqa: E402

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


@dataclass
class Timeline:
    """One simulated seed: who carried it each day, and what the detector is told about the days."""

    carried: np.ndarray  # days x outlets, bool
    expected: np.ndarray  # true expected distinct outlets per day (without a rise: the limit's baseline)
    volume: np.ndarray  # articles per active outlet, all subjects (for the holiday exposure)
    active: np.ndarray  # days x outlets, bool: the outlet published anything that day
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
    new_seed: bool = False  # no history before the rise


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
    timeline = Timeline(carried=carried, expected=expected, volume=global_volume, active=active)
    if sc.new_seed:
        timeline.observed_from = DAYS[start]
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
    prior = catalogue_prior(rates, dispersions, information)
    assert prior is not None
    return prior


def detector_flags(
    timeline: Timeline,
    day_indices: range,
    params: RisingParams,
    prior: np.ndarray,
    ref: Reference,
    exposure: dict[dt.date, float],
) -> list[bool]:
    out = []
    for i in day_indices:
        day = DAYS[i]
        if timeline.counts[day] < 1:
            out.append(False)  # no outlet today: detect_rising does not test the subject
            continue
        result = assess_rising(
            day,
            timeline.counts,
            params,
            weekday_prior=prior,
            observed_from=timeline.observed_from,
            reference=ref,
            exposure=exposure,
            outlets=timeline.outlets,
        )
        out.append(bool(result and result.flagged))
    return out


def limit_critical(mu0: float, alpha: float) -> int:
    """Smallest count whose upper Poisson tail under the true baseline is within ``alpha``."""
    if mu0 <= 0:
        return 1
    return int(poisson.isf(alpha, mu0)) + 1


def run_scenario(rng: np.random.Generator, sc: Scenario, params: RisingParams, trials: int) -> dict[str, Any]:
    ref = catalogue(rng, sc, params)
    if not sc.duration and not sc.appears:
        per_seed = []
        new_flags = []
        for _ in range(trials):
            timeline, _ = simulate(rng, sc)
            hits = detector_flags(
                timeline, range(HISTORY, len(DAYS)), params, global_prior(rng), ref, exposure_of(timeline, sc)
            )
            per_seed.append(sum(hits))
            new_flags.append(sum(1 for i, h in enumerate(hits) if h and not any(hits[max(0, i - 7) : i])))
        return {
            "scenario": sc.name,
            "level": sc.level,
            "kind": "flat",
            "false_flags_per_90_days": round(float(np.mean(per_seed)) * 90 / EVALUATED, 4),
            "new_false_flags_per_90_days": round(float(np.mean(new_flags)) * 90 / EVALUATED, 4),
        }
    caught = limit_caught = 0
    duration = 7 if sc.appears else sc.duration
    for _ in range(trials):
        timeline, start = simulate(rng, sc)
        hits = detector_flags(
            timeline,
            range(start, start + duration),
            params,
            global_prior(rng),
            ref,
            exposure_of(timeline, sc),
        )
        caught += any(hits)
        window = slice(start, start + duration)
        critical = limit_critical(float(timeline.expected[window].sum()), params.alpha)
        limit_caught += int(timeline.carried[window].sum()) >= critical
    power, limit = caught / trials, limit_caught / trials
    return {
        "scenario": sc.name,
        "level": sc.level,
        "kind": "rise",
        "rise": sc.rise,
        "duration": duration,
        "power": round(power, 4),
        "limit_power": round(limit, 4),
        "ratio": round(power / limit, 3) if limit >= 0.1 else None,
    }


def scenarios() -> list[Scenario]:
    out = [Scenario("flat", level) for level in LEVELS]
    # the variants at three levels keep the run short on shared cores
    variant_levels = (1.0, 4.0, 16.0)
    out += [Scenario("flat, own weekday pattern", level, own_weekdays=True) for level in variant_levels]
    out += [Scenario("flat, holidays", level, holidays=True) for level in variant_levels]
    out += [
        Scenario("flat, 30% of outlets silent 10 days", level, silent="random") for level in variant_levels
    ]
    out += [
        Scenario("flat, seed's main outlets silent 10 days", level, silent="carrier")
        for level in variant_levels
    ]
    out += [Scenario("flat, day-to-day swings", level, day_noise=DAY_NOISE) for level in variant_levels]
    for level in LEVELS:
        for rise in RISES:
            for duration in DURATIONS:
                out.append(Scenario(f"x{rise:g} over {duration}d", level, rise=rise, duration=duration))
    out.append(Scenario("x3 over 3d, own weekday pattern", 4.0, rise=3.0, duration=3, own_weekdays=True))
    out.append(Scenario("x2 over 7d, own weekday pattern", 4.0, rise=2.0, duration=7, own_weekdays=True))
    out.append(Scenario("x3 over 3d, holidays", 4.0, rise=3.0, duration=3, holidays=True))
    out.append(Scenario("x3 over 3d, 30% silent", 4.0, rise=3.0, duration=3, silent="random"))
    out.append(Scenario("appears 0->3/day over a week", 0.0, appears=True))
    out.append(Scenario("appears 0->3/day, new seed", 0.0, appears=True, new_seed=True))
    return out


def bench_rising(args: argparse.Namespace) -> dict[str, Any]:
    params = params_from_settings(Settings(_env_file=None))
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows = []
    for sc in scenarios():
        if args.only and args.only not in sc.name:
            continue
        trials = args.seeds if not sc.duration and not sc.appears else args.trials
        rows.append(run_scenario(rng, sc, params, trials))
        if args.progress:
            print(rows[-1], file=sys.stderr, flush=True)
    rises = [r for r in rows if r["kind"] == "rise"]
    flats = [r for r in rows if r["kind"] == "flat"]
    ratios = [r["ratio"] for r in rises if r["ratio"] is not None]

    def find(name: str) -> float | None:
        return next((r["power"] for r in rises if r["scenario"] == name and r["level"] == 4.0), None)

    return {
        "params": {
            "alpha_per_day": params.alpha,
            "windows": list(params.windows),
            "window_shares": list(params.window_shares),
            "min_outlets": params.min_outlets,
            "min_ratio": params.min_ratio,
            "baseline_days": params.baseline_days,
        },
        "trials_per_rise": args.trials,
        "seeds_per_flat": args.seeds,
        "rows": rows,
        "acceptance": {
            "max_false_flags_per_90_days": max((r["false_flags_per_90_days"] for r in flats), default=None),
            "tripling_3d_at_4": find("x3 over 3d"),
            "doubling_7d_at_4": find("x2 over 7d"),
            "min_ratio_to_limit": min(ratios) if ratios else None,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_rising(result: dict[str, Any]) -> None:
    print(f"settings: {result['params']}")
    print(
        f"\nfalse flags per seed per 90 days, {result['seeds_per_flat']} seeds each (flag-days / new flags):"
    )
    flats = [r for r in result["rows"] if r["kind"] == "flat"]
    names = list(dict.fromkeys(r["scenario"] for r in flats))
    levels = sorted({r["level"] for r in flats})
    print(f"{'scenario':<42}" + "".join(f"{level:>13g}" for level in levels))
    for name in names:
        cells = {r["level"]: r for r in flats if r["scenario"] == name}
        print(
            f"{name:<42}"
            + "".join(
                f"{cells[lv]['false_flags_per_90_days']:>7.3f}/{cells[lv]['new_false_flags_per_90_days']:<5.3f}"
                if lv in cells
                else f"{'':>13}"
                for lv in levels
            )
        )
    print(f"\npower within the rise (narrwatch / limit = ratio), {result['trials_per_rise']} trials each:")
    print(f"{'scenario':<34} {'outlets/day':>11} {'narrwatch':>10} {'limit':>7} {'ratio':>7}")
    for r in result["rows"]:
        if r["kind"] != "rise":
            continue
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        print(
            f"{r['scenario']:<34} {r['level']:>11g} {r['power']:>10.3f} {r['limit_power']:>7.3f} {ratio:>7}"
        )
    print(f"\nacceptance: {result['acceptance']}")
    print(f"{result['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", nargs="?", default="rising", choices=["rising", "clusters"])
    parser.add_argument("--trials", type=int, default=200, help="simulated rises per scenario")
    parser.add_argument("--seeds", type=int, default=100, help="simulated flat seeds per scenario")
    parser.add_argument("--seed", type=int, default=20250106, help="random seed")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--progress", action="store_true", help="print each row to stderr as it is done")
    parser.add_argument("--articles", type=Path, default=REPO / "tests" / "rising" / "data" / "stories.jsonl")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "clusters":
        from narrwatch.eval.stream import sweep_cluster_thresholds

        sweep = sweep_cluster_thresholds(args.articles, Settings(_env_file=None))
        if args.json:
            print(json.dumps(sweep, indent=2))
        else:
            print(
                f"{sweep['n_articles']} articles, {sweep['n_gold_clusters']} stories, model {sweep['model']}"
            )
            header = ("join", "merge", "clusters", "B3 P", "B3 R", "B3 F1", "pair F1")
            print(" ".join(f"{h:>{w}}" for h, w in zip(header, (6, 6, 9, 6, 6, 6, 8), strict=True)))
            for row in sweep["rows"]:
                print(
                    f"{row['join']:>6.2f} {row['merge']:>6.3f} {row['n_clusters']:>9} "
                    f"{row['bcubed']['precision']:>6.3f} {row['bcubed']['recall']:>6.3f} "
                    f"{row['bcubed']['f1']:>6.3f} {row['pairwise']['f1']:>8.3f}"
                )
        return 0
    result = bench_rising(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_rising(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
