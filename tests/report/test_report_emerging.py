"""Emerging clusters in the report: spread across outlets and days, not one day's story."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from report_fixtures import CLUSTER_ID, COLLECTION, DAY, NOW, build_report_fixture
from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Article, Cluster, ClusterMember, Feed
from narrwatch.steps.detect.detect import detect_rising
from narrwatch.steps.report.collect import collect_report_data

pytestmark = pytest.mark.db

DAY_START = dt.datetime.combine(DAY, dt.time(0, 0), tzinfo=dt.UTC)


def add_cluster(ctx: AppContext, cluster_id: int, members: list[tuple[str, dt.datetime]]) -> None:
    with ctx.transaction() as session:
        session.add(
            Cluster(
                id=cluster_id,
                collection=COLLECTION,
                status="live",
                size=len(members),
                centroid=[],
                label=f"cluster {cluster_id}",
                representative_title=f"Story {cluster_id}",
                first_seen_at=min(when for _, when in members),
                last_seen_at=max(when for _, when in members),
            )
        )
    add_members(ctx, cluster_id, members)


def add_members(
    ctx: AppContext, cluster_id: int, members: list[tuple[str, dt.datetime]], first: int = 0
) -> None:
    with ctx.transaction() as session:
        feed_id = session.scalars(select(Feed.id).order_by(Feed.id)).first()
        for index, (outlet, when) in enumerate(members, start=first):
            key = f"{cluster_id}-{index}"
            article = Article(
                canonical_url=f"https://{outlet}.example/{key}",
                url=f"https://{outlet}.example/{key}",
                feed_id=feed_id,
                outlet=outlet,
                country="RS",
                language="sr",
                title=f"Story {key}",
                title_key=f"{key:0>64}",
                summary="",
                text="",
                content_hash=f"{key:0>64}",
                published_at=when,
                fetched_at=when,
                story_key=key,
            )
            session.add(article)
            session.flush()
            session.add(
                ClusterMember(
                    article_id=article.id,
                    collection=COLLECTION,
                    cluster_id=cluster_id,
                    similarity=0.9,
                    published_at=when,
                )
            )


def test_only_clusters_spread_over_outlets_and_days_are_emerging(ctx: AppContext) -> None:
    build_report_fixture(ctx)
    morning = DAY_START + dt.timedelta(hours=8)
    one_day_story = [(f"story-outlet-{i}", morning + dt.timedelta(hours=i)) for i in range(5)]
    two_outlets = [("pair-a", morning), ("pair-b", morning - dt.timedelta(days=1)), ("pair-a", morning)]
    spread = [
        ("spread-a", morning - dt.timedelta(days=3)),
        ("spread-b", morning - dt.timedelta(days=1)),
        ("spread-c", morning),
    ]
    add_cluster(ctx, 101, one_day_story)
    add_cluster(ctx, 102, two_outlets)
    add_cluster(ctx, 103, spread)
    listed = {item.cluster_id for item in collect_report_data(ctx, DAY, NOW).clusters}
    assert 103 in listed and CLUSTER_ID in listed
    assert 101 not in listed  # five outlets, but one day: a story
    assert 102 not in listed  # two days, but two outlets


def _listed(ctx: AppContext) -> dict[int, tuple[int, list[str], list[str], list[str]]]:
    return {
        item.cluster_id: (item.n_recent, item.outlets, item.countries, [a.title for a in item.sample_titles])
        for item in collect_report_data(ctx, DAY, NOW).clusters
    }


def test_the_week_is_read_from_stored_counts_and_members_only_where_they_are_not_current(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detection stores every cluster's daily outlets; the report reads the window's spread from them
    (a week of members is tens of thousands of rows at a region's volume), and reads members only of
    the listed clusters and of a day marked stale since."""
    build_report_fixture(ctx)
    morning = DAY_START + dt.timedelta(hours=8)
    add_cluster(ctx, 101, [(f"story-outlet-{i}", morning + dt.timedelta(hours=i)) for i in range(5)])
    add_cluster(ctx, 102, [("pair-a", morning), ("pair-b", morning - dt.timedelta(days=1))])
    add_cluster(ctx, 103, [(f"spread-{i}", morning - dt.timedelta(days=i)) for i in range(3)])
    from_members = _listed(ctx)
    assert set(from_members) == {CLUSTER_ID, 103}

    detect_rising(ctx, DAY, NOW)
    reads: list[tuple[dt.datetime, dt.datetime]] = []  # spans read for every cluster's members
    counted_cluster_rows = rules.counted_cluster_rows

    def recording(
        session: Any, start: dt.datetime, end: dt.datetime, merged: Any, ids: Any = None, top: Any = None
    ) -> Any:
        if ids is None:
            reads.append((start, end))
        return counted_cluster_rows(session, start, end, merged, ids, top)

    monkeypatch.setattr(rules, "counted_cluster_rows", recording)
    assert _listed(ctx) == from_members
    with ctx.transaction() as session:
        days_with_articles = {when.date() for when in session.scalars(select(Article.published_at))}
    assert all(end - start == dt.timedelta(days=1) for start, end in reads)
    assert days_with_articles & {DAY - dt.timedelta(days=i) for i in range(7)}
    # besides the day itself (the flagged clusters' members), only days with nothing stored are read
    assert not ({start.date() for start, _ in reads} - {DAY}) & days_with_articles

    # a third outlet joins cluster 102 three days ago: the cluster step marks that day stale
    three_days_ago = DAY - dt.timedelta(days=3)
    add_members(ctx, 102, [("pair-c", morning - dt.timedelta(days=3))], first=2)
    with ctx.transaction() as session:
        rules.mark_counts_stale(session, [three_days_ago])
    reads.clear()
    listed = _listed(ctx)
    assert 102 in listed and listed[102][0] == 3
    assert (DAY_START - dt.timedelta(days=3), DAY_START - dt.timedelta(days=2)) in reads


def test_a_rising_clusters_evidence_is_made_for_the_articles_shown_only(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flagged cluster's day can hold thousands of members; the item shows a few of them."""
    from narrwatch.steps.report import rising_items

    build_report_fixture(ctx)
    morning = DAY_START + dt.timedelta(hours=8)
    add_members(
        ctx, CLUSTER_ID, [(f"crowd-{i % 7}", morning + dt.timedelta(minutes=i)) for i in range(40)], 100
    )
    made: list[int] = []
    members_evidence = rising_items.members_evidence

    def counting(session: Any, chosen: Any) -> Any:
        made.extend(article_id for article_id, _ in chosen)
        return members_evidence(session, chosen)

    monkeypatch.setattr(rising_items, "members_evidence", counting)
    data = collect_report_data(ctx, DAY, NOW)
    [item] = [item for item in data.rising if item.kind == "cluster" and item.subject_id == str(CLUSTER_ID)]
    assert 0 < len(item.articles) <= ctx.settings.report_top_articles < 40
    assert sorted(made) == sorted(a.article_id for a in item.articles)
    assert len({a.outlet for a in item.articles}) == len(item.articles)  # one per outlet first


def test_a_listed_clusters_sample_spans_outlets_even_when_one_outlet_fills_its_most_central(
    ctx: AppContext,
) -> None:
    build_report_fixture(ctx)
    morning = DAY_START + dt.timedelta(hours=8)
    # equal similarity: the earliest stored come first, and the first 205 are all from one outlet
    crowd = [("solo", morning + dt.timedelta(seconds=i)) for i in range(205)]
    add_cluster(ctx, 104, [*crowd, ("x", morning - dt.timedelta(days=1)), ("y", morning)])
    [item] = [item for item in collect_report_data(ctx, DAY, NOW).clusters if item.cluster_id == 104]
    assert item.n_recent == 207 and item.outlets == ["solo", "x", "y"]
    assert sorted(a.outlet for a in item.sample_titles) == ["solo", "x", "y"]
