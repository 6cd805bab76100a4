"""Flags that say new or continuing and what changed since yesterday; counts that never go stale."""

from __future__ import annotations

import datetime as dt

import pytest
from rising_support import add_article, add_match, add_seed_version, add_verdict
from sqlalchemy import select
from test_rising_store import COLLECTION, DAY, NOW, SEED, at, build_history, flags, outlet

from narrwatch.context import AppContext
from narrwatch.db.models import DailyCount, Match
from narrwatch.steps.detect.detect import detect_rising
from narrwatch.steps.report.collect import collect_report_data

pytestmark = pytest.mark.db

NEXT = DAY + dt.timedelta(days=1)


def add_burst(ctx: AppContext, day: dt.date, outlets: range, tag: str) -> None:
    with ctx.transaction() as session:
        known = select(Match.narrative_version_id).where(Match.narrative_id == SEED).limit(1)
        version = session.scalar(known)
        for i in outlets:
            name, country, language = outlet(i)
            article = add_article(
                session,
                key=f"{tag}-{i}",
                outlet=name,
                published_at=at(day, 7 + i % 10),
                title=f"NATO is the aggressor ({tag} {name})",
                country=country,
                language=language,
            )
            add_match(session, article, SEED, version, collection=COLLECTION)


def outlets_on(ctx: AppContext, subject_id: str, day: dt.date) -> int | None:
    with ctx.transaction() as session:
        return session.scalar(
            select(DailyCount.n_outlets).where(
                DailyCount.day == day,
                DailyCount.subject_id == subject_id,
                DailyCount.dimension == "all",
            )
        )


def test_a_flag_is_new_then_continuing_with_the_change_since_yesterday(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60), burst_outlets=12)
    add_burst(ctx, NEXT, range(6, 22), "next")  # six outlets of yesterday's twelve, ten new ones
    detect_rising(ctx, DAY, NOW)
    detect_rising(ctx, NEXT, NOW + dt.timedelta(days=1))
    first = flags(ctx, DAY)[("narrative", SEED, "all", "all")]
    second = flags(ctx, NEXT)[("narrative", SEED, "all", "all")]
    assert first.is_new and first.run_day == 1 and not first.flagged_yesterday
    assert not second.is_new and second.run_day == 2 and second.flagged_yesterday
    assert second.window_days in (1, 3, 7) and second.statistic.endswith(f"_{second.window_days}d")
    assert second.outlets_yesterday == 12 and second.n_outlets == 16
    assert second.new_outlets == sorted(outlet(i)[0] for i in range(12, 22))


def test_the_report_shows_new_flags_first_and_what_fell_back(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60), burst_outlets=12)
    detect_rising(ctx, DAY, NOW)
    detect_rising(ctx, NEXT, NOW + dt.timedelta(days=1))  # an ordinary day after the burst
    data = collect_report_data(ctx, NEXT, NOW + dt.timedelta(days=1))
    assert [(b.kind, b.subject_id, b.run_days) for b in data.fell_back] == [("narrative", SEED, 1)]
    today = collect_report_data(ctx, DAY, NOW)
    assert today.rising and today.rising[0].new and today.rising[0].run_day == 1
    assert today.as_json()["rising"][0]["overall"]["new"] is True


def seed_mean(ctx: AppContext, narrative_id: str, day: dt.date, now: dt.datetime) -> float:
    data = collect_report_data(ctx, day, now)
    return next(s.mean_outlets for s in data.seeds if s.narrative_id == narrative_id)


def test_activating_a_seed_recounts_the_past_days_it_matches(ctx: AppContext) -> None:
    """A seed added after its articles were counted changes those days' counts and the report's mean."""
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60), burst_outlets=0)
    detect_rising(ctx, DAY, NOW)
    past = DAY - dt.timedelta(days=5)
    assert outlets_on(ctx, "late-seed", past) is None
    with ctx.transaction() as session:
        # the late seed is activated on DAY and backfilled onto articles of a past day
        version = add_seed_version(session, "late-seed", at(DAY, 0))
        for i in range(4):
            article = add_article(
                session, key=f"late-{i}", outlet=f"late-outlet-{i}", published_at=at(past), title=f"late {i}"
            )
            add_match(session, article, "late-seed", version, collection=COLLECTION)
    detect_rising(ctx, DAY, NOW)
    assert outlets_on(ctx, "late-seed", past) == 4
    assert seed_mean(ctx, "late-seed", DAY, NOW) == pytest.approx(4 / 28, abs=0.01)


def test_labelling_a_past_match_recounts_that_day(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60), burst_outlets=0)
    detect_rising(ctx, DAY, NOW)
    past = DAY - dt.timedelta(days=6)
    before = outlets_on(ctx, SEED, past)
    mean_before = seed_mean(ctx, SEED, DAY, NOW)
    assert before is not None and before >= 1
    with ctx.transaction() as session:
        match = session.scalars(
            select(Match)
            .where(Match.narrative_id == SEED, Match.published_at >= at(past, 0))
            .order_by(Match.id)
        ).first()
        assert match is not None and match.published_at.date() == past
        add_verdict(session, match, "reject")
    detect_rising(ctx, DAY, NOW)
    assert outlets_on(ctx, SEED, past) == before - 1
    assert seed_mean(ctx, SEED, DAY, NOW) == pytest.approx(mean_before - 1 / 28, abs=0.006)
