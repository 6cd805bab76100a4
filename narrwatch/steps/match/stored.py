"""Stored, embedded articles read back with their passage vectors, for scoring outside the match run."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from narrwatch.db import rules
from narrwatch.db.models import (
    Article,
)
from narrwatch.embeddings.points import canonical_id, passage_vectors_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from narrwatch.domain.scoring import Array
    from narrwatch.ports import VectorStore


@dataclass
class StoredArticle:
    id: int
    published_at: dt.datetime
    language: str | None
    title: str
    passage_idx: list[int]
    passage_texts: list[str]
    vectors: Array


def load_stored_articles(
    session: Session, store: VectorStore, collection: str, article_ids: Sequence[int]
) -> tuple[list[StoredArticle], list[int]]:
    """Articles with their passages and vectors; second value: ids whose vectors are missing."""
    if not article_ids:
        return [], []
    meta = {
        row.id: row
        for row in session.execute(
            select(Article.id, Article.published_at, Article.language, Article.title).where(
                Article.id.in_(article_ids)
            )
        )
    }
    passages: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    rows_read = list(session.scalars(rules.current_passages(collection, article_ids)))
    for row in rows_read:
        passages[row.article_id].append((row.idx, row.text, row.point_id))
    vectors = passage_vectors_of(store, collection, rows_read)
    found: list[StoredArticle] = []
    missing: list[int] = []
    for article_id in article_ids:
        rows = passages.get(article_id, [])
        article = meta.get(article_id)
        if article is None or not rows:
            continue
        try:
            matrix = np.stack([vectors[canonical_id(point_id)] for _, _, point_id in rows])
        except KeyError:
            missing.append(article_id)  # Qdrant lost points: reconcile re-embeds, match retries then
            continue
        found.append(
            StoredArticle(
                id=article_id,
                published_at=article.published_at,
                language=article.language,
                title=article.title,
                passage_idx=[idx for idx, _, _ in rows],
                passage_texts=[text for _, text, _ in rows],
                vectors=matrix.astype(np.float32),
            )
        )
    return found, missing
