"""The pure parts of a backtest: how far down the vector search must go, and what changed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def rescale(cosine: float, background: float) -> float:
    """A raw cosine as the share of the way from the phrasing's background score to 1."""
    return (cosine - background) / (1.0 - background)


def raw_cutoff(background: float, floor: float) -> float:
    """The raw cosine at which a phrasing's rescaled similarity reaches ``floor`` (inverse of
    :func:`rescale`): the search can stop below it."""
    return background + floor * (1.0 - background)


@dataclass(frozen=True)
class LevelDiff:
    added: list[int]
    removed: list[int]
    level_changed: list[int]


def compare_levels(new: Mapping[int, str], stored: Mapping[int, str]) -> LevelDiff:
    """Articles the seed would now match and does not (added), no longer matches (removed), or
    matches at another level (level_changed), each sorted by article id."""
    return LevelDiff(
        added=sorted(set(new) - set(stored)),
        removed=sorted(set(stored) - set(new)),
        level_changed=sorted(i for i in set(new) & set(stored) if new[i] != stored[i]),
    )


def levels_per_day(found: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """(day, level) pairs counted per day, days in order, both levels always present."""
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: {"suggest": 0, "confirm": 0})
    for day, level in found:
        per_day[day][level] += 1
    return dict(sorted(per_day.items()))
