"""Fixture data for the report tests: rows inserted straight into SQL, as the pipeline would leave them.

One rising seed (`nato-aggressor-balkans`, overall and in Serbia), one rising cluster, a quiet seed,
a sub-narrative, an edited seed, a rejected match, failing and silent feeds, pipeline runs, and
hostile text in every field that comes from a feed. Hostile payloads that would fetch something point
at ``beacon`` (a loopback server in the browser test) so a request would be seen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from narrwatch.context import AppContext
from narrwatch.db.models import (
    Article,
    Cluster,
    ClusterMember,
    DailyCount,
    Feed,
    Match,
    NarrativeVersion,
    PipelineRun,
    RisingFlag,
    Verdict,
)

DAY = dt.date(2025, 3, 12)
NOW = dt.datetime(2025, 3, 13, 6, 0, tzinfo=dt.UTC)
RISING_SEED = "nato-aggressor-balkans"
RISING_TITLE = "NATO is the aggressor in the Balkans"
QUIET_SEED = "eu-exploits-balkans"
CLUSTER_ID = 7
MODEL = "bundled:all-MiniLM-L6-v2"
COLLECTION = "passages__all-minilm-l6-v2__384"
REJECTED_TITLE = "Analysts rejected this match"
CONFIRMED_TITLE = "Analyst-confirmed suggestion about NATO"
MERGED_TITLE = "Pipeline story from a merged cluster"


@dataclass(frozen=True)
class Hostile:
    """Payloads that do something if the page ever treats feed text as markup or follows a link."""

    beacon: str  # base URL of a server that counts requests, e.g. http://127.0.0.1:PORT

    @property
    def script_title(self) -> str:
        return "<script>document.title='PWNED-script'</script>NATO drills near the border"

    @property
    def attribute_breakout(self) -> str:
        return f'"><img src=x onerror="document.title=\'PWNED-onerror\'">Alliance jets over {self.beacon}'

    @property
    def remote_image(self) -> str:
        return f'<img src="{self.beacon}/pixel-title.png"> Bases expand in the region'

    @property
    def javascript_url(self) -> str:
        return f"javascript:fetch('{self.beacon}/js-link');document.title='PWNED-js'"

    @property
    def data_url(self) -> str:
        return "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="

    @property
    def evidence(self) -> str:
        return (
            "NATO bombed us before and now it wants our army. "
            f'<iframe src="{self.beacon}/iframe"></iframe><svg onload="document.title=\'PWNED-svg\'">'
            f'<link rel="stylesheet" href="{self.beacon}/style.css"> [click](javascript:alert(1)) '
            '<img src="https://evil.test/tls-pixel.png"> <a href="http://evil.test/ping" ping="http://evil.test/p">x</a>'
        )

    @property
    def summary(self) -> str:
        return (
            f'<meta http-equiv="refresh" content="0;url={self.beacon}/refresh">'
            f"<style>@import url({self.beacon}/import.css);</style> Summary of the article."
        )

    @property
    def cluster_label(self) -> str:
        return f"<svg/onload=document.title='PWNED-label'> pipeline, gas, {self.beacon}/label"

    @property
    def feed_error(self) -> str:
        return f'<script src="{self.beacon}/error.js"></script> 503 Service Unavailable'


def _article(outlet: str, country: str, key: str, title: str, published: dt.datetime) -> Article:
    return Article(
        canonical_url=f"https://{outlet}.example/{key}",
        url=f"https://{outlet}.example/{key}",
        feed_id=f"{outlet}-main",
        outlet=outlet,
        country=country,
        language="en",
        title=title,
        title_key=key.ljust(64, "k"),
        summary="",
        text="",
        content_hash=key.ljust(64, "h"),
        published_at=published,
        fetched_at=published,
        story_key=f"story-{key}",
    )


def _feed(feed_id: str, outlet: str, country: str, now: dt.datetime, **extra: Any) -> Feed:
    values: dict[str, Any] = {
        "id": feed_id,
        "outlet": outlet,
        "name": f"{outlet} news",
        "url": f"https://{outlet}.example/rss",
        "country": country,
        "languages": ["en"],
        "last_attempt_at": now - dt.timedelta(hours=1),
        "last_success_at": now - dt.timedelta(hours=1),
        "last_new_item_at": now - dt.timedelta(hours=2),
        "mean_item_gap_s": 3600.0,
        "consecutive_failures": 0,
    }
    values.update(extra)
    return Feed(**values)


def build_report_fixture(ctx: AppContext, hostile: Hostile | None = None) -> dict[str, Any]:
    """Insert the fixture rows; returns ids the tests look for."""
    hostile = hostile or Hostile(beacon="http://127.0.0.1:9")
    day_start = dt.datetime.combine(DAY, dt.time(0, 0), tzinfo=dt.UTC)
    outlets = [
        ("alpha", "RS"),
        ("beta", "RS"),
        ("gamma", "BA"),
        ("delta", "ME"),
        ("epsilon", "MK"),
        ("zeta", "XK"),
    ]
    with ctx.transaction() as session:
        for outlet, country in outlets:
            session.add(_feed(f"{outlet}-main", outlet, country, NOW))
        session.add(
            _feed(
                "broken-feed",
                "broken",
                "RS",
                NOW,
                name=f'<img src="{hostile.beacon}/feed-name.png">Broken outlet',
                url=hostile.javascript_url,
                consecutive_failures=4,
                last_error=hostile.feed_error,
                last_status=503,
                last_success_at=NOW - dt.timedelta(days=3),
            )
        )
        session.add(
            _feed(
                "quiet-feed",
                "quiet",
                "BA",
                NOW,
                last_new_item_at=NOW - dt.timedelta(days=5),
            )
        )
        session.flush()

        seeds = {
            RISING_SEED: (RISING_TITLE, None, 1, NOW - dt.timedelta(days=60)),
            QUIET_SEED: ("The EU exploits the Balkans", None, 1, NOW - dt.timedelta(days=60)),
            "kosovo-illegitimate-state": ("Kosovo is not a state", None, 1, NOW - dt.timedelta(days=60)),
            "kosovo-mafia-state": (
                "Kosovo is a mafia state",
                "kosovo-illegitimate-state",
                1,
                NOW - dt.timedelta(days=60),
            ),
        }
        versions: dict[str, NarrativeVersion] = {}
        for narrative_id, (title, parent, version, created) in seeds.items():
            row = NarrativeVersion(
                narrative_id=narrative_id,
                version=version,
                content_hash=f"{narrative_id:x<64}"[:64],
                title=title,
                parent_id=parent,
                status="active",
                definition={"description": f"Claims that {title.lower()}."},
                source_file=f"narratives/{narrative_id}.yaml",
                created_at=created,
            )
            session.add(row)
            versions[narrative_id] = row
        # An edited seed: version 2 two days before the report.
        edited = NarrativeVersion(
            narrative_id=QUIET_SEED,
            version=2,
            content_hash="e" * 64,
            title="The EU exploits the Balkans (v2)",
            parent_id=None,
            status="active",
            definition={"description": "Claims that the EU exploits the region's resources."},
            source_file=f"narratives/{QUIET_SEED}.yaml",
            created_at=NOW - dt.timedelta(days=2),
        )
        session.add(edited)
        session.flush()

        titles = [
            hostile.script_title,
            hostile.attribute_breakout,
            hostile.remote_image,
            "Ministers warn NATO is encircling Serbia",
            "Commentary: the alliance never left the Balkans",
            "Montenegro was dragged into NATO, say critics",
        ]
        urls = [
            "https://alpha.example/news/1",
            hostile.javascript_url,
            hostile.data_url,
            "https://delta.example/news/4?x=1&y=<2>",
            "https://epsilon.example/news/5",
            "https://zeta.example/news/6",
        ]
        article_ids = []
        for index, ((outlet, country), title, url) in enumerate(zip(outlets, titles, urls, strict=True)):
            article = Article(
                canonical_url=f"https://{outlet}.example/news/{index}",
                url=url,
                feed_id=f"{outlet}-main",
                outlet=outlet,
                country=country,
                language="en",
                title=title,
                title_key=f"{index:064d}",
                summary=hostile.summary,
                text="",
                content_hash=f"{index:064x}",
                published_at=day_start + dt.timedelta(hours=6 + index),
                fetched_at=day_start + dt.timedelta(hours=7 + index),
                story_key=f"story-{index}",
            )
            session.add(article)
            session.flush()
            article_ids.append(article.id)
            session.add(
                Match(
                    article_id=article.id,
                    narrative_id=RISING_SEED,
                    narrative_version_id=versions[RISING_SEED].id,
                    collection=COLLECTION,
                    model_name=MODEL,
                    score=0.80 - index * 0.02,
                    level="confirm",
                    evidence_text=hostile.evidence
                    if index == 0
                    else f"Evidence passage {index}: NATO threat.",
                    evidence_idx=0,
                    evidence_score=0.78 - index * 0.02,
                    evidence_language="en",
                    threshold_suggest=0.45,
                    threshold_confirm=0.6,
                    published_at=article.published_at,
                    matched_at=NOW - dt.timedelta(hours=3),
                )
            )
        # A match an analyst rejected: it must not show in the report.
        rejected = Article(
            canonical_url="https://alpha.example/news/rejected",
            url="https://alpha.example/news/rejected",
            feed_id="alpha-main",
            outlet="alpha",
            country="RS",
            language="en",
            title=REJECTED_TITLE,
            title_key="r" * 64,
            summary="",
            text="",
            content_hash="r" * 64,
            published_at=day_start + dt.timedelta(hours=5),
            fetched_at=day_start + dt.timedelta(hours=5),
            story_key="story-rejected",
        )
        session.add(rejected)
        session.flush()
        rejected_match = Match(
            article_id=rejected.id,
            narrative_id=RISING_SEED,
            narrative_version_id=versions[RISING_SEED].id,
            collection=COLLECTION,
            model_name=MODEL,
            score=0.99,
            level="confirm",
            evidence_text="A passage the analyst judged off-topic.",
            evidence_idx=0,
            evidence_score=0.99,
            evidence_language="en",
            threshold_suggest=0.45,
            threshold_confirm=0.6,
            published_at=rejected.published_at,
            matched_at=NOW - dt.timedelta(hours=3),
        )
        session.add(rejected_match)
        session.flush()
        session.add(
            Verdict(
                article_id=rejected.id,
                narrative_id=RISING_SEED,
                match_id=rejected_match.id,
                verdict="reject",
                score=0.99,
                collection=COLLECTION,
                note="off-topic",
                created_at=NOW - dt.timedelta(hours=2),
            )
        )

        # A suggest-level match an analyst confirmed: it counts, and shows as confirmed.
        confirmed = _article("epsilon", "MK", "confirmed", CONFIRMED_TITLE, day_start + dt.timedelta(hours=4))
        session.add(confirmed)
        session.flush()
        suggestion = Match(
            article_id=confirmed.id,
            narrative_id=RISING_SEED,
            narrative_version_id=versions[RISING_SEED].id,
            collection=COLLECTION,
            model_name=MODEL,
            score=0.5,
            level="suggest",
            evidence_text="A suggestion the analyst confirmed.",
            evidence_idx=1,
            evidence_score=0.5,
            evidence_language="en",
            threshold_suggest=0.45,
            threshold_confirm=0.6,
            published_at=confirmed.published_at,
            matched_at=NOW - dt.timedelta(hours=3),
        )
        session.add(suggestion)
        session.flush()
        session.add(
            Verdict(
                article_id=confirmed.id,
                narrative_id=RISING_SEED,
                match_id=suggestion.id,
                verdict="confirm",
                score=0.5,
                collection=COLLECTION,
                note=None,
                created_at=NOW - dt.timedelta(hours=2),
            )
        )

        # An emerging cluster (rising too) with hostile member titles, and a singleton that is not shown.
        cluster = Cluster(
            id=CLUSTER_ID,
            collection=COLLECTION,
            status="live",
            size=4,
            centroid=[],
            label=hostile.cluster_label,
            representative_title="Gas pipeline deal questioned",
            first_seen_at=day_start - dt.timedelta(days=2),
            last_seen_at=day_start + dt.timedelta(hours=12),
        )
        session.add(cluster)
        session.add(
            Cluster(
                id=CLUSTER_ID + 1,
                collection=COLLECTION,
                status="live",
                size=1,
                centroid=[],
                label="lonely",
                representative_title="A lonely story",
                first_seen_at=day_start,
                last_seen_at=day_start,
            )
        )
        session.flush()
        for index, (outlet, country) in enumerate(outlets[:4]):
            article = Article(
                canonical_url=f"https://{outlet}.example/gas/{index}",
                url=f"https://{outlet}.example/gas/{index}" if index else hostile.javascript_url,
                feed_id=f"{outlet}-main",
                outlet=outlet,
                country=country,
                language="sr",
                title=hostile.remote_image if index == 0 else f"Gas pipeline deal questioned ({outlet})",
                title_key=f"g{index:063d}",
                summary="",
                text="",
                content_hash=f"g{index:063x}",
                published_at=day_start + dt.timedelta(hours=9 + index) - dt.timedelta(days=index % 2),
                fetched_at=day_start + dt.timedelta(hours=10 + index),
                story_key=f"gas-{index}",
            )
            session.add(article)
            session.flush()
            session.add(
                ClusterMember(
                    article_id=article.id,
                    collection=COLLECTION,
                    cluster_id=CLUSTER_ID,
                    similarity=0.9 - index * 0.05,
                    published_at=article.published_at,
                )
            )

        # A cluster merged into the rising one before the day: its member counts for the survivor.
        session.add(
            Cluster(
                id=CLUSTER_ID + 2,
                collection=COLLECTION,
                status="merged",
                merged_into=CLUSTER_ID,
                merged_at=day_start - dt.timedelta(hours=1),
                size=1,
                centroid=[],
                label="merged away",
                representative_title="Merged story",
                first_seen_at=day_start - dt.timedelta(days=1),
                last_seen_at=day_start,
            )
        )
        session.flush()
        merged_member = _article("epsilon", "MK", "merged", MERGED_TITLE, day_start + dt.timedelta(hours=15))
        session.add(merged_member)
        session.flush()
        session.add(
            ClusterMember(
                article_id=merged_member.id,
                collection=COLLECTION,
                cluster_id=CLUSTER_ID + 2,
                similarity=0.7,
                published_at=merged_member.published_at,
            )
        )
        # A member a seed now covers (an active match): it belongs to the seed, not the cluster.
        session.add(
            ClusterMember(
                article_id=article_ids[5],
                collection=COLLECTION,
                cluster_id=CLUSTER_ID,
                similarity=0.95,
                published_at=day_start + dt.timedelta(hours=11),
            )
        )

        # Daily counts: 60 days of a quiet history, then the burst on the report day.
        for offset in range(60):
            day = DAY - dt.timedelta(days=offset)
            burst = offset == 0
            session.add(
                DailyCount(
                    day=day,
                    subject_kind="narrative",
                    subject_id=RISING_SEED,
                    dimension="all",
                    dimension_value="all",
                    n_articles=6 if burst else 1 + offset % 3,
                    n_stories=6 if burst else 1 + offset % 3,
                    n_outlets=6 if burst else 1 + offset % 2,
                )
            )
            session.add(
                DailyCount(
                    day=day,
                    subject_kind="narrative",
                    subject_id=QUIET_SEED,
                    dimension="all",
                    dimension_value="all",
                    n_articles=offset % 2,
                    n_stories=offset % 2,
                    n_outlets=offset % 2,
                )
            )
        for country, n in (("rs", 2), ("ba", 1), ("me", 1), ("mk", 1), ("xk", 1)):
            session.add(
                DailyCount(
                    day=DAY,
                    subject_kind="narrative",
                    subject_id=RISING_SEED,
                    dimension="country",
                    dimension_value=country,
                    n_articles=n,
                    n_stories=n,
                    n_outlets=n,
                )
            )
        session.add(
            DailyCount(
                day=DAY,
                subject_kind="narrative",
                subject_id=RISING_SEED,
                dimension="language",
                dimension_value="en",
                n_articles=6,
                n_stories=6,
                n_outlets=6,
            )
        )
        session.add(
            DailyCount(
                day=DAY,
                subject_kind="cluster",
                subject_id=str(CLUSTER_ID),
                dimension="all",
                dimension_value="all",
                n_articles=2,
                n_stories=2,
                n_outlets=2,
            )
        )

        flag_values = {"created_at": NOW - dt.timedelta(hours=1)}
        details = {"reason": "6 outlets against 1.9 expected", "window_days": 1, "today_expected": 1.9}
        session.add(
            RisingFlag(
                day=DAY,
                subject_kind="narrative",
                subject_id=RISING_SEED,
                dimension="all",
                dimension_value="all",
                rate_ratio=3.16,
                statistic="nb_rate_ratio_1d",
                p_value=2.4e-5,
                count=6,
                baseline=1.9,
                n_outlets=6,
                n_articles=6,
                details=details,
                top_articles=[{"article_id": article_ids[3]}, {"article_id": article_ids[0]}, rejected.id],
                **flag_values,
            )
        )
        session.add(
            RisingFlag(
                day=DAY,
                subject_kind="narrative",
                subject_id=RISING_SEED,
                dimension="country",
                dimension_value="rs",
                rate_ratio=4.0,
                statistic="nb_rate_ratio_2d",
                p_value=8.1e-4,
                count=2,
                baseline=0.5,
                n_outlets=2,
                n_articles=2,
                details={"window_days": 2, "today_expected": 0.6},
                top_articles=[],
                **flag_values,
            )
        )
        session.add(
            RisingFlag(
                day=DAY,
                subject_kind="cluster",
                subject_id=str(CLUSTER_ID),
                dimension="all",
                dimension_value="all",
                rate_ratio=2.5,
                statistic="nb_rate_ratio_2d",
                p_value=6.0e-4,
                count=2,
                baseline=0.8,
                n_outlets=2,
                n_articles=2,
                details={"window_days": 2, "today_expected": 0.6},
                top_articles=[],
                **flag_values,
            )
        )

        for step, status, hours, error in (
            ("poll", "ok", 5, None),
            ("embed", "failed", 4, "<script>alert(1)</script>RuntimeError: Qdrant unreachable"),
            ("embed", "ok", 3.5, None),
            ("match", "ok", 3, None),
            ("detect", "ok", 1, None),
        ):
            session.add(
                PipelineRun(
                    step=step,
                    started_at=NOW - dt.timedelta(hours=hours),
                    finished_at=NOW - dt.timedelta(hours=hours - 0.1),
                    status=status,
                    summary={"n_new": 3, "nested": {"ignored": True}},
                    error=error,
                )
            )
    return {"article_ids": article_ids, "rejected_id": rejected.id}
