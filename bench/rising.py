"""Rising detection against the statistical limit on simulated timelines, and the cluster threshold sweep.

    .venv/bin/python bench/rising.py [--trials 200] [--seeds 20] [--only NAME] [--level N]
                                     [--set NAME=VALUE] [--progress] [--json]
    .venv/bin/python bench/rising.py clusters [--articles tests/rising/data/stories.jsonl] [--json]

Seeds are simulated by ``bench/rising_timelines.py``. ``bench/rising_oracle.py`` prints how much of the
limit the windows' shared budget leaves when the baseline is known (no estimation at all).

**The limit.** For a rise lasting ``d`` days, the best test that knows the true baseline is the exact
one-sided Poisson test of the ``d``-day window ending on the rise's last day. It is held to the
false-flag rate narrwatch actually has on the matching flat timelines (capped at ``alpha``, 0.1 per
90 days): its critical count is the least whose tail under the true baseline is within that rate
per day. Its power is measured on the same simulated trials; narrwatch counts as catching the rise
when it flags any day of it. The limit at the full budget is printed too. The ratio is printed
only where the limit's power is at least 0.1 (below that, both are chance).

**False flags** are flag-days per seed per 90 days on timelines without a rise (acceptance: <= 0.1),
with the global weekday pattern, a seed-specific weekday pattern, holidays, a feed group going
silent (its outlets publish nothing for ten days: neither the silence nor the return may flag) and
day-to-day news-cycle swings. Each day adds its *chance* of a flag given the days before (the
least count of outlets that flags, against the day's true distribution of outlets), which is far
less noisy than counting flags; the flags that did happen are printed beside it. Even so a seed
whose outlets happen to cluster for a few days keeps flagging for several, so a seed's flag-days
are heavy-tailed: 40 seeds leave a standard error of up to 0.05 per 90 days at one outlet a day,
and the limit's rate inherits it. Use 100 seeds or more for figures.

**A new seed** appears from nothing (0 -> 3 outlets a day over a week). Added by an analyst on its
first day, it has as history the stored days the recompute step scores against a new seed
(``recompute_window_days``): days without a match there are zeros narrwatch observed, as the limit
knows them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rising_timelines import (  # noqa: E402
    DAY_NOISE,
    DAYS,
    DURATIONS,
    EVALUATED,
    HISTORY,
    LEVELS,
    N_OUTLETS,
    RISES,
    Scenario,
    Timeline,
    catalogue,
    exposure_of,
    global_prior,
    limit_critical,
    simulate,
)

from narrwatch.config import Settings  # noqa: E402
from narrwatch.domain.rising import (  # noqa: E402
    RisingParams,
    assess_rising,
)
from narrwatch.domain.rising_baseline import Reference  # noqa: E402
from narrwatch.steps.detect.detect import params_from_settings  # noqa: E402


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


def count_pmf(chance: np.ndarray) -> np.ndarray:
    """Distribution of the number of outlets carrying the seed (each independently, with ``chance``)."""
    carriers = chance[chance > 0]
    pmf = np.zeros(carriers.size + 1)
    pmf[0] = 1.0
    for k, q in enumerate(carriers):
        pmf[1 : k + 2] = pmf[1 : k + 2] * (1.0 - q) + pmf[: k + 1] * q
        pmf[0] *= 1.0 - q
    return pmf


def flag_threshold(
    timeline: Timeline,
    i: int,
    flagged_at: Callable[[dict[dt.date, int], dict[dt.date, set[str]]], bool],
    guess: int,
) -> int:
    """The least count of outlets today that flags the seed, given every earlier day (0: none up to
    all outlets), searched from ``guess`` (yesterday's). Today's outlets are taken as new to the
    windows, an upper bound of the distinct outlets, so the flag probability it gives is if anything
    too high."""
    day = DAYS[i]

    def flags(count: int) -> bool:
        counts = {**timeline.counts, day: count}
        outlets = {**timeline.outlets, day: {f"today{j}" for j in range(count)}}
        return flagged_at(counts, outlets)

    # gallop from the guess (thresholds move little from day to day), then bisect; count 0 never flags
    guess = min(max(1, guess), N_OUTLETS)
    step = 1
    if flags(guess):
        low, high = 0, guess
        while high - step > 0 and flags(high - step):
            high, step = high - step, 2 * step
        low = max(0, high - step)
    else:
        low = guess
        while True:
            probe = min(N_OUTLETS, low + step)
            if flags(probe):
                high = probe
                break
            if probe == N_OUTLETS:
                return 0
            low, step = probe, 2 * step
    while high - low > 1:
        middle = (low + high) // 2
        if flags(middle):
            high = middle
        else:
            low = middle
    return high


def flat_seed(
    timeline: Timeline,
    params: RisingParams,
    prior: np.ndarray,
    ref: Reference,
    exposure: dict[dt.date, float],
) -> tuple[float, list[bool]]:
    """Expected flag-days of one flat seed over the evaluated days, and the days it was flagged.

    The expectation sums each day's chance of a flag given the days before it (the count that flags
    today, against the day's true distribution of outlets): far less noisy than counting flags.
    """

    def flagged_at(counts: dict[dt.date, int], outlets: dict[dt.date, set[str]], day: dt.date) -> bool:
        result = assess_rising(
            day,
            counts,
            params,
            weekday_prior=prior,
            observed_from=timeline.observed_from,
            reference=ref,
            exposure=exposure,
            outlets=outlets,
        )
        return bool(result and result.flagged)

    expected, hits, threshold = 0.0, [], 0
    for i in range(HISTORY, len(DAYS)):
        guess = threshold or int(np.ceil(timeline.chance[i].sum())) + 1
        threshold = flag_threshold(timeline, i, lambda c, o, d=DAYS[i]: flagged_at(c, o, d), guess)
        if threshold:
            expected += float(count_pmf(timeline.chance[i])[threshold:].sum())
        hits.append(bool(threshold) and timeline.counts[DAYS[i]] >= threshold)
    return expected, hits


def run_flat(rng: np.random.Generator, sc: Scenario, params: RisingParams, seeds: int) -> dict[str, Any]:
    ref = catalogue(rng, sc, params)
    expected, per_seed, new_flags = [], [], []
    for _ in range(seeds):
        timeline, _ = simulate(rng, sc)
        chance, hits = flat_seed(timeline, params, global_prior(rng), ref, exposure_of(timeline, sc))
        expected.append(chance)
        per_seed.append(sum(hits))
        new_flags.append(sum(1 for i, h in enumerate(hits) if h and not any(hits[max(0, i - 7) : i])))
    return {
        "scenario": sc.name,
        "level": sc.level,
        "kind": "flat",
        "expected_flags_per_90_days": round(float(np.mean(expected)) * 90 / EVALUATED, 4),
        "expected_flags_standard_error": round(
            float(np.std(expected, ddof=1) / np.sqrt(seeds)) * 90 / EVALUATED, 4
        )
        if seeds > 1
        else None,
        "false_flags_per_90_days": round(float(np.mean(per_seed)) * 90 / EVALUATED, 4),
        "new_false_flags_per_90_days": round(float(np.mean(new_flags)) * 90 / EVALUATED, 4),
    }


def run_rise(
    rng: np.random.Generator, sc: Scenario, params: RisingParams, trials: int, flat_rate: float
) -> dict[str, Any]:
    """Power within the rise, and the limit's at ``flat_rate`` (narrwatch's false flags per day on the
    same flat data, at most the budget) and at the budget ``alpha``."""
    ref = catalogue(rng, sc, params)
    caught = limit_caught = budget_caught = 0
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
        mu0, count = float(timeline.expected[window].sum()), int(timeline.carried[window].sum())
        limit_caught += count >= limit_critical(mu0, min(flat_rate, params.alpha))
        budget_caught += count >= limit_critical(mu0, params.alpha)
    power, limit = caught / trials, limit_caught / trials
    return {
        "scenario": sc.name,
        "level": sc.level,
        "kind": "rise",
        "rise": sc.rise,
        "duration": duration,
        "power": round(power, 4),
        "limit_rate_per_90_days": round(min(flat_rate, params.alpha) * 90, 4),
        "limit_power": round(limit, 4),
        "limit_power_at_budget": round(budget_caught / trials, 4),
        "ratio": round(power / limit, 3) if limit >= 0.1 else None,
    }


def flat_of(sc: Scenario) -> Scenario:
    """The flat timelines whose false flags a rise's limit is held to."""
    return dataclasses.replace(sc, name=f"flat like {sc.name}", rise=1.0, duration=0)


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


def parse_field(params: RisingParams, name: str, value: str) -> Any:
    """A ``--set`` value in the type of the field: a number, or numbers separated by commas."""
    current = getattr(params, name)
    if isinstance(current, tuple):
        return tuple(type(current[0])(v) for v in value.split(","))
    return type(current)(value)


def bench_rising(args: argparse.Namespace) -> dict[str, Any]:
    params = params_from_settings(Settings(_env_file=None))
    overrides = dict(item.split("=", 1) for item in args.set or [])
    params = dataclasses.replace(params, **{k: parse_field(params, k, v) for k, v in overrides.items()})
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    flat_rates: dict[tuple[Any, ...], float] = {}

    def key(sc: Scenario) -> tuple[Any, ...]:
        return (sc.level, sc.own_weekdays, sc.holidays, sc.silent, sc.day_noise)

    def run_flat_row(sc: Scenario) -> None:
        rows.append(run_flat(rng, sc, params, args.seeds))
        flat_rates[key(sc)] = rows[-1]["expected_flags_per_90_days"] / 90.0
        if args.progress:
            print(rows[-1], file=sys.stderr, flush=True)

    for sc in scenarios():
        if args.only and args.only not in sc.name or args.level is not None and sc.level != args.level:
            continue
        if not sc.duration and not sc.appears:
            run_flat_row(sc)
            continue
        if not sc.appears and key(sc) not in flat_rates:
            run_flat_row(flat_of(sc))
        rate = params.alpha if sc.appears else flat_rates[key(sc)]
        rows.append(run_rise(rng, sc, params, args.trials, rate))
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
            "window_weights": list(params.window_weights),
            "min_outlets": params.min_outlets,
            "min_ratio": params.min_ratio,
            "baseline_days": params.baseline_days,
        },
        "trials_per_rise": args.trials,
        "seeds_per_flat": args.seeds,
        "rows": rows,
        "acceptance": {
            "max_false_flags_per_90_days": max(
                (r["expected_flags_per_90_days"] for r in flats), default=None
            ),
            "tripling_3d_at_4": find("x3 over 3d"),
            "doubling_7d_at_4": find("x2 over 7d"),
            "min_ratio_to_limit": min(ratios) if ratios else None,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def print_rising(result: dict[str, Any]) -> None:
    print(f"settings: {result['params']}")
    print(
        f"\nfalse flags per seed per 90 days, {result['seeds_per_flat']} seeds each "
        "(expected flag-days ± standard error; flag-days and new flags that happened):"
    )
    flats = [r for r in result["rows"] if r["kind"] == "flat"]
    print(f"{'scenario':<42} {'outlets/day':>11} {'expected':>16} {'happened':>9} {'new':>6}")
    for r in flats:
        error = r["expected_flags_standard_error"]
        spread = f" ± {error:.3f}" if error is not None else ""
        print(
            f"{r['scenario']:<42} {r['level']:>11g} {r['expected_flags_per_90_days']:>7.3f}{spread:<9} "
            f"{r['false_flags_per_90_days']:>9.3f} {r['new_false_flags_per_90_days']:>6.3f}"
        )
    print(
        f"\npower within the rise, {result['trials_per_rise']} trials each: narrwatch, the limit at "
        "narrwatch's false-flag rate on the matching flat data (per 90 days), ratio; the limit at alpha"
    )
    header = ("scenario", "outlets/day", "narrwatch", "limit", "at rate", "ratio", "at budget")
    print(f"{header[0]:<34}" + "".join(f"{h:>11}" for h in header[1:]))
    for r in result["rows"]:
        if r["kind"] != "rise":
            continue
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        print(
            f"{r['scenario']:<34} {r['level']:>10g} {r['power']:>10.3f} {r['limit_power']:>10.3f} "
            f"{r['limit_rate_per_90_days']:>10.3f} {ratio:>10} {r['limit_power_at_budget']:>10.3f}"
        )
    print(f"\nacceptance: {result['acceptance']}")
    print(f"{result['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", nargs="?", default="rising", choices=["rising", "clusters"])
    parser.add_argument("--trials", type=int, default=200, help="simulated rises per scenario")
    parser.add_argument("--seeds", type=int, default=20, help="simulated flat seeds per scenario")
    parser.add_argument("--seed", type=int, default=20250106, help="random seed")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--level", type=float, help="run only the scenarios at this many outlets a day")
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a RisingParams field (numbers; tuples as 2,1,1)",
    )
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
