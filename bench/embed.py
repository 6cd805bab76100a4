"""Benchmark of the encoder backends and of the whole embed step, on project-generated news texts.

    .venv/bin/python bench/embed.py            # 400 articles, the default model, human-readable
    .venv/bin/python bench/embed.py --json     # one JSON object
    .venv/bin/python bench/embed.py --rounds 3 # on a shared machine: best of 3 interleaved runs
    .venv/bin/python bench/embed.py --model bundled:all-MiniLM-L6-v2 --n 2000

What it measures for one model (default: the configured default), each backend in its own child
process so thread pools and memory do not mix:

* raw encoder throughput (texts/s) of every backend this machine offers (torch fp32, torch under
  bfloat16 where the CPU has bf16 instructions, ONNX fp32, ONNX int8) on the same texts
  (title and body of each generated article, 150-200 words), warm, model load excluded; torch fp32
  is sentence-transformers' own forward pass, the baseline of the ratios;
* each backend's mean and minimum cosine to torch fp32;
* determinism: the minimum cosine between a text's vector encoded alone and encoded in one call
  with all the others (issue 16: a vector must not depend on its batch-mates), and whether the two
  are the same bits;
* which backend ``auto`` resolves to here, its speed against the fastest and against torch fp32;
* the whole embed step (``narrwatch.steps.embed.embed.embed_pending``: read from SQL, split, encode, upsert
  into a local Qdrant folder, mark) with the pipeline backend (default ``auto``), against that
  backend's raw encoder on the same texts in the same process (the mean of a run just before and one
  just after the step); the child's peak RSS is the step's memory.

The bars of issues 12 and 17 are printed with the figures: auto within 10 % of the fastest backend
that meets the cosine bar, auto >= 3x torch fp32 with cosine >= 0.99, embed step >= 0.85 of raw,
peak RSS < 2 GB. Other processes on the machine change the figures: the load average is reported so
a busy run can be told apart.
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

COSINE_BAR = 0.99
DETERMINISM_BAR = 0.99999
WARMUP_TEXTS = 16
#: Texts encoded alone for the determinism figure (enough to mix short and long ones).
DETERMINISM_TEXTS = 48


def offered_backends() -> tuple[str, ...]:
    """Every backend this machine can run: bf16 only where the CPU has bf16 instructions."""
    from narrwatch.embeddings.backends import cpu_flags

    bf16 = bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    return ("torch", "torch-bf16", "onnx", "onnx-int8") if bf16 else ("torch", "onnx", "onnx-int8")


def _texts(n: int, seed: int) -> tuple[list[Any], list[str]]:
    from narrwatch.embeddings.newsgen import generate_articles

    articles = generate_articles(n, seed=seed)
    # The raw encoder sees what the first passage of a one-passage article is: title, newline, body.
    return articles, [f"{a.title}\n{a.text}" for a in articles]


def _settings(backend: str, model: str, data_dir: Path, models_dir: Path, **extra: Any) -> Any:
    from narrwatch.config import Settings

    values = {
        "data_dir": data_dir,
        "models_dir": models_dir,
        "embedding_backend": backend,
        "embedding_model": model,
        **extra,
    }
    return Settings(_env_file=None, **values)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- children -------------------------------------------------------------------------------------


def child_raw(args: argparse.Namespace) -> dict[str, Any]:
    from narrwatch.embeddings.encoder import load_encoder

    _, texts = _texts(args.n, args.seed)
    started = time.perf_counter()
    encoder = load_encoder(_settings(args.backend, args.model, Path(args.data_dir), Path(args.models_dir)))
    load_s = time.perf_counter() - started
    encoder.encode_passages(texts[:WARMUP_TEXTS])
    started = time.perf_counter()
    vectors = encoder.encode_passages(texts)
    elapsed = time.perf_counter() - started
    np.save(args.vectors_out, vectors)
    alone = np.concatenate([encoder.encode_passages([text]) for text in texts[:DETERMINISM_TEXTS]])
    return {
        "backend": args.backend,
        "resolved_backend": encoder.backend,
        "alone_vs_batched_min_cosine": float(np.min(np.sum(alone * vectors[:DETERMINISM_TEXTS], axis=1))),
        "alone_vs_batched_bitwise": bool(np.array_equal(alone, vectors[:DETERMINISM_TEXTS])),
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
        args.model,
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
        "--model",
        args.model,
        "--models-dir",
        str(args.models_dir),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    from narrwatch.config import Settings
    from narrwatch.embeddings.backends import resolve_backend

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--n", type=int, default=400, help="articles (the default model runs ~4x MiniLM's cost)"
    )
    parser.add_argument("--seed", type=int, default=20250301)
    parser.add_argument("--model", default=Settings.model_fields["embedding_model"].default)
    parser.add_argument(
        "--rounds", type=int, default=1, help="raw runs per backend, interleaved; the best is reported"
    )
    parser.add_argument(
        "--backend", default=Settings.model_fields["embedding_backend"].default, help="pipeline backend"
    )
    parser.add_argument("--models-dir", default=str(REPO / "var" / "models"), help="model and export cache")
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

    backends = offered_backends()
    auto = resolve_backend("auto")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="narrwatch-bench-") as tmp:
        work = Path(tmp)
        rounds: dict[str, list[dict[str, Any]]] = {backend: [] for backend in backends}
        for round_number in range(args.rounds):
            # Rounds interleave the backends, so a busy spell on the machine does not hit one alone.
            for backend in backends:
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
        fp32 = np.load(work / "torch.npy")
        cosine = {backend: _cosines(fp32, np.load(work / f"{backend}.npy")) for backend in backends}
        pipeline = _run_child("pipeline", args.backend, args, work / "pipeline", [])
    load_after = os.getloadavg()

    speeds = {backend: raw[backend]["texts_per_s"] for backend in backends}
    meets_bar = {backend: float(cosine[backend].mean()) >= COSINE_BAR for backend in backends}
    fastest = max((b for b in backends if meets_bar[b]), key=lambda b: speeds[b])
    result: dict[str, Any] = {
        "model": args.model,
        "texts": args.n,
        "mean_words": float(np.mean([len(t.split()) for t in _texts(args.n, args.seed)[1]])),
        "backends": {
            backend: {
                "texts_per_s": round(speeds[backend], 2),
                "vs_torch_fp32": round(speeds[backend] / speeds["torch"], 3),
                "mean_cosine_to_fp32": round(float(cosine[backend].mean()), 5),
                "min_cosine_to_fp32": round(float(cosine[backend].min()), 5),
                "alone_vs_batched_min_cosine": round(raw[backend]["alone_vs_batched_min_cosine"], 6),
                "alone_vs_batched_bitwise": raw[backend]["alone_vs_batched_bitwise"],
                "rounds_texts_per_s": [round(r["texts_per_s"], 2) for r in rounds[backend]],
            }
            for backend in backends
        },
        "auto_resolves_to": auto,
        "fastest_backend_meeting_cosine_bar": fastest,
        "auto_vs_fastest": round(speeds[auto] / speeds[fastest], 3),
        "auto_vs_torch_fp32": round(speeds[auto] / speeds["torch"], 3),
        "pipeline_backend": pipeline["backend"],
        "pipeline_texts_per_s": round(pipeline["pipeline_texts_per_s"], 2),
        "pipeline_raw_texts_per_s": round(pipeline["raw_texts_per_s"], 2),
        "pipeline_vs_raw": round(pipeline["pipeline_texts_per_s"] / pipeline["raw_texts_per_s"], 3),
        "pipeline_passages": pipeline["passages"],
        "pipeline_peak_rss_mb": round(pipeline["peak_rss_mb"], 1),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    result["acceptance"] = {
        "auto_within_10pct_of_fastest": result["auto_vs_fastest"] >= 0.9,
        "auto_at_least_3x_torch_fp32": result["auto_vs_torch_fp32"] >= 3.0,
        "auto_mean_cosine_at_least_0.99": meets_bar[auto],
        "every_backend_batch_independent": all(
            raw[b]["alone_vs_batched_min_cosine"] >= DETERMINISM_BAR for b in backends
        ),
        "pipeline_at_least_0.85_of_raw": result["pipeline_vs_raw"] >= 0.85,
        "peak_rss_below_2GB": result["pipeline_peak_rss_mb"] < 2048,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"model {args.model}, {args.n} texts of {result['mean_words']:.0f} words; auto -> {auto} here")
    print(
        f"{'backend':11s} {'texts/s':>8s} {'x fp32':>7s} {'mean cos':>9s} {'min cos':>8s}"
        f" {'alone/batch':>12s} {'same bits':>9s}"
    )
    for backend, figures in result["backends"].items():
        print(
            f"{backend:11s} {figures['texts_per_s']:8.2f} {figures['vs_torch_fp32']:7.2f} "
            f"{figures['mean_cosine_to_fp32']:9.5f} {figures['min_cosine_to_fp32']:8.5f} "
            f"{figures['alone_vs_batched_min_cosine']:12.6f} {str(figures['alone_vs_batched_bitwise']):>9s}"
        )
    for key, value in result.items():
        if key not in ("backends",):
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
