"""The embedded vector engine at 1M points: filtered top-10 latency and agreement with brute force.

Builds a Qdrant Edge store (embeddings/edge_store.py, the embedded default) of ``--points`` passages
(384 dimensions, the bundled model's) spread over ``--days`` days and eight languages, then runs
``--queries`` filtered top-10 queries (a ``--window``-day date window and one language, as an
analyst's search or a backtest does) and compares each result with exact brute force in numpy over
the same filter: recall@10 and the median and p95 latency. ``--engine local`` runs the same against
qdrant-client's local mode (give it fewer points: it scores in Python).

Vectors are not from the encoder (1M passages would take days here): a mixture of 2,000 random
topic directions with noise, normalised, so that neighbourhoods are as uneven as in real text.

    .venv/bin/python bench/vectors.py --points 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LANGUAGES = ["sr", "hr", "bs", "mk", "sq", "ru", "en", "me"]
DIM = 384
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def make_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    topics = rng.normal(size=(2000, DIM)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    vectors = (
        topics[rng.integers(0, len(topics), size=n)]
        + 0.9 * rng.normal(size=(n, DIM)).astype(np.float32) / np.sqrt(DIM) * 3
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def main() -> None:
    from narrwatch.config import Settings
    from narrwatch.embeddings.store import open_vector_store
    from narrwatch.ports import SearchFilter, VectorPoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--window", type=int, default=7, help="days in each query's date window")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--engine", choices=["edge", "local"], default="edge")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this folder")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    n = args.points
    vectors = make_vectors(n, rng)
    published = np.sort(rng.uniform(0, args.days * 86400, size=n))
    languages = rng.integers(0, len(LANGUAGES), size=n)

    folder = args.keep or Path(tempfile.mkdtemp(prefix="narrwatch-bench-vectors-"))
    settings = Settings(vector_engine=args.engine, qdrant_path=folder, data_dir=folder.parent, _env_file=None)  # type: ignore[call-arg]
    store = open_vector_store(settings)
    collection = "bench"
    started = time.perf_counter()
    if store.count(collection) != n:
        store.drop_collection(collection)
        store.ensure_collection(collection, DIM)
        for start in range(0, n, 20_000):
            stop = min(n, start + 20_000)
            store.upsert(
                collection,
                [
                    VectorPoint(
                        id=str(uuid.UUID(int=i + 1)),
                        vector=vectors[i],
                        payload={
                            "article_id": i + 1,
                            "published_ts": float(T0.timestamp() + published[i]),
                            "language": LANGUAGES[languages[i]],
                        },
                    )
                    for i in range(start, stop)
                ],
            )
    build_s = time.perf_counter() - started

    latencies, recalls, candidates = [], [], []
    for _ in range(args.queries):
        query = vectors[rng.integers(0, n)] + 0.3 * rng.normal(size=DIM).astype(np.float32) / np.sqrt(DIM)
        query = (query / np.linalg.norm(query)).astype(np.float32)
        day = int(rng.integers(0, args.days - args.window + 1))
        lo, hi = day * 86400.0, (day + args.window) * 86400.0
        language = int(rng.integers(0, len(LANGUAGES)))
        flt = SearchFilter(
            published_from=T0 + dt.timedelta(seconds=lo),
            published_to=T0 + dt.timedelta(seconds=hi),
            languages=[LANGUAGES[language]],
        )
        t = time.perf_counter()
        hits = store.search(collection, query, 10, flt)
        latencies.append(time.perf_counter() - t)
        # Brute force over the same filter (published is sorted, so the window is a slice).
        a, b = np.searchsorted(published, lo, "left"), np.searchsorted(published, hi, "left")
        pool = np.arange(a, b)[languages[a:b] == language]
        candidates.append(len(pool))
        scores = vectors[pool] @ query
        truth = {int(i) + 1 for i in pool[np.argsort(-scores)[:10]]}
        got = {int(h.payload["article_id"]) for h in hits}
        recalls.append(len(truth & got) / max(1, len(truth)))
    store.close()
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)

    ms = sorted(x * 1000 for x in latencies)
    print(f"engine {args.engine}: {n:,} points, built in {build_s:.1f} s")
    print(
        f"{args.queries} filtered top-10 queries ({args.window}-day window of {args.days}, one language of "
        f"{len(LANGUAGES)}; median {statistics.median(candidates):,.0f} points pass the filter)"
    )
    print(
        f"latency: median {statistics.median(ms):.2f} ms, "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.2f} ms, max {ms[-1]:.2f} ms"
    )
    print(f"recall@10 against brute force: mean {statistics.mean(recalls):.4f}, min {min(recalls):.2f}")


if __name__ == "__main__":
    main()
