"""Score `narrwatch eval rising` against burst episodes defined from a labelled stream's own labels.

    python bench/rising_episodes.py --stream eval/thirdparty/emergent/stream.jsonl \
        --narratives eval/thirdparty/emergent/seeds [--flags flags.json]

Without ``--flags`` the stream is replayed here through ``eval rising`` (the shipped detector with its
defaults, nothing tuned); with it, the JSON list that ``narrwatch eval rising --json`` printed is read.

Episodes (declared before any run, never fitted to the detector's output):

- a seed's day is *hot* when at least ``HOT_ITEMS`` labelled items of that seed were published that
  UTC day;
- an episode starts on a hot day and lasts while hot days follow each other with gaps of fewer than
  ``QUIET_DAYS`` days; it ends on its last hot day (``QUIET_DAYS`` days in a row below the bar end it).

Scores:

- *caught*: an episode is caught when its seed has a flag from ``EARLY_DAYS`` before its start to
  ``CATCH_DAYS`` after it (a flag on the ramp up counts);
- *inside*: a flag is inside an episode of its seed when it falls from ``EARLY_DAYS`` before the
  episode's start to ``AFTER_DAYS`` after its end (multi-day windows fire after the last busy day).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from narrwatch.domain.clock import iso_utc  # noqa: E402

HOT_ITEMS = 3
QUIET_DAYS = 7
CATCH_DAYS = 20
EARLY_DAYS = 3
AFTER_DAYS = 7


@dataclass(frozen=True)
class Episode:
    seed: str
    start: dt.date
    end: dt.date
    items: int  # labelled items from start to end


def daily_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, Counter[dt.date]]:
    """Labelled items per seed and UTC publication day."""
    counts: dict[str, Counter[dt.date]] = defaultdict(Counter)
    for row in rows:
        day = iso_utc(str(row["published"])).date()
        for seed in row.get("labels", []):
            counts[seed][day] += 1
    return counts


def find_episodes(counts: Mapping[str, Counter[dt.date]]) -> list[Episode]:
    episodes: list[Episode] = []
    for seed, per_day in sorted(counts.items()):
        hot = sorted(day for day, n in per_day.items() if n >= HOT_ITEMS)
        groups: list[list[dt.date]] = []
        for day in hot:
            if groups and (day - groups[-1][-1]).days < QUIET_DAYS:
                groups[-1].append(day)
            else:
                groups.append([day])
        for group in groups:
            start, end = group[0], group[-1]
            items = sum(n for day, n in per_day.items() if start <= day <= end)
            episodes.append(Episode(seed, start, end, items))
    return episodes


def score(episodes: Sequence[Episode], flags: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_seed: dict[str, list[dt.date]] = defaultdict(list)
    for flag in flags:
        by_seed[str(flag["narrative"])].append(dt.date.fromisoformat(str(flag["date"])))
    early, catch, after = (dt.timedelta(days=n) for n in (EARLY_DAYS, CATCH_DAYS, AFTER_DAYS))
    caught = [e for e in episodes if any(e.start - early <= d <= e.start + catch for d in by_seed[e.seed])]
    delays = sorted(
        max(0, (min(d for d in by_seed[e.seed] if e.start - early <= d) - e.start).days) for e in caught
    )
    windows: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        windows[episode.seed].append(episode)
    inside = sum(
        1
        for seed, days in by_seed.items()
        for day in days
        if any(e.start - early <= day <= e.end + after for e in windows[seed])
    )
    n_flags = sum(len(days) for days in by_seed.values())
    return {
        "episodes": len(episodes),
        "caught": len(caught),
        "recall": len(caught) / len(episodes) if episodes else 0.0,
        "median_delay_days": delays[len(delays) // 2] if delays else None,
        "flags": n_flags,
        "flags_inside": inside,
        "precision": inside / n_flags if n_flags else 0.0,
        "seeds_flagged": sum(1 for days in by_seed.values() if days),
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    from narrwatch.eval.match import EvalDataError, iter_jsonl_rows

    return [row for _, row in iter_jsonl_rows(path, EvalDataError)]


def replay(stream: Path, narratives: Path) -> list[dict[str, Any]]:
    from narrwatch.config import get_settings
    from narrwatch.eval.stream import eval_rising

    return eval_rising(stream, narratives, get_settings()).flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stream", type=Path, required=True)
    parser.add_argument("--narratives", type=Path, required=True)
    parser.add_argument("--flags", type=Path, help="JSON printed by `narrwatch eval rising --json`")
    parser.add_argument("--save-flags", type=Path, help="write the replayed flags here")
    args = parser.parse_args(argv)
    rows = read_rows(args.stream)
    if args.flags:
        flags = json.loads(args.flags.read_text(encoding="utf-8"))
    else:
        flags = replay(args.stream, args.narratives)
        if args.save_flags:
            args.save_flags.write_text(json.dumps(flags, indent=1), encoding="utf-8")
    episodes = find_episodes(daily_counts(rows))
    result = score(episodes, flags)
    print(json.dumps(result, indent=2))
    print(
        f"caught within {CATCH_DAYS} days of start: {result['caught']}/{result['episodes']} "
        f"= {result['recall']:.3f}; flags inside an episode: {result['flags_inside']}/{result['flags']} "
        f"= {result['precision']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
