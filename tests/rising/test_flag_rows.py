"""The flag's top articles: the strongest one of every outlet first, then the rest by score."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from narrwatch.steps.detect.counting import CountedArticle
from narrwatch.steps.detect.flag_rows import _top_articles

WHEN = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


def _article(article_id: int, outlet: str, score: float) -> CountedArticle:
    return CountedArticle(
        article_id=article_id,
        day=WHEN.date(),
        outlet=outlet,
        country="rs",
        language="sr",
        story_key=f"story-{article_id}",
        title=f"title {article_id}",
        url=f"https://example.test/{article_id}",
        published_at=WHEN,
        score=score,
        evidence={},
    )


articles = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9])), max_size=40
).map(lambda rows: [_article(i, outlet, score) for i, (outlet, score) in enumerate(rows)])


@given(articles, st.integers(min_value=0, max_value=12))
def test_each_outlet_leads_with_its_strongest_article_then_the_rest_follow_by_score(
    counted: list[CountedArticle], limit: int
) -> None:
    ordered = sorted(counted, key=lambda a: (-a.score, a.article_id))
    leaders = [a for i, a in enumerate(ordered) if a.outlet not in {b.outlet for b in ordered[:i]}]
    expected = [a.article_id for a in leaders + [a for a in ordered if a not in leaders]][:limit]

    top = _top_articles(counted, limit)

    assert [row["article_id"] for row in top] == expected
    assert len({row["article_id"] for row in top}) == len(top)
