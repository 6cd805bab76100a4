"""Small stand-ins and builders for the rising and clustering tests (no model is loaded)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from narrwatch.db import rules
from narrwatch.db.models import Article, Feed

DATA = Path(__file__).resolve().parent / "data"
STORIES = DATA / "stories.jsonl"
_WORD = re.compile(r"\w+")


class HashingEncoder:
    """Bag-of-words vectors by feature hashing: texts sharing words point the same way."""

    model_name = "test-hashing-encoder"
    backend = "test"
    fingerprint = "0123456789abcdef"
    dimension = 512
    max_tokens = 128

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def _encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                if len(word) > 3:
                    digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                    out[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)


def load_stories() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in STORIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row["published_at"] = dt.datetime.fromisoformat(row["published"].replace("Z", "+00:00"))
    return sorted(rows, key=lambda r: (r["published_at"], r["id"]))


def add_feed(session: Any, outlet: str, country: str = "rs") -> str:
    feed_id = f"feed-{outlet}"
    if session.get(Feed, feed_id) is None:
        session.add(
            Feed(id=feed_id, outlet=outlet, name=outlet, url=f"https://{outlet}.test/rss", country=country)
        )
        session.flush()
    return feed_id


def add_article(
    session: Any,
    *,
    key: str,
    outlet: str,
    published_at: dt.datetime,
    title: str,
    text: str = "",
    country: str = "rs",
    language: str | None = "en",
    story_key: str | None = None,
) -> Article:
    feed_id = add_feed(session, outlet, country)
    article = Article(
        canonical_url=f"https://{outlet}.test/{key}",
        url=f"https://{outlet}.test/{key}",
        feed_id=feed_id,
        outlet=outlet,
        country=country,
        language=language,
        title=title,
        title_key=hashlib.sha256(title.encode()).hexdigest(),
        summary="",
        text=text,
        content_hash=hashlib.sha256((title + text).encode()).hexdigest(),
        published_at=published_at,
        fetched_at=published_at,
        story_key=story_key or hashlib.sha256(key.encode()).hexdigest(),
    )
    session.add(article)
    session.flush()
    return article


def add_seed_version(session: Any, narrative_id: str, created_at: dt.datetime) -> int:
    from narrwatch.db.models import NarrativeVersion

    row = NarrativeVersion(
        narrative_id=narrative_id,
        version=1,
        content_hash=hashlib.sha256(narrative_id.encode()).hexdigest(),
        title=narrative_id,
        parent_id=None,
        status="active",
        definition={"id": narrative_id},
        source_file=f"narratives/{narrative_id}.yaml",
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return row.id


def add_match(
    session: Any,
    article: Article,
    narrative_id: str,
    version_id: int,
    *,
    collection: str,
    level: str = "confirm",
    score: float = 0.8,
) -> Any:
    from narrwatch.db.models import Match

    match = Match(
        article_id=article.id,
        narrative_id=narrative_id,
        narrative_version_id=version_id,
        collection=collection,
        model_name="test",
        score=score,
        level=level,
        evidence_text=article.title,
        evidence_idx=0,
        evidence_score=score,
        evidence_language=article.language,
        lexical_score=0.0,
        threshold_suggest=0.5,
        threshold_confirm=0.7,
        published_at=article.published_at,
        matched_at=article.published_at,
    )
    session.add(match)
    session.flush()
    rules.mark_counts_stale(session, [article.published_at.date()])  # as the match step does
    return match


def add_verdict(session: Any, match: Any, verdict: str) -> None:
    from narrwatch.db.models import Verdict

    session.add(
        Verdict(
            article_id=match.article_id,
            narrative_id=match.narrative_id,
            match_id=match.id,
            verdict=verdict,
            score=match.score,
            collection=match.collection,
            created_at=match.matched_at,
        )
    )
    session.flush()
    rules.mark_counts_stale(session, [match.published_at.date()])  # as labelling does
