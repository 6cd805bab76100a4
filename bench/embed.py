"""Benchmark of the encoder backends and of the whole embed step, on project-generated news texts.

    .venv/bin/python bench/embed.py            # 2,000 articles, human-readable
    .venv/bin/python bench/embed.py --json     # one JSON object
    .venv/bin/python bench/embed.py --rounds 3 # on a shared machine: best of 3 interleaved runs

What it measures, each backend in its own child process so thread pools and memory do not mix:

* raw encoder throughput (texts/s) of torch, ONNX fp32 and ONNX int8 on the same texts (title and
  body of each generated article, 150-200 words), warm, model load excluded;
* the int8 vectors' mean and minimum cosine to the fp32 ones;
* the whole embed step (``narrwatch.steps.embed.embed.embed_pending``: read from SQL, split, encode, upsert
  into a local Qdrant folder, mark) with the pipeline backend, against that backend's raw encoder
  on the same texts in the same process (the mean of a run just before and one just after the
  step); the child's peak RSS is the step's memory.

The acceptance bars of issue 4 are printed with the figures: int8 >= 3x torch with mean cosine
>= 0.99, embed step >= 0.85 of raw, peak RSS < 2 GB, and the default backend the fastest one that
meets the cosine bar. Other processes on the machine change the figures: the load average is
reported so a busy run can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BACKENDS = ("torch", "onnx", "onnx-int8")
COSINE_BAR = 0.99
WARMUP_TEXTS = 64


def _texts(n: int, seed: int) -> tuple[list[Any], list[str]]:
    from narrwatch.embeddings.newsgen import generate_articles

    articles = generate_articles(n, seed=seed)
    # The raw encoder sees what the first passage of a one-passage article is: title, newline, body.
    return articles, [f"{a.title}\n{a.text}" for a in articles]


def _settings(backend: str, data_dir: Path, models_dir: Path, **extra: Any) -> Any:
    from narrwatch.config import Settings

    values = {"data_dir": data_dir, "models_dir": models_dir, "embedding_backend": backend, **extra}
    return Settings(_env_file=None, **values)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- children -------------------------------------------------------------------------------------


def child_raw(args: argparse.Namespace) -> dict[str, Any]:
    from narrwatch.embeddings.encoder import load_encoder

    _, texts = _texts(args.n, args.seed)
    started = time.perf_counter()
    encoder = load_encoder(_settings(args.backend, Path(args.data_dir), Path(args.models_dir)))
    load_s = time.perf_counter() - started
    encoder.encode_passages(texts[:WARMUP_TEXTS])
    started = time.perf_counter()
    vectors = encoder.encode_passages(texts)
    elapsed = time.perf_counter() - started
    np.save(args.vectors_out, vectors)
    return {
        "backend": args.backend,
        "texts": len(texts),
        "seconds": elapsed,
        "texts_per_s": len(texts) / elapsed,
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
    }


def child_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import datetime as dt
    import hashlib

    from sqlalchemy import func, select

    from narrwatch.context import AppContext
    from narrwatch.db.models import Article, ArticleEmbedding, Base, Feed, Passage
    from narrwatch.steps.embed import embed as vectorize

    articles, texts = _texts(args.n, args.seed)
    work = Path(args.data_dir)
    settings = _settings(
        args.backend,
        work,
        Path(args.models_dir),
        qdrant_path=work / "qdrant",
        database_url=f"sqlite:///{work / 'bench.db'}",
    )
    ctx = AppContext.from_settings(settings)
    Base.metadata.create_all(ctx.engine)
    t0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    with ctx.transaction() as session:
        session.add(
            Feed(id="bench", outlet="Bench", name="bench", url="http://127.0.0.1/b.xml", country="RS")
        )
        session.flush()
        for i, article in enumerate(articles):
            url = f"https://bench.example/{i}"
            session.add(
                Article(
                    canonical_url=url,
                    url=url,
                    feed_id="bench",
                    outlet="Bench",
                    country="RS",
                    language="en",
                    title=article.title,
                    title_key=hashlib.sha256(article.title.encode()).hexdigest(),
                    text=article.text,
                    content_hash=hashlib.sha256(article.text.encode()).hexdigest(),
                    published_at=t0 + dt.timedelta(minutes=i),
                    fetched_at=t0 + dt.timedelta(minutes=i),
                    story_key=hashlib.sha256(url.encode()).hexdigest(),
                )
            )
    started = time.perf_counter()
    encoder = ctx.encoder  # model load is not part of either figure
    load_s = time.perf_counter() - started
    encoder.encode_passages(texts[:WARMUP_TEXTS])

    # The raw encoder of the same backend on the same texts, right before and right after the step:
    # their mean is the reference, so a load change on the machine hits both sides alike.
    raw_runs = []
    started = time.perf_counter()
    encoder.encode_passages(texts)
    raw_runs.append(time.perf_counter() - started)

    started = time.perf_counter()
    report = vectorize.embed_pending(ctx, t0 + dt.timedelta(days=3))
    pipeline_s = time.perf_counter() - started

    started = time.perf_counter()
    encoder.encode_passages(texts)
    raw_runs.append(time.perf_counter() - started)
    raw_s = sum(raw_runs) / len(raw_runs)

    with ctx.transaction() as session:
        marked = session.scalar(select(func.count()).select_from(ArticleEmbedding))
        passages = session.scalar(select(func.count()).select_from(Passage))
    points = ctx.vector_store.count(report.collection)
    ctx.close()
    if not (marked == len(articles) and points == passages):
        raise SystemExit(f"embed step incomplete: {marked} marked, {points} points, {passages} passages")
    return {
        "backend": args.backend,
        "articles": len(articles),
        "passages": passages,
        "raw_seconds": raw_s,
        "raw_seconds_before_after": raw_runs,
        "raw_texts_per_s": len(texts) / raw_s,
        "pipeline_seconds": pipeline_s,
        "pipeline_texts_per_s": len(articles) / pipeline_s,
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
    }


# --- orchestration -----------------------------------------------------------------------------


def _run_child(
    kind: str, backend: str, args: argparse.Namespace, data_dir: Path, extra: list[str]
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--backend",
        backend,
        "--n",
        str(args.n),
        "--seed",
        str(args.seed),
        "--models-dir",
        str(args.models_dir),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from narrwatch.config import Settings

    default_backend = Settings.model_fields["embedding_backend"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=2000, help="articles (>= 2,000 for the issue's figures)")
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument(
        "--rounds", type=int, default=1, help="raw runs per backend, interleaved; the best is reported"
    )
    parser.add_argument("--backend", default=default_backend, choices=BACKENDS, help="pipeline backend")
    parser.add_argument("--models-dir", default=str(REPO / "var" / "models"), help="ONNX export cache")
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["raw", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--vectors-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "raw":
        print(json.dumps(child_raw(args)))
        return
    if args.child == "pipeline":
        print(json.dumps(child_pipeline(args)))
        return

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="narrwatch-bench-") as tmp:
        work = Path(tmp)
        rounds: dict[str, list[dict[str, Any]]] = {backend: [] for backend in BACKENDS}
        for round_number in range(args.rounds):
            # Rounds interleave the backends, so a busy spell on the machine does not hit one alone.
            for backend in BACKENDS:
                vectors = work / f"{backend}.npy"
                figures = _run_child("raw", backend, args, work / backend, ["--vectors-out", str(vectors)])
                rounds[backend].append(figures)
                if not args.json:
                    print(
                        f"round {round_number + 1} raw {backend:10s} {figures['texts_per_s']:7.1f} texts/s",
                        file=sys.stderr,
                    )
        raw = {
            backend: max(runs, key=lambda figures: figures["texts_per_s"]) for backend, runs in rounds.items()
        }
        fp32 = np.load(work / "onnx.npy")
        int8 = np.load(work / "onnx-int8.npy")
        torch_vectors = np.load(work / "torch.npy")
        int8_cos = np.sum(fp32 * int8, axis=1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1))
        fp32_cos = np.sum(fp32 * torch_vectors, axis=1) / (
            np.linalg.norm(fp32, axis=1) * np.linalg.norm(torch_vectors, axis=1)
        )
        pipeline = _run_child("pipeline", args.backend, args, work / "pipeline", [])
    load_after = os.getloadavg()

    speeds = {backend: raw[backend]["texts_per_s"] for backend in BACKENDS}
    cosine_ok = {
        "torch": True,
        "onnx": float(fp32_cos.mean()) >= COSINE_BAR,
        "onnx-int8": float(int8_cos.mean()) >= COSINE_BAR,
    }
    fastest_ok = max((b for b in BACKENDS if cosine_ok[b]), key=lambda b: speeds[b])
    result = {
        "texts": args.n,
        "mean_words": float(np.mean([len(t.split()) for t in _texts(args.n, args.seed)[1]])),
        "torch_texts_per_s": round(speeds["torch"], 2),
        "onnx_fp32_texts_per_s": round(speeds["onnx"], 2),
        "onnx_int8_texts_per_s": round(speeds["onnx-int8"], 2),
        "int8_vs_torch": round(speeds["onnx-int8"] / speeds["torch"], 3),
        "int8_mean_cosine": round(float(int8_cos.mean()), 5),
        "int8_min_cosine": round(float(int8_cos.min()), 5),
        "fp32_vs_torch_min_cosine": round(float(fp32_cos.min()), 6),
        "pipeline_backend": args.backend,
        "pipeline_texts_per_s": round(pipeline["pipeline_texts_per_s"], 2),
        "pipeline_raw_texts_per_s": round(pipeline["raw_texts_per_s"], 2),
        "pipeline_vs_raw": round(pipeline["pipeline_texts_per_s"] / pipeline["raw_texts_per_s"], 3),
        "pipeline_passages": pipeline["passages"],
        "raw_rounds_texts_per_s": {b: [round(r["texts_per_s"], 2) for r in rounds[b]] for b in BACKENDS},
        "pipeline_peak_rss_mb": round(pipeline["peak_rss_mb"], 1),
        "fastest_backend_meeting_cosine_bar": fastest_ok,
        "default_backend": Settings.model_fields["embedding_backend"].default,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    result["acceptance"] = {
        "int8_at_least_3x_torch": result["int8_vs_torch"] >= 3.0,
        "int8_mean_cosine_at_least_0.99": result["int8_mean_cosine"] >= COSINE_BAR,
        "pipeline_at_least_0.85_of_raw": result["pipeline_vs_raw"] >= 0.85,
        "peak_rss_below_2GB": result["pipeline_peak_rss_mb"] < 2048,
        "default_is_fastest_meeting_cosine_bar": result["default_backend"] == fastest_ok,
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
