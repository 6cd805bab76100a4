"""Clustering by claim on third-party labelled data: narrwatch's clusterer against a naive baseline.

Needs the converted streams (eval/thirdparty/README.md, "Clustering gold"): per source
``cluster-tune.jsonl`` and ``cluster-eval.jsonl`` (ct2022: evaluation only). Each part goes through
the pipeline's own passage splitting and configured encoder once (cached under var/bench/ per file
content, model and backend); the clusterers then run on the stored passage vectors, in publication
order.

    .venv/bin/python bench/cluster_thirdparty.py [--sources clef2020 fnc1 ct2022] [--sweep] [--centred]

Rows, on the evaluation part:
- narrwatch: the shipped recipe (``claim_vector`` of the passages, ``OnlineClusterer`` with
  ``thresholds_for`` the configured model), exactly what ``narrwatch eval cluster`` runs;
- naive: single pass, an article joins the cluster whose normalised centroid of article-mean vectors
  is nearest when the cosine reaches t, else founds one; t tuned on the evaluation part itself (the
  best of a grid), so it is an upper bound for that recipe.
``--sweep`` prints, on the tuning part only, B-cubed F1 of the shipped recipe over join/merge pairs:
that is how the model's thresholds are chosen.
``--centred`` adds an experiment row, not shipped: the same clusterer on lead vectors minus the mean
lead vector of the tuning part (renormalised), joining and merging at the one threshold that is best
on the tuning part. Centring removes the direction all texts of a model share, which is what
compresses multilingual-e5's cosines towards 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import pickle
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from narrwatch.config import Settings, get_settings  # noqa: E402
from narrwatch.domain.clustering import (  # noqa: E402
    ClusterThresholds,
    OnlineClusterer,
    bcubed,
    claim_vector,
    resolve,
    thresholds_for,
)
from narrwatch.eval.match import store_eval_articles, temporary_context  # noqa: E402
from narrwatch.eval.stream import read_stream  # noqa: E402

#: Fine steps: the naive score moves by up to 0.015 F1 between 0.01 steps (CLEF 2020, CT2022).
NAIVE_GRID = [round(0.50 + 0.001 * i, 3) for i in range(500)]
JOIN_GRID = [round(0.30 + 0.01 * i, 2) for i in range(66)]
CENTRED_GRID = [round(0.10 + 0.01 * i, 2) for i in range(51)]

Item = tuple[str, dt.datetime, np.ndarray, str]  # id, published, passage vectors, gold cluster


def embed_part(path: Path, settings: Settings, encoder: Any) -> tuple[list[Item], Any]:
    """Passage vectors of every article of the part, in publication order (cached)."""
    from narrwatch.embeddings.backends import resolve_backend
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.steps.cluster.cluster import passage_vectors
    from narrwatch.steps.embed import embed as vectorize

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    # int8 and bf16 vectors differ from fp32 ones enough to move the scores: one cache per backend
    backend = resolve_backend(settings.embedding_backend)
    model = settings.embedding_model.replace("/", "_").replace(":", "_") + "-" + backend
    cache = ROOT / "var" / "bench" / f"cluster-{path.parent.name}-{path.stem}-{digest}-{model}.pkl"
    articles = read_stream(path, need_cluster=True, need_outlet=False)
    if cache.exists():
        found: dict[str, np.ndarray] = pickle.loads(cache.read_bytes())
    else:
        end = articles[-1].published + dt.timedelta(seconds=1)
        with tempfile.TemporaryDirectory(prefix="narrwatch-no-seeds-") as no_seeds:
            with temporary_context(settings, Path(no_seeds), encoder) as ctx:
                ids = store_eval_articles(ctx, articles, end)
                vectorize.embed_pending(ctx, end)
                encoder = ctx.encoder
                with ctx.transaction() as session:
                    stacked = passage_vectors(
                        session, ctx.vector_store, collection_for(ctx.encoder), list(ids.values())
                    )
        found = {eval_id: stacked[stored] for eval_id, stored in ids.items() if stored in stacked}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(found))
    items = [(a.id, a.published, found[a.id], str(a.cluster)) for a in articles if a.id in found]
    return items, encoder


def narrwatch_partition(
    items: Sequence[Item],
    thresholds: ClusterThresholds,
    window: dt.timedelta,
    vector_of: Callable[[np.ndarray], np.ndarray | None] = claim_vector,
) -> list[str]:
    clusterer = OnlineClusterer([], thresholds=thresholds, window=window, next_id=1)
    assigned: dict[str, int] = {}
    for number, (item_id, published, passages, _) in enumerate(items):
        vector = vector_of(passages)
        if vector is not None:
            assigned[item_id] = clusterer.add(number, published, vector).cluster_id
    merged = {m.absorbed_id: m.into_id for m in clusterer.merges}
    return [
        f"c{resolve(assigned[item_id], merged)}" if item_id in assigned else f"alone-{item_id}"
        for item_id, *_ in items
    ]


def naive_partition(items: Sequence[Item], threshold: float) -> list[str]:
    """Single pass on whole-article mean vectors, nearest normalised centroid."""
    sums: list[np.ndarray] = []
    labels: list[str] = []
    for _, _, passages, _ in items:
        mean = passages.mean(axis=0)
        unit = mean / (np.linalg.norm(mean) or 1.0)
        if sums:
            centroids = np.stack(sums)
            sims = centroids @ unit / np.maximum(np.linalg.norm(centroids, axis=1), 1e-12)
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                sums[best] = sums[best] + unit
                labels.append(f"n{best}")
                continue
        sums.append(unit.copy())
        labels.append(f"n{len(sums) - 1}")
    return labels


def centred_rows(tune: Sequence[Item], items: Sequence[Item], window: dt.timedelta) -> list[str]:
    """The ``--centred`` experiment: centre from the tuning part, threshold chosen there, scored on
    the evaluation part; the tuning-part F1 around the chosen threshold comes first."""
    centre = np.mean([lead / np.linalg.norm(lead) for lead in (item[2][0] for item in tune)], axis=0)

    def centred(passages: np.ndarray) -> np.ndarray | None:
        vector = claim_vector(passages)
        if vector is None:
            return None
        shifted = vector - centre
        norm = float(np.linalg.norm(shifted))
        return shifted / norm if norm > 0 else None

    tune_gold = [item[3] for item in tune]
    tuned = {
        t: bcubed(narrwatch_partition(tune, ClusterThresholds(t, t), window, centred), tune_gold).f1
        for t in CENTRED_GRID
    }
    best = max(CENTRED_GRID, key=lambda t: (tuned[t], -t))
    near = "  ".join(f"{t:.2f} {tuned[t]:.3f}" for t in CENTRED_GRID if abs(t - best) <= 0.05)
    guess = narrwatch_partition(items, ClusterThresholds(best, best), window, centred)
    return [
        f"centred, tuning-part F1 by join=merge: {near}",
        row("centred", f"join=merge {best} (tune)", guess, [item[3] for item in items]),
    ]


def row(name: str, knob: str, guess: Sequence[str], gold: Sequence[str]) -> str:
    score = bcubed(guess, gold)
    return (
        f"| {name:<10} | {knob:<16} | {len(set(guess)):>4} | {score.precision:.3f} | "
        f"{score.recall:.3f} | {score.f1:.3f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sources", nargs="+", default=["clef2020", "fnc1", "ct2022"])
    parser.add_argument("--sweep", action="store_true", help="join/merge sweep on the tuning part")
    parser.add_argument("--centred", action="store_true", help="add the centred-vector experiment row")
    args = parser.parse_args(argv)
    settings = get_settings()
    window = dt.timedelta(days=settings.cluster_window_days)
    thresholds = thresholds_for(settings.embedding_model, settings.cluster_threshold)
    if thresholds is None:
        parser.error(f"no cluster thresholds for {settings.embedding_model}: set NARRWATCH_CLUSTER_THRESHOLD")
    encoder = None
    print(f"model {settings.embedding_model}; narrwatch join {thresholds.join} merge {thresholds.merge}")
    for source in args.sources:
        folder = ROOT / "eval" / "thirdparty" / source
        if not (folder / "cluster-eval.jsonl").exists():
            print(f"{source}: {folder}/cluster-eval.jsonl missing; run eval/thirdparty/convert_cluster.py")
            return 2
        has_tune = (folder / "cluster-tune.jsonl").exists()  # ct2022 is evaluation only
        if has_tune and (args.sweep or args.centred):
            tune, encoder = embed_part(folder / "cluster-tune.jsonl", settings, encoder)
        if has_tune and args.sweep:
            gold = [item[3] for item in tune]
            print(f"\n{source} TUNE part: {len(tune)} items, {len(set(gold))} claims")
            for join in JOIN_GRID:
                cells = []
                for merge in (join, round(join + 0.02, 2), round(join + 0.05, 2), 1.0):
                    if merge <= 1.0:
                        guess = narrwatch_partition(tune, ClusterThresholds(join, merge), window)
                        cells.append(f"m{merge:.2f} F1 {bcubed(guess, gold).f1:.3f}")
                print(f"  join {join:.2f}: " + "  ".join(cells))
        items, encoder = embed_part(folder / "cluster-eval.jsonl", settings, encoder)
        gold = [item[3] for item in items]
        print(f"\n{source} EVAL part: {len(items)} items, {len(set(gold))} gold claims")
        print("| clusterer  | threshold        | clus | B3 P  | B3 R  | B3 F1 |")
        print("|------------|------------------|------|-------|-------|-------|")
        knob = f"join {thresholds.join} merge {thresholds.merge}"
        print(row("narrwatch", knob, narrwatch_partition(items, thresholds, window), gold))
        naive = max(NAIVE_GRID, key=lambda t: (bcubed(naive_partition(items, t), gold).f1, -t))
        print(row("naive", f"t {naive} (on gold)", naive_partition(items, naive), gold))
        print(row("singletons", "-", [item[0] for item in items], gold))
        if has_tune and args.centred:
            print("\n".join(centred_rows(tune, items, window)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
