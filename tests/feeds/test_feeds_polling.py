"""The poll schedule and feed health (pure; property tests)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrwatch.domain.polling import (
    ErrorKind,
    HealthState,
    PollBounds,
    PollState,
    backoff_s,
    blend_item_gap,
    estimate_item_gap_s,
    feed_health_state,
    next_poll_at,
    parse_retry_after,
    success_interval_s,
    unit_jitter,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
BOUNDS = PollBounds()

bounds_strategy = st.builds(
    lambda low, span, backoff_extra, factor: PollBounds(
        default_interval_s=low + span // 2,
        min_interval_s=low,
        max_interval_s=low + span,
        max_backoff_s=low + span + backoff_extra,
        silent_factor=factor,
    ),
    st.integers(min_value=1, max_value=3600),
    st.integers(min_value=0, max_value=86_400),
    st.integers(min_value=0, max_value=7 * 86_400),
    st.floats(min_value=1.01, max_value=20),
)
kinds = st.sampled_from(list(ErrorKind))
jitters = st.floats(min_value=0, max_value=0.999999)


@given(
    bounds_strategy,
    st.integers(min_value=0, max_value=1000),
    st.one_of(st.none(), kinds),
    st.one_of(st.none(), st.floats(min_value=1, max_value=1e7)),
    st.one_of(st.none(), st.integers(min_value=-86_400, max_value=30 * 86_400)),
    st.text(max_size=20),
)
def test_next_poll_is_always_after_now_and_never_later_than_the_cap(
    bounds: PollBounds,
    failures: int,
    kind: ErrorKind | None,
    gap: float | None,
    retry_after: int | None,
    key: str,
) -> None:
    state = PollState(
        consecutive_failures=failures,
        last_error_kind=kind,
        mean_item_gap_s=gap,
        retry_after_until=NOW + dt.timedelta(seconds=retry_after) if retry_after is not None else None,
    )
    when = next_poll_at(NOW, state, bounds, jitter_key=key)
    assert when > NOW
    assert when <= NOW + dt.timedelta(seconds=max(bounds.max_backoff_s, bounds.max_interval_s) * 1.0001)


@given(bounds_strategy, st.one_of(st.none(), st.floats(min_value=1, max_value=1e7)), jitters)
def test_success_interval_follows_cadence_within_bounds(
    bounds: PollBounds, gap: float | None, jitter: float
) -> None:
    interval = success_interval_s(PollState(mean_item_gap_s=gap), bounds, jitter)
    assert bounds.min_interval_s <= interval <= bounds.max_interval_s


def test_busy_feeds_are_polled_more_often_than_quiet_ones() -> None:
    busy = success_interval_s(PollState(mean_item_gap_s=900), BOUNDS, 0.5)
    quiet = success_interval_s(PollState(mean_item_gap_s=4 * 3600), BOUNDS, 0.5)
    dead = success_interval_s(PollState(mean_item_gap_s=30 * 86400), BOUNDS, 0.5)
    assert BOUNDS.min_interval_s <= busy < quiet < dead == BOUNDS.max_interval_s


@given(bounds_strategy, kinds, jitters, st.integers(min_value=1, max_value=200))
def test_backoff_is_monotone_capped_and_never_below_the_minimum(
    bounds: PollBounds, kind: ErrorKind, jitter: float, failures: int
) -> None:
    now_delay = backoff_s(failures, kind, bounds, jitter)
    next_delay = backoff_s(failures + 1, kind, bounds, jitter)
    assert bounds.min_interval_s <= now_delay <= next_delay <= bounds.max_backoff_s


def test_backoff_doubles_for_temporary_errors_and_jumps_to_the_cap_for_hard_ones() -> None:
    delays = [backoff_s(n, ErrorKind.TEMPORARY, BOUNDS, 0.999999) for n in range(1, 12)]
    assert delays[0] == pytest.approx(BOUNDS.min_interval_s, rel=1e-3)
    assert delays[1] == pytest.approx(2 * BOUNDS.min_interval_s, rel=1e-3)
    assert delays[-1] == pytest.approx(BOUNDS.max_backoff_s, rel=1e-3)
    assert backoff_s(1, ErrorKind.HARD, BOUNDS, 0.999999) == pytest.approx(BOUNDS.max_backoff_s, rel=1e-3)


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=10 * 86_400))
def test_retry_after_is_honoured_up_to_the_backoff_cap(failures: int, retry_after: int) -> None:
    state = PollState(
        consecutive_failures=failures,
        last_error_kind=ErrorKind.TEMPORARY,
        retry_after_until=NOW + dt.timedelta(seconds=retry_after),
    )
    when = next_poll_at(NOW, state, BOUNDS, jitter_key="feed")
    assert when >= NOW + dt.timedelta(seconds=min(retry_after, BOUNDS.max_backoff_s))
    assert when <= NOW + dt.timedelta(seconds=BOUNDS.max_backoff_s)


def test_a_failing_feed_is_never_given_up() -> None:
    state = PollState(consecutive_failures=10_000, last_error_kind=ErrorKind.HARD)
    assert next_poll_at(NOW, state, BOUNDS) <= NOW + dt.timedelta(seconds=BOUNDS.max_backoff_s)


def test_jitter_is_deterministic_and_spreads_feeds() -> None:
    assert unit_jitter("a|2026") == unit_jitter("a|2026")
    values = {round(unit_jitter(f"feed-{i}"), 3) for i in range(100)}
    assert len(values) > 90
    first = next_poll_at(NOW, PollState(), BOUNDS, jitter_key="x")
    assert first == next_poll_at(NOW, PollState(), BOUNDS, jitter_key="x")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (PollState(paused=True, consecutive_failures=9), HealthState.PAUSED),
        (PollState(consecutive_failures=1), HealthState.DEGRADED),  # never worked
        (PollState(consecutive_failures=1, last_success_at=NOW, last_new_item_at=NOW), HealthState.OK),
        (PollState(consecutive_failures=3, last_success_at=NOW, last_new_item_at=NOW), HealthState.DEGRADED),
        (PollState(), HealthState.OK),  # not polled yet
        (PollState(last_success_at=NOW), HealthState.SILENT),  # polls fine, never had an item
        (
            PollState(
                last_success_at=NOW, last_new_item_at=NOW - dt.timedelta(hours=13), mean_item_gap_s=600
            ),
            HealthState.SILENT,
        ),
        (
            PollState(
                last_success_at=NOW, last_new_item_at=NOW - dt.timedelta(hours=11), mean_item_gap_s=600
            ),
            HealthState.OK,  # quiet night, not silent yet (floor of 12 h)
        ),
        (
            PollState(
                last_success_at=NOW, last_new_item_at=NOW - dt.timedelta(days=3), mean_item_gap_s=86_400
            ),
            HealthState.OK,  # a daily feed quiet for three days: within 4x its cadence
        ),
        (
            PollState(
                last_success_at=NOW, last_new_item_at=NOW - dt.timedelta(days=5), mean_item_gap_s=86_400
            ),
            HealthState.SILENT,
        ),
    ],
)
def test_health_states(state: PollState, expected: HealthState) -> None:
    assert feed_health_state(NOW, state, BOUNDS) is expected


def test_cadence_is_the_median_gap_of_recent_items() -> None:
    hourly = [NOW - dt.timedelta(hours=h) for h in range(10)]
    assert estimate_item_gap_s(hourly, NOW) == pytest.approx(3600)
    with_old_item = [*hourly, NOW - dt.timedelta(days=20)]
    assert estimate_item_gap_s(with_old_item, NOW) == pytest.approx(3600)
    assert estimate_item_gap_s(hourly[:2], NOW) is None
    assert estimate_item_gap_s([NOW - dt.timedelta(days=60)] * 5, NOW) is None
    assert blend_item_gap(None, 100.0) == 100.0
    assert blend_item_gap(1000.0, None) == 1000.0
    assert blend_item_gap(1000.0, 100.0) == pytest.approx(730.0)


@given(st.lists(st.integers(min_value=0, max_value=29 * 86_400), max_size=40))
def test_cadence_does_not_depend_on_item_order(offsets: list[int]) -> None:
    dates = [NOW - dt.timedelta(seconds=offset) for offset in offsets]
    assert estimate_item_gap_s(dates, NOW) == estimate_item_gap_s(list(reversed(dates)), NOW)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 0 ", NOW) == 0
    assert parse_retry_after("Sun, 01 Mar 2026 12:10:00 GMT", NOW) == 600
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", NOW) == 0  # in the past
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("-5", NOW) is None


def test_bounds_from_settings_apply_feed_overrides() -> None:
    class FakeSettings:
        poll_default_interval_s = 3600
        poll_min_interval_s = 600
        poll_max_interval_s = 7200
        poll_max_backoff_s = 86_400
        silent_factor = 4.0

    bounds = PollBounds.from_settings(FakeSettings(), {"min_interval_s": 900, "max_interval_s": 1800})
    assert (bounds.min_interval_s, bounds.max_interval_s) == (900, 1800)
    assert PollBounds.from_settings(FakeSettings()).min_interval_s == 600
    with pytest.raises(ValueError):
        PollBounds(min_interval_s=10, max_interval_s=5)
