"""Do seed thresholds mean the same in every language? Pass rates on unrelated news, per language.

Data (bench/language_news.py): NTREX-128 (bench/data/ntrex/, CC BY-SA 4.0: WMT 2019 news, mostly
Britain and the US) and FLORES-200 dev and devtest (bench/data/flores/, CC BY-SA 4.0: Wikinews,
Wikivoyage, Wikibooks), each professionally translated from English into Serbian, Croatian, Bosnian,
Albanian, Macedonian, Russian and Bulgarian (Serbian Latin: NTREX's own translation, FLORES's
transliterated). The text is unrelated to the seeds of narratives/ and parallel: every language
carries the same content, so a difference in pass rates between languages is the language's doing.

Split: documents are split in two halves by a hash of their id; each half in turn is every
language's stored background (the shipped calibration,
:class:`narrwatch.steps.match.calibration.LanguageCalibrator`, its bundled prior included) while the
other half is measured, so every unit is measured once, against figures no sentence of its document
made. The NTREX documents of the bundled background are left out.

Units: sentences (each a one-passage article) and articles (a document's sentences cut into
passages by narrwatch's splitter, scored on the best passage as the match step scores an article).

Prints, for every seed of narratives/ and every language: units reaching the seed's suggest
threshold (calibrated, as shipped), their rate, the ratio of the rate to the English one with a 95 %
interval from resampling documents, and how often the seed's decision on the translation equals its
decision on the English original.

    .venv/bin/python bench/match_languages.py [--units sentence article] [--sources ntrex flores] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.language_news import (  # noqa: E402
    FACTOR,
    LANGUAGES,
    PASSES_FOR_FACTOR,
    Document,
    Unit,
    bootstrap_weights,
    document_counts,
    encoded,
    load_documents,
    make_units,
    ratio_interval,
    units_needed,
    verdict,
)
from narrwatch.config import get_settings  # noqa: E402
from narrwatch.domain.scoring import model_default_thresholds  # noqa: E402
from narrwatch.steps.match import prepare as matching  # noqa: E402
from narrwatch.steps.match.calibration import (  # noqa: E402
    LanguageCalibrator,
    bundled_background_vectors,
)
from narrwatch.steps.match.prepare import PreparedSeeds, encoder_key  # noqa: E402
from narrwatch.steps.match.seeds import load_narratives  # noqa: E402
from narrwatch.steps.match.stored import StoredArticle  # noqa: E402

#: The language code narrwatch stores (Serbian is "sr" in both scripts; the script picks the background).
STORED_CODE = {"sr-Cyrl": "sr", "sr-Latn": "sr"}
PUBLISHED = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)


def score_units(
    prepared: PreparedSeeds,
    bundled: dict[str, np.ndarray],
    halves: np.ndarray,
    units: list[Unit],
    vectors: dict[str, list[np.ndarray]],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Raw and calibrated scores (units x seeds) per language, each half scored against the other."""
    seeds = list(prepared.vectors)

    def articles(lang: str, indices: np.ndarray) -> list[StoredArticle]:
        return [
            StoredArticle(
                int(i),
                PUBLISHED,
                STORED_CODE.get(lang, lang),
                "",
                list(range(len(units[i].passages[lang]))),
                list(units[i].passages[lang]),
                vectors[lang][i],
            )
            for i in indices
        ]

    raw = {lang: np.zeros((len(units), len(seeds))) for lang in LANGUAGES}
    calibrated = {lang: np.zeros((len(units), len(seeds))) for lang in LANGUAGES}
    for fold in (0, 1):
        background = {lang: articles(lang, np.flatnonzero(halves == fold)) for lang in LANGUAGES}
        prepared.calibrator = LanguageCalibrator(bundled, lambda key, b=background: b.get(key, []))
        for lang in LANGUAGES:
            for article in articles(lang, np.flatnonzero(halves != fold)):
                raw_scores = prepared.raw_scores(article.vectors, article.passage_texts)
                scores = prepared.calibrator.calibrate(
                    prepared, raw_scores, article.language, " ".join(article.passage_texts)
                )
                raw[lang][article.id] = [raw_scores[s].score for s in seeds]
                calibrated[lang][article.id] = [scores[s].score for s in seeds]
    return raw, calibrated


def _interval(low: float, high: float) -> str:
    return "[   -  ,   -  ]" if np.isnan(low) else f"[{low:6.2f},{high:6.2f}]"


def describe(
    seeds: list[str], passes: dict[str, np.ndarray], unit_documents: np.ndarray, n_documents: int
) -> dict[str, object]:
    """Print the per-seed, per-language table of one unit kind; return its figures."""
    n_units = len(unit_documents)
    weights = bootstrap_weights(n_documents)
    counts = {lang: document_counts(passes[lang], unit_documents, n_documents) for lang in LANGUAGES}
    intervals = {lang: ratio_interval(counts[lang], counts["en"], weights) for lang in LANGUAGES}
    per_seed: dict[str, object] = {}
    for j, seed_id in enumerate(seeds):
        passing = {lang: int(passes[lang][:, j].sum()) for lang in LANGUAGES}
        pooled_rate = sum(passing.values()) / (n_units * len(LANGUAGES))
        needed = units_needed(pooled_rate)
        print(
            f"\n{seed_id}: pooled rate {100 * pooled_rate:.2f} %; {PASSES_FOR_FACTOR} passes per language "
            f"(~{needed or 'inf'} units) would show a factor of {FACTOR}"
        )
        header = f"{'pass':>6}{'rate %':>8}{'ratio':>8}  {'95 % interval':16}{'verdict':>10}{'agree':>8}"
        print(f"  {'lang':8}{header}")
        rows = {}
        for lang in LANGUAGES:
            rate = passing[lang] / n_units
            ratio = passing[lang] / max(passing["en"], 1) if passing["en"] else float("nan")
            low, high = (1.0, 1.0) if lang == "en" else (intervals[lang][0][j], intervals[lang][1][j])
            agree = float(np.mean(passes[lang][:, j] == passes["en"][:, j]))
            said = "" if lang == "en" else verdict(low, high)
            print(
                f"  {lang:8}{passing[lang]:6d}{100 * rate:8.2f}{ratio:8.2f}  {_interval(low, high):16}"
                f"{said:>10}{agree:8.4f}"
            )
            rows[lang] = {"passing": passing[lang], "rate": rate, "ratio": ratio, "interval": [low, high]}
            rows[lang] |= {"verdict": said, "agreement": agree}
        per_seed[seed_id] = {"languages": rows, "pooled_rate": pooled_rate, "units_needed": needed}

    total = {lang: passes[lang].sum(axis=1, keepdims=True) for lang in LANGUAGES}
    total_counts = {lang: document_counts(total[lang], unit_documents, n_documents) for lang in LANGUAGES}
    print(f"\nall seeds pooled; agreement over {n_units} units x {len(seeds)} seeds")
    pooled: dict[str, object] = {}
    for lang in LANGUAGES:
        pooled_interval = ratio_interval(total_counts[lang], total_counts["en"], weights)
        low, high = (1.0, 1.0) if lang == "en" else (pooled_interval[0][0], pooled_interval[1][0])
        passing = int(total[lang].sum())
        agree = float(np.mean(passes[lang] == passes["en"]))
        ratio = passing / int(total["en"].sum())
        print(f"  {lang:8}{passing:6d}{ratio:8.2f}  {_interval(low, high):16}{agree:8.4f}")
        pooled[lang] = {"passing": passing, "ratio": ratio, "interval": [low, high], "agreement": agree}
    return {"units": n_units, "per_seed": per_seed, "pooled": pooled}


def by_source(seeds: list[str], passes: dict[str, np.ndarray], sources: np.ndarray) -> dict[str, object]:
    """Passing units per seed, language and source: the calibration is fitted on both sources at
    once, so a source where a language scores unlike its English original shows here."""
    figures: dict[str, object] = {}
    for source in sorted(set(sources)):
        mask = sources == source
        print(f"\npasses in {source} alone ({int(mask.sum())} units per language)")
        print(f"  {'seed':34}" + "".join(f"{lang:>8}" for lang in LANGUAGES))
        table = {}
        for j, seed_id in enumerate([*seeds, "all seeds"]):
            counts = {
                lang: int(passes[lang][mask].sum() if j == len(seeds) else passes[lang][mask, j].sum())
                for lang in LANGUAGES
            }
            print(f"  {seed_id[:34]:34}" + "".join(f"{counts[lang]:8d}" for lang in LANGUAGES))
            table[seed_id] = counts
        figures[source] = table
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    kinds = ["sentence", "article"]
    parser.add_argument("--units", nargs="+", choices=kinds, default=kinds)
    parser.add_argument("--sources", nargs="+", choices=["ntrex", "flores"], default=["ntrex", "flores"])
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    from narrwatch.embeddings.encoder import load_encoder
    from narrwatch.embeddings.passages import split_passages

    settings = get_settings()
    encoder = load_encoder(settings)
    narratives = load_narratives(ROOT / "narratives")
    seeds = [seed.id for seed in narratives.active()]
    thresholds = model_default_thresholds(encoder.model_name)
    params = matching.scoring_params(settings)
    prepared = matching.prepare_seeds(encoder, narratives, seeds, params, dict.fromkeys(seeds, thresholds))
    bundled = bundled_background_vectors(encoder, settings.resolved_models_dir)
    documents: list[Document] = load_documents(args.sources)
    halves = np.array([doc.half for doc in documents])
    report: dict[str, object] = {
        "model": encoder.model_name,
        "backend": encoder.backend,
        "suggest": thresholds.suggest,
        "documents": {source: sum(d.source == source for d in documents) for source in args.sources},
        "documents_per_half": [int((halves == h).sum()) for h in (0, 1)],
    }
    print(
        f"model {encoder.model_name} ({encoder.backend}); suggest threshold {thresholds.suggest}; "
        f"{len(documents)} documents {report['documents']}, halves {report['documents_per_half']}"
    )
    for kind in args.units:
        units = make_units(documents, kind, lambda text: split_passages("", text, encoder))
        vectors = encoded(encoder, f"{encoder_key(encoder)}:{kind}", units, settings.resolved_models_dir)
        unit_halves = np.array([halves[unit.document] for unit in units])
        raw, calibrated = score_units(prepared, bundled, unit_halves, units, vectors)
        passages = {lang: sum(len(unit.passages[lang]) for unit in units) for lang in LANGUAGES}
        print(f"\n=== {kind}s: {len(units)} per language; passages per language {passages}")
        unit_documents = np.array([unit.document for unit in units])
        passes = {lang: calibrated[lang] >= thresholds.suggest for lang in LANGUAGES}
        figures = describe(seeds, passes, unit_documents, len(documents))
        sources = np.array([documents[unit.document].source for unit in units])
        figures["by_source"] = by_source(seeds, passes, sources)
        raw_totals = {lang: int((raw[lang] >= thresholds.suggest).sum()) for lang in LANGUAGES}
        print(f"raw score (no calibration), all seeds pooled: {raw_totals}")
        report[kind] = figures | {"raw_pooled": raw_totals, "passages": passages}
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
