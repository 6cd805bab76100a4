"""Matching on third-party labelled data: baselines, the shipped recipe and an ablation.

Needs the converted sets (eval/thirdparty/README.md): per source ``seeds/``, ``tune.jsonl``,
``eval.jsonl``. Each part is embedded with the configured model through the pipeline's own
splitting and encoder (``evaluation.embedded_set``); scoring variants then run on the stored
vectors. Knobs are chosen on the tuning part; figures are printed for the evaluation part.

    .venv/bin/python bench/match_thirdparty.py [--sources fnc1 clef2020] [--json]

Baselines: "naive" is the best single threshold on the passage max-cosine to any seed phrasing,
tuned on the evaluation part itself (an upper bound for that recipe); "nothing" predicts no label.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from narrwatch.config import get_settings  # noqa: E402
from narrwatch.domain.background import BackgroundFigures, background_figures  # noqa: E402
from narrwatch.domain.scoring import (  # noqa: E402
    ScoringParams,
    Thresholds,
    model_default_thresholds,
)
from narrwatch.domain.stance import StanceRules, article_stance  # noqa: E402
from narrwatch.embeddings.collections import collection_for  # noqa: E402
from narrwatch.eval.match import embedded_set, figures  # noqa: E402
from narrwatch.steps.match import prepare as matching  # noqa: E402
from narrwatch.steps.match import stored as stored_articles  # noqa: E402
from narrwatch.steps.match.calibration import (  # noqa: E402
    LanguageCalibrator,
    bundled_background_vectors,
)
from narrwatch.steps.match.learning import apply_verdicts, labelled_passage, stream_passages  # noqa: E402
from narrwatch.steps.match.seeds import load_narratives  # noqa: E402

#: The shipped default (``match_competition_gap``): off.
SHIPPED_GAP: float | None = None
THRESHOLDS = [round(-1.0 + 0.05 * i, 2) for i in range(0, 161)]


@dataclass
class Part:
    articles: list[Any]  # EvalArticle
    texts: dict[str, list[str]]
    vectors: dict[str, np.ndarray]
    language: dict[str, str | None]


def embed_part(path: Path, seeds: Path, encoder: Any) -> tuple[Part, Any]:
    """The part's passages and vectors, cached under var/bench/ per file content and model."""
    import hashlib
    import pickle

    settings = get_settings()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    model = settings.embedding_model.replace("/", "_").replace(":", "_")
    cache = (
        ROOT
        / "var"
        / "bench"
        / f"{path.parent.name}-{path.stem}-{digest}-{model}-{settings.embedding_backend}.pkl"
    )
    if cache.exists():
        import narrwatch.eval.match as eval_match_module
        from narrwatch.eval.match import read_eval_articles

        # caches written before the layout change name the old module of the labelled rows
        sys.modules.setdefault("narrwatch.evaluation", eval_match_module)
        part = pickle.loads(cache.read_bytes())
        part.articles = read_eval_articles(path, load_narratives(seeds))
        if encoder is None:
            from narrwatch.embeddings.encoder import load_encoder

            encoder = load_encoder(settings)
        return part, encoder
    part, encoder = _embed_part(path, seeds, encoder, settings)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(replace(part, articles=[])))  # rows are re-read from the file
    return part, encoder


def _embed_part(path: Path, seeds: Path, encoder: Any, settings: Any) -> tuple[Part, Any]:
    with embedded_set(path, seeds, settings, encoder) as data:
        ctx = data.ctx
        collection = collection_for(ctx.encoder)
        with ctx.transaction() as session:
            stored, _ = stored_articles.load_stored_articles(
                session, ctx.vector_store, collection, list(data.ids.values())
            )
        by_id = {article.id: article for article in stored}
        part = Part(data.articles, {}, {}, {})
        for eval_id, stored_id in data.ids.items():
            article = by_id[stored_id]
            part.texts[eval_id] = article.passage_texts
            part.vectors[eval_id] = article.vectors
            part.language[eval_id] = article.language
        return part, ctx.encoder


def raw_scores(part: Part, prepared: Any) -> dict[str, dict[str, Any]]:
    return {eval_id: prepared.score(part.vectors[eval_id], part.texts[eval_id]) for eval_id in part.texts}


def naive_scores(part: Part, prepared: Any) -> dict[str, dict[str, float]]:
    """Passage max-cosine to any positive phrasing, no background, no negatives."""
    out: dict[str, dict[str, float]] = {}
    for eval_id, vectors in part.vectors.items():
        out[eval_id] = {
            seed_id: float((vectors @ seed.positives.T).max()) for seed_id, seed in prepared.vectors.items()
        }
    return out


def calibrated(scores: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each seed's scores against the part's own articles as background (one language here)."""
    seed_ids = next(iter(scores.values())).keys()
    out: dict[str, dict[str, float]] = {eval_id: {} for eval_id in scores}
    unit = BackgroundFigures(0.0, 0.1, 0)  # 0.1 = the background's 99th percentile
    for seed_id in seed_ids:
        fig = background_figures([row[seed_id] for row in scores.values()])
        for eval_id, row in scores.items():
            out[eval_id][seed_id] = fig.calibrate(row[seed_id], unit)
    return out


def predict(
    scores: dict[str, dict[str, float]], threshold: float, top: int | None = None, margin: float | None = None
) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for eval_id, row in scores.items():
        ranked = sorted(row.items(), key=lambda item: -item[1])
        chosen = [seed for seed, value in ranked if value >= threshold]
        if top is not None:
            chosen = chosen[:top]
        if margin is not None and chosen:
            best = row[chosen[0]]
            chosen = [seed for seed in chosen if best - row[seed] <= margin]
        result[eval_id] = set(chosen)
    return result


def best_threshold(
    part: Part, narratives: Any, scores: dict[str, dict[str, float]], refine: bool = False, **kw: Any
) -> tuple[float, dict[str, Any]]:
    """The threshold with the best coarse micro-F1 on ``part``; ``refine``: then in steps of 0.002
    around it (the naive baseline gets its best threshold, not the nearest 0.05)."""
    best = (THRESHOLDS[0], {"coarse": {"f1_micro": -1}})
    grid = (
        THRESHOLDS
        if max(max(r.values()) for r in scores.values()) <= 1.5
        else [0.25 * i for i in range(0, 60)]
    )
    for t in grid:
        fig = figures(part.articles, predict(scores, t, **kw), narratives)
        if fig["coarse"]["f1_micro"] > best[1]["coarse"]["f1_micro"]:
            best = (t, fig)
    centre = best[0]
    for t in [round(centre - 0.05 + 0.002 * i, 3) for i in range(51)] if refine else []:
        fig = figures(part.articles, predict(scores, t, **kw), narratives)
        if fig["coarse"]["f1_micro"] > best[1]["coarse"]["f1_micro"]:
            best = (t, fig)
    return best


def row(name: str, fig: dict[str, Any], note: str = "") -> dict[str, Any]:
    return {"name": name, "note": note, **{level: fig[level] for level in ("fine", "coarse")}}


def run_source(name: str, encoder: Any, variants_too: bool = True) -> tuple[list[dict[str, Any]], Any]:
    base = ROOT / "eval" / "thirdparty" / name
    seeds = base / "seeds"
    narratives = load_narratives(seeds)
    tune, encoder = embed_part(base / "tune.jsonl", seeds, encoder)
    test, encoder = embed_part(base / "eval.jsonl", seeds, encoder)
    print(f"{name}: embedded {len(tune.articles)} + {len(test.articles)} articles", file=sys.stderr)
    active = [seed.id for seed in narratives.active()]
    unset = {seed_id: Thresholds(-1.0, -1.0) for seed_id in active}
    rows: list[dict[str, Any]] = []

    params = ScoringParams()
    prepared = matching.prepare_seeds(encoder, narratives, active, params, unset)
    nothing = {a.id: set() for a in test.articles}
    rows.append(row("predict nothing", figures(test.articles, nothing, narratives)))
    naive_t, naive_fig = best_threshold(test, narratives, naive_scores(test, prepared), refine=True)
    rows.append(row("naive max-cosine, threshold tuned on eval", naive_fig, f"t={naive_t}"))

    def recipe(part: Part, variant: dict[str, Any]) -> dict[str, dict[str, float]]:
        p = replace(params, **variant.get("params", {}))
        prep = matching.prepare_seeds(encoder, narratives, active, p, unset)
        values = {
            eval_id: {seed_id: s.calibration_input for seed_id, s in seeds_scores.items()}
            for eval_id, seeds_scores in raw_scores(part, prep).items()
        }
        if variant.get("naive"):
            values = naive_scores(part, prep)
        return calibrated(values) if variant.get("calibrate") else values

    variants: dict[str, dict[str, Any]] = {
        "raw rescaled score (today's recipe), tuned threshold": {},
        "+ per-language per-seed calibration": {"calibrate": True},
        "+ calibration, best seed only": {"calibrate": True, "top": 1},
        "+ calibration, seeds within 1.0 of the best": {"calibrate": True, "margin": 1.0},
        "calibrated naive max-cosine (no rescale), best seed only": {
            "calibrate": True,
            "naive": True,
            "top": 1,
        },
        "+ calibration, best seed, top-2 passage mean": {"calibrate": True, "top": 1, "params": {"top_k": 2}},
        "+ calibration, best seed, no description": {
            "calibrate": True,
            "top": 1,
            "params": {"use_description": False},
        },
    }
    for label, variant in variants.items() if variants_too else ():
        kw = {k: variant[k] for k in ("top", "margin") if k in variant}
        tune_scores = recipe(tune, variant)
        t, _ = best_threshold(tune, narratives, tune_scores, **kw)
        fig = figures(test.articles, predict(recipe(test, variant), t, **kw), narratives)
        rows.append(row(label, fig, f"t={t} (tuned on tune)"))

    rows += shipped_rows(name, base, tune, test, narratives, encoder)
    return rows, encoder


def cells(level: dict[str, float]) -> str:
    return " / ".join(
        f"{level[k]:.3f}" for k in ("precision", "recall", "f1_micro", "f1_macro", "f1_samples")
    )


def shipped_rows(
    name: str, base: Path, tune: Part, test: Part, narratives: Any, encoder: Any
) -> list[dict[str, Any]]:
    """The shipped defaults (calibrated thresholds, competition gap, stance rule), their ablation,
    the tuning part's labels as verdicts, and the stance check on the evaluation part."""
    defaults = model_default_thresholds(encoder.model_name)
    raw_defaults = model_default_thresholds(encoder.model_name)
    sweep_tune(name, tune, narratives, encoder)
    rows: list[dict[str, Any]] = []
    prepared, scores = shipped(test, narratives, encoder)
    zero = decide_all(prepared, scores, defaults)
    rows.append(
        row(
            "SHIPPED recipe zero-shot (calibration, no gap)",
            figures(test.articles, zero, narratives),
            f"confirm {defaults.confirm}",
        )
    )
    gapped = ScoringParams(competition_gap=0.1)
    for label, kw, thresholds in (
        ("  with competition gap 0.1", {"params": gapped}, defaults),
        ("  without calibration (raw, model thresholds)", {"calibrate": False}, raw_defaults),
        ("  without the stance rule", {"stance_rules": StanceRules(debunk_min=0)}, defaults),
    ):
        prep, sc = shipped(test, narratives, encoder, **kw)
        rows.append(row(label, figures(test.articles, decide_all(prep, sc, thresholds), narratives)))
    prepared_v, v_scores = shipped(test, narratives, encoder, verdicts_from=tune, verdict_thresholds=defaults)
    verdict_pred = decide_all(prepared_v, v_scores, defaults)
    rows.append(
        row("SHIPPED recipe + tune-part labels as verdicts", figures(test.articles, verdict_pred, narratives))
    )
    stance_file = base / "stance.jsonl"
    if stance_file.exists():
        prep, sc = shipped(test, narratives, encoder, stance_rules=StanceRules(debunk_min=0))
        without = decide_all(prep, sc, defaults)
        stance_check(name, stance_file, {"with stance rule": zero, "without stance rule": without})
    return rows


def sweep_tune(name: str, tune: Part, narratives: Any, encoder: Any) -> None:
    """The tuning part's coarse micro-F1 over confirm thresholds and competition gaps (stderr):
    the calibrated defaults are the best sum over the sources of these figures."""
    prepared, scores = shipped(tune, narratives, encoder)
    for gap in (None, 0.05, 0.1, 0.15):
        prepared.params = replace(prepared.params, competition_gap=gap)
        curve = []
        for confirm in [round(0.05 * i, 2) for i in range(2, 12)]:
            predicted = decide_all(prepared, scores, Thresholds(round(confirm - 0.1, 2), confirm))
            micro = figures(tune.articles, predicted, narratives)["coarse"]["f1_micro"]
            curve.append(f"{confirm}:{micro:.3f}")
        print(f"{name} tune sweep, gap {gap}: " + " ".join(curve), file=sys.stderr)


def stance_check(name: str, stance_file: Path, predictions: dict[str, dict[str, set[str]]]) -> None:
    """Per stance, the share of the evaluation part's bodies confirmed for their own claim."""
    stances = [json.loads(line) for line in stance_file.read_text().splitlines()]
    for label, predicted in predictions.items():
        for stance in ("disagree", "agree", "discuss"):
            chosen = [r for r in stances if r["part"] == "eval" and r["stance"] == stance]
            confirmed = sum(r["seed"] in predicted.get(r["id"], set()) for r in chosen)
            print(
                f"{name} stance check ({label}): {stance} bodies confirmed for their claim "
                f"{confirmed}/{len(chosen)} = {confirmed / max(1, len(chosen)):.3f}",
                file=sys.stderr,
            )


def _articles(part: Part) -> list[Any]:
    from types import SimpleNamespace

    return [
        SimpleNamespace(id=eval_id, vectors=part.vectors[eval_id], passage_texts=part.texts[eval_id])
        for eval_id in part.texts
    ]


def shipped(
    part: Part,
    narratives: Any,
    encoder: Any,
    *,
    params: ScoringParams | None = None,
    calibrate: bool = True,
    stance_rules: StanceRules | None = None,
    verdicts_from: Part | None = None,
    verdict_thresholds: Thresholds | None = None,
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The match step's own recipe (calibration per language with the bundled prior, stance,
    verdict passages and heads) with the part's articles as the stored background.

    Returns the prepared seeds and every article's scores; :func:`decide_all` applies thresholds.
    ``verdicts_from``: that part's labels become verdicts on its matches at ``verdict_thresholds``.
    """
    active = [seed.id for seed in narratives.active()]
    unset = {seed_id: Thresholds(-1.0, -1.0) for seed_id in active}
    recipe = params or ScoringParams(competition_gap=SHIPPED_GAP)
    prepared = matching.prepare_seeds(encoder, narratives, active, recipe, unset)
    background = _articles(part) + (_articles(verdicts_from) if verdicts_from else [])
    if calibrate:
        bundled = bundled_background_vectors(encoder, get_settings().resolved_models_dir)
        prepared.calibrator = LanguageCalibrator(bundled, lambda _key: background)
    rules = stance_rules or StanceRules()

    def run(which: Part) -> dict[str, dict[str, Any]]:
        out = {}
        for eval_id in which.texts:
            scores = prepared.score(which.vectors[eval_id], which.texts[eval_id], language="en")
            stance = article_stance(" ".join(which.texts[eval_id]), rules)
            out[eval_id] = {k: replace(v, stance=stance.label) for k, v in scores.items()}
        return out

    if verdicts_from is not None and verdict_thresholds is not None:
        scores = run(verdicts_from)
        levels = decide_all(prepared, scores, verdict_thresholds, "suggest")
        gold = {a.id: set(a.labels) for a in verdicts_from.articles}
        passages = [
            labelled_passage(
                seed_id,
                scores[eval_id],
                verdicts_from.vectors[eval_id],
                verdicts_from.texts[eval_id],
                seed_id in gold[eval_id],
                "en",
            )
            for eval_id, found in sorted(levels.items())
            for seed_id in sorted(found)  # a set: sorted, so a run hands verdicts over in one order
        ]
        apply_verdicts(prepared, passages, stream_passages(lambda _key: background, ["en"]))
        print(
            f"verdicts: {sum(p.confirmed for p in passages)} confirmed, "
            f"{sum(not p.confirmed for p in passages)} rejected, heads for {len(prepared.heads)} seeds; "
            + ("no stream head" if prepared.stream_head is None else prepared.stream_head.describe()),
            file=sys.stderr,
        )
    return prepared, run(part)


def decide_all(
    prepared: Any, scores: dict[str, dict[str, Any]], thresholds: Thresholds, level: str = "confirm"
) -> dict[str, set[str]]:
    prepared.thresholds = dict.fromkeys(prepared.vectors, thresholds)
    allowed = ("confirm",) if level == "confirm" else ("suggest", "confirm")
    return {
        eval_id: {s for s, found in prepared.decide(row).items() if found in allowed}
        for eval_id, row in scores.items()
    }


def print_table(name: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n== {name} ==")
    print(f"{'variant':62} | fine P / R / micro / macro / samples | coarse P / R / micro / macro / samples")
    for r in rows:
        f, c = r["fine"], r["coarse"]
        print(f"{r['name'][:62]:62} | {cells(f)} | {cells(c)}  {r['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", nargs="+", default=["fnc1", "clef2020"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--shipped-only", action="store_true", help="baselines and the shipped rows only")
    args = parser.parse_args(argv)
    encoder = None
    results = {}
    for name in args.sources:
        rows, encoder = run_source(name, encoder, not args.shipped_only)
        results[name] = rows
        if not args.json:
            print_table(name, rows)
    if args.json:
        print(json.dumps(results, indent=1))
    print(f"model: {encoder.model_name} ({encoder.backend})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
