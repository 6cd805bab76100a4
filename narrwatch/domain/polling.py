"""When to poll a feed next, and how healthy it is: pure functions of ``now`` and the feed's state.

The schedule follows Miniflux's model (the interval tracks how often a feed publishes, clamped) and
Media Cloud's failure policy (classified errors, capped backoff, ``Retry-After`` honoured, a feed is
never given up: at worst it is retried every ``max_backoff_s``).

Jitter is deterministic (a hash of a caller-given key, normally the feed id and ``now``), so replaying
a run from the shell gives the same schedule, while feeds polled at one moment still spread out.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class ErrorKind(StrEnum):
    """How a failed poll is retried (Media Cloud's classes, folded to three)."""

    #: Likely gone by the next attempt: timeouts, connection resets, 429, 502/503/504.
    TEMPORARY = "temporary"
    #: Needs a change on the other side: 404, 500, a body that is no feed, too large, parse errors.
    SOFT = "soft"
    #: Will not fix itself: a refused address or scheme, 410 Gone, a malformed URL.
    HARD = "hard"


class HealthState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # failing now: see last_error
    SILENT = "silent"  # polls fine, but nothing new for much longer than its usual cadence
    PAUSED = "paused"


class BoundsSettings(Protocol):
    """The part of ``narrwatch.config.Settings`` that bounds a schedule."""

    poll_default_interval_s: int
    poll_min_interval_s: int
    poll_max_interval_s: int
    poll_max_backoff_s: int
    silent_factor: float


@dataclass(frozen=True)
class PollBounds:
    default_interval_s: int = 3600
    min_interval_s: int = 600
    max_interval_s: int = 6 * 3600
    max_backoff_s: int = 24 * 3600
    silent_factor: float = 4.0
    #: Failures in a row before a feed that has worked before is reported degraded; one failure of a
    #: feed that never worked is enough (a wrong URL should show at once).
    degraded_after_failures: int = 3
    #: A feed is never called silent before this long without a new item: news sites are quiet at
    #: night, and a feed publishing every 10 minutes by day is not broken after 40 quiet minutes.
    silent_floor_s: int = 12 * 3600

    def __post_init__(self) -> None:
        if not 0 < self.min_interval_s <= self.max_interval_s:
            raise ValueError("need 0 < min_interval_s <= max_interval_s")
        if self.max_backoff_s < self.min_interval_s:
            raise ValueError("max_backoff_s must be >= min_interval_s")
        if self.silent_factor <= 1:
            raise ValueError("silent_factor must be > 1")

    @classmethod
    def from_settings(
        cls, settings: BoundsSettings, overrides: Mapping[str, Any] | None = None
    ) -> PollBounds:
        """Bounds from the settings, with a feed's ``poll`` overrides from feeds.yaml on top."""
        overrides = overrides or {}
        min_s = int(overrides.get("min_interval_s") or settings.poll_min_interval_s)
        max_s = int(overrides.get("max_interval_s") or settings.poll_max_interval_s)
        return cls(
            default_interval_s=settings.poll_default_interval_s,
            min_interval_s=min_s,
            max_interval_s=max(max_s, min_s),
            max_backoff_s=max(settings.poll_max_backoff_s, min_s),
            silent_factor=settings.silent_factor,
        )


@dataclass(frozen=True)
class PollState:
    """What the schedule needs to know about a feed after its latest attempt."""

    consecutive_failures: int = 0
    last_error_kind: ErrorKind | None = None  # kind of the latest failure, None after a success
    mean_item_gap_s: float | None = None
    retry_after_until: dt.datetime | None = None
    last_attempt_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_new_item_at: dt.datetime | None = None
    paused: bool = False


def unit_jitter(key: str) -> float:
    """A number in [0, 1) that depends only on ``key``."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def success_interval_s(state: PollState, bounds: PollBounds, jitter: float) -> float:
    """Seconds until the next poll of a feed that works: about one new item per poll, bounded."""
    gap = state.mean_item_gap_s if state.mean_item_gap_s else float(bounds.default_interval_s)
    return _clamp(gap * (0.9 + 0.2 * jitter), bounds.min_interval_s, bounds.max_interval_s)


def backoff_s(failures: int, kind: ErrorKind, bounds: PollBounds, jitter: float) -> float:
    """Seconds until the retry of a failing feed: doubling per failure from a base set by the kind,
    capped at ``max_backoff_s``, never below ``min_interval_s``; jitter takes up to half off.

    For a fixed jitter it never decreases as failures grow.
    """
    if kind is ErrorKind.HARD:
        ceiling = float(bounds.max_backoff_s)
    else:
        base = bounds.min_interval_s if kind is ErrorKind.TEMPORARY else bounds.default_interval_s
        exponent = min(max(failures, 1) - 1, 40)  # 2**40 s is far past any cap
        ceiling = min(float(bounds.max_backoff_s), base * 2.0**exponent)
    return _clamp(ceiling * (0.5 + 0.5 * jitter), bounds.min_interval_s, bounds.max_backoff_s)


def next_poll_at(
    now: dt.datetime, state: PollState, bounds: PollBounds, *, jitter_key: str = ""
) -> dt.datetime:
    """When to poll next, given the state *after* the attempt made at ``now``. Always after ``now``.

    A ``Retry-After`` the server sent is honoured up to ``max_backoff_s``.
    """
    jitter = unit_jitter(jitter_key)
    if state.consecutive_failures > 0:
        kind = state.last_error_kind or ErrorKind.SOFT
        delay = backoff_s(state.consecutive_failures, kind, bounds, jitter)
    else:
        delay = success_interval_s(state, bounds, jitter)
    when = now + dt.timedelta(seconds=delay)
    if state.retry_after_until is not None and state.retry_after_until > when:
        when = min(state.retry_after_until, now + dt.timedelta(seconds=bounds.max_backoff_s))
    return when


def silent_after_s(state: PollState, bounds: PollBounds) -> float:
    gap = state.mean_item_gap_s if state.mean_item_gap_s else float(bounds.default_interval_s)
    return max(bounds.silent_factor * gap, float(bounds.silent_floor_s))


def feed_health_state(now: dt.datetime, state: PollState, bounds: PollBounds) -> HealthState:
    """paused > degraded (failing) > silent (no new item for silent_factor x its cadence) > ok."""
    if state.paused:
        return HealthState.PAUSED
    failures = state.consecutive_failures
    if failures >= bounds.degraded_after_failures or (failures > 0 and state.last_success_at is None):
        return HealthState.DEGRADED
    if state.last_success_at is None:
        return HealthState.OK  # not polled yet
    reference = state.last_new_item_at
    if reference is None:
        return HealthState.SILENT  # polls fine, never had an item
    if (now - reference).total_seconds() > silent_after_s(state, bounds):
        return HealthState.SILENT
    return HealthState.OK


#: Only items this recent say anything about a feed's current cadence.
CADENCE_LOOKBACK = dt.timedelta(days=30)
_MIN_GAP_S = 60.0


def estimate_item_gap_s(published: Iterable[dt.datetime], now: dt.datetime) -> float | None:
    """Median gap between the recent items of one feed document, or None with fewer than 3 dates.

    The median, not the mean: one old item kept at the bottom of a feed must not make a busy feed
    look quiet.
    """
    recent = sorted(
        {when for when in published if now - CADENCE_LOOKBACK <= when <= now + dt.timedelta(hours=1)}
    )
    if len(recent) < 3:
        return None
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(recent, recent[1:], strict=False)]
    return max(_MIN_GAP_S, float(statistics.median(gaps)))


def blend_item_gap(previous: float | None, observed: float | None, weight: float = 0.3) -> float | None:
    """Exponentially weighted update of a feed's item gap, so one odd document moves it only a bit."""
    if observed is None:
        return previous
    if previous is None:
        return observed
    return (1.0 - weight) * previous + weight * observed


def parse_retry_after(value: str | None, reference: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    ``reference`` is the time the response was made (its ``Date`` header, else the receive time).
    None when the value is absent or unreadable; a date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(min(int(text), 10 * 365 * 86400))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - reference).total_seconds())
