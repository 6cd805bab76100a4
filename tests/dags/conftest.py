"""Helpers of the DAG, maintenance and status tests: rows written through the models, and the
environment of the Airflow subprocesses."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from narrwatch.context import AppContext
from narrwatch.db.models import Article, ArticleEmbedding, ArticleSighting, Feed, Passage
from narrwatch.ports import VectorPoint

NOW = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)  # the tests use the same instant
COLLECTION = "passages__test__4__abc"


class Rows:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def feed(self, feed_id: str, **state: Any) -> None:
        with self.ctx.transaction() as session:
            session.add(
                Feed(
                    id=feed_id,
                    outlet=feed_id,
                    name=feed_id,
                    url=f"http://127.0.0.1/{feed_id}",
                    country="RS",
                    **state,
                )
            )

    def article(
        self,
        url: str,
        published_at: dt.datetime,
        *,
        feed_id: str = "f1",
        passages: int = 2,
        embedded: bool = True,
        title: str | None = None,
        text: str = "",
    ) -> tuple[int, list[str]]:
        """An article with a sighting and, when embedded, passages, a mark and points in the store."""
        key = hashlib.sha256(url.encode()).hexdigest()
        point_ids = [
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{url}#{i}")) for i in range(passages if embedded else 0)
        ]
        with self.ctx.transaction() as session:
            article = Article(
                canonical_url=url,
                url=url,
                feed_id=feed_id,
                outlet=feed_id,
                country="RS",
                title=title or url,
                text=text,
                title_key=key,
                content_hash=key,
                published_at=published_at,
                fetched_at=published_at + dt.timedelta(minutes=5),
                story_key=key,
            )
            session.add(article)
            session.flush()
            session.add(
                ArticleSighting(
                    article_id=article.id,
                    feed_id=feed_id,
                    entry_key=key,
                    url=url,
                    matched_by="new",
                    seen_at=NOW,
                )
            )
            for idx, point_id in enumerate(point_ids):
                session.add(
                    Passage(
                        article_id=article.id, collection=COLLECTION, idx=idx, text="text", point_id=point_id
                    )
                )
            if embedded:
                session.add(
                    ArticleEmbedding(
                        article_id=article.id,
                        collection=COLLECTION,
                        n_passages=len(point_ids),
                        model_name="test",
                        backend="torch",
                        model_fingerprint="abc",
                        embedded_at=published_at,
                    )
                )
            article_id = article.id
        if point_ids:
            self.ctx.vector_store.ensure_collection(COLLECTION, 4)
            self.ctx.vector_store.upsert(
                COLLECTION,
                [
                    VectorPoint(
                        id=pid, vector=np.full(4, 0.5, dtype=np.float32), payload={"article_id": article_id}
                    )
                    for pid in point_ids
                ],
            )
        return article_id, point_ids


@pytest.fixture
def rows(ctx: AppContext) -> Rows:
    return Rows(ctx)


REPO = Path(__file__).resolve().parents[2]


def isolated_env(home: Path, **overrides: str) -> dict[str, str]:
    """The environment of an Airflow subprocess: its own AIRFLOW_HOME and NARRWATCH_* settings.

    Airflow's configuration is process-wide, so Airflow runs only in subprocesses; nothing of the
    caller's AIRFLOW_* or NARRWATCH_* variables leaks in.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "NARRWATCH_", "_AIRFLOW"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "NARRWATCH_DATA_DIR": str(home / "var"),
            "NARRWATCH_FEEDS_FILE": str(REPO / "feeds.yaml"),
            "NARRWATCH_NARRATIVES_DIR": str(REPO / "narratives"),
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def airflow_env() -> Callable[..., dict[str, str]]:
    return isolated_env
