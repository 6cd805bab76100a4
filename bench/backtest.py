"""How long `narrwatch narratives backtest` takes over 10,000 stored articles with local Qdrant.

Builds a throw-away store: a SQLite file and Qdrant in local mode (a folder, the embedded default)
holding N articles of three passages each. Encoding 30,000 passages would take minutes and says
nothing about the backtest, so passage vectors are derived cheaply from a pool of really encoded
sentences (the seeds' own phrasings, their near misses, unrelated news): each passage mixes two
or three pool vectors plus noise, and about 4 % of the articles mix in a seed phrasing, so the
backtest has real matches to find. Passage texts are the pool sentences that went into the vector,
so keywords and rebuttal cues behave as in real articles.

Then it times the backtest of every seed (cold: seed texts encoded; warm: cached), and checks the
vector-store search against brute force: scoring all N articles directly must give the same
matches (the search stops at a similarity below which no article can reach `suggest`).

    .venv/bin/python bench/backtest.py [--articles 10000] [--days 90] [--window 30] [--keep DIR]

Two windows are timed: the whole history (every point passes the date filter, so the backtest leaves
it out) and the last ``--window`` days (Qdrant filters by date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from narrwatch.config import Settings  # noqa: E402
from narrwatch.context import AppContext  # noqa: E402
from narrwatch.db.models import Article, ArticleEmbedding, Base, Feed, Passage  # noqa: E402

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FILLER = [
    "The ministry published the monthly figures on Tuesday.",
    "Traffic on the main road was slowed by repairs near the bridge.",
    "The local council will discuss the new budget next week.",
    "Farmers expect a better harvest than last year.",
    "The concert in the city park drew thousands of visitors.",
    "Prices of fuel rose slightly at the start of the month.",
    "The hospital opened a new ward for children.",
    "Students returned to school after the winter break.",
    "A delegation of business leaders visited the port.",
    "The court postponed the hearing until the spring.",
    "Officials met in Brussels to discuss the next round of talks.",
    "The opposition called for early elections.",
    "The central bank kept its interest rate unchanged.",
    "Analysts said the agreement would take years to implement.",
    "The prime minister met the visiting foreign minister.",
]


def build_store(ctx: AppContext, n_articles: int, days: int, seed: int) -> dict[str, float]:
    from narrwatch.domain.scoring import BACKGROUND_TEXTS
    from narrwatch.domain.urls import point_uuid
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.embeddings.store import timestamp
    from narrwatch.ports import VectorPoint
    from narrwatch.steps.match.prepare import encode_cached
    from narrwatch.steps.match.seeds import load_narratives

    started = time.perf_counter()
    encoder = ctx.encoder
    narratives = load_narratives(ctx.settings.narratives_dir)
    pushing = [text for s in narratives for text in s.examples]
    near = [text for s in narratives for text in s.negatives]
    neutral = list(BACKGROUND_TEXTS) + FILLER + near
    pool_texts = neutral + pushing
    pool = encode_cached(encoder, pool_texts, "passage")
    n_neutral = len(neutral)
    encoded_at = time.perf_counter()

    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    collection = collection_for(encoder)
    store = ctx.vector_store
    store.ensure_collection(collection, encoder.dimension)
    articles, passages, marks, points = [], [], [], []
    for article_id in range(1, n_articles + 1):
        url = f"https://bench.example/{article_id}"
        published = NOW - dt.timedelta(seconds=pick.uniform(0, days * 86400))
        pushes = pick.random() < 0.04
        texts = []
        for idx in range(3):
            parts = pick.sample(range(n_neutral), 2)
            if pushes and idx == 1:
                parts.append(n_neutral + pick.randrange(len(pushing)))
            weights = rng.uniform(0.5, 1.0, len(parts))
            if pushes and idx == 1:
                weights[-1] = 2.5
            vector = (weights[:, None] * pool[parts]).sum(axis=0) + rng.normal(0, 0.02, pool.shape[1])
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            text = " ".join(pool_texts[i] for i in parts)
            texts.append(text)
            point_id = str(point_uuid(url, idx))
            passages.append(
                {
                    "article_id": article_id,
                    "collection": collection,
                    "idx": idx,
                    "text": text,
                    "point_id": point_id,
                }
            )
            points.append(
                VectorPoint(
                    id=point_id,
                    vector=vector,
                    payload={
                        "article_id": article_id,
                        "passage_idx": idx,
                        "feed_id": "bench",
                        "outlet": f"outlet-{article_id % 25}",
                        "country": "RS",
                        "language": "en",
                        "published_ts": timestamp(published),
                        "model": encoder.model_name,
                        "backend": encoder.backend,
                        "fingerprint": encoder.fingerprint,
                    },
                )
            )
        digest = hashlib.sha256(url.encode()).hexdigest()
        articles.append(
            {
                "id": article_id,
                "canonical_url": url,
                "url": url,
                "feed_id": "bench",
                "outlet": f"outlet-{article_id % 25}",
                "country": "RS",
                "language": "en",
                "title": f"Bench article {article_id}",
                "title_key": digest,
                "summary": "",
                "text": " ".join(texts),
                "content_hash": digest,
                "published_at": published,
                "fetched_at": published,
                "story_key": digest,
            }
        )
        marks.append(
            {
                "article_id": article_id,
                "collection": collection,
                "n_passages": 3,
                "model_name": encoder.model_name,
                "backend": encoder.backend,
                "model_fingerprint": encoder.fingerprint,
                "embedded_at": NOW,
            }
        )
    with ctx.transaction() as session:
        session.add(
            Feed(id="bench", outlet="bench", name="bench", url="https://bench.example/feed", country="RS")
        )
        session.flush()
        session.execute(insert(Article), articles)
        session.execute(insert(Passage), passages)
        session.execute(insert(ArticleEmbedding), marks)
    sql_at = time.perf_counter()
    store.upsert(collection, points)
    done = time.perf_counter()
    return {
        "pool_texts": len(pool_texts),
        "encode_pool_s": encoded_at - started,
        "sql_s": sql_at - encoded_at,
        "qdrant_upsert_s": done - sql_at,
        "points": len(points),
    }


def brute_force_matches(ctx: AppContext, narrative_id: str, days: int) -> set[int]:
    """Every article of the window scored directly, as `match` would: the backtest must agree."""
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.steps.match.prepare import prepare_seeds, resolve_seed_thresholds, scoring_params
    from narrwatch.steps.match.seeds import load_narratives
    from narrwatch.steps.match.stored import load_stored_articles

    narratives = load_narratives(ctx.settings.narratives_dir).with_status(narrative_id, "active")
    chain = [narrative_id, *narratives.ancestors(narrative_id)]
    collection = collection_for(ctx.encoder)
    thresholds = resolve_seed_thresholds(ctx.settings, ctx.encoder.model_name, narratives, {})
    prepared = prepare_seeds(ctx.encoder, narratives, chain, scoring_params(ctx.settings), thresholds)
    start = NOW - dt.timedelta(days=days)
    with ctx.transaction() as session:
        ids = list(
            session.scalars(
                select(Article.id).where(Article.published_at >= start, Article.published_at < NOW)
            )
        )
        found = set()
        for begin in range(0, len(ids), 1000):
            articles, _ = load_stored_articles(
                session, ctx.vector_store, collection, ids[begin : begin + 1000]
            )
            for article in articles:
                if narrative_id in prepared.decide(prepared.score(article.vectors, article.passage_texts)):
                    found.add(article.id)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument(
        "--days", type=int, default=90, help="history the articles spread over (and searched)"
    )
    parser.add_argument("--window", type=int, default=30, help="a shorter backtest window, filtered by date")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    parser.add_argument("--no-verify", action="store_true", help="skip the brute-force comparison")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="narrwatch-bench-backtest-"))
    if args.keep and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=folder,
        database_url=f"sqlite:///{folder / 'bench.db'}",
        qdrant_path=folder / "qdrant",
        narratives_dir=REPO / "narratives",
        models_dir=REPO / "var" / "models",
        _env_file=None,
    )
    ctx = AppContext.from_settings(settings)
    try:
        Base.metadata.create_all(ctx.engine)
        load_started = time.perf_counter()
        encoder = ctx.encoder
        loaded_s = time.perf_counter() - load_started
        print(f"model {encoder.model_name} ({encoder.backend}), loaded in {loaded_s:.1f} s")
        built = build_store(ctx, args.articles, args.days, args.seed)
        print(
            f"store: {args.articles} articles, {built['points']} points in Qdrant local mode at {folder}; "
            f"pool of {built['pool_texts']} encoded sentences in {built['encode_pool_s']:.1f} s, "
            f"SQL {built['sql_s']:.1f} s, Qdrant upsert {built['qdrant_upsert_s']:.1f} s"
        )
        from narrwatch.analyst.backtest import backtest
        from narrwatch.steps.match.seeds import load_narratives

        seed_ids = load_narratives(settings.narratives_dir).ids
        worst = 0.0
        for window in (args.days, args.window):
            print(f"backtest window: last {window} days of {args.days}")
            print(f"{'seed':<36}{'cold s':>8}{'warm s':>8}{'cand.':>7}{'matches':>8}  brute force")
            for seed_id in seed_ids:
                cold = backtest(ctx, seed_id, window, NOW)
                warm = backtest(ctx, seed_id, window, NOW)
                worst = max(worst, cold.seconds, warm.seconds)
                check = ""
                if not args.no_verify:
                    expected = brute_force_matches(ctx, seed_id, window)
                    everything = backtest(ctx, seed_id, window, NOW, top_n=10**6)
                    found = {item.article_id for item in everything.top}
                    check = "same" if found == expected else f"DIFFERS ({len(found)} vs {len(expected)})"
                timings = f"{cold.seconds:>8.2f}{warm.seconds:>8.2f}"
                print(f"{seed_id:<36}{timings}{cold.candidates:>7}{cold.total:>8}  {check}")
        verdict = "under" if worst < 30 else "OVER"
        print(
            f"slowest backtest over {args.articles} stored articles: {worst:.2f} s ({verdict} the 30 s bar)"
        )
    finally:
        ctx.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
