"""The episode rule and the two scores of bench/rising_episodes.py, on hand-made streams."""

from __future__ import annotations

import datetime as dt

from bench.rising_episodes import (
    CATCH_DAYS,
    HOT_ITEMS,
    QUIET_DAYS,
    Episode,
    daily_counts,
    find_episodes,
    score,
)

DAY = dt.date(2025, 3, 3)


def rows_on(seed: str, day: dt.date, n: int) -> list[dict]:
    stamp = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).isoformat()
    return [{"published": stamp, "labels": [seed]} for _ in range(n)]


def test_a_day_below_the_bar_is_no_episode_and_a_long_quiet_gap_splits_two() -> None:
    rows = rows_on("a", DAY, HOT_ITEMS - 1)
    rows += rows_on("b", DAY, HOT_ITEMS) + rows_on("b", DAY + dt.timedelta(days=QUIET_DAYS - 1), HOT_ITEMS)
    rows += rows_on("c", DAY, HOT_ITEMS) + rows_on("c", DAY + dt.timedelta(days=QUIET_DAYS), HOT_ITEMS)
    episodes = find_episodes(daily_counts(rows))
    assert [(e.seed, e.start) for e in episodes] == [
        ("b", DAY),
        ("c", DAY),
        ("c", DAY + dt.timedelta(days=QUIET_DAYS)),
    ]
    assert episodes[0].end == DAY + dt.timedelta(days=QUIET_DAYS - 1)
    assert episodes[0].items == 2 * HOT_ITEMS


def test_unlabelled_rows_count_for_no_seed() -> None:
    rows = [{"published": "2025-03-03T10:00:00Z", "labels": []} for _ in range(5)]
    assert find_episodes(daily_counts(rows)) == []


def test_a_flag_after_the_catch_window_misses_and_a_flag_on_another_seed_is_outside() -> None:
    episodes = [Episode("a", DAY, DAY, 3), Episode("b", DAY, DAY, 3)]
    flags = [
        {"narrative": "a", "date": (DAY + dt.timedelta(days=1)).isoformat()},
        {"narrative": "b", "date": (DAY + dt.timedelta(days=CATCH_DAYS + 1)).isoformat()},
        {"narrative": "z", "date": DAY.isoformat()},
    ]
    result = score(episodes, flags)
    assert (result["caught"], result["episodes"]) == (1, 2)
    assert (result["flags_inside"], result["flags"]) == (1, 3)
    assert result["median_delay_days"] == 1
