"""Rising detection on simulated timelines, and the cluster threshold sweep.

    .venv/bin/python bench/rising.py [--seeds 200] [--bursts 400] [--json]
    .venv/bin/python bench/rising.py clusters [--articles tests/rising/data/stories.jsonl] [--json]

The default command simulates, for seeds at several levels of coverage, 28 baseline days plus 90 days
of article-level data: 150 outlets of uneven size, each publishing on the seed as a Poisson process
whose rate follows a weekday pattern (weekends at about half of weekdays). Distinct outlets per day
(what the test counts) therefore come from real outlet sets, not from a Poisson draw of the count.
It reports, with the default settings:

- false flags per seed per 90 days on flat timelines (acceptance: at most 1);
- how often a doubling of distinct outlets over 3 days is flagged on its first or second day (and by
  its third), with the burst starting on a random day of the 90.

``clusters`` embeds the project-written stories with the configured encoder and prints B-cubed and
pairwise F1 of the online clustering for a sweep of join thresholds: the figures behind the
per-model default in ``narrwatch/domain/clustering.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import brentq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from narrwatch.config import Settings  # noqa: E402
from narrwatch.domain.rising import RisingParams, assess_rising, weekday_factors  # noqa: E402
from narrwatch.steps.detect.detect import params_from_settings  # noqa: E402

#: Monday..Sunday volume relative to the weekly mean (weekends about half of weekdays).
WEEKDAY_PATTERN = np.array([1.12, 1.15, 1.14, 1.12, 1.07, 0.75, 0.65])
N_OUTLETS = 150
BASELINE = 28
EVALUATED = 90
LEVELS = (2.0, 4.0, 8.0, 16.0, 32.0)  # mean distinct outlets per day, over the week
START = dt.date(2025, 1, 6)  # a Monday
DAY_NOISE = 0.1  # squared CV of day-to-day news-cycle swings in the overdispersed variant


def outlet_rates(rng: np.random.Generator, level: float) -> np.ndarray:
    """Per-outlet Poisson rates (articles/day on an average weekday) giving ``level`` distinct outlets."""
    weights = rng.gamma(0.7, 1.0, N_OUTLETS)
    weights /= weights.sum()

    def distinct(scale: float) -> float:
        return float(np.sum(1.0 - np.exp(-scale * weights))) - level

    return weights * brentq(distinct, 1e-9, 1e4)


def doubling_scale(rates: np.ndarray, weekday_factor: float) -> float:
    """Multiplier of the outlet rates that doubles the expected distinct outlets on such a day."""
    base = float(np.sum(1.0 - np.exp(-rates * weekday_factor)))
    target = min(2.0 * base, N_OUTLETS - 0.5)
    return float(
        brentq(lambda c: float(np.sum(1.0 - np.exp(-c * rates * weekday_factor))) - target, 1.0, 1e4)
    )


def simulate_outlets(rng: np.random.Generator, rates: np.ndarray, multipliers: np.ndarray) -> np.ndarray:
    """Distinct outlets per day: outlets with at least one article that day."""
    articles = rng.poisson(np.outer(multipliers, rates))
    return (articles > 0).sum(axis=1)


def global_prior(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """The weekday pattern of all stored articles over the baseline, as detect_rising estimates it."""
    days = [START + dt.timedelta(days=i) for i in range(n_days)]
    weekdays = [d.weekday() for d in days]
    volume = rng.poisson(1500.0 * WEEKDAY_PATTERN[weekdays])
    return weekday_factors(volume, weekdays, None, strength=1.0)


def flags_on(counts: np.ndarray, days: list[dt.date], params: RisingParams, prior: np.ndarray) -> list[bool]:
    series = {d: int(c) for d, c in zip(days, counts, strict=True)}
    out = []
    for day in days[BASELINE:]:
        if series[day] < params.min_outlets:
            out.append(False)  # cannot flag: skip the test, as detect_rising does
            continue
        result = assess_rising(day, series, params, weekday_prior=prior)
        out.append(bool(result and result.flagged))
    return out


def run_flat(
    rng: np.random.Generator, params: RisingParams, n_seeds: int, day_noise: float = 0.0
) -> dict[str, Any]:
    """False flags on timelines without bursts; ``day_noise`` > 0 makes whole days busier or quieter
    (Gamma day multipliers with that squared coefficient of variation), as news cycles do."""
    days = [START + dt.timedelta(days=i) for i in range(BASELINE + EVALUATED)]
    weekday_multipliers = WEEKDAY_PATTERN[[d.weekday() for d in days]]
    by_level = {}
    for level in LEVELS:
        per_seed = []
        for _ in range(n_seeds):
            multipliers = weekday_multipliers
            if day_noise > 0:
                multipliers = multipliers * rng.gamma(1.0 / day_noise, day_noise, len(days))
            counts = simulate_outlets(rng, outlet_rates(rng, level), multipliers)
            per_seed.append(sum(flags_on(counts, days, params, global_prior(rng, BASELINE))))
        arr = np.asarray(per_seed)
        by_level[str(level)] = {
            "false_flags_per_seed_per_90_days": round(float(arr.mean()), 4),
            "seeds_with_more_than_1": round(float(np.mean(arr > 1)), 4),
            "max_per_seed": int(arr.max()),
        }
    overall = float(np.mean([v["false_flags_per_seed_per_90_days"] for v in by_level.values()]))
    return {
        "seeds_per_level": n_seeds,
        "day_noise": day_noise,
        "by_level": by_level,
        "mean_over_levels": round(overall, 4),
    }


def run_bursts(rng: np.random.Generator, params: RisingParams, n_bursts: int) -> dict[str, Any]:
    days = [START + dt.timedelta(days=i) for i in range(BASELINE + EVALUATED)]
    weekdays = [d.weekday() for d in days]
    by_level = {}
    for level in LEVELS:
        by_second = by_third = 0
        for _ in range(n_bursts):
            rates = outlet_rates(rng, level)
            start = BASELINE + int(rng.integers(0, EVALUATED - 2))
            multipliers = WEEKDAY_PATTERN[weekdays].copy()
            for i in range(start, start + 3):
                multipliers[i] *= doubling_scale(rates, float(WEEKDAY_PATTERN[weekdays[i]]))
            counts = simulate_outlets(rng, rates, multipliers)
            series = {d: int(c) for d, c in zip(days, counts, strict=True)}
            prior = global_prior(rng, BASELINE)
            hits = []
            for i in range(start, start + 3):
                result = (
                    assess_rising(days[i], series, params, weekday_prior=prior)
                    if series[days[i]] >= params.min_outlets
                    else None
                )
                hits.append(bool(result and result.flagged))
            by_second += hits[0] or hits[1]
            by_third += any(hits)
        by_level[str(level)] = {
            "flagged_by_second_day": round(by_second / n_bursts, 4),
            "flagged_by_third_day": round(by_third / n_bursts, 4),
        }
    return {"bursts_per_level": n_bursts, "by_level": by_level}


def bench_rising(args: argparse.Namespace) -> dict[str, Any]:
    params = params_from_settings(Settings(_env_file=None))
    if args.windows:
        params = replace(params, windows=tuple(int(w) for w in args.windows.split(",")))
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    flat = run_flat(rng, params, args.seeds)
    noisy = run_flat(rng, params, args.seeds, day_noise=DAY_NOISE)
    bursts = run_bursts(rng, params, args.bursts)
    return {
        "params": {
            "baseline_days": params.baseline_days,
            "min_outlets": params.min_outlets,
            "alpha": params.alpha,
            "min_ratio": params.min_ratio,
            "windows": list(params.windows),
            "guard_days": params.guard_days,
            "dispersion_confidence": params.dispersion_confidence,
        },
        "outlets": N_OUTLETS,
        "weekday_pattern": WEEKDAY_PATTERN.tolist(),
        "flat": flat,
        "flat_noisy_days": noisy,
        "doubling": bursts,
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_flat(title: str, flat: dict[str, Any]) -> None:
    print(f"\n{title}, {flat['seeds_per_level']} seeds per level, 90 days each:")
    print(f"{'outlets/day':>12} {'false flags/seed/90d':>22} {'seeds >1 flag':>14} {'max':>5}")
    for level, row in flat["by_level"].items():
        print(
            f"{level:>12} {row['false_flags_per_seed_per_90_days']:>22.3f} "
            f"{row['seeds_with_more_than_1']:>14.3f} {row['max_per_seed']:>5}"
        )
    print(f"mean over levels: {flat['mean_over_levels']:.3f} (acceptance: <= 1)")


def print_rising(result: dict[str, Any]) -> None:
    print(f"settings: {result['params']}  outlets: {result['outlets']}")
    print(f"weekday pattern (Mon..Sun): {result['weekday_pattern']}")
    print_flat("flat Poisson timelines", result["flat"])
    print_flat(
        f"flat timelines with day-to-day swings (squared CV {result['flat_noisy_days']['day_noise']})",
        result["flat_noisy_days"],
    )
    print(f"\ndoubling of distinct outlets for 3 days, {result['doubling']['bursts_per_level']} per level:")
    print(f"{'outlets/day':>12} {'flagged by day 2':>17} {'by day 3':>9}")
    for level, row in result["doubling"]["by_level"].items():
        print(f"{level:>12} {row['flagged_by_second_day']:>17.3f} {row['flagged_by_third_day']:>9.3f}")
    print(f"\n{result['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", nargs="?", default="rising", choices=["rising", "clusters"])
    parser.add_argument("--seeds", type=int, default=200, help="simulated flat seeds per level")
    parser.add_argument("--bursts", type=int, default=400, help="simulated bursts per level")
    parser.add_argument("--seed", type=int, default=20250106, help="random seed")
    parser.add_argument("--windows", help="override the test windows, e.g. 1 or 1,2")
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
            print(
                f"{'join':>6} {'merge':>6} {'clusters':>9} {'B3 P':>6} {'B3 R':>6} {'B3 F1':>6} "
                f"{'pair F1':>8}"
            )
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
