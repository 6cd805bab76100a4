"""The language mix of each rising item: counted articles per language over the flag's window."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from report_fixtures import CLUSTER_ID, DAY, NOW, RISING_SEED, build_report_fixture

from narrwatch.context import AppContext
from narrwatch.db.models import DailyCount
from narrwatch.steps.report import render_report

pytestmark = pytest.mark.db


def _language_count(day: dt.date, language: str, n: int) -> DailyCount:
    return DailyCount(
        day=day,
        subject_kind="cluster",
        subject_id=str(CLUSTER_ID),
        dimension="language",
        dimension_value=language,
        n_articles=n,
        n_stories=n,
        n_outlets=n,
    )


def test_each_rising_item_shows_its_languages_with_counts_over_the_flag_window(ctx: AppContext) -> None:
    build_report_fixture(ctx)
    with ctx.transaction() as session:
        # The cluster's flag tests two days: the day and the one before count, the day before that does not.
        session.add_all(
            [
                _language_count(DAY, "sr", 1),
                _language_count(DAY, "ru", 1),
                _language_count(DAY - dt.timedelta(days=1), "sr", 2),
                _language_count(DAY - dt.timedelta(days=2), "mk", 5),
            ]
        )
    result = render_report(ctx, DAY, NOW)

    report = json.loads(result.json.read_text(encoding="utf-8"))
    mixes = {item["subject_id"]: item["language_mix"] for item in report["rising"]}
    assert mixes[RISING_SEED] == [{"language": "en", "n_articles": 6}]
    assert mixes[str(CLUSTER_ID)] == [
        {"language": "sr", "n_articles": 3},
        {"language": "ru", "n_articles": 1},
    ]

    html = result.html.read_text(encoding="utf-8")
    cluster_card = html[html.index(f'id="cluster-{CLUSTER_ID}"') :]
    cluster_card = cluster_card[: cluster_card.index("</article>")]
    assert "Language mix" in cluster_card and "sr 3, ru 1" in cluster_card
    markdown = result.markdown.read_text(encoding="utf-8")
    assert "- Language mix of the flagged articles: sr 3, ru 1" in markdown
    assert "- Language mix of the flagged articles: en 6" in markdown
