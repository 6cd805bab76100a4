"""How each daily step's cost grows with the stored history: 10k, 100k, 1M articles.

For each size it builds a store (SQL + the embedded vector engine, Qdrant Edge), then times every
daily step for one new day of ``--day`` articles (20,000 by default) and the analyst's tools, each
step in its own process so its peak RSS is its own (``ru_maxrss``):

    persist   the day's feed entries through the real dedup and insert path (decide_entries +
              persist_plan), 64 feeds of the bench's outlets
    embed     narrwatch embed: passages split by the real tokenizer, written to SQL and the store
    match     narrwatch match over the new day (the 9 seed narratives)
    cluster   narrwatch cluster over the new day's unmatched articles
    detect    narrwatch detect for the new day (baselines over the history's daily counts)
    report    narrwatch report for the new day
    backtest  narratives backtest of one seed over 30 days
    search    an analyst's query: encode a text, top 10 of the last 30 days in one language (median of 20)
    try       narratives try: score one text against every seed

History (what is being scaled): articles spread over max(30, size / 20,000) days, texts from the
bench's news generator (embeddings/newsgen.py, a pool of 2,000 reused with unique titles and URLs),
one passage each, marks, match states, a match for 4 % of them and clusters of ten for the
unmatched ones; it is written with bulk inserts (COPY on PostgreSQL), not through the steps.

Vectors: the encoder embeds 60-90 texts/s here, so 1M articles would take days. Every history point
and every passage of the new day therefore gets a vector made without the encoder: a normalised mix
of two vectors of a pool of really encoded texts (news sentences, the seeds' phrasings and their
near misses) picked by a hash of the text, plus noise; one article in 25 mixes in a seed phrasing,
so matching, clustering and rising detection have real work. Seeds and queries are encoded by the
real model (bundled MiniLM, ONNX int8). bench/embed.py measures the encoder itself.

    .venv/bin/python bench/scale.py --sizes 10000,100000 --backend sqlite
    .venv/bin/python bench/scale.py --sizes 10000,100000,1000000 --backend postgresql
    .venv/bin/python bench/scale.py --sizes 10000,100000 --json   # last line: one JSON object

PostgreSQL: a database per size (``narrwatch_scale_<size>``, or ``<prefix>_<size>`` with a prefix) on
``--pg`` (default 127.0.0.1:5432, user postgres), dropped and made again unless ``--reuse`` finds it built.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAILY_STEPS = ["persist", "embed", "match", "cluster", "detect", "report"]
TOOL_STEPS = ["backtest", "search", "try"]
STEPS = DAILY_STEPS + TOOL_STEPS
DAY0 = dt.date(2026, 1, 1)
N_FEEDS = 64
COUNTRIES = ["RS", "HR", "BA", "ME", "MK", "AL", "XK", "RU"]
LANGUAGES = ["sr", "hr", "bs", "sr", "mk", "sq", "sq", "ru"]
POOL_ARTICLES = 2000
DIM_NOISE = 0.35
SEARCH_TEXT = "The government denied that the energy deal gives a foreign company control of the grid."


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
    for row, vector in zip(articles, vectors, strict=True):
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
        with self.ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def _copy_value(column: Any, value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


# --- the new day ----------------------------------------------------------------------------------


def day_of(size: int, per_day: int) -> dt.date:
    return DAY0 + dt.timedelta(days=history_days(size, per_day))


def persist_day(ctx: Any, day: dt.date, n: int) -> dict[str, Any]:
    """The day's entries through the real dedup and insert path, one document per feed."""
    from narrwatch.domain.types import ParsedEntry
    from narrwatch.embeddings.newsgen import generate_articles
    from narrwatch.steps.poll.decide import FeedSnapshot, decide_entries, entry_keys
    from narrwatch.steps.poll.lookups import _load_lookups
    from narrwatch.steps.poll.persist import persist_plan

    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    generated = generate_articles(n, seed=day.toordinal())
    per_feed: dict[int, list[ParsedEntry]] = {}
    for i, article in enumerate(generated):
        feed = i % N_FEEDS
        published = start + dt.timedelta(seconds=int(i * 86400 / n))
        link = f"https://outlet{feed:02d}.example/news/{day.isoformat()}/{i}"
        per_feed.setdefault(feed, []).append(
            ParsedEntry(
                title=f"{article.title} [{day.isoformat()} {i}]",
                link=link,
                guid=link,
                summary="",
                content=article.text,
                published=published,
                updated=None,
                author=None,
                language=LANGUAGES[feed % len(LANGUAGES)],
            )
        )
    now = start + dt.timedelta(days=1, hours=1)
    from narrwatch.db.models import Feed

    new_articles = 0
    started = time.perf_counter()
    for feed_number, entries in sorted(per_feed.items()):
        with ctx.transaction() as session:
            row = session.get(Feed, f"feed-{feed_number:02d}")
            snapshot = FeedSnapshot.of(row)
            keys = entry_keys(entries, use_links=False)
            lookups = _load_lookups(session, snapshot, entries, keys)
            plan = decide_entries(
                snapshot, entries, keys, lookups, now, dt.timedelta(days=ctx.settings.dedup_title_window_days)
            )
            added, _ = persist_plan(session, snapshot.id, plan, now)
            new_articles += added
    return {"seconds": time.perf_counter() - started, "new_articles": new_articles}


def run_step(step: str, ctx: Any, day: dt.date) -> dict[str, Any]:
    from narrwatch import pipeline
    from narrwatch.analyst.backtest import backtest
    from narrwatch.analyst.try_text import test_text

    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    now = end + dt.timedelta(hours=1)
    if step == "persist":
        return persist_day(ctx, day, ctx.bench_day_articles)
    started = time.perf_counter()
    summary: Any
    if step == "embed":
        summary = pipeline.embed(ctx, now)
    elif step == "match":
        summary = pipeline.match(ctx, start, end, now)
    elif step == "cluster":
        summary = pipeline.cluster(ctx, start, end, now)
    elif step == "detect":
        summary = pipeline.detect(ctx, day, now)
    elif step == "report":
        summary = pipeline.report(ctx, day, now, out_dir=ctx.settings.data_dir / "reports")
    elif step == "backtest":
        from narrwatch.steps.match.seeds import load_narratives

        seed = next(iter(load_narratives(ctx.settings.narratives_dir).active())).id
        result = backtest(ctx, seed, 30, now)
        summary = {"candidates": result.candidates, "total": result.total}
    elif step == "search":
        return timed_searches(ctx, now)
    elif step == "try":
        summary = {"seeds": len(test_text(ctx, SEARCH_TEXT).seeds)}
    else:
        raise ValueError(step)
    return {"seconds": time.perf_counter() - started, "summary": summary}


def timed_searches(ctx: Any, now: dt.datetime) -> dict[str, Any]:
    from sqlalchemy import select

    from narrwatch.db.models import Article
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.ports import SearchFilter

    collection = collection_for(ctx.encoder)
    timings = []
    for n in range(20):
        started = time.perf_counter()
        vector = ctx.encoder.encode_queries([f"{SEARCH_TEXT} ({n})"])[0]
        hits = ctx.vector_store.search(
            collection,
            vector,
            10,
            SearchFilter(
                published_from=now - dt.timedelta(days=30),
                published_to=now,
                languages=[LANGUAGES[n % len(LANGUAGES)]],
            ),
        )
        with ctx.transaction() as session:
            session.execute(
                select(Article.id, Article.title).where(
                    Article.id.in_([h.payload["article_id"] for h in hits])
                )
            ).all()
        timings.append(time.perf_counter() - started)
    return {"seconds": statistics.median(timings), "summary": {"searches": 20}}


# --- driver ---------------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """One step in this process; prints its seconds and peak RSS as JSON."""
    import logging

    logging.disable(logging.WARNING)
    ctx = open_context(args.url, Path(args.data_dir), Path(args.models_dir), Path(args.pool))
    ctx.bench_day_articles = args.day
    ctx.encoder.count_tokens("warm")  # load the tokenizer and model before the clock starts
    ctx.vector_store  # noqa: B018 - open the store before the clock starts
    result = run_step(args.step, ctx, dt.date.fromisoformat(args.on))
    ctx.close()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, default=str))


def prepare(
    backend: str, size: int, work: Path, pg: str, per_day: int, models_dir: Path, reuse: bool
) -> Path:
    data_dir = work / f"{backend}-{size}"
    url = database_url(backend, size, work, pg)
    stamp = data_dir / "built.json"
    if reuse and stamp.exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    if backend == "postgresql":
        name = database_url(backend, size, work, pg).rsplit("/", 1)[1]
        host, _, port = pg.split("/")[0].partition(":")
        subprocess.run(
            ["dropdb", "-h", host, "-p", port or "5432", "-U", "postgres", "--if-exists", name], check=True
        )
        subprocess.run(["createdb", "-h", host, "-p", port or "5432", "-U", "postgres", name], check=True)
    ctx = open_context(url, data_dir, models_dir, work / "pool.npz")
    timings = build(ctx, backend, size, per_day)
    # Steady state: yesterday's detection has written the daily counts the baselines read.
    from narrwatch import pipeline

    yesterday = day_of(size, per_day) - dt.timedelta(days=1)
    started = time.perf_counter()
    pipeline.detect(ctx, yesterday, dt.datetime.combine(yesterday, dt.time(23), tzinfo=dt.UTC))
    timings["detect_history"] = time.perf_counter() - started
    ctx.close()
    stamp.write_text(json.dumps(timings))
    print(f"built {backend} {size:,}: {timings}", file=sys.stderr, flush=True)
    return data_dir


def disk_usage(backend: str, size: int, data_dir: Path, pg: str) -> dict[str, float]:
    vectors = sum(f.stat().st_size for f in (data_dir / "vectors").rglob("*") if f.is_file()) / 2**20
    if backend == "sqlite":
        sql = sum(f.stat().st_size for f in data_dir.glob("narrwatch.db*")) / 2**20
    else:
        host, _, port = pg.split("/")[0].partition(":")
        out = subprocess.run(
            [
                "psql",
                "-h",
                host,
                "-p",
                port or "5432",
                "-U",
                "postgres",
                "-d",
                database_url(backend, size, data_dir, pg).rsplit("/", 1)[1],
                "-tAc",
                "SELECT pg_database_size(current_database())",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        sql = int(out.stdout.strip()) / 2**20
    return {"sql_mb": round(sql, 1), "vectors_mb": round(vectors, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--day", type=int, default=20_000, help="articles of the new day")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench-scale")
    parser.add_argument(
        "--pg", default="127.0.0.1:5432", help="host:port, or host:port/prefix: databases named prefix_<size>"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse a built history (the new day is rebuilt)")
    parser.add_argument("--json", action="store_true")
    # internal: one step in a child process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--on", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    steps = [s for s in args.steps.split(",") if s]
    work = args.work.resolve()
    models_dir = work / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, dict[int, float]] = {step: {} for step in steps}
    peak: dict[str, dict[int, float]] = {step: {} for step in steps}
    disk: dict[int, dict[str, float]] = {}
    done: list[int] = []
    for size in sizes:
        try:
            run_size(args, size, steps, work, models_dir, seconds, peak, disk)
        except (SystemExit, Exception) as exc:  # report the sizes that completed
            print(f"size {size:,} did not complete: {exc}", file=sys.stderr, flush=True)
            break
        done.append(size)
    sizes = done
    if not sizes:
        raise SystemExit("no size completed")
    print_table(args.backend, sizes, steps, seconds, peak, disk, args.day)
    if args.json:
        print(
            json.dumps(
                {
                    "backend": args.backend,
                    "day_articles": args.day,
                    "sizes": sizes,
                    "seconds": seconds,
                    "peak_rss_mb": peak,
                    "disk_mb": disk,
                }
            )
        )


def run_size(
    args: argparse.Namespace,
    size: int,
    steps: list[str],
    work: Path,
    models_dir: Path,
    seconds: dict[str, dict[int, float]],
    peak: dict[str, dict[int, float]],
    disk: dict[int, dict[str, float]],
) -> None:
    data_dir = prepare(args.backend, size, work, args.pg, 20_000, models_dir, args.reuse)
    if args.reuse:
        forget_new_day(args.backend, size, work, args.pg, data_dir, models_dir)
    day = day_of(size, 20_000)
    for step in steps:
        command = [
            sys.executable,
            __file__,
            "--child",
            "--step",
            step,
            "--day",
            str(args.day),
            "--url",
            database_url(args.backend, size, work, args.pg),
            "--data-dir",
            str(data_dir),
            "--models-dir",
            str(models_dir),
            "--pool",
            str(work / "pool.npz"),
            "--on",
            day.isoformat(),
        ]
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            sys.stderr.write(out.stderr[-3000:])
            raise SystemExit(f"step {step} at {size} failed")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        seconds[step][size] = round(result["seconds"], 4)
        peak[step][size] = round(result["peak_rss_mb"], 1)
        print(
            f"{args.backend} {size:>9,} {step:<9} {result['seconds']:9.3f} s  "
            f"peak {result['peak_rss_mb']:7.1f} MB  {json.dumps(result.get('summary', ''))[:140]}",
            file=sys.stderr,
            flush=True,
        )
    disk[size] = disk_usage(args.backend, size, data_dir, args.pg)


def forget_new_day(backend: str, size: int, work: Path, pg: str, data_dir: Path, models_dir: Path) -> None:
    """With --reuse: remove what a previous run's new day added, so every run starts from the history."""
    from sqlalchemy import delete, select, text

    from narrwatch.db.models import Article, Passage
    from narrwatch.embeddings.collections import collection_for

    ctx = open_context(database_url(backend, size, work, pg), data_dir, models_dir, work / "pool.npz")
    collection = collection_for(ctx.encoder)
    with ctx.transaction() as session:
        points = list(session.scalars(select(Passage.point_id).where(Passage.article_id > size)))
        session.execute(delete(Article).where(Article.id > size))
        # the history's stored counts stay (the steady state detect reads); the new day's go
        for table in ["daily_counts", "daily_volumes", "rising_flags"]:
            session.execute(text(f"DELETE FROM {table} WHERE day >= :day"), {"day": day_of(size, 20_000)})
        for table in ["pipeline_runs", "work_claims"]:
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(text("DELETE FROM cluster_members WHERE article_id > :n"), {"n": size})
    ctx.vector_store.delete(collection, points)
    ctx.close()


def print_table(
    backend: str,
    sizes: list[int],
    steps: list[str],
    seconds: dict[str, dict[int, float]],
    peak: dict[str, dict[int, float]],
    disk: dict[int, dict[str, float]],
    day: int,
) -> None:
    head = (
        f"{'step':<10}"
        + "".join(f"{f'{s:,}':>14}" for s in sizes)
        + "".join(f"{f'RSS {s:,}':>15}" for s in sizes)
    )
    ratio = len(sizes) > 1
    if ratio:
        head += f"{f'{sizes[-1]:,}/{sizes[0]:,}':>16}"
    print(f"\n{backend} + Qdrant Edge, one new day of {day:,} articles: seconds, peak RSS (MB)")
    print(head)
    for step in steps:
        line = f"{step:<10}" + "".join(f"{seconds[step][s]:14.3f}" for s in sizes)
        line += "".join(f"{peak[step][s]:15.0f}" for s in sizes)
        if ratio:
            line += f"{seconds[step][sizes[-1]] / max(seconds[step][sizes[0]], 1e-9):16.2f}"
        print(line)
    for size in sizes:
        sql_mb, vectors_mb = disk[size]["sql_mb"], disk[size]["vectors_mb"]
        print(f"disk at {size:,} articles: SQL {sql_mb:,.0f} MB, vectors {vectors_mb:,.0f} MB")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
