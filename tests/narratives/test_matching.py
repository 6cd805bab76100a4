"""Matching stored articles with the real bundled model: evidence, versions, recompute, verdicts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from narratives_support import (
    FOOTBALL_TEXT,
    KOSOVO_TEXT,
    MAFIA_TEXT,
    NATO_TEXT,
    RUSSIA_TEXT,
    T0,
    WEATHER_TEXT,
    edit_seed,
    embed,
    store_articles,
)
from sqlalchemy import delete, func, select

from narrwatch.analyst import backtest as backtest_mod
from narrwatch.analyst import calibrate as calibrate_mod
from narrwatch.analyst import label as label_mod
from narrwatch.analyst import review as review_mod
from narrwatch.analyst import try_text as try_text_mod
from narrwatch.context import AppContext
from narrwatch.db import rules as rules_mod
from narrwatch.db.models import CountChange, Match, MatchState, NarrativeVersion, Passage
from narrwatch.embeddings.collections import collection_for
from narrwatch.steps.match import match as matching
from narrwatch.steps.match import versions as versions_mod

pytestmark = pytest.mark.db

NOW = T0 + dt.timedelta(days=10)
WINDOW = (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=5))
ARTICLES = [
    ("Aggression anniversary", NATO_TEXT),
    ("A stolen province", KOSOVO_TEXT),
    ("Clans in power", MAFIA_TEXT),
    ("Brothers", RUSSIA_TEXT),
    ("Weekend weather", WEATHER_TEXT),
    ("Derby", FOOTBALL_TEXT),
]


def stored_matches(ctx: AppContext) -> dict[tuple[int, str], Match]:
    with ctx.transaction() as session:
        return {(m.article_id, m.narrative_id): m for m in session.scalars(select(Match))}


def versions(ctx: AppContext, seed_id: str) -> list[tuple[int, str]]:
    with ctx.transaction() as session:
        rows = session.execute(
            select(NarrativeVersion.version, NarrativeVersion.content_hash)
            .where(NarrativeVersion.narrative_id == seed_id)
            .order_by(NarrativeVersion.version)
        ).all()
    return [(row.version, row.content_hash) for row in rows]


@pytest.fixture
def matched(nctx: AppContext) -> list[int]:
    ids = store_articles(nctx, ARTICLES)
    embed(nctx)
    report = matching.match_articles(nctx, *WINDOW, NOW)
    assert report.articles_scored == len(ARTICLES)
    return ids


def test_matches_carry_their_evidence(nctx: AppContext, matched: list[int]) -> None:
    nato, kosovo, mafia, russia, weather, football = matched
    found = stored_matches(nctx)
    assert set(found) == {
        (nato, "nato-aggressor"),
        (kosovo, "kosovo-illegitimate"),
        (mafia, "kosovo-illegitimate"),  # a sub-narrative's article also carries its parent
        (mafia, "kosovo-mafia"),
        (russia, "russia-true-friend"),
    }
    row = found[(nato, "nato-aggressor")]
    with nctx.transaction() as session:
        passage = session.scalar(
            select(Passage).where(Passage.article_id == nato, Passage.idx == row.evidence_idx)
        )
        version = session.get(NarrativeVersion, row.narrative_version_id)
    assert passage is not None and row.evidence_text == passage.text and NATO_TEXT in row.evidence_text
    assert (
        row.level == "confirm" and row.score >= row.threshold_confirm == 0.55 and row.threshold_suggest == 0.4
    )
    assert row.model_name == nctx.encoder.model_name and row.collection == collection_for(nctx.encoder)
    assert row.evidence_language == "en" and row.evidence_example is not None
    assert 0 < row.evidence_score <= 1 and row.lexical_score > 0
    assert version is not None and (version.narrative_id, version.version) == ("nato-aggressor", 1)
    assert row.published_at == T0 and row.matched_at == NOW


def test_match_is_idempotent(nctx: AppContext, matched: list[int]) -> None:
    before = {key: (m.id, m.score, m.matched_at) for key, m in stored_matches(nctx).items()}
    again = matching.match_articles(nctx, *WINDOW, NOW + dt.timedelta(hours=1))
    assert again.articles_scored == 0 and again.articles_up_to_date == len(ARTICLES)
    forced = matching.match_articles(nctx, *WINDOW, NOW + dt.timedelta(hours=2), recompute=True)
    assert forced.articles_scored == len(ARTICLES)
    assert (forced.rows_created, forced.rows_updated, forced.rows_removed) == (0, 0, 0)
    after = {key: (m.id, m.score, m.matched_at) for key, m in stored_matches(nctx).items()}
    assert after == before  # same rows, same ids, untouched timestamps


def test_editing_a_seed_makes_a_new_version_and_rematches(
    nctx: AppContext, seeds_dir: Path, matched: list[int]
) -> None:
    nato = matched[0]
    [(first_version, first_hash)] = versions(nctx, "nato-aggressor")
    assert first_version == 1
    edit_seed(seeds_dir, "nato-aggressor", thresholds={"suggest": 0.4, "confirm": 0.99})
    report = versions_mod.sync_narratives(nctx, NOW)
    assert report.created == ["nato-aggressor@2"] and report.unchanged == 3
    assert versions_mod.sync_narratives(nctx, NOW).created == []  # nothing new the second time
    result = matching.match_articles(nctx, *WINDOW, NOW)
    assert result.articles_scored == len(matched)  # the seeds changed: every article is stale
    row = stored_matches(nctx)[(nato, "nato-aggressor")]
    assert row.level == "suggest" and row.threshold_confirm == 0.99
    with nctx.transaction() as session:
        assert session.get(NarrativeVersion, row.narrative_version_id).version == 2  # type: ignore[union-attr]
    # Back to the first content: that version's row comes back with the next number.
    edit_seed(seeds_dir, "nato-aggressor", thresholds={"suggest": 0.4, "confirm": 0.55})
    assert versions_mod.sync_narratives(nctx, NOW).reactivated == ["nato-aggressor@3"]
    assert dict(versions(nctx, "nato-aggressor"))[3] == first_hash


def test_a_match_whose_level_moves_marks_its_day_for_recounting(
    nctx: AppContext, seeds_dir: Path, matched: list[int]
) -> None:
    """Detection reads a seed's past days back as stored: the day of a match that came, went or
    changed level is marked so that its counts are made again; a rerun that changes nothing marks
    nothing."""

    def marked() -> list[dt.date]:
        with nctx.transaction() as session:
            days = sorted(session.scalars(select(CountChange.day)))
            session.execute(delete(CountChange))
        return days

    marked()
    matching.match_articles(nctx, *WINDOW, NOW + dt.timedelta(hours=1), recompute=True)
    assert marked() == []
    edit_seed(seeds_dir, "nato-aggressor", thresholds={"suggest": 0.4, "confirm": 0.99})
    versions_mod.sync_narratives(nctx, NOW)
    report = matching.match_articles(nctx, *WINDOW, NOW)
    assert (report.rows_created, report.rows_removed) == (0, 0) and report.rows_updated >= 1
    assert set(marked()) == {T0.date()}  # the confirmed match became a suggestion


def test_a_match_falling_below_suggest_is_removed(
    nctx: AppContext, seeds_dir: Path, matched: list[int]
) -> None:
    score = stored_matches(nctx)[(matched[0], "nato-aggressor")].score
    assert score < 0.99
    edit_seed(seeds_dir, "nato-aggressor", thresholds={"suggest": 0.99, "confirm": 0.99})
    report = matching.match_articles(nctx, *WINDOW, NOW)
    assert report.rows_removed == 1
    assert (matched[0], "nato-aggressor") not in stored_matches(nctx)
    # Retiring the parent takes the sub-narrative with it (validation requires retiring both).
    edit_seed(seeds_dir, "kosovo-mafia", status="retired")
    edit_seed(seeds_dir, "kosovo-illegitimate", status="retired")
    matching.match_articles(nctx, *WINDOW, NOW)
    assert {seed for _, seed in stored_matches(nctx)} == {"russia-true-friend"}


def test_recompute_replaces_only_its_window(nctx: AppContext, seeds_dir: Path) -> None:
    day1 = store_articles(nctx, [("Day one", NATO_TEXT)], start=T0, prefix="https://one.example/")
    day2 = store_articles(
        nctx, [("Day two", NATO_TEXT)], start=T0 + dt.timedelta(days=1), prefix="https://two.example/"
    )
    embed(nctx)
    matching.match_articles(nctx, T0, T0 + dt.timedelta(days=2), NOW)
    edit_seed(
        seeds_dir, "nato-aggressor", description="NATO is called an aggressor and an occupier in the Balkans."
    )
    versions_mod.sync_narratives(nctx, NOW)
    matching.match_articles(nctx, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2), NOW, recompute=True)
    found = stored_matches(nctx)
    with nctx.transaction() as session:
        version_of = {
            article: session.get(
                NarrativeVersion, found[(article, "nato-aggressor")].narrative_version_id
            ).version  # type: ignore[union-attr]
            for article in (day1[0], day2[0])
        }
    assert version_of == {day1[0]: 1, day2[0]: 2}


def test_a_crash_mid_run_loses_and_duplicates_nothing(
    nctx: AppContext, monkeypatch: pytest.MonkeyPatch, matched: list[int]
) -> None:
    expected = {key: (m.level, m.score) for key, m in stored_matches(nctx).items()}
    with nctx.transaction() as session:
        session.execute(delete(MatchState))
        session.execute(delete(Match))
    monkeypatch.setattr(matching, "MATCH_BATCH", 2)
    real = matching._write_states
    calls = {"n": 0}

    def crash_on_second_batch(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(matching, "_write_states", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        matching.match_articles(nctx, *WINDOW, NOW)
    monkeypatch.setattr(matching, "_write_states", real)
    rerun = matching.match_articles(nctx, *WINDOW, NOW)
    assert rerun.articles_scored == len(matched) - 2  # the first batch was committed
    assert {key: (m.level, m.score) for key, m in stored_matches(nctx).items()} == expected
    with nctx.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Match)) == len(expected)


def test_rejecting_a_match_removes_it_from_the_report_and_moves_the_threshold(
    nctx: AppContext, seeds_dir: Path
) -> None:
    # Four NATO articles of decreasing closeness, all confirmed by score at first.
    texts = [
        NATO_TEXT,
        "NATO's 1999 aggression against Yugoslavia was a war crime without a UN mandate, veterans said.",
        "The alliance that bombed Serbian children in 1999 keeps troops in the Balkans, "
        "the speaker said at a rally.",
        "At the rally the speaker said the alliance that bombed Yugoslavia in 1999 committed aggression, "
        "then moved on to local roads, schools and the price of bread in the town.",
    ]
    ids = store_articles(nctx, [(f"Item {n}", text) for n, text in enumerate(texts)])
    embed(nctx)
    edit_seed(seeds_dir, "nato-aggressor", thresholds={"suggest": 0.2, "confirm": 0.3})
    matching.match_articles(nctx, *WINDOW, NOW)
    rows = sorted(
        (m for (a, s), m in stored_matches(nctx).items() if s == "nato-aggressor" and a in ids),
        key=lambda m: -m.score,
    )
    assert len(rows) == 4 and all(m.level == "confirm" for m in rows)
    weakest = rows[-1]
    assert weakest.score < rows[-2].score

    too_few = calibrate_mod.calibrate(nctx, "nato-aggressor", 0.9, NOW, min_verdicts=3)
    assert not too_few.stored and "too few verdicts: 0" in too_few.message

    for row in rows[:-1]:
        label_mod.label_match(nctx, row.id, "confirm", NOW)
    labelled = label_mod.label_match(nctx, weakest.id, "reject", NOW, note="reports the claim")
    assert labelled.replaced is None
    assert review_mod.pending_reviews(nctx, narrative_id="nato-aggressor") == []

    def in_report() -> set[int]:
        with nctx.transaction() as session:
            return {
                m.id
                for m in session.scalars(rules_mod.counted_matches_query(narrative_ids=["nato-aggressor"]))
            }

    assert weakest.id not in in_report() and rows[0].id in in_report()

    result = calibrate_mod.calibrate(nctx, "nato-aggressor", 0.9, NOW, min_verdicts=3)
    assert result.stored and result.n_confirmed == 3 and result.n_rejected == 1
    assert result.previous is not None and result.previous["confirm"] == 0.3
    assert weakest.score < result.confirm <= rows[-2].score + 1e-6  # type: ignore[operator]
    assert result.confirmed_kept == 3

    # The next match uses the calibrated thresholds: the rejected article is now only a suggestion.
    matching.match_articles(nctx, *WINDOW, NOW)
    after = stored_matches(nctx)[(weakest.article_id, "nato-aggressor")]
    assert after.level == "suggest" and after.threshold_confirm == result.confirm
    # A verdict outlives the recomputed row, and a second verdict replaces the first.
    assert label_mod.label_match(nctx, after.id, "confirm", NOW).replaced == "reject"
    assert after.id in in_report()


def test_label_an_unknown_match(nctx: AppContext) -> None:
    with pytest.raises(label_mod.MatchNotFound, match="no match with id 999"):
        label_mod.label_match(nctx, 999, "reject", NOW)


def test_backtest_agrees_with_match_and_shows_the_difference(
    nctx: AppContext, seeds_dir: Path, matched: list[int]
) -> None:
    same = backtest_mod.backtest(nctx, "kosovo-mafia", 30, NOW)
    assert same.total == 1 and same.top[0].article_id == matched[2] and same.top[0].evidence_text
    assert (same.added, same.removed, same.level_changed) == ([], [], [])
    assert same.per_day == {"2025-03-01": {"suggest": 0, "confirm": 1}} and same.stored_versions == [1]
    # A draft edit on disk: the backtest shows what would change before it goes live.
    edit_seed(seeds_dir, "kosovo-illegitimate", thresholds={"suggest": 0.99, "confirm": 0.99})
    stricter = backtest_mod.backtest(nctx, "kosovo-illegitimate", 30, NOW)
    assert stricter.removed == [matched[1], matched[2]] and stricter.added == []
    edit_seed(seeds_dir, "kosovo-illegitimate", thresholds={"suggest": -0.9, "confirm": 0.99})
    looser = backtest_mod.backtest(nctx, "kosovo-illegitimate", 30, NOW)
    assert set(looser.added) == set(matched) - {matched[1], matched[2]}
    assert looser.level_changed == [matched[1], matched[2]]  # confirmed before, only suggested now
    # Outside the window nothing is found.
    assert backtest_mod.backtest(nctx, "kosovo-mafia", 1, NOW).total == 0


def test_test_text_scores_every_seed_with_evidence(nctx: AppContext, seeds_dir: Path) -> None:
    edit_seed(seeds_dir, "russia-true-friend", status="draft")
    result = try_text_mod.test_text(nctx, "Weather first. " * 3 + "\n\n" + RUSSIA_TEXT, title="Brothers")
    best = result.seeds[0]
    assert best.narrative_id == "russia-true-friend" and best.status == "draft" and best.level == "confirm"
    assert RUSSIA_TEXT in best.evidence_text and best.keyword_hits == ["brothers"]
    assert [s.score for s in result.seeds] == sorted((s.score for s in result.seeds), reverse=True)
    with pytest.raises(ValueError, match="empty"):
        try_text_mod.test_text(nctx, "   ")
