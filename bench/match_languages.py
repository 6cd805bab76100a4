"""Do seed thresholds mean the same in every language? Pass rates on unrelated text, per language.

Data: the Tatoeba sample in bench/data/tatoeba/sample.tsv (third-party parallel sentences, CC BY 2.0
FR): everyday sentences, unrelated to every seed of narratives/. Each language's sentences (and the
English originals) are split by a hash of the English sentence: one half is the language's stored
background, the other half is measured. For every seed of narratives/ and every language it prints
the share of measured sentences that reach the seed's suggest threshold, calibrated per language
(the shipped recipe) and raw (one threshold on the uncalibrated score), and how often a seed's
decision on a translation equals its decision on the English original.

    .venv/bin/python bench/match_languages.py [--probe 0.1]

``--probe`` adds the same figures at a lower calibrated threshold, where enough sentences pass for
a ratio to mean something (at ``suggest`` nearly nothing unrelated passes in any language).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from narrwatch.config import get_settings  # noqa: E402
from narrwatch.domain.background import background_figures, shrink  # noqa: E402
from narrwatch.domain.scoring import BACKGROUND_TEXTS, model_default_thresholds  # noqa: E402
from narrwatch.steps.match import prepare as matching  # noqa: E402
from narrwatch.steps.match.learning import prior_figures  # noqa: E402
from narrwatch.steps.match.seeds import load_narratives  # noqa: E402

SAMPLE = ROOT / "bench" / "data" / "tatoeba" / "sample.tsv"


def half(key: str) -> str:
    return "background" if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 2 == 0 else "measured"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probe", type=float, default=0.1)
    args = parser.parse_args(argv)
    from narrwatch.embeddings.encoder import load_encoder

    settings = get_settings()
    encoder = load_encoder(settings)
    narratives = load_narratives(ROOT / "narratives")
    active = [seed.id for seed in narratives.active()]
    thresholds = model_default_thresholds(encoder.model_name, calibrated=True)
    unset = dict.fromkeys(active, thresholds)
    prepared = matching.prepare_seeds(encoder, narratives, active, matching.scoring_params(settings), unset)
    prior = prior_figures(prepared, matching.encode_cached(encoder, BACKGROUND_TEXTS, "passage"))

    with SAMPLE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    texts: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"background": [], "measured": []})
    pairs: list[tuple[str, str, str]] = []  # (language, english, translation), measured half only
    seen_english: set[str] = set()
    for row in rows:
        part = half(row["english"])
        texts[row["language"]][part].append(row["translation"])
        if row["english"] not in seen_english:
            seen_english.add(row["english"])
            texts["en"][part].append(row["english"])
        if part == "measured":
            pairs.append((row["language"], row["english"], row["translation"]))

    def raw(sentences: list[str]) -> dict[str, np.ndarray]:
        vectors = np.asarray(encoder.encode_passages(sentences), dtype=np.float32)
        scores = [
            prepared.raw_scores(vector[np.newaxis, :], [text])
            for vector, text in zip(vectors, sentences, strict=True)
        ]
        return {seed_id: np.array([s[seed_id].score for s in scores]) for seed_id in active}

    figures = {}
    measured = {}
    for language, parts in texts.items():
        background = raw(parts["background"])
        figures[language] = {
            seed_id: shrink(background_figures(background[seed_id]), prior[seed_id]) for seed_id in active
        }
        measured[language] = raw(parts["measured"])

    def rate(language: str, seed_id: str, threshold: float, calibrated: bool) -> float:
        values = measured[language][seed_id]
        if calibrated:
            values = np.array([figures[language][seed_id].calibrate(v) for v in values])
        return float(np.mean(values >= threshold))

    languages = ["en"] + sorted(lang for lang in texts if lang != "en")
    print(f"model: {encoder.model_name} ({encoder.backend}); suggest threshold {thresholds.suggest}")
    print(
        "measured sentences per language: "
        + ", ".join(f"{lang} {len(texts[lang]['measured'])}" for lang in languages)
    )
    for label, threshold in (("suggest", thresholds.suggest), (f"probe {args.probe}", args.probe)):
        for calibrated in (True, False):
            worst = 0.0
            print(f"\npass rate at {label} ({'calibrated per language' if calibrated else 'raw score'})")
            print(f"{'seed':36} " + " ".join(f"{lang:>7}" for lang in languages) + "  max ratio to en")
            for seed_id in active:
                rates = [rate(lang, seed_id, threshold, calibrated) for lang in languages]
                ratios = [
                    max(r, rates[0]) / min(r, rates[0])
                    if min(r, rates[0]) > 0
                    else (1.0 if r == rates[0] else np.inf)
                    for r in rates[1:]
                ]
                worst = max(worst, max(ratios))
                print(f"{seed_id:36} " + " ".join(f"{r:7.3f}" for r in rates) + f"  {max(ratios):.2f}")
            print(f"worst ratio to English over seeds and languages: {worst:.2f}")

    # Agreement of decisions on a translation and its English original (measured half).
    print("\ndecision agreement, translation vs English original (suggest level, calibrated):")
    english_raw = raw([english for _, english, _ in pairs])
    translated_raw = raw([translation for _, _, translation in pairs])
    by_language: dict[str, list[bool]] = defaultdict(list)
    for index, (language, _, _) in enumerate(pairs):
        for seed_id in active:
            en = figures["en"][seed_id].calibrate(english_raw[seed_id][index]) >= thresholds.suggest
            tr = figures[language][seed_id].calibrate(translated_raw[seed_id][index]) >= thresholds.suggest
            by_language[language].append(en == tr)
    for language in sorted(by_language):
        agree = by_language[language]
        print(f"  {language:8} {np.mean(agree):.3f} ({len(agree)} seed decisions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
