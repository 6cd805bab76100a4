"""Embed workers sharing one backlog through work claims: total time of N workers against one.

Stores ``--articles`` articles of the bench's news generator (embeddings/newsgen.py) in a fresh
PostgreSQL database, embeds them with one worker, then (on a fresh database again) with
``--workers`` workers at once, each with its own connections and its own claims, sharing the real
encoder (bundled MiniLM, ONNX int8) and the embedded vector store as threads of one process (the
embedded store admits one process; with a Qdrant server the workers would be processes or
machines). Prints both wall times, their ratio, and checks that every article was embedded exactly
once (marks, points, no article encoded twice).

    .venv/bin/python bench/embed_workers.py [--articles 400] [--workers 2] [--pg 127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def fresh_context(pg: str, name: str, work: Path, articles: list[Any]) -> Any:
    from narrwatch.config import Settings
    from narrwatch.context import AppContext
    from narrwatch.db.migrate import upgrade
    from narrwatch.db.models import Article, Feed

    host, _, port = pg.partition(":")
    subprocess.run(["dropdb", "-h", host, "-p", port, "-U", "postgres", "--if-exists", name], check=True)
    subprocess.run(["createdb", "-h", host, "-p", port, "-U", "postgres", name], check=True)
    url = f"postgresql+psycopg://postgres@{pg}/{name}"
    upgrade(url)
    settings = Settings(  # type: ignore[call-arg]
        data_dir=work,
        database_url=url,
        qdrant_path=Path(":memory:"),
        models_dir=work.parent / "models",
        embed_batch_articles=32,
        _env_file=None,
    )
    ctx = AppContext.from_settings(settings)
    with ctx.transaction() as session:
        session.add(Feed(id="f", outlet="Outlet", name="f", url="https://o.example/rss", country="RS"))
        session.flush()
        for n, article in enumerate(articles):
            url_n = f"https://o.example/{n}"
            session.add(
                Article(
                    canonical_url=url_n,
                    url=url_n,
                    feed_id="f",
                    outlet="Outlet",
                    country="RS",
                    language="en",
                    title=article.title,
                    title_key=hashlib.sha256(article.title.encode()).hexdigest(),
                    text=article.text,
                    content_hash=hashlib.sha256(article.text.encode()).hexdigest(),
                    published_at=NOW - dt.timedelta(hours=n % 24),
                    fetched_at=NOW,
                    story_key=hashlib.sha256(url_n.encode()).hexdigest(),
                )
            )
    return ctx


def run_workers(ctx: Any, n_workers: int) -> tuple[float, Counter[int]]:
    from narrwatch.context import AppContext
    from narrwatch.steps.embed import embed as vectorize

    store, encoder = ctx.vector_store, ctx.encoder
    workers = [
        dataclasses.replace(AppContext.from_settings(ctx.settings), _encoder=encoder, _vector_store=store)
        for _ in range(n_workers)
    ]
    encoded: Counter[int] = Counter()
    real_prepare = vectorize._prepare_batch
    guard = threading.Lock()

    def counting_prepare(c: Any, enc: Any, collection: str, articles: Any, number: int) -> Any:
        with guard:
            encoded.update(a.id for a in articles)
        return real_prepare(c, enc, collection, articles, number)

    vectorize._prepare_batch = counting_prepare  # type: ignore[assignment]
    errors: list[BaseException] = []

    def work(worker: Any) -> None:
        try:
            vectorize.embed_pending(worker, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    vectorize._prepare_batch = real_prepare  # type: ignore[assignment]
    for worker in workers:
        worker._vector_store = None
        worker.close()
    if errors:
        raise errors[0]
    return seconds, encoded


def check(ctx: Any, encoded: Counter[int], n_articles: int) -> str:
    from sqlalchemy import func, select

    from narrwatch.db.models import ArticleEmbedding, Passage
    from narrwatch.embeddings.collections import collection_for

    collection = collection_for(ctx.encoder)
    with ctx.transaction() as session:
        marks = session.scalar(select(func.count()).select_from(ArticleEmbedding))
        passages = session.scalar(select(func.count()).select_from(Passage))
    points = ctx.vector_store.count(collection)
    once = len(encoded) == n_articles and set(encoded.values()) == {1}
    return f"marks {marks}/{n_articles}, passages {passages}, points {points}, encoded once each: {once}"


def main() -> None:
    from narrwatch.embeddings.newsgen import generate_articles

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg", default="127.0.0.1:5432")
    args = parser.parse_args()
    articles = generate_articles(args.articles, seed=3)
    work = Path(tempfile.mkdtemp(prefix="narrwatch-bench-workers-")) / "var"
    results = {}
    for n_workers in (1, args.workers):
        ctx = fresh_context(args.pg, f"narrwatch_bench_workers_{n_workers}", work, articles)
        ctx.encoder.encode_passages(["warm up"])
        seconds, encoded = run_workers(ctx, n_workers)
        results[n_workers] = seconds
        outcome = check(ctx, encoded, args.articles)
        print(f"{n_workers} worker(s): {seconds:.1f} s for {args.articles} articles; {outcome}")
        ctx.close()
    ratio = results[args.workers] / results[1]
    print(f"ratio {args.workers} workers / 1 worker: {ratio:.2f} (<= 1 is not worse)")


if __name__ == "__main__":
    main()
