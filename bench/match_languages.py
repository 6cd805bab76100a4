"""Do seed thresholds mean the same in every language? Pass rates on unrelated news, per language.

Data: NTREX-128 (bench/data/ntrex/, CC BY-SA 4.0, Microsoft): 1,997 sentences of English news
(WMT 2019 test set: BBC, Guardian and others) with professional translations into Serbian (Cyrillic
and Latin), Croatian, Bosnian, Albanian, Macedonian, Russian and Bulgarian. The news is unrelated to
the seeds of narratives/ (it is from 2019 and mostly about Britain and the US), and parallel: every
language carries the same content, so a difference in pass rates between languages is the
language's doing, not the news'.

Split: the documents whose sentences are in narrwatch's bundled background
(narrwatch/steps/match/data/) are left out. The remaining sentences are split in two halves by a
hash of (document, line); each half in turn is a language's stored background (the shipped
calibration: :class:`narrwatch.steps.match.calibration.LanguageCalibrator`, its bundled prior
included) while the other half is measured, so every sentence is measured once, against figures it
did not make.

Prints, for every seed of narratives/ and every language, how many measured sentences reach the
seed's suggest threshold (calibrated, as shipped, and raw), the ratio of each language's rate to the
English rate, and how often a seed's decision on a translation equals its decision on the English
original.

    .venv/bin/python bench/match_languages.py [--json]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from narrwatch.config import get_settings  # noqa: E402
from narrwatch.domain.scoring import model_default_thresholds  # noqa: E402
from narrwatch.ports import Encoder  # noqa: E402
from narrwatch.steps.match import prepare as matching  # noqa: E402
from narrwatch.steps.match.calibration import (  # noqa: E402
    LanguageCalibrator,
    bundled_background_vectors,
)
from narrwatch.steps.match.prepare import encoder_key  # noqa: E402
from narrwatch.steps.match.seeds import load_narratives  # noqa: E402
from narrwatch.steps.match.stored import StoredArticle  # noqa: E402

NTREX = ROOT / "bench" / "data" / "ntrex" / "ntrex128.tsv.gz"
LANGUAGES = ["en", "sr-Cyrl", "sr-Latn", "hr", "bs", "sq", "mk", "ru", "bg"]
#: The language code narrwatch stores (Serbian is "sr" in both scripts; the script picks the background).
STORED_CODE = {"sr-Cyrl": "sr", "sr-Latn": "sr"}


def _hash(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def in_bundle(document: str) -> bool:
    """The rule that chose the bundled background's documents (see its README)."""
    return _hash(f"bundle:{document}") % 10 == 0


def _encoded(encoder: Encoder, rows: list[dict[str, str]], cache_dir: Path) -> dict[str, np.ndarray]:
    """Every language's sentences encoded (12 min here), kept in ``cache_dir`` per model and backend."""
    digest = hashlib.sha256(repr((encoder_key(encoder), [row["en"] for row in rows])).encode()).hexdigest()
    path = cache_dir / f"ntrex-{digest[:16]}.npz"
    if path.exists():
        with np.load(path) as stored:
            return {lang: stored[lang] for lang in LANGUAGES}
    vectors = {
        lang: np.asarray(encoder.encode_passages([row[lang] for row in rows]), dtype=np.float32)
        for lang in LANGUAGES
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, **vectors)  # type: ignore[arg-type]
    return vectors


def ratio(rate: float, english: float) -> float:
    low, high = sorted((rate, english))
    return high / low if low > 0 else (1.0 if high == 0 else float("inf"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    from narrwatch.embeddings.encoder import load_encoder

    settings = get_settings()
    encoder = load_encoder(settings)
    narratives = load_narratives(ROOT / "narratives")
    active = [seed.id for seed in narratives.active()]
    thresholds = model_default_thresholds(encoder.model_name)
    params = matching.scoring_params(settings)
    prepared = matching.prepare_seeds(encoder, narratives, active, params, dict.fromkeys(active, thresholds))
    bundled = bundled_background_vectors(encoder, settings.resolved_models_dir)

    with gzip.open(NTREX, "rt", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if not in_bundle(row["document"])]
    half = np.array([_hash(f"{row['document']}#{row[LANGUAGES[0]]}") % 2 for row in rows])
    vectors = _encoded(encoder, rows, settings.resolved_models_dir)
    published = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)

    def articles(lang: str, indices: np.ndarray) -> list[StoredArticle]:
        return [
            StoredArticle(
                int(i),
                published,
                STORED_CODE.get(lang, lang),
                "",
                [0],
                [rows[i][lang]],
                vectors[lang][i][np.newaxis, :],
            )
            for i in indices
        ]

    raw = {lang: np.zeros((len(rows), len(active))) for lang in LANGUAGES}
    calibrated = {lang: np.zeros((len(rows), len(active))) for lang in LANGUAGES}
    for fold in (0, 1):
        background = {lang: articles(lang, np.flatnonzero(half == fold)) for lang in LANGUAGES}
        by_key = {
            ("sr-" + lang.split("-")[1]) if lang.startswith("sr-") else lang: background[lang]
            for lang in LANGUAGES
        }
        prepared.calibrator = LanguageCalibrator(bundled, lambda key, b=by_key: b.get(key, []))
        for lang in LANGUAGES:
            for article in articles(lang, np.flatnonzero(half != fold)):
                raw_scores = prepared.raw_scores(article.vectors, article.passage_texts)
                scores = prepared.calibrator.calibrate(
                    prepared, raw_scores, article.language, article.passage_texts[0]
                )
                raw[lang][article.id] = [raw_scores[s].score for s in active]
                calibrated[lang][article.id] = [scores[s].score for s in active]

    report: dict[str, object] = {
        "model": encoder.model_name,
        "backend": encoder.backend,
        "suggest": thresholds.suggest,
        "measured_per_language": len(rows),
    }
    print(
        f"model {encoder.model_name} ({encoder.backend}); suggest threshold {thresholds.suggest}; "
        f"{len(rows)} measured sentences per language (NTREX-128, outside the bundled background)"
    )
    for label, table in (("calibrated (shipped)", calibrated), ("raw score", raw)):
        passes = {lang: (table[lang] >= thresholds.suggest).sum(axis=0) for lang in LANGUAGES}
        print(f"\nsentences reaching suggest, {label}; last column: largest ratio of a language's rate to en")
        print(f"{'seed':34}" + "".join(f"{lang:>8}" for lang in LANGUAGES) + "   ratio")
        worst_counted = 0.0
        per_seed = {}
        for j, seed_id in enumerate(active):
            counts = {lang: int(passes[lang][j]) for lang in LANGUAGES}
            worst = max(ratio(counts[lang], counts["en"]) for lang in LANGUAGES[1:])
            per_seed[seed_id] = {"counts": counts, "worst_ratio": worst}
            if min(counts.values()) >= 10:
                worst_counted = max(worst_counted, worst)
            print(
                f"{seed_id[:34]:34}" + "".join(f"{counts[lang]:8d}" for lang in LANGUAGES) + f"   {worst:.2f}"
            )
        totals = {lang: int(passes[lang].sum()) for lang in LANGUAGES}
        pooled = max(ratio(totals[lang], totals["en"]) for lang in LANGUAGES[1:])
        print(f"{'all seeds':34}" + "".join(f"{totals[lang]:8d}" for lang in LANGUAGES) + f"   {pooled:.2f}")
        print(f"largest ratio where every language has at least 10 passes: {worst_counted:.2f}")
        report[label.split()[0]] = {
            "per_seed": per_seed,
            "totals": totals,
            "pooled_ratio": pooled,
            "worst_ratio_min10": worst_counted,
        }

    print("\ndecision agreement with the English original (suggest level, calibrated)")
    agreement = {}
    english = calibrated["en"] >= thresholds.suggest
    for lang in LANGUAGES[1:]:
        agreement[lang] = float(np.mean((calibrated[lang] >= thresholds.suggest) == english))
        print(f"  {lang:8} {agreement[lang]:.4f} ({english.size} seed decisions)")
    report["agreement"] = agreement
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
