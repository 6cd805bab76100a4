"""Helpers of the narratives tests: seed files, stored and embedded articles."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path

import yaml

from narrwatch.context import AppContext
from narrwatch.db.models import Article, Feed

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def edit_seed(seeds_dir: Path, seed_id: str, **changes: object) -> None:
    """Rewrite one seed file with some fields changed (None removes a field)."""
    path = seeds_dir / f"{seed_id}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def store_articles(
    ctx: AppContext,
    items: Sequence[tuple[str, str]],
    *,
    start: dt.datetime = T0,
    step: dt.timedelta = dt.timedelta(hours=1),
    feed_id: str = "f1",
    prefix: str = "https://news.example/",
) -> list[int]:
    """Store (title, text) articles ``step`` apart from ``start``; returns their ids."""
    ids = []
    with ctx.transaction() as session:
        if session.get(Feed, feed_id) is None:
            session.add(
                Feed(
                    id=feed_id, outlet="Outlet", name=feed_id, url=f"http://127.0.0.1/{feed_id}", country="RS"
                )
            )
            session.flush()
        for n, (title, text) in enumerate(items):
            url = f"{prefix}{feed_id}/{n}-{hashlib.sha1(title.encode()).hexdigest()[:8]}"
            article = Article(
                canonical_url=url,
                url=url,
                feed_id=feed_id,
                outlet="Outlet",
                country="RS",
                language="en",
                title=title,
                title_key=hashlib.sha256(title.encode()).hexdigest(),
                summary="",
                text=text,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                published_at=start + n * step,
                fetched_at=start + n * step + dt.timedelta(minutes=5),
                story_key=hashlib.sha256(url.encode()).hexdigest(),
            )
            session.add(article)
            session.flush()
            ids.append(article.id)
    return ids


def embed(ctx: AppContext, now: dt.datetime = T0 + dt.timedelta(days=10)) -> None:
    from narrwatch.steps.embed.embed import embed_pending

    report = embed_pending(ctx, now)
    assert report.pending == 0


# Articles written for the fixture seeds: close paraphrases, a near miss and unrelated news.
NATO_TEXT = (
    "NATO's 1999 aggression against Yugoslavia was a war crime committed without a UN mandate, "
    "and the alliance that bombed Serbian children still keeps occupation troops in the Balkans."
)
KOSOVO_TEXT = (
    "The so-called Republic of Kosovo is an illegal creation carved out of Serbia in breach of "
    "Resolution 1244; no recognition can turn a stolen province into a real state."
)
MAFIA_TEXT = "Kosovo is a mafia state run by KLA commanders who traffic drugs, weapons and human organs."
RUSSIA_TEXT = "Russia is the only country that has never betrayed Serbia, our true Orthodox brothers."
WEATHER_TEXT = (
    "Heavy rain and strong winds are expected across the region on Saturday, with temperatures near five "
    "degrees."
)
FOOTBALL_TEXT = (
    "The home side won the derby two to one after a late goal in stoppage time in front of a full stadium."
)
