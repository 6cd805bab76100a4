"""Emerging clusters in the report: spread across outlets and days, not one day's story."""

from __future__ import annotations

import datetime as dt

import pytest
from report_fixtures import CLUSTER_ID, COLLECTION, DAY, NOW, build_report_fixture
from sqlalchemy import select

from narrwatch.context import AppContext
from narrwatch.db.models import Article, Cluster, ClusterMember, Feed
from narrwatch.steps.report.collect import collect_report_data

pytestmark = pytest.mark.db

DAY_START = dt.datetime.combine(DAY, dt.time(0, 0), tzinfo=dt.UTC)


def add_cluster(ctx: AppContext, cluster_id: int, members: list[tuple[str, dt.datetime]]) -> None:
    with ctx.transaction() as session:
        feed_id = session.scalars(select(Feed.id).order_by(Feed.id)).first()
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
        session.flush()
        for index, (outlet, when) in enumerate(members):
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
