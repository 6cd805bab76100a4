"""The history that bench/scale.py times the daily steps against: settings, the pool encoder, and
N articles of history with their passages, marks, states, matches, clusters and points, written in
bulk (COPY on PostgreSQL). See bench/scale.py's docstring for what is built and how vectors are made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAY0 = dt.date(2026, 1, 1)
N_FEEDS = 64
COUNTRIES = ["RS", "HR", "BA", "ME", "MK", "AL", "XK", "RU"]
LANGUAGES = ["sr", "hr", "bs", "sr", "mk", "sq", "sq", "ru"]
POOL_ARTICLES = 2000
DIM_NOISE = 0.35

# --- settings and context -----------------------------------------------------------------------


def database_url(backend: str, size: int, work: Path, pg: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{work / f'sqlite-{size}' / 'narrwatch.db'}"
    host, _, prefix = pg.partition("/")
    return f"postgresql+psycopg://postgres@{host}/{prefix or 'narrwatch_scale'}_{size}"


def make_settings(url: str, data_dir: Path, models_dir: Path) -> Any:
    from narrwatch.config import Settings

    return Settings(  # type: ignore[call-arg]
        data_dir=data_dir,
        database_url=url,
        qdrant_path=data_dir / "vectors",
        vector_engine="edge",
        models_dir=models_dir,
        narratives_dir=REPO / "narratives",
        feeds_file=REPO / "feeds.yaml",
        _env_file=None,
    )


class PoolEncoder:
    """The real encoder for queries (seeds, searches); pool-mixed vectors for passages (see docstring)."""

    def __init__(self, real: Any, pool: np.ndarray, seeds: np.ndarray) -> None:
        self._real = real
        self._pool = pool
        self._seeds = seeds
        self.model_name = real.model_name
        self.backend = real.backend
        self.fingerprint = real.fingerprint
        self.dimension = real.dimension
        self.max_tokens = real.max_tokens

    def count_tokens(self, text: str) -> int:
        return int(self._real.count_tokens(text))

    def encode_queries(self, texts: Any) -> np.ndarray:
        return np.asarray(self._real.encode_queries(texts), dtype=np.float32)

    def encode_passages(self, texts: Any) -> np.ndarray:
        return mixed_vectors([str(t) for t in texts], self._pool, self._seeds)


def mixed_vectors(texts: list[str], pool: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    out = np.empty((len(texts), pool.shape[1]), dtype=np.float32)
    for row, text in enumerate(texts):
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        a, b = rng.integers(0, len(pool), size=2)
        vector = pool[a] + 0.6 * pool[b] + DIM_NOISE * rng.normal(size=pool.shape[1]) / np.sqrt(pool.shape[1])
        if digest[0] < 11:  # about 1 in 25: pushes a seed narrative
            vector = vector + 1.6 * seeds[digest[1] % len(seeds)]
        out[row] = vector / np.linalg.norm(vector)
    return out


def load_pool(ctx: Any, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Encoded news sentences (the vector pool) and seed phrasings, cached beside the stores."""
    if cache.exists():
        data = np.load(cache)
        return data["pool"], data["seeds"]
    from narrwatch.embeddings.newsgen import generate_articles
    from narrwatch.steps.match.seeds import load_narratives

    narratives = load_narratives(ctx.settings.narratives_dir)
    sentences = sorted({s.strip() + "." for a in generate_articles(120, seed=5) for s in a.text.split(". ")})
    near = [text for seed in narratives for text in seed.negatives]
    pool = ctx.encoder.encode_passages(sentences[:400] + near)
    seeds = ctx.encoder.encode_passages([text for seed in narratives for text in seed.examples])
    np.savez(cache, pool=pool, seeds=seeds)
    return pool, seeds


def open_context(url: str, data_dir: Path, models_dir: Path, pool_cache: Path) -> Any:
    from narrwatch.context import AppContext

    ctx = AppContext.from_settings(make_settings(url, data_dir, models_dir))
    pool, seeds = load_pool(ctx, pool_cache)
    ctx._encoder = PoolEncoder(ctx.encoder, pool, seeds)
    return ctx


# --- building the history -----------------------------------------------------------------------


def feed_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"feed-{i:02d}",
            "outlet": f"Outlet {i:02d}",
            "name": f"feed {i:02d}",
            "url": f"https://outlet{i:02d}.example/rss",
            "country": COUNTRIES[i % len(COUNTRIES)],
            "languages": [LANGUAGES[i % len(LANGUAGES)]],
        }
        for i in range(N_FEEDS)
    ]


def history_days(size: int, per_day: int) -> int:
    return max(30, -(-size // per_day))


def build(ctx: Any, backend: str, size: int, per_day: int) -> dict[str, float]:
    """Write ``size`` articles of history with their passages, marks, states, matches, clusters, points."""
    from narrwatch.db.migrate import upgrade
    from narrwatch.db.models import Feed
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.embeddings.newsgen import generate_articles
    from narrwatch.steps.match.seeds import load_narratives
    from narrwatch.steps.match.versions import current_versions, sync_narratives

    timings: dict[str, float] = {}
    started = time.perf_counter()
    upgrade(ctx.settings.resolved_database_url)
    with ctx.transaction() as session:
        for row in feed_rows():
            session.add(Feed(**row))
    sync_narratives(ctx, dt.datetime.combine(DAY0, dt.time(0), tzinfo=dt.UTC))
    narratives = load_narratives(ctx.settings.narratives_dir)
    with ctx.transaction() as session:
        versions = current_versions(session, narratives)
    active = [seed.id for seed in narratives.active()]
    encoder = ctx.encoder
    collection = collection_for(encoder)
    pool_articles = generate_articles(POOL_ARTICLES, seed=99)
    days = history_days(size, per_day)
    store = ctx.vector_store
    store.ensure_collection(collection, encoder.dimension)

    chunk = 50_000
    next_cluster = 1
    writer = Writer(ctx, backend)
    for start in range(0, size, chunk):
        ids = np.arange(start + 1, min(size, start + chunk) + 1)
        rows = history_rows(
            ids, size, days, pool_articles, collection, active, versions, next_cluster, encoder
        )
        next_cluster = rows["next_cluster"]
        t = time.perf_counter()
        writer.write(rows)
        timings["sql"] = timings.get("sql", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        store.upsert(collection, rows["points"])
        timings["vectors"] = timings.get("vectors", 0.0) + time.perf_counter() - t
    writer.finish()
    t = time.perf_counter()
    store.optimize(collection)  # what the daily writes' folds leave: every point indexed
    timings["vectors"] += time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    return timings


def history_rows(
    ids: np.ndarray,
    size: int,
    days: int,
    pool_articles: list[Any],
    collection: str,
    active: list[str],
    versions: dict[str, Any],
    next_cluster: int,
    encoder: Any,
) -> dict[str, Any]:
    from narrwatch.domain.urls import point_uuid
    from narrwatch.embeddings.points import vector_bytes
    from narrwatch.ports import VectorPoint

    start = dt.datetime.combine(DAY0, dt.time(0), tzinfo=dt.UTC)
    span = days * 86400
    articles, passages, marks, states, matches, members, clusters, points = [], [], [], [], [], [], [], []
    texts = []
    for article_id in ids.tolist():
        source = pool_articles[article_id % len(pool_articles)]
        feed = (article_id * 7) % N_FEEDS
        published = start + dt.timedelta(seconds=int((article_id - 1) * span / size))
        url = f"https://outlet{feed:02d}.example/news/{article_id}"
        title = f"{source.title} ({article_id})"
        text = source.text
        texts.append(f"{title}. {text}")
        articles.append(
            {
                "id": article_id,
                "canonical_url": url,
                "url": url,
                "feed_id": f"feed-{feed:02d}",
                "outlet": f"Outlet {feed:02d}",
                "country": COUNTRIES[feed % len(COUNTRIES)],
                "language": LANGUAGES[feed % len(LANGUAGES)],
                "language_detector": "feed",
                "title": title,
                "title_key": hashlib.sha256(title.lower().encode()).hexdigest()[:64],
                "summary": "",
                "text": text,
                "text_source": "feed",
                "content_hash": hashlib.sha256(text.encode()).hexdigest(),
                "published_at": published,
                "published_estimated": False,
                "fetched_at": published + dt.timedelta(minutes=10),
                "story_key": hashlib.sha256(url.encode()).hexdigest(),
            }
        )
        point_id = str(point_uuid(url, 0))
        passages.append(
            {
                "id": article_id,
                "article_id": article_id,
                "collection": collection,
                "idx": 0,
                "text": text,
                "point_id": point_id,
            }
        )
        marks.append(
            {
                "article_id": article_id,
                "collection": collection,
                "n_passages": 1,
                "model_name": encoder.model_name,
                "backend": encoder.backend,
                "model_fingerprint": encoder.fingerprint,
                "embedded_at": published,
            }
        )
        states.append(
            {
                "article_id": article_id,
                "collection": collection,
                "seeds_key": "history",
                "matched_at": published,
            }
        )
        if article_id % 25 == 0:
            seed = active[(article_id // 25) % len(active)]
            matches.append(
                {
                    "article_id": article_id,
                    "narrative_id": seed,
                    "narrative_version_id": versions[seed].id,
                    "collection": collection,
                    "model_name": encoder.model_name,
                    "score": 0.7,
                    "level": "confirm",
                    "evidence_text": text[:300],
                    "evidence_idx": 0,
                    "evidence_score": 0.7,
                    "evidence_language": "en",
                    "lexical_score": 0.0,
                    "evidence_example": None,
                    "threshold_suggest": 0.5,
                    "threshold_confirm": 0.6,
                    "published_at": published,
                    "matched_at": published,
                }
            )
        else:
            members.append((article_id, published))
    vectors = encoder.encode_passages(texts)
    for row, passage, vector in zip(articles, passages, vectors, strict=True):
        passage["vector"] = vector_bytes(vector)  # as the embed step keeps it beside the point
        points.append(
            VectorPoint(
                id=str(point_uuid(row["canonical_url"], 0)),
                vector=vector,
                payload={
                    "article_id": row["id"],
                    "passage_idx": 0,
                    "feed_id": row["feed_id"],
                    "outlet": row["outlet"],
                    "country": row["country"],
                    "language": row["language"],
                    "published_ts": row["published_at"].timestamp(),
                    "model": encoder.model_name,
                    "backend": encoder.backend,
                    "fingerprint": encoder.fingerprint,
                },
            )
        )
    by_id = {row["id"]: i for i, row in enumerate(articles)}
    member_rows = []
    for group_start in range(0, len(members), 10):
        group = members[group_start : group_start + 10]
        centroid = vectors[by_id[group[0][0]]]
        clusters.append(
            {
                "id": next_cluster,
                "collection": collection,
                "status": "live",
                "size": len(group),
                "centroid": [round(float(x), 5) for x in centroid],
                "label": "history",
                "representative_title": articles[by_id[group[0][0]]]["title"],
                "representative_article_id": group[0][0],
                "first_seen_at": group[0][1],
                "last_seen_at": group[-1][1],
            }
        )
        for article_id, published in group:
            member_rows.append(
                {
                    "article_id": article_id,
                    "collection": collection,
                    "cluster_id": next_cluster,
                    "similarity": 0.8,
                    "published_at": published,
                }
            )
        next_cluster += 1
    return {
        "articles": articles,
        "passages": passages,
        "article_embeddings": marks,
        "match_states": states,
        "matches": matches,
        "clusters": clusters,
        "cluster_members": member_rows,
        "points": points,
        "next_cluster": next_cluster,
    }


class Writer:
    """Bulk rows into SQL: COPY on PostgreSQL, executemany on SQLite."""

    TABLES = [
        "articles",
        "passages",
        "article_embeddings",
        "match_states",
        "matches",
        "clusters",
        "cluster_members",
    ]

    def __init__(self, ctx: Any, backend: str) -> None:
        self.ctx = ctx
        self.backend = backend
        self.match_id = 0

    def write(self, rows: dict[str, Any]) -> None:
        from narrwatch.db.models import Base

        for match in rows["matches"]:
            self.match_id += 1
            match["id"] = self.match_id
        with self.ctx.engine.begin() as connection:
            for table in self.TABLES:
                if not rows[table]:
                    continue
                if self.backend == "postgresql":
                    self._copy(connection, table, rows[table])
                else:
                    connection.execute(Base.metadata.tables[table].insert(), rows[table])

    def _copy(self, connection: Any, table: str, rows: list[dict[str, Any]]) -> None:
        from narrwatch.db.models import Base

        columns = list(rows[0])
        sa_table = Base.metadata.tables[table]
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_copy_value(sa_table.c[c], row[c]) for c in columns])

    def finish(self) -> None:
        from sqlalchemy import text

        with self.ctx.engine.begin() as connection:
            if self.backend == "postgresql":
                for table, column in [
                    ("articles", "id"),
                    ("passages", "id"),
                    ("matches", "id"),
                    ("clusters", "id"),
                ]:
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                            f"(SELECT coalesce(max({column}), 1) FROM {table}))"
                        )
                    )


def settle(ctx: Any, backend: str) -> None:
    """Leave the built history as a store that has run for weeks is: vacuumed, analysed, its pages
    written out. Without this the first steps after the bulk load set every page's hint bits, race
    autovacuum and wait on the checkpointer writing gigabytes, and time that instead."""
    from sqlalchemy import text

    statements = ["VACUUM (ANALYZE)", "CHECKPOINT"] if backend == "postgresql" else ["ANALYZE"]
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for statement in statements:
            connection.execute(text(statement))


def _copy_value(column: Any, value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value
