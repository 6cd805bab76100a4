"""The read rules of ``narrwatch.db.rules``, and the cases where places used to disagree.

A match rejected under one model and confirmed under another, and a feed paused in feeds.yaml: the
rising detector, the report and `feeds health` / `status` / the watchdog must say the same thing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from narrwatch.cli.ops import collect_status
from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import (
    Article,
    Cluster,
    ClusterMember,
    DailyCount,
    Feed,
    Match,
    MatchState,
    NarrativeVersion,
    Verdict,
)
from narrwatch.domain.polling import HealthState
from narrwatch.ops.freshness import check_freshness
from narrwatch.steps.detect.detect import detect_rising
from narrwatch.steps.poll.operate import feed_health
from narrwatch.steps.report.collect import collect_report_data

pytestmark = pytest.mark.db

DAY = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 21, 6, tzinfo=dt.UTC)
OLD_MODEL, NEW_MODEL = "passages__old", "passages__new"
SEED = "west-ignores-serbian-sovereignty"


def _article(session: object, key: str, outlet: str) -> Article:
    if session.get(Feed, f"{outlet}-main") is None:  # type: ignore[attr-defined]
        session.add(  # type: ignore[attr-defined]
            Feed(
                id=f"{outlet}-main",
                outlet=outlet,
                name=outlet,
                url=f"https://{outlet}.example/rss",
                country="RS",
            )
        )
        session.flush()  # type: ignore[attr-defined]
    article = Article(
        canonical_url=f"https://{outlet}.example/{key}",
        url=f"https://{outlet}.example/{key}",
        feed_id=f"{outlet}-main",
        outlet=outlet,
        country="RS",
        language="en",
        title=f"Title {key}",
        title_key=key.ljust(64, "k"),
        summary="",
        text="",
        content_hash=key.ljust(64, "h"),
        published_at=NOON,
        fetched_at=NOON,
        story_key=f"story-{key}",
    )
    session.add(article)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return article


def _match(article: Article, version: NarrativeVersion, collection: str, level: str) -> Match:
    return Match(
        article_id=article.id,
        narrative_id=SEED,
        narrative_version_id=version.id,
        collection=collection,
        model_name=collection,
        score=0.7,
        level=level,
        evidence_text="The West ignores Serbia.",
        evidence_idx=0,
        evidence_score=0.7,
        evidence_language="en",
        threshold_suggest=0.5,
        threshold_confirm=0.6,
        published_at=article.published_at,
        matched_at=NOON,
    )


def _verdict(article: Article, collection: str, verdict: str, at: dt.datetime) -> Verdict:
    return Verdict(
        article_id=article.id,
        narrative_id=SEED,
        verdict=verdict,
        score=0.7,
        collection=collection,
        created_at=at,
    )


def _build_disputed(ctx: AppContext) -> tuple[int, int]:
    """One article rejected under the old model, then confirmed under the new one, and a member of an
    old-model cluster; a second, uncontested article in the same cluster."""
    with ctx.transaction() as session:
        version = NarrativeVersion(
            narrative_id=SEED,
            version=1,
            content_hash="a" * 64,
            title="The West ignores Serbia's sovereignty",
            parent_id=None,
            status="active",
            definition={"description": "Claims that the West ignores Serbia."},
            source_file=f"narratives/{SEED}.yaml",
            created_at=NOON - dt.timedelta(days=30),
        )
        session.add(version)
        session.flush()
        disputed = _article(session, "disputed", "alpha")
        other = _article(session, "other", "beta")
        session.add(_match(disputed, version, OLD_MODEL, "confirm"))
        session.add(_match(disputed, version, NEW_MODEL, "suggest"))
        session.add(_verdict(disputed, OLD_MODEL, "reject", NOON + dt.timedelta(hours=1)))
        session.add(_verdict(disputed, NEW_MODEL, "confirm", NOON + dt.timedelta(hours=2)))
        cluster = Cluster(collection=OLD_MODEL, first_seen_at=NOON, last_seen_at=NOON, size=2)
        session.add(cluster)
        session.flush()
        for article in (disputed, other):
            session.add(
                ClusterMember(
                    article_id=article.id,
                    collection=OLD_MODEL,
                    cluster_id=cluster.id,
                    similarity=0.9,
                    published_at=NOON,
                )
            )
        return disputed.id, cluster.id


def test_newest_verdict_decides_across_models_everywhere(ctx: AppContext) -> None:
    disputed, cluster_id = _build_disputed(ctx)
    start, end = rules_day(DAY)
    with ctx.transaction() as session:
        counted = rules.counted_seed_matches(session, start, end)
        assert [article.id for _, article in counted[SEED]] == [disputed]
        covered = set(
            session.scalars(
                select(ClusterMember.article_id).where(rules.seed_covers(ClusterMember.article_id))
            )
        )
        assert covered == {disputed}

    detect_rising(ctx, DAY, NOW)
    with ctx.transaction() as session:
        counts = {
            (row.subject_kind, row.subject_id): row.n_articles
            for row in session.scalars(
                select(DailyCount).where(DailyCount.day == DAY, DailyCount.dimension == "all")
            )
        }
    # detection: the seed counts the article; the cluster keeps only the uncontested one
    assert counts[("narrative", SEED)] == 1
    assert counts[("cluster", str(cluster_id))] == 1

    # the report shows the same: the article is the seed's evidence and not the cluster's member
    data = collect_report_data(ctx, DAY, NOW)
    activity = {seed.narrative_id: seed for seed in data.seeds}
    assert activity[SEED].n_articles == 1


def test_a_later_rejection_takes_the_article_back_from_the_seed(ctx: AppContext) -> None:
    disputed, _ = _build_disputed(ctx)
    with ctx.transaction() as session:
        session.add(
            _verdict(
                session.get(Article, disputed), "passages__third", "reject", NOON + dt.timedelta(hours=3)
            )
        )
    start, end = rules_day(DAY)
    with ctx.transaction() as session:
        assert rules.counted_seed_matches(session, start, end) == {}
        covered = list(
            session.scalars(select(ClusterMember).where(rules.seed_covers(ClusterMember.article_id)))
        )
        assert covered == []


def rules_day(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def test_a_feed_paused_in_the_feeds_file_is_paused_everywhere(ctx: AppContext) -> None:
    with ctx.transaction() as session:
        for feed_id, overrides in (("paused-in-file", {"paused": True}), ("watched", {})):
            session.add(
                Feed(
                    id=feed_id,
                    outlet=feed_id,
                    name=feed_id,
                    url=f"https://{feed_id}.example/rss",
                    country="RS",
                    languages=["sr"],
                    poll_overrides=overrides,
                    # both have failed for days: only the watched one is failing
                    consecutive_failures=6,
                    last_attempt_at=NOW - dt.timedelta(hours=1),
                    last_success_at=NOW - dt.timedelta(days=4),
                    last_new_item_at=NOW - dt.timedelta(days=4),
                    mean_item_gap_s=3600.0,
                )
            )
    health = {row.id: row.state for row in feed_health(ctx, NOW)}
    assert health == {"paused-in-file": HealthState.PAUSED, "watched": HealthState.DEGRADED}
    freshness = check_freshness(ctx, NOW)
    assert (freshness.active_feeds, freshness.failing_feeds) == (1, ["watched"])
    report = collect_report_data(ctx, DAY, NOW)
    assert [issue.feed_id for issue in report.feed_health.failing] == ["watched"]
    assert report.feed_health.n_feeds == 1
    status = collect_status(ctx, NOW)["feeds"]
    assert {state: entry["ids"] for state, entry in status.items()} == {
        "paused": ["paused-in-file"],
        "degraded": ["watched"],
    }


def test_chunked_splits_without_losing_or_repeating() -> None:
    assert list(rules.chunked(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(rules.chunked([], 3)) == []


def test_earliest_scored_since_is_the_oldest_article_scored_at_or_after_each_moment(ctx: AppContext) -> None:
    runs = [NOW - dt.timedelta(days=d) for d in (20, 10, 1)]
    with ctx.transaction() as session:
        for days_old, run, collection in [
            (30, runs[0], OLD_MODEL),
            (25, runs[1], OLD_MODEL),
            (12, runs[1], NEW_MODEL),
            (5, runs[2], OLD_MODEL),
            (40, runs[2], NEW_MODEL),
        ]:
            article = _article(session, f"a{days_old}", "alpha")
            article.published_at = NOON - dt.timedelta(days=days_old)
            session.add(
                MatchState(article_id=article.id, collection=collection, seeds_key="k", matched_at=run)
            )
    with ctx.transaction() as session:
        found = rules.earliest_scored_since(
            session, [runs[0], runs[0] + dt.timedelta(hours=1), runs[1], runs[2], NOW, runs[0]]
        )
    # the article 40 days old was scored (in another collection) by the last run: all moments up to it find it
    oldest = NOON - dt.timedelta(days=40)
    assert found == [oldest, oldest, oldest, oldest, None, oldest]
    with ctx.transaction() as session:
        session.execute(MatchState.__table__.delete().where(MatchState.collection == NEW_MODEL))
        found = rules.earliest_scored_since(session, [runs[0], runs[0] + dt.timedelta(hours=1), runs[2], NOW])
    assert found == [
        NOON - dt.timedelta(days=30),
        NOON - dt.timedelta(days=25),
        NOON - dt.timedelta(days=5),
        None,
    ]
