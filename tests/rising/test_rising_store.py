"""detect_rising on the SQL store: counts, flags with their statistics, reruns, merges, verdicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rising_support import add_article, add_match, add_seed_version, add_verdict
from sqlalchemy import select

from narrwatch.analyst.label import label_match
from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Cluster, ClusterMember, CountChange, DailyCount, MatchState, RisingFlag
from narrwatch.domain.rising import DayCount
from narrwatch.steps.detect.detect import detect_rising
from narrwatch.web.queries import timeline

pytestmark = pytest.mark.db

SEED = "nato-aggressor-balkans"
DAY = dt.date(2025, 3, 12)  # a Wednesday
NOW = dt.datetime(2025, 3, 13, 1, 0, tzinfo=dt.UTC)
COLLECTION = "passages__test"
#: Outlets carrying the seed on an ordinary day: three on weekdays, one at weekends.
ORDINARY = {0: 3, 1: 3, 2: 3, 3: 3, 4: 3, 5: 1, 6: 1}


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def outlet(i: int) -> tuple[str, str, str]:
    """(outlet, country, language) of the i-th outlet: half Serbian, half Bosnian."""
    return (f"outlet-{i:02d}", "rs", "sr") if i % 2 == 0 else (f"outlet-{i:02d}", "ba", "bs")


def build_history(ctx: AppContext, *, seed_created: dt.date, burst_outlets: int = 20) -> None:
    """35 ordinary days for the seed, then ``burst_outlets`` outlets on DAY (with wire copies)."""
    with ctx.transaction() as session:
        version = add_seed_version(session, SEED, at(seed_created, 0))
        for offset in range(35, 0, -1):
            day = DAY - dt.timedelta(days=offset)
            for i in range(ORDINARY[day.weekday()]):
                name, country, language = outlet(i + offset % 5)
                article = add_article(
                    session,
                    key=f"{day}-{i}",
                    outlet=name,
                    published_at=at(day, 8 + i),
                    title=f"NATO bombing anniversary piece {day} {i}",
                    country=country,
                    language=language,
                )
                add_match(session, article, SEED, version, collection=COLLECTION)
        for i in range(burst_outlets):
            name, country, language = outlet(i)
            # one wire story that every outlet republishes, and the first outlet posts it twice
            copies = 2 if i == 0 else 1
            for copy in range(copies):
                article = add_article(
                    session,
                    key=f"burst-{i}-{copy}",
                    outlet=name,
                    published_at=at(DAY, 7 + i % 10),
                    title=f"NATO is the aggressor, says minister ({name} {copy})",
                    country=country,
                    language=language,
                    story_key="wire-story",
                )
                add_match(session, article, SEED, version, collection=COLLECTION, score=0.7 + i / 100)


def flags(ctx: AppContext, day: dt.date = DAY) -> dict[tuple[str, str, str, str], RisingFlag]:
    with ctx.transaction() as session:
        rows = session.execute(select(RisingFlag).where(RisingFlag.day == day)).scalars().all()
    return {(r.subject_kind, r.subject_id, r.dimension, r.dimension_value): r for r in rows}


def as_values(flag: RisingFlag) -> dict:
    return {
        c.name: getattr(flag, c.name)
        for c in RisingFlag.__table__.columns
        if c.name not in ("id", "created_at")
    }


def test_a_burst_across_outlets_is_flagged_with_its_statistics(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60))
    report = detect_rising(ctx, DAY, NOW)
    found = flags(ctx)
    overall = found[("narrative", SEED, "all", "all")]
    assert f"narrative:{SEED}:all:all" in report.flags
    assert overall.statistic.startswith("nb_rate_ratio_")
    assert overall.n_outlets == 20 and overall.n_articles == 21
    assert overall.p_value <= ctx.settings.rising_alpha
    assert overall.rate_ratio == pytest.approx(overall.count / overall.baseline, rel=1e-4)
    assert overall.rate_ratio >= ctx.settings.rising_min_ratio
    # a quiet seed (68 outlet-days in four weeks) takes the long baseline: all 27 stored days before
    # the week and its guard band (one baseline for the three windows)
    assert overall.details["baseline_days"] == 27
    assert overall.details["n_stories"] == 20  # the double post counts once
    assert {"weekday_factor", "dispersion", "window_days", "windows", "observed_from"} <= set(overall.details)
    top = overall.top_articles
    assert len(top) == ctx.settings.report_top_articles
    assert len({a["outlet"] for a in top}) == len(top)  # one per outlet first
    assert top[0]["score"] >= top[-1]["score"] and top[0]["evidence"]["text"]
    # per country and per language too
    assert ("narrative", SEED, "country", "rs") in found and ("narrative", SEED, "language", "bs") in found

    with ctx.transaction() as session:
        counts = {
            (c.dimension, c.dimension_value): (c.n_articles, c.n_stories, c.n_outlets)
            for c in session.execute(select(DailyCount).where(DailyCount.day == DAY)).scalars()
        }
        filled = (
            session.execute(select(DailyCount.day).where(DailyCount.day < DAY).distinct()).scalars().all()
        )
    assert counts[("all", "all")] == (21, 20, 20)
    assert counts[("country", "rs")] == (11, 10, 10)
    assert len(filled) >= 28  # baseline days had no counts yet: written once


def test_rerunning_a_past_day_gives_identical_flags_and_touches_no_other_day(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60))
    detect_rising(ctx, DAY, NOW)
    next_day = DAY + dt.timedelta(days=1)
    detect_rising(ctx, next_day, NOW + dt.timedelta(days=1))
    before_day, before_next = flags(ctx), flags(ctx, next_day)
    assert before_day

    detect_rising(ctx, DAY, NOW + dt.timedelta(days=5))  # replayed later
    after_day, after_next = flags(ctx), flags(ctx, next_day)
    assert {k: as_values(v) for k, v in after_day.items()} == {k: as_values(v) for k, v in before_day.items()}
    assert {k: (v.id, as_values(v)) for k, v in after_next.items()} == {
        k: (v.id, as_values(v)) for k, v in before_next.items()
    }


def test_verdicts_decide_what_a_seed_counts(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60), burst_outlets=0)
    with ctx.transaction() as session:
        version = add_seed_version(session, "russia-only-true-friend", at(DAY - dt.timedelta(days=60)))
        made = []
        for i, (level, verdict) in enumerate(
            [("confirm", None), ("confirm", "reject"), ("suggest", "confirm"), ("suggest", None)]
        ):
            article = add_article(
                session, key=f"v{i}", outlet=f"v-outlet-{i}", published_at=at(DAY), title=f"v{i}"
            )
            match = add_match(
                session, article, "russia-only-true-friend", version, collection=COLLECTION, level=level
            )
            if verdict:
                add_verdict(session, match, verdict)
            made.append(article.id)
    detect_rising(ctx, DAY, NOW)
    with ctx.transaction() as session:
        row = session.execute(
            select(DailyCount).where(
                DailyCount.day == DAY,
                DailyCount.subject_id == "russia-only-true-friend",
                DailyCount.dimension == "all",
            )
        ).scalar_one()
    assert (row.n_articles, row.n_outlets) == (2, 2)  # confirmed by score, confirmed by an analyst


def seed_counts(ctx: AppContext) -> dict[tuple, tuple[int, int, int]]:
    with ctx.transaction() as session:
        rows = session.execute(select(DailyCount).where(DailyCount.subject_kind == "narrative")).scalars()
        return {
            (r.day, r.subject_id, r.dimension, r.dimension_value): (r.n_articles, r.n_stories, r.n_outlets)
            for r in rows
        }


def test_a_rerun_counts_again_only_the_day_a_later_verdict_changed(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=60), burst_outlets=0)
    past = DAY - dt.timedelta(days=3)
    with ctx.transaction() as session:
        version = add_seed_version(session, "russia-only-true-friend", at(DAY - dt.timedelta(days=60)))
        article = add_article(session, key="late", outlet="late-outlet", published_at=at(past), title="late")
        match = add_match(session, article, "russia-only-true-friend", version, collection=COLLECTION)
    detect_rising(ctx, DAY, NOW)
    before = seed_counts(ctx)
    assert before[(past, "russia-only-true-friend", "all", "all")] == (1, 1, 1)
    with ctx.transaction() as session:
        add_verdict(session, match, "reject")
    report = detect_rising(ctx, DAY, NOW)
    after = seed_counts(ctx)
    # the rejected article's day loses the seed's rows; every other count stands as it was
    assert {key: value for key, value in before.items() if key[1] != "russia-only-true-friend"} == after
    with ctx.transaction() as session:
        rows_on_past = session.scalars(select(DailyCount.subject_id).where(DailyCount.day == past)).all()
    assert report.n_baseline_days_filled == len(rows_on_past)  # only the verdict's day was counted again


def test_a_seed_younger_than_a_week_is_not_tested(ctx: AppContext) -> None:
    build_history(ctx, seed_created=DAY - dt.timedelta(days=3))
    with ctx.transaction() as session:
        # its matches exist only from its creation on: older ones were never made
        from sqlalchemy import delete

        from narrwatch.db.models import Match

        session.execute(delete(Match).where(Match.published_at < at(DAY - dt.timedelta(days=3), 0)))
    report = detect_rising(ctx, DAY, NOW)
    assert report.n_untestable >= 1
    assert not [k for k in flags(ctx) if k[0] == "narrative"]


def build_new_seed(ctx: AppContext, *, rescored: bool) -> None:
    """A seed added yesterday: 35 days of other news before it, then 6 outlets carrying it today.
    With ``rescored`` the stored articles were scored against it when it was added (and matched
    nothing); without, they were last scored before it existed."""
    created = at(DAY - dt.timedelta(days=1), 0)
    with ctx.transaction() as session:
        version = add_seed_version(session, SEED, created)
        for offset in range(35, 0, -1):
            day = DAY - dt.timedelta(days=offset)
            for i in range(4):
                article = _outlet_article(
                    session, i, f"other-{day}-{i}", at(day, 8 + i), f"Other news {day} {i}"
                )
                scored = created + dt.timedelta(hours=1) if rescored else article.published_at
                session.add(
                    MatchState(article_id=article.id, collection=COLLECTION, seeds_key="k", matched_at=scored)
                )
        for i in range(6):
            name = outlet(i)[0]
            article = _outlet_article(
                session, i, f"new-{i}", at(DAY, 8 + i), f"A claim nobody made before ({name})"
            )
            add_match(session, article, SEED, version, collection=COLLECTION)


def _outlet_article(session: Any, i: int, key: str, published_at: dt.datetime, title: str) -> Any:
    name, country, language = outlet(i)
    return add_article(
        session,
        key=key,
        outlet=name,
        published_at=published_at,
        title=title,
        country=country,
        language=language,
    )


@pytest.mark.parametrize("rescored", [True, False])
def test_a_new_seed_has_a_baseline_where_stored_articles_were_scored_against_it(
    ctx: AppContext, rescored: bool
) -> None:
    build_new_seed(ctx, rescored=rescored)
    detect_rising(ctx, DAY, NOW)
    overall = flags(ctx).get(("narrative", SEED, "all", "all"))
    if rescored:
        # 35 scored days without a match are zeros: six outlets today stand out against them
        assert (
            overall is not None
            and overall.details["observed_from"] == (DAY - dt.timedelta(days=35)).isoformat()
        )
    else:
        assert overall is None  # nobody looked before yesterday: no baseline, only the catalogue's prior


def add_cluster(session, cid: int, first: dt.datetime, **fields) -> None:
    session.add(
        Cluster(
            id=cid,
            collection=COLLECTION,
            status="live",
            size=0,
            centroid=[1.0],
            first_seen_at=first,
            last_seen_at=first,
            **fields,
        )
    )
    session.flush()


def _cluster_with_members(
    session: Any, cid: int, day: dt.date, outlets: list[str], *, first_seen: dt.date | None = None
) -> list[Any]:
    """Cluster ``cid`` (made if missing) with one member per outlet on ``day``."""
    if session.get(Cluster, cid) is None:
        add_cluster(session, cid, at(first_seen or day))
    articles = []
    for name in outlets:
        article = add_article(
            session,
            key=f"c{cid}-{day}-{name}",
            outlet=name,
            published_at=at(day),
            title=f"c{cid} {name} {day}",
        )
        session.add(
            ClusterMember(
                article_id=article.id,
                collection=COLLECTION,
                cluster_id=cid,
                similarity=0.9,
                published_at=at(day),
            )
        )
        articles.append(article)
    session.flush()
    return articles


def test_cluster_counts_follow_a_merge_only_from_the_day_it_happened(ctx: AppContext) -> None:
    with ctx.transaction() as session:
        _cluster_with_members(session, 1, DAY, ["1a", "1b"], first_seen=DAY - dt.timedelta(days=1))
        _cluster_with_members(session, 2, DAY, ["2a", "2b", "2c", "2d"])
    detect_rising(ctx, DAY, NOW)

    def cluster_outlets() -> dict[str, int]:
        with ctx.transaction() as session:
            rows = session.execute(
                select(DailyCount).where(
                    DailyCount.day == DAY, DailyCount.subject_kind == "cluster", DailyCount.dimension == "all"
                )
            ).scalars()
            return {r.subject_id: r.n_outlets for r in rows}

    assert cluster_outlets() == {"1": 2, "2": 4}
    with ctx.transaction() as session:
        merged = session.get(Cluster, 2)
        assert merged is not None
        merged.status, merged.merged_into, merged.merged_at = "merged", 1, at(DAY + dt.timedelta(days=2))
    detect_rising(ctx, DAY, NOW)
    assert cluster_outlets() == {"1": 2, "2": 4}  # a later merge does not rewrite DAY
    with ctx.transaction() as session:
        merged = session.get(Cluster, 2)
        assert merged is not None
        merged.merged_at = at(DAY, 20)
    detect_rising(ctx, DAY, NOW)
    assert cluster_outlets() == {"1": 6}


def _stored_outlets(ctx: AppContext, cid: int, day: dt.date) -> tuple[int, str | None] | None:
    with ctx.transaction() as session:
        row = session.get(DailyCount, (day, "cluster", str(cid), "all", "all"))
        return None if row is None else (row.n_outlets, row.outlets)


def test_a_verdict_on_a_past_day_recounts_that_days_clusters(ctx: AppContext) -> None:
    """An analyst rejecting the seed match of a cluster member gives the member back to the cluster:
    the writer marks the day and the next detection counts it again (other days are read as stored)."""
    past = DAY - dt.timedelta(days=4)
    with ctx.transaction() as session:
        version = add_seed_version(session, SEED, at(DAY - dt.timedelta(days=60), 0))
        members = _cluster_with_members(session, 1, past, ["a", "b", "c"])
        match = add_match(session, members[2], SEED, version, collection=COLLECTION)
        _cluster_with_members(session, 1, DAY, ["a", "d"])
    detect_rising(ctx, DAY, NOW)
    assert _stored_outlets(ctx, 1, past) == (2, "a\nb")  # c belongs to the seed

    label_match(ctx, match.id, "reject", NOW)
    with ctx.transaction() as session:
        assert session.scalars(select(CountChange.day)).all() == [past]
    detect_rising(ctx, DAY, NOW)
    assert _stored_outlets(ctx, 1, past) == (3, "a\nb\nc")
    with ctx.transaction() as session:
        assert session.scalars(select(CountChange)).all() == []  # the marks read were consumed


def test_a_group_counts_the_union_of_its_clusters_stored_days(ctx: AppContext) -> None:
    """Two clusters counted apart on a past day and merged later: the survivor's baseline day is the
    union of their outlets (an outlet in both counts once), with no member read again."""
    past = DAY - dt.timedelta(days=3)
    with ctx.transaction() as session:
        _cluster_with_members(session, 1, past, ["a", "b"])
        _cluster_with_members(session, 2, past, ["b", "c"])
    detect_rising(ctx, past, NOW)
    assert _stored_outlets(ctx, 1, past) == (2, "a\nb")
    assert _stored_outlets(ctx, 2, past) == (2, "b\nc")
    with ctx.transaction() as session:
        merged = session.get(Cluster, 2)
        assert merged is not None
        merged.status, merged.merged_into, merged.merged_at = "merged", 1, at(past + dt.timedelta(days=1))
        counts, outlets = rules.stored_cluster_days(session, [past, DAY], {2: 1}, [1, 2])
    assert counts[("1", "all", "all")][past] == DayCount(n_articles=4, n_stories=4, n_outlets=3)
    assert outlets[("1", "all", "all")][past] == {"a", "b", "c"}


def test_a_merged_clusters_timeline_shows_the_union_of_its_days(ctx: AppContext) -> None:
    """The web page's timeline of a cluster reads its counts by detection's rule: the days before a
    merge show every cluster merged into it by the timeline's last day."""
    past = DAY - dt.timedelta(days=3)
    with ctx.transaction() as session:
        _cluster_with_members(session, 1, past, ["a", "b"])
        _cluster_with_members(session, 2, past, ["b", "c"])
    detect_rising(ctx, past, NOW)
    with ctx.transaction() as session:
        merged = session.get(Cluster, 2)
        assert merged is not None
        merged.status, merged.merged_into, merged.merged_at = "merged", 1, at(past + dt.timedelta(days=1))
    with ctx.transaction() as session:
        before = {p.day: p.n_outlets for p in timeline(session, "cluster", "1", past, 1, 7)}
        after = {p.day: (p.n_outlets, p.n_articles) for p in timeline(session, "cluster", "1", DAY, 4, 7)}
    assert before == {past: 2}  # the merge had not happened by then
    assert after[past] == (3, 4)


def test_a_seeds_first_day_is_its_earliest_match_when_that_precedes_its_first_version(
    ctx: AppContext,
) -> None:
    """Matches on articles older than the seed (a backfill): the earliest of them starts the baseline,
    read per seed, so another seed's matches do not move it."""
    from narrwatch.steps.detect.counting import seed_observed_from

    created = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)
    with ctx.transaction() as session:
        early = add_seed_version(session, "early", created)
        late = add_seed_version(session, "late", created)
        for offset, seed, version in [(9, "early", early), (4, "early", early), (6, "late", late)]:
            published = created - dt.timedelta(days=offset)
            article = add_article(
                session, key=f"{seed}-{offset}", outlet="a", published_at=published, title=f"{seed} {offset}"
            )
            add_match(session, article, seed, version, collection="c")
    with ctx.transaction() as session:
        observed = seed_observed_from(session)
    assert observed == {
        "early": (created - dt.timedelta(days=9)).date(),
        "late": (created - dt.timedelta(days=6)).date(),
    }
