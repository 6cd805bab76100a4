"""Retention with tombstones (crash and rerun), outdated seed versions, and the freshness check."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from narrwatch.context import AppContext
from narrwatch.db.models import (
    Article,
    ArticleEmbedding,
    ArticleSighting,
    Match,
    NarrativeVersion,
    Passage,
    Tombstone,
)
from narrwatch.ops.freshness import check_freshness
from narrwatch.steps.match.recompute import outdated_seed_versions, stale_match_states
from narrwatch.steps.retain.retain import apply_retention

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)  # the same as the rows fixture's
COLLECTION = "passages__test__4__abc"
REPO = Path(__file__).resolve().parents[2]
SEED = "nato-aggressor-balkans"


def count(ctx: AppContext, model: Any) -> int:
    with ctx.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_retention_off_by_default_keeps_everything(ctx: AppContext, rows: Any) -> None:
    rows.feed("f1")
    rows.article("https://a.example/old", NOW - dt.timedelta(days=4000))
    report = apply_retention(ctx, NOW)
    assert report.as_dict()["enabled"] is False
    assert count(ctx, Article) == 1 and count(ctx, Tombstone) == 0


def test_retention_deletes_old_articles_with_tombstones_and_points(ctx: AppContext, rows: Any) -> None:
    ctx.settings.retention_days = 30
    rows.feed("f1")
    old = [rows.article(f"https://a.example/old-{i}", NOW - dt.timedelta(days=31 + i)) for i in range(5)]
    _, young_points = rows.article("https://a.example/young", NOW - dt.timedelta(days=29))
    assert ctx.vector_store.count(COLLECTION) == 12

    report = apply_retention(ctx, NOW, batch=2)

    assert (report.articles_deleted, report.points_deleted, report.batches) == (5, 10, 3)
    with ctx.transaction() as session:
        assert session.scalars(select(Article.canonical_url)).all() == ["https://a.example/young"]
        tombstones = session.scalars(select(Tombstone).order_by(Tombstone.article_id)).all()
        assert [t.article_id for t in tombstones] == [article_id for article_id, _ in old]
        assert all(t.reason == "retention" and t.deleted_at == NOW for t in tombstones)
        # everything hanging off a deleted article went with it
        assert session.scalar(select(func.count()).select_from(Passage)) == 2
        assert session.scalar(select(func.count()).select_from(ArticleSighting)) == 1
        assert session.scalar(select(func.count()).select_from(ArticleEmbedding)) == 1
    assert sorted(ctx.vector_store.iter_ids(COLLECTION)) == sorted(young_points)

    again = apply_retention(ctx, NOW)
    assert (again.articles_deleted, again.points_deleted) == (0, 0)
    assert count(ctx, Tombstone) == 5


class CrashAfterPointDelete:
    """A vector store whose delete works and then the process 'dies' before the SQL commit."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def delete(self, collection: str, ids: Any) -> None:
        self.store.delete(collection, ids)
        raise RuntimeError("killed between the Qdrant delete and the SQL commit")


def test_retention_crash_between_point_delete_and_commit_is_finished_by_the_rerun(
    ctx: AppContext, rows: Any
) -> None:
    ctx.settings.retention_days = 30
    rows.feed("f1")
    rows.article("https://a.example/old", NOW - dt.timedelta(days=40))
    _, young_points = rows.article("https://a.example/young", NOW - dt.timedelta(days=1))
    real_store = ctx.vector_store
    ctx._vector_store = CrashAfterPointDelete(real_store)
    with pytest.raises(RuntimeError, match="killed"):
        apply_retention(ctx, NOW)
    # the SQL side rolled back: the article is still there, untombstoned
    assert count(ctx, Article) == 2 and count(ctx, Tombstone) == 0

    ctx._vector_store = real_store
    report = apply_retention(ctx, NOW)
    assert report.articles_deleted == 1
    assert count(ctx, Article) == 1 and count(ctx, Tombstone) == 1
    assert sorted(real_store.iter_ids(COLLECTION)) == sorted(young_points)


def add_version(ctx: AppContext, narrative_id: str, version: int) -> int:
    with ctx.transaction() as session:
        row = NarrativeVersion(
            narrative_id=narrative_id,
            version=version,
            content_hash=f"{narrative_id}-{version}",
            title=narrative_id,
            status="active",
            definition={},
            source_file=f"narratives/{narrative_id}.yaml",
            created_at=NOW,
        )
        session.add(row)
        session.flush()
        return row.id


def add_match(
    ctx: AppContext, article_id: int, narrative_id: str, version_id: int, published_at: dt.datetime
) -> None:
    with ctx.transaction() as session:
        session.add(
            Match(
                article_id=article_id,
                narrative_id=narrative_id,
                narrative_version_id=version_id,
                collection=COLLECTION,
                model_name="test",
                score=0.8,
                level="confirm",
                evidence_text="x",
                evidence_idx=0,
                evidence_score=0.8,
                threshold_suggest=0.5,
                threshold_confirm=0.7,
                published_at=published_at,
                matched_at=NOW,
            )
        )


def test_outdated_seed_versions_finds_matches_of_older_versions_in_the_window(
    ctx: AppContext, rows: Any
) -> None:
    rows.feed("f1")
    recent = NOW - dt.timedelta(days=2)
    a1, _ = rows.article("https://a.example/1", recent, passages=1)
    a2, _ = rows.article("https://a.example/2", recent, passages=1)
    a3, _ = rows.article("https://a.example/3", NOW - dt.timedelta(days=90), passages=1)
    nato_v1 = add_version(ctx, "nato-aggressor-balkans", 1)
    nato_v2 = add_version(ctx, "nato-aggressor-balkans", 2)
    eu_v1 = add_version(ctx, "eu-exploits-balkans", 1)
    kosovo_v1 = add_version(ctx, "kosovo-illegitimate-state", 1)
    add_version(ctx, "kosovo-illegitimate-state", 2)
    add_match(ctx, a1, "nato-aggressor-balkans", nato_v1, recent)  # outdated, in the window
    add_match(ctx, a2, "nato-aggressor-balkans", nato_v2, recent)  # current
    add_match(ctx, a1, "eu-exploits-balkans", eu_v1, recent)  # current (only version)
    add_match(ctx, a3, "kosovo-illegitimate-state", kosovo_v1, NOW - dt.timedelta(days=90))  # outside

    window_start = NOW - dt.timedelta(days=30)
    assert outdated_seed_versions(ctx, window_start, NOW) == {"nato-aggressor-balkans": [1]}
    assert outdated_seed_versions(ctx, NOW - dt.timedelta(days=100), NOW) == {
        "kosovo-illegitimate-state": [1],
        "nato-aggressor-balkans": [1],
    }


def test_freshness_ok_when_articles_arrive_and_feeds_answer(ctx: AppContext, rows: Any) -> None:
    polled = {"last_attempt_at": NOW, "last_success_at": NOW - dt.timedelta(hours=1)}
    rows.feed("f1", **polled)
    rows.feed("f2", **polled, consecutive_failures=2)  # two failures in a row: not degraded yet
    rows.feed("f3", **polled, consecutive_failures=3)  # degraded
    rows.article("https://a.example/1", NOW - dt.timedelta(hours=2), passages=0)
    report = check_freshness(ctx, NOW)
    assert report.problems == []
    assert report.as_dict()["failing_share"] == pytest.approx(1 / 3, abs=1e-3)


def test_freshness_fails_on_silence_and_on_many_failing_feeds(ctx: AppContext, rows: Any) -> None:
    ctx.settings.freshness_max_silence_h = 6
    rows.feed("f1", last_attempt_at=NOW, last_success_at=NOW - dt.timedelta(days=1), consecutive_failures=3)
    rows.feed("f2", last_attempt_at=NOW, consecutive_failures=1)  # never succeeded: degraded at once
    rows.feed("f3", last_attempt_at=NOW, last_success_at=NOW)
    rows.feed("paused", consecutive_failures=9, paused=True)
    rows.article("https://a.example/1", NOW - dt.timedelta(hours=7), feed_id="f3", passages=0)
    report = check_freshness(ctx, NOW)
    assert len(report.problems) == 2
    assert "no new article for 6.9 h" in report.problems[0]
    assert "2 of 3 active feeds are failing (f1, f2;" in report.problems[1]
    # judged as of `now`: an hour after the last article all was well
    assert not any("no new article" in p for p in check_freshness(ctx, NOW - dt.timedelta(hours=6)).problems)


def test_freshness_on_an_empty_store_names_the_problem(ctx: AppContext, rows: Any) -> None:
    problems = check_freshness(ctx, NOW).problems
    assert problems == [
        "no active feed (all paused or none synced from the feeds file)",
        "no article has been stored yet",
    ]


NATO_TEXTS = [
    (
        "NATO's 1999 aggression was a crime without a UN mandate",
        "Speakers at a memorial said NATO's 1999 aggression against Yugoslavia was a crime committed "
        "without any UN mandate and that the alliance never answered for the children it killed.",
    ),
    (
        "Camp Bondsteel is an occupation outpost, commentator says",
        "Camp Bondsteel is no peacekeeping base but an occupation outpost from which NATO controls the "
        "Balkans and keeps Serbia weak, a commentator wrote.",
    ),
    (
        "City opens a new tram line",
        "The city opened a new tram line to the western suburbs on Monday; trams run every ten minutes.",
    ),
]


@pytest.mark.slow
@pytest.mark.long
def test_recompute_follows_an_edited_seed_and_is_a_no_op_afterwards(
    ctx: AppContext, rows: Any, tmp_path: Path
) -> None:
    from narrwatch.steps.embed import embed as vectorize
    from narrwatch.steps.match import match as matching
    from narrwatch.steps.match.recompute import recompute_changed_narratives

    narratives = tmp_path / "narratives"
    shutil.copytree(REPO / "narratives", narratives)
    ctx.settings.narratives_dir = narratives
    rows.feed("f1")
    for i, (title, text) in enumerate(NATO_TEXTS):
        rows.article(
            f"https://a.example/{i}", NOW - dt.timedelta(days=10), embedded=False, title=title, text=text
        )
    vectorize.embed_pending(ctx, NOW)
    # matched once, then the process DAG's short window moves on
    matching.match_articles(ctx, NOW - dt.timedelta(days=11), NOW - dt.timedelta(days=9), NOW)
    with ctx.transaction() as session:
        before = session.execute(
            select(Match.article_id, NarrativeVersion.version)
            .join(NarrativeVersion, NarrativeVersion.id == Match.narrative_version_id)
            .where(Match.narrative_id == SEED)
        ).all()
    assert before and {version for _, version in before} == {1}

    first = recompute_changed_narratives(ctx, NOW)
    assert first.changed == {} and first.stale_articles == 0 and first.match is None

    seed_file = narratives / f"{SEED}.yaml"
    document = yaml.safe_load(seed_file.read_text(encoding="utf-8"))
    document["examples"].append("NATO bombed Serbia in 1999 and still occupies Serbian land in Kosovo.")
    seed_file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")

    edited = recompute_changed_narratives(ctx, NOW)
    assert edited.changed == {SEED: [1]}
    assert edited.match is not None and edited.match["articles_scored"] == len(NATO_TEXTS)
    with ctx.transaction() as session:
        after = (
            session.execute(
                select(NarrativeVersion.version)
                .join(Match, NarrativeVersion.id == Match.narrative_version_id)
                .where(Match.narrative_id == SEED)
            )
            .scalars()
            .all()
        )
    assert after and set(after) == {2}

    again = recompute_changed_narratives(ctx, NOW)
    assert again.changed == {} and again.stale_articles == 0 and again.match is None


def test_stale_match_states_counts_window_articles_scored_against_older_seeds(
    ctx: AppContext, rows: Any
) -> None:
    from narrwatch.db.models import MatchState

    rows.feed("f1")
    ids = [
        rows.article(f"https://a.example/{i}", NOW - dt.timedelta(days=i), passages=0)[0] for i in (1, 5, 40)
    ]
    with ctx.transaction() as session:
        # the newest scoring run (key "new") only covered the latest article, as process does
        session.add(MatchState(article_id=ids[0], collection=COLLECTION, seeds_key="new", matched_at=NOW))
        for article_id in ids[1:]:
            session.add(
                MatchState(
                    article_id=article_id,
                    collection=COLLECTION,
                    seeds_key="old",
                    matched_at=NOW - dt.timedelta(days=5),
                )
            )
        # another model's collection is not matched any more and does not count
        session.add(
            MatchState(
                article_id=ids[1],
                collection="passages__other",
                seeds_key="x",
                matched_at=NOW - dt.timedelta(days=9),
            )
        )
    assert stale_match_states(ctx, NOW - dt.timedelta(days=30), NOW) == 1
    assert stale_match_states(ctx, NOW - dt.timedelta(days=60), NOW) == 2
