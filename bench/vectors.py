"""The embedded vector engine at 1M points: build time, filtered top-10 latency, agreement with brute force.

Builds a Qdrant Edge store (embeddings/edge_store.py, the embedded default) of ``--points`` passages
(384 dimensions, the bundled model's) published over ``--days`` days in nine languages, through the
store's own ``upsert`` (so the build includes the indexing it does on the way), then runs
``--queries`` filtered top-10 queries for each window in ``--windows`` (days; one language each,
as an analyst's search or a backtest does) and compares each result with exact brute force in numpy
over the same filter: recall@10, median and p95 latency (each set of queries runs twice: right
after the build, and again with the store's pages in memory). Last, the peak RSS of the process, which
includes the bench's own copy of the vectors for brute force (4 bytes x 384 per point).
``--engine local`` runs the same against qdrant-client's local mode (give it fewer points: it
scores in Python).

Vectors are not from the encoder (1M passages would take days here): a mixture of 2,000 random
topic directions with noise, normalised, so that neighbourhoods are as uneven as in real text.

    .venv/bin/python bench/vectors.py --points 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LANGUAGES = ["sr", "hr", "bs", "mk", "sq", "ru", "en", "me", "uk"]
DIM = 384
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BUILD_BATCH = 20_000


class Corpus:
    """The synthetic passages: vectors, published offsets (seconds after T0, sorted) and languages."""

    def __init__(self, n: int, days: int, rng: np.random.Generator) -> None:
        topics = rng.normal(size=(2000, DIM)).astype(np.float32)
        topics /= np.linalg.norm(topics, axis=1, keepdims=True)
        self.vectors = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, BUILD_BATCH):  # in slices: the noise in float64 would double the peak
            stop = min(n, start + BUILD_BATCH)
            noise = rng.normal(size=(stop - start, DIM)).astype(np.float32) * (2.7 / np.sqrt(DIM))
            block = topics[rng.integers(0, len(topics), size=stop - start)] + noise
            self.vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
        self.published = np.sort(rng.uniform(0, days * 86400, size=n))
        self.languages = rng.integers(0, len(LANGUAGES), size=n)

    def points(self, start: int, stop: int) -> list[Any]:
        from narrwatch.ports import VectorPoint

        return [
            VectorPoint(
                id=str(uuid.UUID(int=i + 1)),
                vector=self.vectors[i],
                payload={
                    "article_id": i + 1,
                    "published_ts": float(T0.timestamp() + self.published[i]),
                    "language": LANGUAGES[self.languages[i]],
                },
            )
            for i in range(start, stop)
        ]

    def exact_top(
        self, query: np.ndarray, lo: float, hi: float, language: int, k: int
    ) -> tuple[set[int], int]:
        """Article ids of the exact top-k among points published in [lo, hi) in ``language``."""
        a, b = np.searchsorted(self.published, lo, "left"), np.searchsorted(self.published, hi, "left")
        pool = np.arange(a, b)[self.languages[a:b] == language]
        scores = self.vectors[pool] @ query
        return {int(i) + 1 for i in pool[np.argsort(-scores)[:k]]}, len(pool)


def run_queries(store: Any, corpus: Corpus, window_days: int, args: argparse.Namespace) -> dict[str, float]:
    from narrwatch.ports import SearchFilter

    rng = np.random.default_rng(window_days)
    latencies, recalls, passing = [], [], []
    for _ in range(args.queries):
        anchor = corpus.vectors[rng.integers(0, len(corpus.vectors))]
        query = anchor + 0.3 * rng.normal(size=DIM).astype(np.float32) / np.sqrt(DIM)
        query = (query / np.linalg.norm(query)).astype(np.float32)
        day = int(rng.integers(0, args.days - window_days + 1))
        lo, hi = day * 86400.0, (day + window_days) * 86400.0
        language = int(rng.integers(0, len(LANGUAGES)))
        flt = SearchFilter(
            published_from=T0 + dt.timedelta(seconds=lo),
            published_to=T0 + dt.timedelta(seconds=hi),
            languages=[LANGUAGES[language]],
        )
        started = time.perf_counter()
        hits = store.search("bench", query, 10, flt)
        latencies.append((time.perf_counter() - started) * 1000)
        truth, pool = corpus.exact_top(query, lo, hi, language, 10)
        passing.append(pool)
        got = {int(h.payload["article_id"]) for h in hits}
        recalls.append(len(truth & got) / max(1, len(truth)))
    ms = sorted(latencies)
    return {
        "passing": statistics.median(passing),
        "median": statistics.median(ms),
        "p95": ms[int(0.95 * (len(ms) - 1))],
        "max": ms[-1],
        "recall": statistics.mean(recalls),
        "recall_min": min(recalls),
    }


def build(store: Any, corpus: Corpus) -> float:
    """Seconds to write every point through the store (skipped when a kept folder holds them)."""
    n = len(corpus.vectors)
    if store.count("bench") == n:
        return float("nan")
    store.drop_collection("bench")
    store.ensure_collection("bench", DIM)
    started = time.perf_counter()
    for start in range(0, n, BUILD_BATCH):
        store.upsert("bench", corpus.points(start, min(n, start + BUILD_BATCH)))
    return time.perf_counter() - started


def main() -> None:
    from narrwatch.config import Settings
    from narrwatch.embeddings.store import open_vector_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--windows", type=int, nargs="+", default=[30, 1], help="days in a query's window")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--engine", choices=["edge", "local"], default="edge")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this folder")
    args = parser.parse_args()

    corpus = Corpus(args.points, args.days, np.random.default_rng(7))
    folder = args.keep or Path(tempfile.mkdtemp(prefix="narrwatch-bench-vectors-"))
    settings = Settings(vector_engine=args.engine, qdrant_path=folder, data_dir=folder.parent, _env_file=None)  # type: ignore[call-arg]
    store = open_vector_store(settings)
    try:
        build_s = build(store, corpus)
        indexed = getattr(store, "indexed_points", lambda _: "n/a")("bench")
        print(f"engine {args.engine}: {args.points:,} points, {args.days} days, {len(LANGUAGES)} languages")
        print(
            f"build (upserts of {BUILD_BATCH:,} via the store): {build_s:.1f} s; indexed points {indexed:,}"
        )
        for window in args.windows:
            # The same queries twice: first as they come after the build (pages of the store may
            # still be on disk), then again with those pages in memory.
            for label in ("first pass", "repeated"):
                figures = run_queries(store, corpus, window, args)
                print(
                    f"{window}-day window + one language, {args.queries} filtered top-10 queries, {label} "
                    f"(median {figures['passing']:,.0f} points pass): latency median "
                    f"{figures['median']:.2f} ms, p95 {figures['p95']:.2f} ms, max {figures['max']:.2f} ms; "
                    f"recall@10 vs brute force mean {figures['recall']:.4f}, min {figures['recall_min']:.2f}"
                )
    finally:
        store.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    copy_mb = args.points * DIM * 4 / 2**20
    print(f"peak RSS {peak_mb:,.0f} MB (includes the bench's {copy_mb:,.0f} MB copy of the vectors)")


if __name__ == "__main__":
    main()
