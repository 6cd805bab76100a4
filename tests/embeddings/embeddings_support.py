"""Helpers shared by the embeddings tests (articles in SQL, settings for the bundled model)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from narrwatch.config import BUNDLED_MODEL, Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article, Feed

QDRANT_SERVER = os.environ.get("NARRWATCH_TEST_QDRANT_URL")
T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def model_settings(models_dir: Path, **overrides: object) -> Settings:
    """Settings for the English model these tests' figures were set on, unless overridden."""
    values: dict[str, object] = {"embedding_model": BUNDLED_MODEL, **overrides}
    return Settings(data_dir=models_dir.parent, models_dir=models_dir, _env_file=None, **values)  # type: ignore[arg-type]


def unique_collection(prefix: str = "test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def add_feed(ctx: AppContext, feed_id: str = "f1", outlet: str = "Outlet One", country: str = "RS") -> None:
    with ctx.transaction() as session:
        session.add(
            Feed(
                id=feed_id,
                outlet=outlet,
                name=feed_id,
                url=f"http://127.0.0.1/{feed_id}.xml",
                country=country,
            )
        )


def add_articles(
    ctx: AppContext,
    texts: Sequence[tuple[str, str]],
    *,
    feed_id: str = "f1",
    outlet: str = "Outlet One",
    country: str = "RS",
    language: str | None = "en",
    start: dt.datetime = T0,
    url_prefix: str = "https://news.example/a/",
) -> list[int]:
    """Insert articles (title, text) one hour apart; return their ids in order."""
    ids = []
    with ctx.transaction() as session:
        for n, (title, text) in enumerate(texts):
            url = f"{url_prefix}{n}"
            article = Article(
                canonical_url=url,
                url=url,
                feed_id=feed_id,
                outlet=outlet,
                country=country,
                language=language,
                title=title,
                title_key=hashlib.sha256(title.encode()).hexdigest(),
                summary="",
                text=text,
                content_hash=hashlib.sha256(text.encode()).hexdigest(),
                published_at=start + dt.timedelta(hours=n),
                fetched_at=start + dt.timedelta(hours=n, minutes=5),
                story_key=hashlib.sha256(url.encode()).hexdigest(),
            )
            session.add(article)
            session.flush()
            ids.append(article.id)
    return ids
